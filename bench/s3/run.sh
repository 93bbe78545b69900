#!/usr/bin/env bash
# bench/s3/run.sh: Bunker against restic through the same S3 server
# (versitygw, posix backend) on loopback: initial backup and restore of
# the benchmark data set, wall and CPU time, and the S3 requests each tool
# sends, counted by a reverse proxy (bench/s3/reqcount). See "S3 on
# loopback" in docs/PERFORMANCE.md.
#
#   bench/s3/run.sh                      3 proxied rounds + 1 direct round
#   bench/s3/run.sh --rounds 2 --direct-rounds 0
#
# It reuses bench/run.sh's data set (build it first with
# bench/run.sh --data-only), tools in .cache/tools and bench/work/.
# Run as root (restores go to a fresh ext4 file system on a loop device,
# as in bench/run.sh). Results: bench/work/s3-results-<stamp>.{md,csv}.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/s3/run.sh [options]

  --rounds N         rounds through the counting proxy                       [ROUNDS=3]
  --direct-rounds N  rounds more with the tools talking to versitygw
                     directly (no proxy), to see what the proxy costs       [DIRECT_ROUNDS=1]
  --tools "LIST"     of: bunker restic                                     [TOOLS="bunker restic"]
  --set NAME         data set under bench/work/data                         [SET=set-c3-s100-r1024]
  --src DIR          back up DIR instead of the data set's src/            [SRC]
  --versioning       run versitygw with --versioning-dir (off by default)  [VERSIONING=0]
  --restore-fs MODE  fresh (new ext4 per restore) or scratch               [RESTORE_FS=fresh]
  --note TEXT        free-text note for the report                         [NOTE]
  --bunker BINARY    measure this bunker binary instead of building one    [BUNKER_BIN]
  -h, --help         this text
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CMDLINE=$(printf '%q ' "bench/s3/run.sh" "$@")
CMDLINE=${CMDLINE% }
ROUNDS=${ROUNDS:-3}
DIRECT_ROUNDS=${DIRECT_ROUNDS:-1}
TOOLS=${TOOLS:-"bunker restic"}
SET=${SET:-set-c3-s100-r1024}
SRC=${SRC:-}
VERSIONING=${VERSIONING:-0}
RESTORE_FS=${RESTORE_FS:-fresh}
NOTE=${NOTE:-}
BUNKER_BIN=${BUNKER_BIN:-}
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--direct-rounds) DIRECT_ROUNDS=$2; shift ;;
	--tools) TOOLS=$2; shift ;;
	--set) SET=$2; shift ;;
	--src) SRC=$2; shift ;;
	--versioning) VERSIONING=1 ;;
	--restore-fs) RESTORE_FS=$2; shift ;;
	--note) NOTE=$2; shift ;;
	--bunker) BUNKER_BIN=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

WORK_DIR=$ROOT/bench/work
BIN_DIR=$WORK_DIR/bin
DATA=$WORK_DIR/data/$SET
SRC=${SRC:-$DATA/src}
TOOLS_DIR=$ROOT/.cache/tools
BUNKER=$BIN_DIR/bunker
RESTIC=$TOOLS_DIR/restic-0.19.1/restic
VERSITYGW=$TOOLS_DIR/versitygw-v1.8.0/versitygw
REQCOUNT=$BIN_DIR/reqcount
STAMP=$(date -u +%Y%m%d-%H%M%S)
RUN_DIR=$WORK_DIR/runs/s3-$STAMP
SCRATCH=$WORK_DIR/s3-scratch
CSV=$RUN_DIR/raw.csv
REGION=us-east-1

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (loop-device file systems for the restores)"
[[ -d $SRC ]] || die "no data set at $SRC: run bench/run.sh --data-only first"
for f in "$RESTIC" "$VERSITYGW"; do [[ -x $f ]] || die "$f is missing (see bench/run.sh, internal/testsrv)"; done
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is missing"

