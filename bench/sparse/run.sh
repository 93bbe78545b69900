#!/usr/bin/env bash
# bench/sparse/run.sh: back up and restore a sparse VM image (issue 18,
# target 6) with Bunker, and with restic when it is on PATH (or RESTIC
# names it). See "Sparse files at scale" in docs/PERFORMANCE.md.
#
#   bench/sparse/run.sh                       10 GiB image, 5% written, 1 round
#   SIZE=1G ROUNDS=3 bench/sparse/run.sh      smaller image, 3 rounds
#   BUNKER=/path/to/bunker bench/sparse/run.sh   another build (an A/B)
#
# Settings (environment): SIZE (10G), PERCENT (5), SEED (1), ROUNDS (1),
# COLD (0; 1 drops the page cache before every timed step, as root),
# WORK_DIR (bench/work/sparse), BUNKER (built from this tree), RESTIC.
# Per step it records wall, user and sys seconds and peak RSS (GNU time);
# after each restore the allocated bytes of image and copy (st_blocks*512)
# and a byte-exact comparison. Results: $WORK_DIR/results-<stamp>.csv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE=${SIZE:-10G}
PERCENT=${PERCENT:-5}
SEED=${SEED:-1}
ROUNDS=${ROUNDS:-1}
COLD=${COLD:-0}
WORK_DIR=${WORK_DIR:-$ROOT/bench/work/sparse}
RESTIC=${RESTIC:-$(command -v restic || true)}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

mkdir -p "$WORK_DIR/bin" "$WORK_DIR/data"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
STAMP=$(date -u +%Y%m%d-%H%M%S)
CSV=$WORK_DIR/results-$STAMP.csv
LOGS=$WORK_DIR/logs-$STAMP
mkdir -p "$LOGS"

log "building sparseutil${BUNKER:+ (bunker: $BUNKER)}"
(cd "$ROOT" && go build -o "$WORK_DIR/bin/sparseutil" ./bench/sparse/sparseutil)
if [[ -z ${BUNKER:-} ]]; then
	log "building bunker"
	(cd "$ROOT" && go build -o "$WORK_DIR/bin/bunker" ./cmd/bunker)
	BUNKER=$WORK_DIR/bin/bunker
fi
UTIL=$WORK_DIR/bin/sparseutil

IMG_DIR=$WORK_DIR/data/vm-$SIZE-$PERCENT-$SEED
IMG=$IMG_DIR/vm.img
if [[ ! -f $IMG_DIR/done ]]; then
	rm -rf "$IMG_DIR"
	mkdir -p "$IMG_DIR"
	log "writing the image $IMG"
	"$UTIL" image -out "$IMG" -size "$SIZE" -percent "$PERCENT" -seed "$SEED" | tee "$IMG_DIR/info"
	touch "$IMG_DIR/done"
fi

TOOLS=bunker
if [[ -n $RESTIC ]]; then
	TOOLS="bunker restic"
else
	log "restic is not on PATH (set RESTIC=/path/to/restic to compare): Bunker only"
fi

drop_caches() {
	((COLD)) || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches || die "COLD=1 needs root (writing /proc/sys/vm/drop_caches failed)"
}

# timed ROUND TOOL STEP CMD...: run CMD under GNU time and append a CSV row.
timed() {
	local round=$1 tool=$2 step=$3
	shift 3
	local base=$LOGS/r$round-$tool-$step rc=0
	sync
	drop_caches
	/usr/bin/time -o "$base.time" -f '%e %U %S %M' "$@" >"$base.log" 2>&1 || rc=$?
	local wall user sys rss
	read -r wall user sys rss < <(tail -n1 "$base.time")
	echo "$round,$tool,$step,$wall,$user,$sys,$rss,$rc,," >>"$CSV"
	log "  [round $round] $(printf '%-7s %-8s' "$tool" "$step") ${wall}s  user ${user}s sys ${sys}s  rss $((rss / 1024)) MiB  exit $rc"
	((rc == 0)) || die "$tool $step exited $rc; see $base.log"
}

export BUNKER_PASSWORD=bench-password RESTIC_PASSWORD=bench-password
echo "round,tool,step,wall_s,user_s,sys_s,maxrss_kb,exit_code,allocated_bytes,note" >"$CSV"
read -r _ _ ialloc inz < <("$UTIL" alloc "$IMG" | tr '=' ' ' | awk '{print $1, $3, $5, $7}')
echo "0,image,allocated,,,,,,$ialloc,non-zero 4 KiB blocks: $inz bytes" >>"$CSV"
log "image: $(cat "$IMG_DIR/info"); allocated $ialloc bytes, non-zero blocks $inz bytes"

for round in $(seq 1 "$ROUNDS"); do
	for tool in $TOOLS; do
		repo=$WORK_DIR/repo-$tool target=$WORK_DIR/restore-$tool cache=$WORK_DIR/cache-$tool
		rm -rf "$repo" "$target" "$cache"
		mkdir -p "$target" "$cache"
		case $tool in
		bunker)
			"$BUNKER" -r "$repo" init >"$LOGS/r$round-$tool-init.log" 2>&1
			timed "$round" "$tool" backup "$BUNKER" -r "$repo" backup --json "$IMG_DIR"
			timed "$round" "$tool" restore "$BUNKER" -r "$repo" restore latest --target "$target"
			;;
		restic)
			"$RESTIC" -r "$repo" --cache-dir "$cache" init >"$LOGS/r$round-$tool-init.log" 2>&1
			timed "$round" "$tool" backup "$RESTIC" -r "$repo" --cache-dir "$cache" backup --json "$IMG_DIR"
			timed "$round" "$tool" restore "$RESTIC" -r "$repo" --cache-dir "$cache" restore latest --sparse --target "$target"
			;;
		esac
		out=$target$IMG
		read -r _ _ ralloc rnz < <("$UTIL" alloc "$out" | tr '=' ' ' | awk '{print $1, $3, $5, $7}')
		pct=$(awk -v a="$ialloc" -v b="$ralloc" 'BEGIN { printf "%+.3f%%", (b - a) * 100 / a }')
		same=$("$UTIL" cmp "$IMG" "$out" 2>&1) || die "$tool round $round: the restored image differs: $same"
		echo "$round,$tool,restored,,,,,,$ralloc,$pct against the image; $same" >>"$CSV"
		log "  [round $round] $tool restored: allocated $ralloc bytes ($pct against the image's $ialloc); $same"
		du -sb "$repo" | awk -v r="$round" -v t="$tool" '{print r "," t ",repo_bytes,,,,,," $1 ","}' >>"$CSV"
		rm -rf "$repo" "$target" "$cache"
	done
done
log "results: $CSV"
