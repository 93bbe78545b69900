#!/usr/bin/env bash
# Build bunker and run a real backup and restore on a local repository.
# No server needed. Usage: scripts/demo.sh [SOURCE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
src="${1:-/usr/share/doc}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bunker-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building bin/bunker"
go build -o bin/bunker ./cmd/bunker
B="$PWD/bin/bunker"
export BUNKER_REPOSITORY="$work/repo" BUNKER_PASSWORD="demo-password"

cp -a "$src" "$work/src"
src="$work/src"
echo "== init";                 "$B" init
echo "== backup $src";           "$B" backup "$src"
echo "== change a file, back up again (incremental)"
echo "demo change $(date)" >> "$src/CHANGED.txt"
"$B" backup "$src"
echo "== snapshots";             "$B" snapshots
echo "== restore latest";        "$B" restore latest --target "$work/restore" --verify
echo "== compare";               diff -r --no-dereference "$src" "$work/restore$src" && echo "   restored tree is identical"
echo "== check --read-data";     "$B" check --read-data
echo "== stats";                 "$B" stats --mode raw-data
echo "demo finished: repository was $work/repo (removed on exit)"