log "building bunker, reqcount, benchutil"
mkdir -p "$BIN_DIR" "$RUN_DIR/logs"
if [[ -n $BUNKER_BIN ]]; then
	[[ -x $BUNKER_BIN ]] || die "--bunker $BUNKER_BIN: not an executable"
	cat "$BUNKER_BIN" >"$BUNKER" && chmod +x "$BUNKER"
else
	(cd "$ROOT" && go build -o "$BUNKER" ./cmd/bunker)
fi
(cd "$ROOT" && go build -o "$REQCOUNT" ./bench/s3/reqcount &&
	go build -o "$BIN_DIR/benchutil" ./bench/benchutil && go build -o "$BIN_DIR/s3report" ./bench/s3/s3report)

# The data set may carry bench/run.sh's 1% mutation if a run was cut
# short; put it back unless a bench/run.sh is running now.
if [[ -d $DATA/stash ]] && ! pgrep -f 'bench/run\.sh' >/dev/null; then
	"$BIN_DIR/benchutil" revert -src "$SRC" -stash "$DATA/stash"
fi
SRC_STAT=$("$BIN_DIR/benchutil" treestat "$SRC")
SRC_BYTES=$(sed -E 's/.*bytes=([0-9]+).*/\1/' <<<"$SRC_STAT")

# ------------------------------------------------------------ processes

# free_port: set PORT to a loopback port nobody listens on and that this
# function has not handed out since USED_PORTS was last cleared.
USED_PORTS="" PORT=""
free_port() {
	local p
	for p in $(seq 39100 39400); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " $USED_PORTS " != *" $p "* ]]; then
			USED_PORTS+=" $p" PORT=$p
			return 0
		fi
	done
	die "no free port in 39100-39400"
}

