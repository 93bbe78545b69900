#!/usr/bin/env bash
# bench/run.sh: side-by-side benchmark of Bunker, restic and borg (1.2 and
# 2.x) on the same data set. See docs/PERFORMANCE.md for the method.
#
# One command:   bench/run.sh                 (3 rounds, ~3 GB data set)
# Shake-out:     bench/run.sh --quick         (1 round, ~0.5 GB data set)
#
# Everything it makes goes under bench/work/ (git-ignored) and
# .cache/tools/ (restic); borg comes from apt. Run as root (apt-get,
# runuser for PostgreSQL). Reports: bench/work/results-<stamp>.{md,json,csv}.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/run.sh [options]

Options (each also settable by the environment variable in brackets):
  --rounds N          rounds; each round runs every tool once, in turn     [ROUNDS=3]
  --quick             small data set for a shake-out: 1 copy of the small
                      files, pgbench scale 5, 128 MB random, 1 round
  --small-copies N    copies of /usr/local/go and /usr/share/doc          [SMALL_COPIES=3]
  --pgbench-scale N   pgbench -i -s N (100 ~ 1 GB plain dump)             [PGBENCH_SCALE=100]
  --random-mb N       MB of incompressible random data                   [RANDOM_MB=1024]
  --tools "LIST"      tools to run, of: bunker restic borg borg2          [TOOLS]
  --data-root DIR     where data sets are built and cached                [DATA_ROOT=bench/work/data]
  --work-dir DIR      results, logs, binaries, scratch repos              [WORK_DIR=bench/work]
  --borg-compression C  borg/borg2 --compression (default lz4, borg's own default) [BORG_COMPRESSION]
  --change-percent P  percentage of small files changed in step 3        [CHANGE_PERCENT=1]
  --no-floor          skip the per-byte cost floors (bench/floor)         [FLOOR=0]
  --floor-only        build/reuse the data set and only run the floors
  --data-only         only build the data set (and install tools)
  --no-install        do not install missing tools; skip them instead     [INSTALL=0]
  --restore-diff      also diff -r every restore against cp -a (slow)     [RESTORE_DIFF=1]
  --cold              drop the page cache (and dentries, inodes) before
                      every timed step, as root: what a nightly backup and
                      a real restore meet                                 [COLD=1]
  --restore-fs MODE   where restores and cp -a write: fresh (a new ext4
                      file system on a loop device per step) or scratch
                      (a directory next to the repositories)  [RESTORE_FS=fresh]
  --status TEXT       label of the run in the report, e.g. preliminary    [STATUS]
  --note TEXT         free-text note for the report                       [NOTE]
  --summarize DIR     only re-render the reports of an earlier run dir
  -h, --help          this text
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE=$(printf '%q ' "bench/run.sh" "$@")
CMDLINE=${CMDLINE% }
# Environment overrides, recorded in the report as part of the command.
ENVLINE=""
for v in ROUNDS SMALL_COPIES PGBENCH_SCALE RANDOM_MB TOOLS DATA_ROOT WORK_DIR SCRATCH_DIR TOOLS_DIR BORG_COMPRESSION \
	CHANGE_PERCENT FLOOR FLOOR_SAMPLE_MB INSTALL RESTORE_DIFF RESTORE_FS COLD STATUS NOTE GO_TREE DOC_TREE PGBIN; do
	if [[ -n ${!v+x} ]]; then ENVLINE+="$v=$(printf '%q' "${!v}") "; fi
done

ROUNDS=${ROUNDS:-3}
SMALL_COPIES=${SMALL_COPIES:-3}
PGBENCH_SCALE=${PGBENCH_SCALE:-100}
RANDOM_MB=${RANDOM_MB:-1024}
TOOLS=${TOOLS:-"bunker restic borg borg2"}
WORK_DIR=${WORK_DIR:-$ROOT/bench/work}
BORG_COMPRESSION=${BORG_COMPRESSION:-lz4}
CHANGE_PERCENT=${CHANGE_PERCENT:-1}
FLOOR=${FLOOR:-1}
FLOOR_SAMPLE_MB=${FLOOR_SAMPLE_MB:-256}
INSTALL=${INSTALL:-1}
RESTORE_DIFF=${RESTORE_DIFF:-0}
RESTORE_FS=${RESTORE_FS:-fresh}
COLD=${COLD:-0}
STATUS=${STATUS:-}
NOTE=${NOTE:-}
GO_TREE=${GO_TREE:-/usr/local/go}
DOC_TREE=${DOC_TREE:-/usr/share/doc}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.cache/tools}
RESTIC_VERSION=0.19.1
MODE=full
SUMMARIZE_DIR=""

