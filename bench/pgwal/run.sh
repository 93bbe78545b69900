#!/usr/bin/env bash
# bench/pgwal/run.sh: WAL archiving throughput, synchronous `bunker pg
# wal-push` against asynchronous `wal-push --spool` with a running pusher
# (`bunker pg wal-spool`), on the same segments in the same run. See "WAL
# archiving" in docs/PERFORMANCE.md.
#
#   bench/pgwal/run.sh                    100 segments, 3 rounds per mode
#   bench/pgwal/run.sh --segments 50 --rounds 1
#
# Run as root (PostgreSQL runs as postgres). A PostgreSQL server on
# loopback, in a scratch directory under bench/work/, writes real WAL
# (pgbench -i) that archive_command copies aside; each round then pushes
# those 16 MiB segments back to back, as PostgreSQL's archiver calls
# archive_command (one call per segment, each waiting for the previous),
# into a fresh repository made with the default (production) key
# derivation. Results: bench/work/pgwal-results-<stamp>.md.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/pgwal/run.sh [options]

  --segments N     segments pushed back to back per round        [SEGMENTS=100]
  --rounds N       timed rounds per mode (median reported)        [ROUNDS=3]
  --note TEXT      free-text note for the report                  [NOTE]
  -h, --help       this text
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CMDLINE=$(printf '%q ' "bench/pgwal/run.sh" "$@")
CMDLINE=${CMDLINE% }
SEGMENTS=${SEGMENTS:-100}
ROUNDS=${ROUNDS:-3}
NOTE=${NOTE:-}
while (($#)); do
	case $1 in
	--segments) SEGMENTS=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--note) NOTE=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

STAMP=$(date +%Y%m%d-%H%M%S)
WORK="$ROOT/bench/work/pgwal-$STAMP"
OUT="$ROOT/bench/work/pgwal-results-$STAMP.md"
mkdir -p "$WORK"
chmod 755 "$ROOT/bench/work" "$WORK"
BUNKER="$WORK/bunker"
(cd "$ROOT" && go build -o "$BUNKER" ./cmd/bunker)
export BUNKER_PASSWORD=bench

now() { date +%s.%N; }
elapsed() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }
median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { echo "scale=1; $1 / $2" | bc; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------ real WAL
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGD="$WORK/pg"
WAL="$WORK/wal"
mkdir -p "$PGD" "$WAL"
chown postgres "$PGD" "$WAL"
PORT=$(free_port)
pg() { runuser -u postgres -- "$@"; }
pg "$PGBIN/initdb" -D "$PGD/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
pg "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/pg.log" -w -s -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGD \
	-c wal_level=replica -c archive_mode=on -c archive_command='cp %p $WAL/%f' -c fsync=off -c max_wal_size=4GB" start
trap 'pg "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -s stop 2>/dev/null || true' EXIT
segments() { ls "$WAL" | grep -E '^[0-9A-F]{24}$' | sort; }
scale=10
while [ "$(segments | wc -l)" -lt $((SEGMENTS + 1)) ]; do
	pg "$PGBIN/pgbench" -h "$PGD" -p "$PORT" -U postgres -i -q -s $scale postgres >/dev/null 2>&1
	pg "$PGBIN/psql" -h "$PGD" -p "$PORT" -U postgres -qAtc "select pg_switch_wal()" postgres >/dev/null
	sleep 1
done
pg "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -s stop
trap - EXIT
mapfile -t SEGS < <(segments | head -n "$SEGMENTS")
PGVERSION=$("$PGBIN/postgres" --version | awk '{print $3}')
echo "pgwal: $SEGMENTS segments of real WAL (PostgreSQL $PGVERSION) in $WAL" >&2

# ------------------------------------------------------------ rounds
# push_all runs archive_command for every segment, one after the other.
push_all() {
	for s in "${SEGS[@]}"; do
		"$BUNKER" -r "$1" pg wal-push "${@:2}" "$WAL/$s" >/dev/null
	done
}

check_archived() {
	local n
	n=$("$BUNKER" -r "$1" --json pg wal-list | grep -c '"message_type":"wal"')
	if [ "$n" -ne "$SEGMENTS" ]; then
		echo "pgwal: $1 holds $n WAL files, want $SEGMENTS" >&2
		exit 1
	fi
}

declare -a SYNC ASYNC_RET ASYNC_DUR
for round in $(seq 1 "$ROUNDS"); do
	repo="$WORK/repo-sync-$round"
	"$BUNKER" -r "$repo" init >/dev/null
	t0=$(now)
	push_all "$repo"
	t1=$(now)
	SYNC+=("$(elapsed "$t0" "$t1")")
	check_archived "$repo"
	echo "round $round: synchronous ${SYNC[-1]} s" >&2

	repo="$WORK/repo-async-$round"
	spool="$WORK/spool-$round"
	"$BUNKER" -r "$repo" init >/dev/null
	"$BUNKER" -r "$repo" pg wal-spool "$spool" &
	pusher=$!
	# The pusher is up once it holds the spool's lock.
	until [ -e "$spool/pusher.lock" ] && ! flock -n "$spool/pusher.lock" true; do sleep 0.05; done
	t0=$(now)
	push_all "$repo" --spool "$spool"
	t1=$(now)
	# Durable: the pusher removes spooled files after their snapshot's
	# commit.
	while ls "$spool" | grep -qE '^[0-9]+-'; do sleep 0.02; done
	t2=$(now)
	kill -TERM "$pusher"
	wait "$pusher"
	ASYNC_RET+=("$(elapsed "$t0" "$t1")")
	ASYNC_DUR+=("$(elapsed "$t0" "$t2")")
	check_archived "$repo"
	snaps=$("$BUNKER" -r "$repo" --json snapshots | grep -o '"id"' | wc -l)
	echo "round $round: asynchronous ${ASYNC_RET[-1]} s returned, ${ASYNC_DUR[-1]} s durable ($snaps snapshots)" >&2
done

ms=$(printf '%s\n' "${SYNC[@]}" | median)
ma=$(printf '%s\n' "${ASYNC_RET[@]}" | median)
md=$(printf '%s\n' "${ASYNC_DUR[@]}" | median)
{
	echo "# WAL archiving benchmark $STAMP"
	echo
	echo "Command: \`$CMDLINE\`; $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GiB; bunker $($BUNKER version | head -1 | cut -d' ' -f2); PostgreSQL $PGVERSION."
	[ -n "$NOTE" ] && echo "Note: $NOTE"
	echo
	echo "$SEGMENTS segments of 16 MiB pushed back to back, medians of $ROUNDS rounds:"
	echo
	echo "| | all archive_commands returned (s) | all durable in the repository (s) | speed-up (durable) |"
	echo "|---|---:|---:|---:|"
	echo "| \`pg wal-push\` (synchronous) | $ms | $ms | 1.0 |"
	echo "| \`pg wal-push --spool\` + \`pg wal-spool\` | $ma | $md | $(ratio "$ms" "$md") |"
	echo
	echo "Rounds (s): synchronous ${SYNC[*]}; asynchronous returned ${ASYNC_RET[*]}, durable ${ASYNC_DUR[*]}."
} >"$OUT"
cat "$OUT"
