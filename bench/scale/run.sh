#!/usr/bin/env bash
# bench/scale/run.sh: the scale set of issue 18 (target 3). Bunker, restic
# and borg back up, restore and verify the same set of many small files
# (sizes drawn from a real tree's distribution, 1-64 KiB, deep and wide
# directories) plus one large file, written by bench/scale (a Go program,
# deterministic from a seed). See "Scale set" in docs/PERFORMANCE.md.
#
#   bench/scale/run.sh --files 20000 --big-file 256MiB --rounds 1   shake-out
#   bench/scale/run.sh --files 2000000 --big-file 20GiB             the full set
#   bench/scale/run.sh --curve 200000,500000,1000000,2000000         memory against file count
#
# Reports: bench/work/scale/results-<stamp>.{md,json,csv} (and
# curve-<stamp>.{md,json} for --curve); raw logs in bench/work/scale/runs/.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/scale/run.sh [options]

Options (each also settable by the environment variable in brackets):
  --files N            small files in the set                           [FILES=20000]
  --big-file SIZE      size of the large file: 20GiB for the full set,
                       0 for none                                       [BIG_FILE=256MiB]
  --rounds N           rounds; each step runs every tool once, the tool
                       order rotated each round                          [ROUNDS=3]
  --cold               drop the page cache, dentries and inodes before
                       every timed step (root)                           [COLD=1]
  --tools "LIST"       tools to run, of: bunker restic borg             [TOOLS]
  --seed N             seed of the set's layout and content              [SEED=1]
  --change-percent P   share of files (and of the large file's 1 MiB
                       blocks) changed before the third backup           [CHANGE_PERCENT=1]
  --curve LIST         run the whole benchmark once per file count in
                       LIST (comma separated) and print time and peak
                       RSS against the file count; each set is deleted
                       after its run unless --keep-data                  [CURVE]
  --keep-data          keep the generated set(s) under the data root     [KEEP_DATA=1]
  --drop-data          delete the generated set when the run ends        [KEEP_DATA=0]
  --restore-fs MODE    fresh (a new ext4 file system on a loop device
                       per restore, as bench/run.sh) or scratch          [RESTORE_FS=fresh]
  --data-root DIR      where sets are generated and cached               [DATA_ROOT=bench/work/scale/data]
  --work-dir DIR       results, logs, binaries, repositories             [WORK_DIR=bench/work/scale]
  --no-install         do not install restic if it is missing: skip it   [INSTALL=0]
  --status TEXT        label of the run in the report                   [STATUS]
  --note TEXT          free-text note for the report                    [NOTE]
  -h, --help           this text

Before it starts, the run prints the disk it needs (the set, one
repository per tool, a restore target, the change's stash, the tools'
caches) and refuses to start when the file system has less free space.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$ROOT/bench/scale/run.sh
CMDLINE=$(printf '%q ' "bench/scale/run.sh" "$@")
CMDLINE=${CMDLINE% }
ENVLINE=""
for v in FILES BIG_FILE ROUNDS COLD TOOLS SEED CHANGE_PERCENT CURVE KEEP_DATA RESTORE_FS DATA_ROOT WORK_DIR INSTALL STATUS NOTE TOOLS_DIR; do
	if [[ -n ${!v+x} ]]; then ENVLINE+="$v=$(printf '%q' "${!v}") "; fi
done

FILES=${FILES:-20000}
BIG_FILE=${BIG_FILE:-256MiB}
ROUNDS=${ROUNDS:-3}
COLD=${COLD:-0}
TOOLS=${TOOLS:-"bunker restic borg"}
SEED=${SEED:-1}
CHANGE_PERCENT=${CHANGE_PERCENT:-1}
CURVE=${CURVE:-}
KEEP_DATA=${KEEP_DATA:-}
RESTORE_FS=${RESTORE_FS:-fresh}
INSTALL=${INSTALL:-1}
STATUS=${STATUS:-}
NOTE=${NOTE:-}
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.cache/tools}
RESTIC_VERSION=0.19.1
# PASS holds the options a --curve run hands on to its runs per size.
PASS=()