while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--quick) SMALL_COPIES=1 PGBENCH_SCALE=5 RANDOM_MB=128 ROUNDS=1 FLOOR_SAMPLE_MB=64 ;;
	--small-copies) SMALL_COPIES=$2; shift ;;
	--pgbench-scale) PGBENCH_SCALE=$2; shift ;;
	--random-mb) RANDOM_MB=$2; shift ;;
	--tools) TOOLS=$2; shift ;;
	--data-root) DATA_ROOT=$2; shift ;;
	--work-dir) WORK_DIR=$2; shift ;;
	--borg-compression) BORG_COMPRESSION=$2; shift ;;
	--change-percent) CHANGE_PERCENT=$2; shift ;;
	--no-floor) FLOOR=0 ;;
	--floor-only) MODE=floor ;;
	--data-only) MODE=data ;;
	--no-install) INSTALL=0 ;;
	--restore-diff) RESTORE_DIFF=1 ;;
	--restore-fs) RESTORE_FS=$2; shift ;;
	--cold) COLD=1 ;;
	--status) STATUS=$2; shift ;;
	--note) NOTE=$2; shift ;;
	--summarize) MODE=summarize SUMMARIZE_DIR=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

WORK_DIR=$(mkdir -p "$WORK_DIR" && cd "$WORK_DIR" && pwd)
DATA_ROOT=${DATA_ROOT:-$WORK_DIR/data}
SCRATCH_DIR=${SCRATCH_DIR:-$WORK_DIR/scratch}
BIN_DIR=$WORK_DIR/bin
SET_NAME="set-c${SMALL_COPIES}-s${PGBENCH_SCALE}-r${RANDOM_MB}"
DATA=$DATA_ROOT/$SET_NAME
SRC=$DATA/src
STASH=$DATA/stash

