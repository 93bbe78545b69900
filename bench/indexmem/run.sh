#!/bin/sh
# Resident memory of the in-memory blob index, Bunker's and restic's, on the
# same synthetic blobs (docs/PERFORMANCE.md, "Index memory").
#
#   bench/indexmem/run.sh [COUNTS [BLOBS-PER-PACK [RESTIC-VERSION]]]
#
# COUNTS is a comma-separated list (default 10000000,50000000; at 50M
# restic's index alone keeps 3.5 GB). Each count runs in a process of its
# own. restic's figure comes from its
# own index code: its module source (go mod download) is copied to a
# temporary directory and restic_mem_test.go.txt runs inside its
# internal/repository/index package. Nothing of restic's enters this
# repository.
set -eu
counts=${1:-10000000,50000000}
perpack=${2:-16}
version=${3:-v0.19.1}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

echo "== bunker (per-pack $perpack)"
(cd "$root" && go build -o "${TMPDIR:-/tmp}/bunker-indexmem" ./bench/indexmem)
for n in $(echo "$counts" | tr , ' '); do
	"${TMPDIR:-/tmp}/bunker-indexmem" -n "$n" -per-pack "$perpack"
done

echo "== restic $version (per-pack $perpack)"
src=$(go mod download -json "github.com/restic/restic@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ]; then
	echo "indexmem: restic $version not found by go mod download" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/restic"
chmod -R u+w "$work/restic"
cp "$here/restic_mem_test.go.txt" "$work/restic/internal/repository/index/bunker_mem_test.go"
for n in $(echo "$counts" | tr , ' '); do
	(cd "$work/restic" && BUNKER_INDEXMEM_N=$n BUNKER_INDEXMEM_PER_PACK=$perpack \
		go test -count=1 -v -run TestBunkerIndexMem ./internal/repository/index | grep '^restic')
done
