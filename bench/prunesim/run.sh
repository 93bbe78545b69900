#!/bin/sh
# Maintenance at scale (issue 18, target 7): generate a synthetic repository
# of COUNT data blobs and SNAPSHOTS snapshots, then measure prune planning
# and a check that reads no data on it, in a process of its own, for each
# count (docs/PERFORMANCE.md, "Maintenance at scale").
#
#   bench/prunesim/run.sh [COUNTS [SNAPSHOTS]]
#
# COUNTS is a comma-separated list (default 1000000,10000000); SNAPSHOTS
# defaults to 10000. The repository goes to a fresh directory under
# $PRUNESIM_DIR (default $TMPDIR, else /tmp) and is removed after each
# count. The run refuses to start a count when that file system has less
# free space than the count needs (about 100 bytes per blob for the index
# files and the trees, plus a block per snapshot). Extra flags for the
# generator and the measurement go in PRUNESIM_GEN_FLAGS and
# PRUNESIM_PLAN_FLAGS (for example PRUNESIM_PLAN_FLAGS="-check=false
# -memprofile /tmp/plan.prof").
set -eu
counts=${1:-1000000,10000000}
snapshots=${2:-10000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${PRUNESIM_DIR:-${TMPDIR:-/tmp}}
bin="$work/prunesim-bin.$$"
dir=""
cleanup() {
	[ -n "$dir" ] && rm -rf "$dir"
	rm -f "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$root" && go build -o "$bin" ./bench/prunesim)
for n in $(echo "$counts" | tr , ' '); do
	# Measured: 51 B/blob of index files, 28 B/blob of tree packs (live
	# blobs only), a 4 KiB block per snapshot object; 25% and 64 MiB spare.
	need_kib=$(( (n * 100 + snapshots * 4096 * 2) / 1024 * 5 / 4 + 65536 ))
	avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
	if [ "$avail_kib" -lt "$need_kib" ]; then
		echo "prunesim: $work has $((avail_kib / 1024)) MiB free, $n blobs need about $((need_kib / 1024)) MiB" >&2
		exit 1
	fi
	dir=$(mktemp -d "$work/prunesim-$n.XXXXXX")
	echo "== $n blobs, $snapshots snapshots ($dir)"
	# shellcheck disable=SC2086 # the flags are words on purpose
	"$bin" -gen "$dir/repo" -n "$n" -snapshots "$snapshots" ${PRUNESIM_GEN_FLAGS:-}
	echo "disk_kib=$(du -sk "$dir/repo" | cut -f1)"
	# shellcheck disable=SC2086
	"$bin" -plan "$dir/repo" ${PRUNESIM_PLAN_FLAGS:-}
	rm -rf "$dir"
	dir=""
done
