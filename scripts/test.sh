#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, cross-compilation and
# `go test -race` of every package. Usage: scripts/test.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

STATICCHECK_VERSION=v0.8.2
tools="$PWD/.cache/tools"
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
	GOOS=${target%/*} GOARCH=${target#*/} go build -o /dev/null ./... && echo "   $target ok"
done

echo "== pure-Go build (CGO_ENABLED=0: the blob compressor without libzstd)"
CGO_ENABLED=0 go vet ./...
CGO_ENABLED=0 go test -count=1 ./internal/engine/pack/ ./internal/engine/repository/

echo "== go test -race"
go test -race -timeout 60m -count=1 "$@" ./...