wait_tcp() { # PORT
	local i
	for ((i = 0; i < 150; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cpu_ticks PID: user+system clock ticks the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)

GW_PID="" PX_PID="" ENDPOINT="" ADMIN=""
# start_s3 PROXY: versitygw on an empty root, and the counting proxy in
# front of it when PROXY is 1. Sets ENDPOINT (what the tools talk to).
start_s3() {
	local proxy=$1 gwport
	rm -rf "$SCRATCH/gw"
	mkdir -p "$SCRATCH/gw/root" "$SCRATCH/gw/versions"
	USED_PORTS=""
	free_port
	gwport=$PORT
	local -a vers=()
	((VERSIONING)) && vers=(--versioning-dir "$SCRATCH/gw/versions")
	"$VERSITYGW" --port "127.0.0.1:$gwport" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
		--region "$REGION" --quiet --keep-alive posix "${vers[@]}" "$SCRATCH/gw/root" \
		>>"$RUN_DIR/logs/versitygw.log" 2>&1 &
	GW_PID=$!
	wait_tcp "$gwport" || die "versitygw did not start; see $RUN_DIR/logs/versitygw.log"
	ENDPOINT=127.0.0.1:$gwport ADMIN="" PX_PID=""
	if ((proxy)); then
		local pxport adport
		free_port
		pxport=$PORT
		free_port
		adport=$PORT
		"$REQCOUNT" -listen "127.0.0.1:$pxport" -target "http://127.0.0.1:$gwport" -admin "127.0.0.1:$adport" \
			>>"$RUN_DIR/logs/reqcount.log" 2>&1 &
		PX_PID=$!
		wait_tcp "$pxport" && wait_tcp "$adport" || die "reqcount did not start; see $RUN_DIR/logs/reqcount.log"
		ENDPOINT=127.0.0.1:$pxport ADMIN=127.0.0.1:$adport
	fi
}

stop_s3() {
	local p
	for p in $PX_PID $GW_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	GW_PID="" PX_PID=""
	rm -rf "$SCRATCH/gw"
}

# ------------------------------------------------ restore file systems
# As in bench/run.sh: a fresh ext4 file system per restore, so that no
# tool inherits the inode-allocator cost of a just-deleted tree.

release_fs() {
	local dir=$1
	if mountpoint -q "$dir" 2>/dev/null; then umount "$dir" || umount -l "$dir"; fi
	if [[ -f $dir.dev ]]; then losetup -d "$(cat "$dir.dev")" 2>/dev/null || true; fi
	rm -rf "$dir" "$dir.img" "$dir.dev"
}

fresh_fs() {
	local dir=$1 dev=""
	release_fs "$dir"
	mkdir -p "$dir"
	[[ $RESTORE_FS == fresh ]] || return 0
	local img=$dir.img
	truncate -s $(((SRC_BYTES * 2 + (1 << 30)) >> 20 << 20)) "$img"
	if mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" >/dev/null 2>&1 &&
		dev=$(losetup --find --show --direct-io=on "$img") && echo "$dev" >"$dir.dev" && mount "$dev" "$dir"; then
		return 0
	fi
	[[ -n $dev ]] && losetup -d "$dev" 2>/dev/null
	rm -f "$img"
	die "cannot mount a fresh file system at $dir (try --restore-fs scratch)"
}

cleanup() {
	local rc=$?
	stop_s3
	release_fs "$SCRATCH/restore" || true
	rm -rf "$SCRATCH"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- measuring

# One row per timed step; the counters are reqcount's (GET /fields), empty
# without the proxy. Rows that are not timed steps (repo_bytes,
# restore_matches) use only exit_code and bytes.
echo "round,mode,tool,step,wall_s,user_s,sys_s,maxrss_kb,exit_code,load1,server_cpu_s,proxy_cpu_s,$(
	"$REQCOUNT" -fields | tr ' ' ','),bytes" >"$CSV"
extra_row() { # ROUND MODE TOOL STEP EXIT BYTES
	printf '%s,%s,%s,%s,,,,,%s,,,,,,,,,,,,,,,%s\n' "$@" >>"$CSV"
}

# timed ROUND MODE TOOL STEP CMD...: run CMD under GNU time after a sync;
# one CSV row with the times, the server's and proxy's CPU and the
# request counts of the step.
timed() {
	local round=$1 mode=$2 tool=$3 step=$4
	shift 4
	local base=$RUN_DIR/logs/r$round-$mode-$tool-$step rc=0 load g0 g1 p0=0 p1=0
	sync
	load=$(cut -d' ' -f1 /proc/loadavg)
	[[ -n $ADMIN ]] && curl -fsS "http://$ADMIN/counts?reset=1" >/dev/null
	g0=$(cpu_ticks "$GW_PID")
	[[ -n $PX_PID ]] && p0=$(cpu_ticks "$PX_PID")
	printf '%q ' "$@" >"$base.cmd"
	/usr/bin/time -o "$base.time" -f '%e %U %S %M' "$@" >"$base.log" 2>&1 || rc=$?
	g1=$(cpu_ticks "$GW_PID")
	[[ -n $PX_PID ]] && p1=$(cpu_ticks "$PX_PID")
	local counts=",,,,,,,,,,"
	[[ -n $ADMIN ]] && counts=$(curl -fsS "http://$ADMIN/counts" | tr ' ' ',')
	local wall user sys rss
	read -r wall user sys rss < <(tail -n1 "$base.time")
	local scpu pcpu
	scpu=$(awk -v a="$g0" -v b="$g1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
	pcpu=$(awk -v a="$p0" -v b="$p1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
	echo "$round,$mode,$tool,$step,$wall,$user,$sys,$rss,$rc,$load,$scpu,$pcpu,$counts," >>"$CSV"
	log "  [$mode $round] $(printf '%-6s %-8s' "$tool" "$step") ${wall}s  user ${user}s sys ${sys}s  server ${scpu}s proxy ${pcpu}s  exit $rc  (load $load)${ADMIN:+  requests $counts}"
	((rc == 0)) || log "  WARNING: $tool $step exited $rc; see $base.log"
	return "$rc"
}

export BUNKER_PASSWORD=bench-password RESTIC_PASSWORD=bench-password
export AWS_ACCESS_KEY_ID=benchaccess AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_DEFAULT_REGION=$REGION
unset AWS_PROFILE AWS_SESSION_TOKEN BUNKER_REPOSITORY RESTIC_REPOSITORY || true

run_tool() { # ROUND MODE TOOL
	local round=$1 mode=$2 tool=$3 proxy=0
	[[ $mode == proxy ]] && proxy=1
	local cache=$SCRATCH/cache-$tool target=$SCRATCH/restore
	rm -rf "$cache"
	mkdir -p "$cache"
	start_s3 "$proxy"
	local repo=s3:http://$ENDPOINT/bench-$tool-$round
	local -a init backup restore
	case $tool in
	bunker)
		init=("$BUNKER" -r "$repo" --cache-dir "$cache" init)
		backup=("$BUNKER" -r "$repo" --cache-dir "$cache" backup --json "$SRC")
		restore=("$BUNKER" -r "$repo" --no-cache restore latest --target "$target")
		;;
	restic)
		init=("$RESTIC" -r "$repo" --cache-dir "$cache" init)
		backup=("$RESTIC" -r "$repo" --cache-dir "$cache" backup --json "$SRC")
		restore=("$RESTIC" -r "$repo" --no-cache restore latest --target "$target")
		;;
	*) die "unknown tool $tool" ;;
	esac
	log "[$mode $round] $tool via $ENDPOINT"
	if timed "$round" "$mode" "$tool" init "${init[@]}" && timed "$round" "$mode" "$tool" backup "${backup[@]}"; then
		extra_row "$round" "$mode" "$tool" repo_bytes 0 "$(du -sb "$SCRATCH/gw/root" | cut -f1)"
		fresh_fs "$target"
		if timed "$round" "$mode" "$tool" restore "${restore[@]}"; then
			local got
			got=$("$BIN_DIR/benchutil" treestat "$target$SRC" 2>&1 || true)
			if [[ $got == "$SRC_STAT" ]]; then
				extra_row "$round" "$mode" "$tool" restore_matches 0 ""
			else
				extra_row "$round" "$mode" "$tool" restore_matches 1 ""
				log "  WARNING: restored tree differs: [$got] vs source [$SRC_STAT]"
			fi
		fi
		release_fs "$target"
	fi
	stop_s3
	rm -rf "$cache"
	sync
}

# ------------------------------------------------------------------ main

read -r -a tools_arr <<<"$TOOLS"
n=${#tools_arr[@]}
META=$RUN_DIR/meta.txt
{
	echo "command	cd $ROOT && $CMDLINE"
	echo "date	$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine	$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
	echo "uptime at start	$(uptime)"
	echo "source	$SRC ($SRC_STAT)"
	echo "source bytes	$SRC_BYTES"
	echo "bunker	$("$BUNKER" version 2>&1 | head -n1)"
	echo "restic	$("$RESTIC" version 2>&1 | head -n1)"
	echo "server	versitygw v1.8.0 (go install), posix backend, --keep-alive, versioning $( ((VERSIONING)) && echo on || echo off)"
	echo "rounds	$ROUNDS through the proxy, $DIRECT_ROUNDS direct; tool order alternates each round"
	[[ -n $NOTE ]] && echo "note	$NOTE"
} >"$META"
log "command: cd $ROOT && $CMDLINE"
log "source: $SRC_STAT"
log "uptime: $(uptime)"
mkdir -p "$SCRATCH"
T0=$(date +%s)
total=$((ROUNDS + DIRECT_ROUNDS))
for ((r = 1; r <= total; r++)); do
	mode=proxy round=$r
	((r > ROUNDS)) && mode=direct round=$((r - ROUNDS))
	log "=== $mode round $round"
	for ((k = 0; k < n; k++)); do
		run_tool "$round" "$mode" "${tools_arr[$(((k + r - 1) % n))]}"
	done
done
T1=$(date +%s)
{
	echo "uptime at end	$(uptime)"
	echo "runtime	$(((T1 - T0) / 60)) min $(((T1 - T0) % 60)) s"
} >>"$META"
OUT=$WORK_DIR/s3-results-$STAMP
"$BIN_DIR/s3report" -csv "$CSV" -meta "$META" >"$OUT.md"
cp "$CSV" "$OUT.csv"
cat "$OUT.md"
log "report: $OUT.md (raw: $OUT.csv, logs in $RUN_DIR)"
