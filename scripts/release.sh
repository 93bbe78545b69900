#!/usr/bin/env bash
# A release build of bunker: without DWARF debug information and the
# symbol table (-ldflags "-s -w"), without the build machine's paths
# (-trimpath), with the version stamped in (bunker version). Stack traces
# still name functions, files and lines: the runtime's own tables stay.
# Figures and what each dependency costs: docs/BUILD.md.
#
# Usage: scripts/release.sh [VERSION]
#   VERSION   default: git describe --tags --always --dirty; without git, the
#             version in the source (internal/cli.Version) is kept
#   OUT       the binary to write (default bin/bunker, or bin/bunker-GOOS-GOARCH
#             when GOOS or GOARCH is set)
#   GOOS, GOARCH, CGO_ENABLED as for go build. CGO_ENABLED defaults to 1 for
#   a native build with a C compiler (libzstd through cgo, as the tests and
#   the container image build), else 0 (the pure-Go zstd encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
# A release is built from the committed go.mod and go.sum, never a
# rewritten one.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

version="${1:-$(git describe --tags --always --dirty 2>/dev/null || true)}"
if [ -n "${GOOS:-}${GOARCH:-}" ]; then
	out="${OUT:-bin/bunker-$(go env GOOS)-$(go env GOARCH)}"
	cross=$([ "$(go env GOOS)/$(go env GOARCH)" != "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" ] && echo 1 || echo 0)
else
	out="${OUT:-bin/bunker}"
	cross=0
fi
if [ -z "${CGO_ENABLED:-}" ]; then
	if [ "$cross" = 0 ] && command -v "$(go env CC)" >/dev/null; then
		export CGO_ENABLED=1
	else
		export CGO_ENABLED=0
	fi
fi

ldflags="-s -w"
if [ -n "$version" ]; then
	ldflags="$ldflags -X github.com/bunkerbackup/bunker/internal/cli.Version=$version"
fi
go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/bunker
echo "$out: bunker ${version:-(version of the source)} ($(go env GOOS)/$(go env GOARCH), CGO_ENABLED=$CGO_ENABLED), $(($(stat -c %s "$out") / 1000000)) MB"