while (($#)); do
	case $1 in
	--files) FILES=$2; shift ;;
	--big-file) BIG_FILE=$2; PASS+=(--big-file "$2"); shift ;;
	--rounds) ROUNDS=$2; PASS+=(--rounds "$2"); shift ;;
	--cold) COLD=1; PASS+=(--cold) ;;
	--tools) TOOLS=$2; PASS+=(--tools "$2"); shift ;;
	--seed) SEED=$2; PASS+=(--seed "$2"); shift ;;
	--change-percent) CHANGE_PERCENT=$2; PASS+=(--change-percent "$2"); shift ;;
	--curve) CURVE=$2; shift ;;
	--keep-data) KEEP_DATA=1; PASS+=(--keep-data) ;;
	--drop-data) KEEP_DATA=0; PASS+=(--drop-data) ;;
	--restore-fs) RESTORE_FS=$2; PASS+=(--restore-fs "$2"); shift ;;
	--data-root) DATA_ROOT=$2; PASS+=(--data-root "$2"); shift ;;
	--work-dir) WORK_DIR=$2; PASS+=(--work-dir "$2"); shift ;;
	--no-install) INSTALL=0; PASS+=(--no-install) ;;
	--status) STATUS=$2; PASS+=(--status "$2"); shift ;;
	--note) NOTE=$2; PASS+=(--note "$2"); shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $FILES =~ ^[0-9]+$ && $FILES -ge 1 ]] || { echo "run.sh: --files $FILES: want a positive number" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || { echo "run.sh: --rounds $ROUNDS: want a positive number" >&2; exit 2; }
[[ $RESTORE_FS == fresh || $RESTORE_FS == scratch ]] || { echo "run.sh: --restore-fs $RESTORE_FS: want fresh or scratch" >&2; exit 2; }

WORK_DIR=$(mkdir -p "${WORK_DIR:-$ROOT/bench/work/scale}" && cd "${WORK_DIR:-$ROOT/bench/work/scale}" && pwd)
DATA_ROOT=$(mkdir -p "${DATA_ROOT:-$WORK_DIR/data}" && cd "${DATA_ROOT:-$WORK_DIR/data}" && pwd)
BIN_DIR=$WORK_DIR/bin
SCRATCH_DIR=$WORK_DIR/scratch

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The set holds files named *.go with random bytes in them: a go.mod at
# the top of the work directory keeps them out of the main module's ./...
# patterns (as bench/run.sh does for its data set).
fence_module() { # DIR
	local d=$1
	[[ $d == "$ROOT"/* ]] || return 0
	mkdir -p "$d"
	[[ -f $d/go.mod ]] || printf '%s\n' 'module bunker-bench-work' '' \
		'// Written by bench/scale/run.sh: keeps this tree (generated sets,' \
		'// scratch repositories) out of the main module'"'"'s ./... patterns.' '' 'go 1.26' >"$d/go.mod"
}
fence_module "$WORK_DIR"
fence_module "$DATA_ROOT"

# ------------------------------------------------------------------ curve

# With --curve this process only runs itself once per size and then
# merges the reports: each size is a complete, separate run.
if [[ -n $CURVE ]]; then
	mkdir -p "$BIN_DIR"
	(cd "$ROOT" && go build -o "$BIN_DIR/scale" ./bench/scale)
	STAMP=$(date -u +%Y%m%d-%H%M%S)
	list=$WORK_DIR/curve-$STAMP.list
	: >"$list"
	keep=()
	[[ -z $KEEP_DATA ]] && keep=(--drop-data)
	for n in ${CURVE//,/ }; do
		[[ $n =~ ^[0-9]+$ ]] || die "--curve $CURVE: $n is not a file count"
		log "=== curve: $n files"
		SCALE_RESULT_LIST=$list env -u CURVE "$SELF" --files "$n" "${keep[@]}" "${PASS[@]}" || die "the run with $n files failed"
	done
	mapfile -t reports <"$list"
	"$BIN_DIR/scale" curve -md "$WORK_DIR/curve-$STAMP.md" -json "$WORK_DIR/curve-$STAMP.json" "${reports[@]}"
	cat "$WORK_DIR/curve-$STAMP.md"
	log "command: cd $ROOT && ${ENVLINE}${CMDLINE}"
	log "curve: $WORK_DIR/curve-$STAMP.md $WORK_DIR/curve-$STAMP.json"
	exit 0
fi

KEEP_DATA=${KEEP_DATA:-1}
SET_NAME="set-n$FILES-b$BIG_FILE-s$SEED"
DATA=$DATA_ROOT/$SET_NAME
SRC=$DATA/src
STASH=$DATA/stash

if [[ $(id -u) != 0 ]]; then
	((COLD)) && die "--cold needs root (it writes /proc/sys/vm/drop_caches)"
	if [[ $RESTORE_FS == fresh ]]; then
		log "not root: restoring into a plain directory (--restore-fs scratch)"
		RESTORE_FS=scratch
	fi
fi

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$?
	if [[ -x $BIN_DIR/scale && -d $STASH ]]; then
		"$BIN_DIR/scale" revert -src "$SRC" -stash "$STASH" || log "WARNING: could not revert the change in $SRC"
	fi
	release_fs "$SCRATCH_DIR/restore-target" || true
	[[ -d $SCRATCH_DIR ]] && rm -rf "$SCRATCH_DIR"
	if ((!KEEP_DATA)) && [[ -d $DATA ]]; then
		log "deleting the set $DATA"
		rm -rf "$DATA"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools

BUNKER=$BIN_DIR/bunker
RESTIC_BUILT=$TOOLS_DIR/restic-$RESTIC_VERSION/restic
RESTIC=$BIN_DIR/restic
BORG=borg

# install_copy FROM TO: TO becomes a copy written with cat. Peak RSS
# counts the executable's file pages, and how many of them a start maps
# depends on how the file sits in the page cache: a file the Go linker
# has just written maps in larger pieces than one written in a stream
# (PERFORMANCE.md, "Where a backup's memory goes"). Every Go binary of
# the run is written the same way, as an installed binary would be.
install_copy() {
	rm -f "$2"
	cat "$1" >"$2"
	chmod 755 "$2"
}

ensure_tools() {
	[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is missing (apt-get install time)"
	command -v go >/dev/null || die "go is needed"
	if [[ $RESTORE_FS == fresh ]] && ! command -v mkfs.ext4 >/dev/null; then
		log "mkfs.ext4 is missing: restoring into a plain directory"
		RESTORE_FS=scratch
	fi
	mkdir -p "$BIN_DIR"
	(cd "$ROOT" && go build -o "$BIN_DIR/scale" ./bench/scale && go build -o "$BIN_DIR/benchutil" ./bench/benchutil)
	local keep=()
	for t in $TOOLS; do
		case $t in
		bunker)
			log "building bunker"
			(cd "$ROOT" && go build -o "$BIN_DIR/bunker.built" ./cmd/bunker)
			install_copy "$BIN_DIR/bunker.built" "$BUNKER"
			keep+=(bunker)
			;;
		restic)
			if [[ ! -x $RESTIC_BUILT ]] && ((INSTALL)); then
				log "installing restic $RESTIC_VERSION into $(dirname "$RESTIC_BUILT")"
				mkdir -p "$(dirname "$RESTIC_BUILT")"
				(cd / && GOBIN=$(dirname "$RESTIC_BUILT") GOFLAGS= go install "github.com/restic/restic/cmd/restic@v$RESTIC_VERSION")
			fi
			if [[ -x $RESTIC_BUILT ]]; then
				install_copy "$RESTIC_BUILT" "$RESTIC"
				keep+=(restic)
			else
				log "WARNING: restic missing, skipped"
			fi
			;;
		borg)
			if command -v borg >/dev/null; then keep+=(borg); else log "WARNING: borg missing (apt-get install borgbackup), skipped"; fi
			;;
		*) die "unknown tool $t (known: bunker restic borg)" ;;
		esac
	done
	TOOLS="${keep[*]}"
	[[ -n $TOOLS ]] || die "no tools to run"
}

tool_version() {
	case $1 in
	bunker) "$BUNKER" version 2>&1 | head -n1 ;;
	restic) "$RESTIC" version 2>&1 | head -n1 ;;
	borg) borg --version 2>&1 | head -n1 ;;
	esac
}

tool_settings() {
	case $1 in
	bunker) echo "default init and backup; $("$BUNKER" version 2>&1 | sed -n 2p)" ;;
	restic) echo "default init (repo v2, compression auto), local cache in scratch" ;;
	borg) echo "init --encryption repokey-blake2, create --compression lz4 (borg's default), BORG_BASE_DIR in scratch" ;;
	esac
}

# -------------------------------------------------------------- disk plan

# plan_disk: read the set's shape from "scale plan" and compare the disk
# the run needs with what the file system holding the work directory has.
declare -A PLAN
plan_disk() {
	local k v
	while IFS='=' read -r k v; do PLAN[$k]=$v; done < <("$BIN_DIR/scale" plan -files "$FILES" -big "$BIG_FILE" -seed "$SEED")
	local ntools
	ntools=$(wc -w <<<"$TOOLS")
	# Estimates: the set as it lies on disk (4 KiB blocks, a block per
	# directory); a repository holds at most the set's bytes (the content
	# compresses to about 0.7, the margin pays for the trees and borg's
	# chunk index) plus 1 KiB of metadata per file; a restore target on a
	# fresh file system holds the set and the inode tables mkfs writes;
	# the change stashes the originals of its files and blocks; each
	# tool's cache holds up to 1 KiB per file.
	local logical=$((PLAN[small_bytes] + PLAN[big_bytes]))
	DISK_DATA=$((PLAN[small_disk_bytes] + PLAN[big_bytes] + PLAN[dirs] * 4096))
	DISK_REPO=$((logical + FILES * 1024))
	DISK_RESTORE=$((DISK_DATA + (FILES + PLAN[dirs]) * 2 * 256 + (256 << 20)))
	DISK_STASH=$(awk -v b="$logical" -v p="$CHANGE_PERCENT" 'BEGIN { printf "%d", b * p / 100 * 2 + 64 * 1048576 }')
	DISK_CACHE=$((FILES * 1024 * ntools))
	local need_data=$DISK_DATA
	[[ -f $DATA/.complete ]] && need_data=0
	DISK_NEED=$(((need_data + DISK_REPO * ntools + DISK_RESTORE + DISK_STASH + DISK_CACHE) * 21 / 20 + (1 << 30)))
	mkdir -p "$WORK_DIR" "$DATA_ROOT"
	local avail avail_data
	avail=$(($(df -Pk "$WORK_DIR" | awk 'NR == 2 { print $4 }') * 1024))
	avail_data=$(($(df -Pk "$DATA_ROOT" | awk 'NR == 2 { print $4 }') * 1024))
	gb() { awk -v b="$1" 'BEGIN { printf "%.1f GB", b / 1e9 }'; }
	log "set: ${PLAN[files]} files ($(gb "${PLAN[small_bytes]}")) in ${PLAN[dirs]} directories, up to ${PLAN[depth]} levels deep, up to ${PLAN[max_files_per_dir]} files in one; large file $(gb "${PLAN[big_bytes]}")"
	log "disk needed: $(gb "$DISK_NEED") = set $(gb "$need_data")$([[ $need_data == 0 ]] && echo " (already built)") + $ntools repositories of up to $(gb "$DISK_REPO") + restore target $(gb "$DISK_RESTORE") + stash $(gb "$DISK_STASH") + caches $(gb "$DISK_CACHE") + 5% and 1 GB spare; free: $(gb "$avail") under $WORK_DIR"
	if [[ $(df -P "$WORK_DIR" | awk 'NR == 2 { print $1 }') != $(df -P "$DATA_ROOT" | awk 'NR == 2 { print $1 }') ]]; then
		((avail_data >= need_data)) || die "$DATA_ROOT has $(gb "$avail_data") free; the set needs $(gb "$need_data")"
		DISK_NEED=$((DISK_NEED - need_data))
	fi
	((avail >= DISK_NEED)) || die "not enough free disk: $(gb "$avail") free under $WORK_DIR, the run needs about $(gb "$DISK_NEED") (smaller --files or --big-file, or --work-dir/--data-root elsewhere)"
}

build_data() {
	if [[ -f $DATA/.complete ]]; then
		log "reusing the set $DATA"
		return
	fi
	log "generating the set $DATA"
	rm -rf "$DATA"
	mkdir -p "$DATA"
	"$BIN_DIR/scale" gen -src "$SRC" -files "$FILES" -big "$BIG_FILE" -seed "$SEED" >"$DATA/gen.txt"
	sync
	"$BIN_DIR/benchutil" treestat "$SRC" >"$DATA/stat.txt"
	touch "$DATA/.complete"
	log "set ready: $(cat "$DATA/gen.txt"); $(cat "$DATA/stat.txt")"
}

# --------------------------------------------------------------- measuring

CSV="" RUN_DIR=""

# drop_caches: with --cold, write back and drop the page cache, dentries
# and inodes, so that the next step reads its source, repository and
# tools from disk.
drop_caches() {
	((COLD)) || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches || die "--cold needs root (writing /proc/sys/vm/drop_caches failed)"
}

# timed ROUND TOOL STEP OKCODES CMD...: run CMD under GNU time after a
# sync (and, with --cold, with the page cache dropped) and append a CSV
# row: wall, user, sys seconds, peak RSS KiB, exit code, load. Returns 0
# if the exit code is one of OKCODES (comma separated).
timed() {
	local round=$1 tool=$2 step=$3 okcodes=$4
	shift 4
	local base=$RUN_DIR/logs/r$round-$tool-$step
	sync
	drop_caches
	local load rc=0
	load=$(cut -d' ' -f1 /proc/loadavg)
	printf '%q ' "$@" >"$base.cmd"
	/usr/bin/time -o "$base.time" -f '%e %U %S %M' "$@" >"$base.log" 2>&1 || rc=$?
	local wall user sys rss
	read -r wall user sys rss < <(tail -n1 "$base.time")
	local ok=0
	[[ ",$okcodes," == *",$rc,"* ]] && ok=1
	echo "$round,$tool,$step,$wall,$user,$sys,$rss,$rc,$ok,,$load" >>"$CSV"
	log "  [round $round] $(printf '%-7s %-16s' "$tool" "$step") ${wall}s  user ${user}s sys ${sys}s  rss $((rss / 1024)) MiB  exit $rc  (load $load)"
	((ok)) || log "  WARNING: $tool $step exited $rc; see $base.log"
	((ok))
}

# fresh_fs DIR: make DIR an empty directory on a new ext4 file system (a
# sparse image on a loop device with direct I/O) when RESTORE_FS=fresh,
# else a plain directory; bench/run.sh's fresh_fs says why. The image has
# room for the set and inodes for every file.
fresh_fs() {
	local dir=$1
	release_fs "$dir"
	mkdir -p "$dir"
	[[ $RESTORE_FS == fresh ]] || return 0
	local img=$dir.img size inodes dev
	size=$(((DISK_DATA * 5 / 4 + (1 << 30)) >> 20 << 20)) # whole MiB: loop devices use whole sectors
	inodes=$(((FILES + PLAN[dirs]) * 3 / 2 + 65536))
	truncate -s "$size" "$img"
	if mkfs.ext4 -q -F -N "$inodes" -E lazy_itable_init=0,lazy_journal_init=0 "$img" >/dev/null 2>&1 &&
		dev=$(losetup --find --show --direct-io=on "$img") && echo "$dev" >"$dir.dev" && mount "$dev" "$dir"; then
		return 0
	fi
	[[ -n ${dev:-} ]] && losetup -d "$dev" 2>/dev/null
	log "WARNING: cannot mount a fresh file system at $dir; restoring into a plain directory (--restore-fs scratch)"
	rm -f "$img"
	RESTORE_FS=scratch
}

# release_fs DIR: unmount and delete what fresh_fs made.
release_fs() {
	local dir=$1
	if mountpoint -q "$dir" 2>/dev/null; then
		umount "$dir" || umount -l "$dir"
	fi
	if [[ -f $dir.dev ]]; then
		losetup -d "$(cat "$dir.dev")" 2>/dev/null || true
	fi
	rm -rf "$dir" "$dir.img" "$dir.dev"
}

size_row() { # ROUND TOOL STEP DIR
	local b
	b=$(du -sb "$4" | cut -f1)
	echo "$1,$2,$3,,,,,0,1,$b," >>"$CSV"
	log "  [round $1] $(printf '%-7s %-16s' "$2" "$3") $(awk -v b="$b" 'BEGIN{printf "%.1f MB", b/1e6}')"
}

export BUNKER_PASSWORD=bench-password RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password
export BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES

# tool_cmd TOOL STEP [ARCHIVE]: print the command of one step, NUL
# separated. borg exits 1 on warnings (a file changed while read), which
# counts as done, as in bench/run.sh.
tool_cmd() {
	local tool=$1 step=$2 arch=${3:-}
	local repo=$SCRATCH_DIR/repo-$tool cache=$SCRATCH_DIR/cache-$tool restore=$SCRATCH_DIR/restore-target/$tool
	local -a c
	case $tool:$step in
	bunker:init) c=("$BUNKER" -r "$repo" init) ;;
	bunker:backup) c=("$BUNKER" -r "$repo" backup --json "$SRC") ;;
	bunker:restore) c=("$BUNKER" -r "$repo" restore latest --target "$restore") ;;
	bunker:verify) c=("$BUNKER" -r "$repo" check --read-data) ;;
	restic:init) c=("$RESTIC" -r "$repo" --cache-dir "$cache" init) ;;
	restic:backup) c=("$RESTIC" -r "$repo" --cache-dir "$cache" backup --json "$SRC") ;;
	restic:restore) c=("$RESTIC" -r "$repo" --cache-dir "$cache" restore latest --target "$restore") ;;
	restic:verify) c=("$RESTIC" -r "$repo" --cache-dir "$cache" check --read-data) ;;
	borg:init) c=(env BORG_BASE_DIR="$cache" borg init --encryption repokey-blake2 "$repo") ;;
	borg:backup) c=(env BORG_BASE_DIR="$cache" borg create --compression lz4 "$repo::$arch" "$SRC") ;;
	borg:restore) c=(env -C "$restore" BORG_BASE_DIR="$cache" borg extract "$repo::a3") ;;
	borg:verify) c=(env BORG_BASE_DIR="$cache" borg check --verify-data "$repo") ;;
	esac
	printf '%s\0' "${c[@]}"
}

okcodes() { [[ $1 == borg ]] && echo 0,1 || echo 0; }

# FAILED[tool] is set once a tool's initial backup fails: its later steps
# have nothing to work on.
declare -A FAILED

backup_step() { # ROUND TOOL STEP ARCHIVE
	local round=$1 tool=$2 step=$3 arch=$4
	[[ -z ${FAILED[$tool]:-} ]] || return 0
	local -a c
	mapfile -d '' c < <(tool_cmd "$tool" backup "$arch")
	if ! timed "$round" "$tool" "$step" "$(okcodes "$tool")" "${c[@]}" && [[ $step == backup_initial ]]; then
		FAILED[$tool]=1
		return 0
	fi
	size_row "$round" "$tool" "size_after_${step#backup_}" "$SCRATCH_DIR/repo-$tool"
}

restore_step() { # ROUND TOOL
	local round=$1 tool=$2
	[[ -z ${FAILED[$tool]:-} ]] || return 0
	local target=$SCRATCH_DIR/restore-target
	fresh_fs "$target"
	mkdir -p "$target/$tool"
	local -a c
	mapfile -d '' c < <(tool_cmd "$tool" restore)
	if timed "$round" "$tool" restore "$(okcodes "$tool")" "${c[@]}"; then
		local got match=1
		got=$("$BIN_DIR/benchutil" treestat "$target/$tool$SRC" 2>&1 || true)
		[[ $got == "$SRC_STAT" ]] || match=0
		echo "$round,$tool,restore_matches,,,,,$((1 - match)),$match,," >>"$CSV"
		((match)) || log "  WARNING: $tool's restore differs from the source: [$got] against [$SRC_STAT]"
	fi
	release_fs "$target"
}

verify_step() { # ROUND TOOL
	local round=$1 tool=$2
	[[ -z ${FAILED[$tool]:-} ]] || return 0
	local -a c
	mapfile -d '' c < <(tool_cmd "$tool" verify)
	timed "$round" "$tool" verify "$(okcodes "$tool")" "${c[@]}" || true
}

# run_round ROUND: every step for every tool, each step's tools in the
# round's order (rotated by one each round), so that all repositories
# see the same change and each step's figures are taken close together.
run_round() {
	local round=$1 k t
	local -a order=()
	for ((k = 0; k < ${#TOOLS_ARR[@]}; k++)); do
		order+=("${TOOLS_ARR[$(((k + round - 1) % ${#TOOLS_ARR[@]}))]}")
	done
	log "=== round $round of $ROUNDS: ${order[*]}"
	"$BIN_DIR/scale" revert -src "$SRC" -stash "$STASH"
	rm -rf "$SCRATCH_DIR"
	mkdir -p "$SCRATCH_DIR"
	FAILED=()
	local -a c
	for t in "${order[@]}"; do
		mkdir -p "$SCRATCH_DIR/cache-$t"
		mapfile -d '' c < <(tool_cmd "$t" init)
		"${c[@]}" >"$RUN_DIR/logs/r$round-$t-init.log" 2>&1 || { log "WARNING: $t init failed"; FAILED[$t]=1; }
	done
	for t in "${order[@]}"; do backup_step "$round" "$t" backup_initial a1; done
	for t in "${order[@]}"; do backup_step "$round" "$t" backup_nochange a2; done
	"$BIN_DIR/scale" mutate -src "$SRC" -stash "$STASH" -files "$FILES" -big "$BIG_FILE" -seed "$SEED" \
		-round "$round" -percent "$CHANGE_PERCENT" | tee -a "$RUN_DIR/logs/r$round-mutate.log" >&2
	for t in "${order[@]}"; do backup_step "$round" "$t" backup_change a3; done
	SRC_STAT=$("$BIN_DIR/benchutil" treestat "$SRC")
	for t in "${order[@]}"; do restore_step "$round" "$t"; done
	for t in "${order[@]}"; do verify_step "$round" "$t"; done
	"$BIN_DIR/scale" revert -src "$SRC" -stash "$STASH"
	rm -rf "$SCRATCH_DIR"
	sync
}

# ------------------------------------------------------------------- main

T0=$(date +%s)
ensure_tools
plan_disk
build_data
"$BIN_DIR/scale" revert -src "$SRC" -stash "$STASH"
read -r -a TOOLS_ARR <<<"$TOOLS"

STAMP=$(date -u +%Y%m%d-%H%M%S)
RUN_DIR=$WORK_DIR/runs/$STAMP
mkdir -p "$RUN_DIR/logs"
CSV=$RUN_DIR/raw.csv
echo "round,tool,step,wall_s,user_s,sys_s,maxrss_kb,exit_code,ok,bytes,load1" >"$CSV"
META=$RUN_DIR/meta.txt
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
: >"$META"
[[ -n $STATUS ]] && meta status "$STATUS"
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta command "cd $ROOT && ${ENVLINE}${CMDLINE}"
meta commit "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
meta machine "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")"
meta "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta "uptime at start" "$(uptime)"
meta files "$FILES"
meta "set" "$DATA: $(cat "$DATA/stat.txt"); ${PLAN[dirs]} directories up to ${PLAN[depth]} levels deep, up to ${PLAN[max_files_per_dir]} files in one; small files $(awk -v b="${PLAN[small_bytes]}" 'BEGIN{printf "%.2f GB", b/1e9}') (1-64 KiB, sizes of /usr/share and /usr/local/go), large file $BIG_FILE; seed $SEED"
meta "change step" "of $CHANGE_PERCENT% of the small files, half rewritten in place (16 bytes), a quarter deleted, as many added; $CHANGE_PERCENT% of the large file's 1 MiB blocks rewritten (deterministic per round)"
if ((COLD)); then
	meta "page cache" "cold: dropped (echo 3 > /proc/sys/vm/drop_caches) before every timed step"
else
	meta "page cache" "warm: left as the previous step left it"
fi
if [[ $RESTORE_FS == fresh ]]; then
	meta "restore target" "a new ext4 file system (sparse image, loop device with direct I/O) for each restore, deleted after it"
else
	meta "restore target" "a directory under $SCRATCH_DIR, deleted after each restore"
fi
meta "binaries" "bunker and restic copied with cat before the run (peak RSS counts the executable's pages)"
meta rounds "$ROUNDS (each step runs every tool, the order rotated each round; fresh repositories each round)"
meta tools "$TOOLS"
for t in $TOOLS; do
	meta "label.$t" "$(tool_version "$t" | sed -E 's/ compiled with.*//; s/ \(repository format.*//')"
	meta "version $t" "$(tool_version "$t")"
	meta "settings $t" "$(tool_settings "$t")"
done
meta "disk estimate" "$(awk -v b="$DISK_NEED" 'BEGIN{printf "%.1f GB", b/1e9}')"
[[ -n $NOTE ]] && meta note "$NOTE"

log "command: cd $ROOT && ${ENVLINE}${CMDLINE}"
for ((round = 1; round <= ROUNDS; round++)); do
	run_round "$round"
done

T1=$(date +%s)
meta "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta "uptime at end" "$(uptime)"
meta "total runtime" "$(((T1 - T0) / 60)) min $(((T1 - T0) % 60)) s (including generating the set if it ran)"
OUT=$WORK_DIR/results-$STAMP
"$BIN_DIR/scale" summarize -csv "$CSV" -meta "$META" -md "$OUT.md" -json "$OUT.json"
cp "$CSV" "$OUT.csv"
ln -sfn "results-$STAMP.md" "$WORK_DIR/results-latest.md"
[[ -n ${SCALE_RESULT_LIST:-} ]] && echo "$OUT.json" >>"$SCALE_RESULT_LIST"
echo
cat "$OUT.md"
echo
log "command: cd $ROOT && ${ENVLINE}${CMDLINE}"
log "reports: $OUT.md $OUT.json $OUT.csv (raw logs in $RUN_DIR)"
