#!/usr/bin/env bash
# bench/s3/restore-ab.sh: S3 restores (--no-cache) of one repository with
# two bunker binaries, interleaved, through versitygw on loopback (no
# proxy): the cost of a change to the remote restore path, measured under
# the same load. The repository is written by NEW from the data set
# bench/s3/run.sh uses (build it with bench/run.sh --data-only); restores go
# to a directory under bench/work/ab. Prints wall, user, sys and peak RSS
# per restore (GNU time).
#
#   bench/s3/restore-ab.sh OLD-BINARY NEW-BINARY [ROUNDS]    (ROUNDS=3)
set -euo pipefail
old=$1 new=$2 rounds=${3:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=${SRC:-$ROOT/bench/work/data/set-c3-s100-r1024/src}
VERSITYGW=$ROOT/.cache/tools/versitygw-v1.8.0/versitygw
W=$ROOT/bench/work/ab
PORT=${PORT:-39380}
[[ -d $SRC ]] || { echo "no data set at $SRC: run bench/run.sh --data-only first" >&2; exit 1; }
[[ -x $VERSITYGW ]] || { echo "$VERSITYGW is missing (see bench/s3/run.sh)" >&2; exit 1; }
rm -rf "$W"
mkdir -p "$W/gw" "$W/target"
export AWS_ACCESS_KEY_ID=benchaccess AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_DEFAULT_REGION=us-east-1 BUNKER_PASSWORD=bench-password
"$VERSITYGW" --port "127.0.0.1:$PORT" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
	--region us-east-1 --quiet --keep-alive posix "$W/gw" >"$W/versitygw.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null; rm -rf "$W"' EXIT
sleep 2
REPO=s3:http://127.0.0.1:$PORT/restore-ab
"$new" -r "$REPO" --cache-dir "$W/cache" init >/dev/null
"$new" -r "$REPO" --cache-dir "$W/cache" backup "$SRC" >/dev/null
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
	order="old new"
	[[ $((round % 2)) == 0 ]] && order="new old"
	for which in $order; do
		bin=$old
		[[ $which == new ]] && bin=$new
		rm -rf "$W/target/dst"
		sync
		/usr/bin/time -o "$W/time" -f "$which %e s, user %U s, sys %S s, peak RSS %M KB" \
			"$bin" -r "$REPO" --no-cache restore latest --target "$W/target/dst" >/dev/null || echo "$which: restore failed"
		cat "$W/time"
	done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