# Data sets and scratch trees hold copies of Go source trees: a go.mod at
# their top makes them separate modules, so that "go build/vet/test ./..."
# in the main module does not try to compile them.
fence_module() { # DIR
	local d=$1
	[[ $d == "$ROOT"/* ]] || return 0
	mkdir -p "$d"
	[[ -f $d/go.mod ]] || printf '%s\n' 'module bunker-bench-work' '' \
		'// Written by bench/run.sh: keeps this tree (copies of Go sources,' \
		'// scratch repositories) out of the main module'"'"'s ./... patterns.' '' 'go 1.26' >"$d/go.mod"
}
fence_module "$WORK_DIR"
fence_module "$DATA_ROOT"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

build_helpers() {
	mkdir -p "$BIN_DIR"
	(cd "$ROOT" && go build -o "$BIN_DIR/benchutil" ./bench/benchutil && go build -o "$BIN_DIR/floor" ./bench/floor)
}

if [[ $MODE == summarize ]]; then
	build_helpers
	d=$(cd "$SUMMARIZE_DIR" && pwd)
	stamp=$(basename "$d")
	"$BIN_DIR/benchutil" summarize -csv "$d/raw.csv" -meta "$d/meta.txt" -floor "$d/floor.md" \
		-md "$WORK_DIR/results-$stamp.md" -json "$WORK_DIR/results-$stamp.json"
	cp "$d/raw.csv" "$WORK_DIR/results-$stamp.csv"
	cat "$WORK_DIR/results-$stamp.md"
	exit 0
fi

[[ $(id -u) == 0 ]] || die "run as root (apt-get, runuser for PostgreSQL, restoring ownership)"

# ---------------------------------------------------------------- cleanup

PG_DIR="" PG_UP=0
cleanup() {
	local rc=$?
	if ((PG_UP)); then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/db" -m fast -w stop >/dev/null 2>&1 || true
	fi
	[[ -n $PG_DIR && -d $PG_DIR ]] && rm -rf "$PG_DIR"
	if [[ -x $BIN_DIR/benchutil && -d $STASH ]]; then
		"$BIN_DIR/benchutil" revert -src "$SRC" -stash "$STASH" || log "WARNING: could not revert the mutation in $SRC"
	fi
	release_fs "$SCRATCH_DIR/restore-target" || true
	release_fs "$SCRATCH_DIR/cp-target" || true
	[[ -d $SCRATCH_DIR ]] && rm -rf "$SCRATCH_DIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools

APT_UPDATED=0
apt_install() {
	((INSTALL)) || return 1
	if ((!APT_UPDATED)); then
		log "apt-get update"
		apt-get update -qq >&2
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

apt_has_candidate() { # PACKAGE
	local c
	c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [[ -z $c || $c == "(none)" ]] && ((!APT_UPDATED && INSTALL)); then
		apt-get update -qq >&2 && APT_UPDATED=1
		c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	fi
	[[ -n $c && $c != "(none)" ]]
}

BUNKER=$BIN_DIR/bunker
RESTIC=$TOOLS_DIR/restic-$RESTIC_VERSION/restic
BORG=borg
BORG2=borg2

ensure_tools() {
	[[ -x /usr/bin/time ]] || apt_install time || die "GNU time (/usr/bin/time) is missing"
	command -v go >/dev/null || die "go is needed"
	if [[ $RESTORE_FS == fresh ]] && ! command -v mkfs.ext4 >/dev/null; then
		apt_install e2fsprogs || { log "mkfs.ext4 is missing: restoring into a plain directory"; RESTORE_FS=scratch; }
	fi
	build_helpers
	local keep=()
	for t in $TOOLS; do
		case $t in
		bunker)
			log "building bunker"
			(cd "$ROOT" && go build -o "$BUNKER" ./cmd/bunker)
			keep+=(bunker)
			;;
		restic)
			if [[ ! -x $RESTIC ]] && ((INSTALL)); then
				log "installing restic $RESTIC_VERSION into $(dirname "$RESTIC")"
				mkdir -p "$(dirname "$RESTIC")"
				(cd / && GOBIN=$(dirname "$RESTIC") GOFLAGS= go install "github.com/restic/restic/cmd/restic@v$RESTIC_VERSION")
			fi
			if [[ -x $RESTIC ]]; then keep+=(restic); else log "WARNING: restic missing, skipped"; fi
			;;
		borg)
			command -v borg >/dev/null || apt_install borgbackup || true
			if command -v borg >/dev/null; then keep+=(borg); else log "WARNING: borg missing, skipped"; fi
			;;
		borg2)
			if ! command -v borg2 >/dev/null; then
				if apt_has_candidate borgbackup2; then apt_install borgbackup2 || true; fi
			fi
			if command -v borg2 >/dev/null; then keep+=(borg2); else log "NOTE: borg2 (apt borgbackup2) not available, skipped"; fi
			;;
		*) die "unknown tool $t (known: bunker restic borg borg2)" ;;
		esac
	done
	TOOLS="${keep[*]}"
}

tool_version() {
	case $1 in
	bunker) "$BUNKER" version 2>&1 | head -n1 ;;
	restic) "$RESTIC" version 2>&1 | head -n1 ;;
	borg) borg --version 2>&1 | head -n1 ;;
	borg2) borg2 --version 2>&1 | head -n1 ;;
	esac
}

tool_settings() {
	case $1 in
	bunker) echo "default init (zstd-fastest, AES-256-GCM, 16 MiB packs), default backup; $("$BUNKER" version 2>&1 | sed -n 2p)" ;;
	restic) echo "default init (repo v2, compression auto = zstd default level, AES-256-CTR+Poly1305), local cache in scratch" ;;
	borg) echo "init --encryption repokey-blake2, create --compression $BORG_COMPRESSION, BORG_BASE_DIR in scratch" ;;
	borg2) echo "rcreate --encryption repokey-blake2-aes-ocb, create --compression $BORG_COMPRESSION, BORG_BASE_DIR in scratch" ;;
	esac
}

# --------------------------------------------------------------- data set

free_port() {
	local p
	for p in $(seq 55432 55632); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

make_pgdump() { # OUTFILE
	local out=$1 port
	[[ -x $PGBIN/initdb ]] || die "PostgreSQL binaries not found in $PGBIN (set PGBIN)"
	id postgres >/dev/null 2>&1 || die "user postgres is missing"
	PG_DIR=$(mktemp -d "$DATA/pg.XXXXXX")
	chown postgres: "$PG_DIR"
	chmod 700 "$PG_DIR"
	if ! runuser -u postgres -- test -w "$PG_DIR"; then
		rm -rf "$PG_DIR"
		PG_DIR=$(mktemp -d /var/tmp/bunker-bench-pg.XXXXXX)
		chown postgres: "$PG_DIR"
	fi
	port=$(free_port) || die "no free port for PostgreSQL"
	log "pgbench: initdb in $PG_DIR, port $port, scale $PGBENCH_SCALE"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PG_DIR/db" -A trust -U postgres -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/db" -l "$PG_DIR/server.log" -w \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB" \
		start >/dev/null || { cat "$PG_DIR/server.log" >&2; die "pg_ctl start failed"; }
	PG_UP=1
	"$PGBIN/pgbench" -i -s "$PGBENCH_SCALE" -q -h "$PG_DIR" -p "$port" -U postgres postgres >"$PG_DIR/pgbench.log" 2>&1 ||
		{ cat "$PG_DIR/pgbench.log" >&2; die "pgbench -i failed"; }
	log "pg_dump (plain) -> $out"
	"$PGBIN/pg_dump" -h "$PG_DIR" -p "$port" -U postgres -f "$out.tmp" postgres
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/db" -m fast -w stop >/dev/null
	PG_UP=0
	rm -rf "$PG_DIR"
	PG_DIR=""
	mv "$out.tmp" "$out"
}

build_data() {
	if [[ -f $DATA/.complete ]]; then
		log "reusing data set $DATA"
		return
	fi
	log "building data set $DATA"
	mkdir -p "$SRC/small" "$SRC/pg" "$SRC/random"
	local i
	for ((i = 1; i <= SMALL_COPIES; i++)); do
		for pair in "go:$GO_TREE" "doc:$DOC_TREE"; do
			local name=${pair%%:*} from=${pair#*:}
			local dst=$SRC/small/$name-$i
			if [[ ! -d $dst ]]; then
				[[ -d $from ]] || die "$from is missing"
				rm -rf "$dst.tmp"
				cp -a "$from" "$dst.tmp"
				mv "$dst.tmp" "$dst"
			fi
		done
	done
	local left=$RANDOM_MB n=0
	while ((left > 0)); do
		local mb=$((left < 256 ? left : 256))
		local f=$SRC/random/random-$n.bin
		[[ -f $f ]] || "$BIN_DIR/benchutil" genrandom -out "$f" -bytes $((mb * 1000000)) -seed $((n + 1))
		left=$((left - mb)) n=$((n + 1))
	done
	[[ -f $SRC/pg/pgbench.sql ]] || make_pgdump "$SRC/pg/pgbench.sql"
	sync
	{
		for sub in small pg random; do echo "$sub $("$BIN_DIR/benchutil" treestat "$SRC/$sub")"; done
		echo "total $("$BIN_DIR/benchutil" treestat "$SRC")"
	} >"$DATA/stat.txt"
	touch "$DATA/.complete"
	log "data set ready: $(tail -n1 "$DATA/stat.txt")"
}

# --------------------------------------------------------------- measuring

CSV="" RUN_DIR=""

# drop_caches: with --cold, write back and drop the page cache, dentries
# and inodes, so that the next step reads its source, repository and tools
# from disk (as root; refused otherwise, since a cold run that is not cold
# would be reported as one).
drop_caches() {
	((COLD)) || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches || die "--cold needs root (writing /proc/sys/vm/drop_caches failed)"
}

# timed ROUND TOOL STEP OKCODES CMD...: run CMD under GNU time after a sync
# (and, with --cold, with the page cache dropped), and append a CSV row
# (wall, user, sys seconds; peak RSS KB). Returns 0 if the exit code is
# one of OKCODES (comma separated).
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
# sparse image on a loop device) when RESTORE_FS=fresh, else a plain
# directory. Why: this VM's root file system is ext4 without a journal,
# whose inode allocator checks every recently freed inode it passes
# (recently_deleted() in fs/ext4/ialloc.c). After the harness deletes a
# 57,000-file tree, creating the next one costs whatever amount of kernel
# time that scan takes: cp -a of the same tree took 7.8 s to 57 s on the
# root file system, and 6.8-8.8 s on a fresh one. A fresh file system per
# step gives every tool the same, clean starting point.
fresh_fs() {
	local dir=$1
	release_fs "$dir"
	mkdir -p "$dir"
	[[ $RESTORE_FS == fresh ]] || return 0
	local img=$dir.img size
	size=$((($(du -sb "$SRC" | cut -f1) * 2 + (1 << 30)) >> 20 << 20)) # whole MiB: loop devices use whole sectors
	truncate -s "$size" "$img"
	# Direct I/O between the loop device and its image keeps the data out
	# of the page cache twice over (once per file system).
	local dev
	if mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" >/dev/null 2>&1 &&
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

run_tool() { # ROUND TOOL
	local round=$1 tool=$2
	local repo=$SCRATCH_DIR/repo-$tool cache=$SCRATCH_DIR/cache-$tool
	local target=$SCRATCH_DIR/restore-target cptarget=$SCRATCH_DIR/cp-target
	local restore=$target/$tool cpdir=$cptarget/$tool
	"$BIN_DIR/benchutil" revert -src "$SRC" -stash "$STASH"
	rm -rf "$repo" "$cache"
	release_fs "$target"
	release_fs "$cptarget"
	mkdir -p "$cache"
	export BUNKER_PASSWORD=bench-password RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password
	export BORG_BASE_DIR=$cache BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES
	local ok=0,1
	local -a init backup restorecmd verify
	case $tool in
	bunker)
		ok=0
		init=("$BUNKER" -r "$repo" init)
		backup=("$BUNKER" -r "$repo" backup --json "$SRC")
		restorecmd=("$BUNKER" -r "$repo" restore latest --target "$restore")
		verify=("$BUNKER" -r "$repo" check --read-data)
		;;
	restic)
		ok=0
		init=("$RESTIC" -r "$repo" --cache-dir "$cache" init)
		backup=("$RESTIC" -r "$repo" --cache-dir "$cache" backup --json "$SRC")
		restorecmd=("$RESTIC" -r "$repo" --cache-dir "$cache" restore latest --target "$restore")
		verify=("$RESTIC" -r "$repo" --cache-dir "$cache" check --read-data)
		;;
	borg)
		init=(borg init --encryption repokey-blake2 "$repo")
		backup=(borg create --compression "$BORG_COMPRESSION" "$repo::ARCHIVE" "$SRC")
		restorecmd=(env -C "$restore" borg extract "$repo::a3")
		verify=(borg check --verify-data "$repo")
		;;
	borg2)
		init=(borg2 -r "$repo" rcreate --encryption repokey-blake2-aes-ocb)
		backup=(borg2 -r "$repo" create --compression "$BORG_COMPRESSION" ARCHIVE "$SRC")
		restorecmd=(env -C "$restore" borg2 -r "$repo" extract a3)
		verify=(borg2 -r "$repo" check --verify-data)
		;;
	esac
	# backup_cmd NAME: the backup command with the archive name filled in.
	backup_cmd() { local -a c=("${backup[@]}"); c=("${c[@]//ARCHIVE/$1}"); printf '%s\0' "${c[@]}"; }
	local -a b1 b2 b3
	mapfile -d '' b1 < <(backup_cmd a1)
	mapfile -d '' b2 < <(backup_cmd a2)
	mapfile -d '' b3 < <(backup_cmd a3)

	log "[round $round] $tool"
	if ! timed "$round" "$tool" init 0 "${init[@]}"; then return; fi
	if ! timed "$round" "$tool" backup_initial "$ok" "${b1[@]}"; then
		rm -rf "$repo" "$cache"
		return
	fi
	size_row "$round" "$tool" size_after_initial "$repo"
	timed "$round" "$tool" backup_nochange "$ok" "${b2[@]}" || true
	size_row "$round" "$tool" size_after_nochange "$repo"
	"$BIN_DIR/benchutil" mutate -src "$SRC" -stash "$STASH" -round "$round" -percent "$CHANGE_PERCENT" >>"$RUN_DIR/logs/r$round-$tool-mutate.log"
	timed "$round" "$tool" backup_change "$ok" "${b3[@]}" || true
	size_row "$round" "$tool" size_after_change "$repo"

	fresh_fs "$target"
	fresh_fs "$cptarget"
	mkdir -p "$restore" "$cpdir"
	# Restore and cp -a take turns going first (odd rounds: restore first),
	# so that neither always inherits the other's leftover writeback.
	local rok=0
	if ((round % 2 == 0)); then timed "$round" "$tool" cp_a 0 cp -a "$SRC" "$cpdir/" || true; fi
	timed "$round" "$tool" restore "$ok" "${restorecmd[@]}" && rok=1
	if ((round % 2 == 1)); then timed "$round" "$tool" cp_a 0 cp -a "$SRC" "$cpdir/" || true; fi
	if ((rok)); then
		local a b
		a=$("$BIN_DIR/benchutil" treestat "$restore$SRC" 2>&1 || true)
		b=$("$BIN_DIR/benchutil" treestat "$cpdir/$(basename "$SRC")" 2>&1 || true)
		local match=1
		[[ $a == "$b" ]] || match=0
		if ((match && RESTORE_DIFF)); then
			diff -r --no-dereference "$restore$SRC" "$cpdir/$(basename "$SRC")" >"$RUN_DIR/logs/r$round-$tool-diff.log" 2>&1 || match=0
		fi
		echo "$round,$tool,restore_matches_cp,,,,,$((1 - match)),$match,," >>"$CSV"
		((match)) || log "  WARNING: $tool restore differs from cp -a: restore [$a] vs cp [$b]"
	fi
	release_fs "$target"
	release_fs "$cptarget"
	timed "$round" "$tool" verify "$ok" "${verify[@]}" || true
	"$BIN_DIR/benchutil" revert -src "$SRC" -stash "$STASH"
	rm -rf "$repo" "$cache"
	sync
}

# ------------------------------------------------------------------- main

T0=$(date +%s)
ensure_tools
build_data
"$BIN_DIR/benchutil" revert -src "$SRC" -stash "$STASH"
[[ $MODE == data ]] && { log "data set at $DATA"; exit 0; }

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
meta machine "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")"
meta "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta "data set" "$DATA ($(awk '/^total/ {print $2, $3, $4, $5}' "$DATA/stat.txt"))"
meta "data set parts" "$(awk '!/^total/ {printf "%s: %s %s; ", $1, $2, $3}' "$DATA/stat.txt")"
meta "data set recipe" "$SMALL_COPIES x ($GO_TREE + $DOC_TREE), pgbench -i -s $PGBENCH_SCALE plain pg_dump, $RANDOM_MB MB random"
if ((COLD)); then
	meta "page cache" "cold: dropped (echo 3 > /proc/sys/vm/drop_caches) before every timed step"
else
	meta "page cache" "warm: left as the previous step left it"
fi
meta "change step" "rewrite 16 bytes in place in $CHANGE_PERCENT% of the small files + insert 100 bytes near the start of the pgbench dump (deterministic per round)"
if [[ $RESTORE_FS == fresh ]]; then
	meta "restore target" "a new ext4 file system (sparse image, loop device with direct I/O) for each restore and each cp -a"
else
	meta "restore target" "a directory on the scratch file system ($SCRATCH_DIR)"
fi
meta rounds "$ROUNDS (tool order rotated each round; fresh repository per tool and round)"
meta tools "$TOOLS"
for t in $TOOLS; do
	meta "label.$t" "$(tool_version "$t" | sed -E 's/ compiled with.*//; s/ \(repository format.*//')"
	meta "version $t" "$(tool_version "$t")"
	meta "settings $t" "$(tool_settings "$t")"
done
[[ -n $NOTE ]] && meta note "$NOTE"

log "command: cd $ROOT && ${ENVLINE}${CMDLINE}"
if [[ $MODE == floor ]]; then
	log "per-byte cost floors (bench/floor)"
	"$BIN_DIR/floor" -data "$SRC" -sample-mb "$FLOOR_SAMPLE_MB" | tee "$WORK_DIR/floor-$STAMP.md"
	log "report: $WORK_DIR/floor-$STAMP.md"
	exit 0
fi

if [[ $MODE == full ]]; then
	read -r -a tools_arr <<<"$TOOLS"
	n=${#tools_arr[@]}
	((n > 0)) || die "no tools to run"
	mkdir -p "$SCRATCH_DIR"
	fence_module "$SCRATCH_DIR"
	for ((round = 1; round <= ROUNDS; round++)); do
		log "=== round $round of $ROUNDS"
		for ((k = 0; k < n; k++)); do
			run_tool "$round" "${tools_arr[$(((k + round - 1) % n))]}"
		done
	done
fi

if ((FLOOR)); then
	log "per-byte cost floors (bench/floor)"
	"$BIN_DIR/floor" -data "$SRC" -sample-mb "$FLOOR_SAMPLE_MB" >"$RUN_DIR/floor.md" 2>"$RUN_DIR/logs/floor.err" ||
		log "WARNING: floor failed, see $RUN_DIR/logs/floor.err"
	cat "$RUN_DIR/floor.md" >&2
fi

T1=$(date +%s)
meta "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta "total runtime" "$(((T1 - T0) / 60)) min $(((T1 - T0) % 60)) s (including data set build if any)"
OUT=$WORK_DIR/results-$STAMP
"$BIN_DIR/benchutil" summarize -csv "$CSV" -meta "$META" -floor "$RUN_DIR/floor.md" -md "$OUT.md" -json "$OUT.json"
cp "$CSV" "$OUT.csv"
ln -sfn "results-$STAMP.md" "$WORK_DIR/results-latest.md"
echo
cat "$OUT.md"
echo
log "command: cd $ROOT && ${ENVLINE}${CMDLINE}"
log "reports: $OUT.md $OUT.json $OUT.csv (raw logs in $RUN_DIR)"
