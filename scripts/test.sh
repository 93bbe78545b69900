#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, cross-compilation and
# `go test -race` of every package, against the real servers the tests
# start (installed first by scripts/tools.sh into the tool cache).
# Usage: scripts/test.sh [go test flags]
#
# Tests whose server cannot be installed here (no root for apt, say) are
# skipped; with BUNKER_REQUIRE_SERVERS=1 (as in CI) they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export BUNKER_TOOLS="${BUNKER_TOOLS:-$PWD/.cache/tools}"

echo "== test servers (scripts/tools.sh)"
if ! scripts/tools.sh; then
	if [ "${BUNKER_REQUIRE_SERVERS:-}" = 1 ]; then
		echo "installing the test servers failed" >&2
		exit 1
	fi
	echo "   some test servers could not be installed: their tests will skip"
fi

STATICCHECK_VERSION=v0.8.2
tools="$BUNKER_TOOLS"
sc="$tools/staticcheck-$STATICCHECK_VERSION/staticcheck"
if [ ! -x "$sc" ]; then
	echo "== installing staticcheck $STATICCHECK_VERSION"
	mkdir -p "$(dirname "$sc")"
	GOBIN="$(dirname "$sc")" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

echo "== gofmt"
unformatted=$(find . -name '*.go' -not -path './.cache/*' -not -path './bench/work/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
"$sc" ./...

echo "== cross-compile"
for target in linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
	GOOS=${target%/*} GOARCH=${target#*/} go build -o /dev/null ./... || { echo "cross-compile for $target failed" >&2; exit 1; }
	echo "   $target ok"
done

echo "== pure-Go build (CGO_ENABLED=0: the blob compressor without libzstd)"
CGO_ENABLED=0 go vet ./...
CGO_ENABLED=0 go test -count=1 ./internal/engine/pack/ ./internal/engine/repository/

echo "== go test -race"
go test -race -timeout 60m -count=1 "$@" ./...
