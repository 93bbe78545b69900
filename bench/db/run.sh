#!/usr/bin/env bash
# bench/db/run.sh: database backup throughput, Bunker against the native
# dump tool writing to a local file, on the same server in the same run,
# and what a second backup adds after 1% of the rows changed. See
# "Databases" in docs/PERFORMANCE.md.
#
#   bench/db/run.sh                       PostgreSQL and MariaDB, 3 rounds
#   bench/db/run.sh --dbs postgres --rounds 5 --pg-scale 64
#
# Run as root (servers run as postgres / mysql). Servers listen on loopback
# only, in a scratch directory under bench/work/. Results:
# bench/work/db-results-<stamp>.md.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/db/run.sh [options]

  --dbs "LIST"     of: postgres mariadb                          [DBS="postgres mariadb"]
  --rounds N       timed rounds per tool (median reported)        [ROUNDS=3]
  --pg-scale N     pgbench scale (64 ≈ 1 GB)                       [PG_SCALE=64]
  --my-rows N      rows of the MariaDB table (8M ≈ 1 GB)           [MY_ROWS=8000000]
  --note TEXT      free-text note for the report                  [NOTE]
  -h, --help       this text
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CMDLINE=$(printf '%q ' "bench/db/run.sh" "$@")
CMDLINE=${CMDLINE% }
DBS=${DBS:-"postgres mariadb"}
ROUNDS=${ROUNDS:-3}
PG_SCALE=${PG_SCALE:-64}
MY_ROWS=${MY_ROWS:-8000000}
NOTE=${NOTE:-}
while (($#)); do
	case $1 in
	--dbs) DBS=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--pg-scale) PG_SCALE=$2; shift ;;
	--my-rows) MY_ROWS=$2; shift ;;
	--note) NOTE=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

STAMP=$(date +%Y%m%d-%H%M%S)
WORK="$ROOT/bench/work/db-$STAMP"
OUT="$ROOT/bench/work/db-results-$STAMP.md"
mkdir -p "$WORK"
chmod 755 "$ROOT/bench/work" "$WORK"
BUNKER="$WORK/bunker"
(cd "$ROOT" && go build -o "$BUNKER" ./cmd/bunker)
export BUNKER_PASSWORD=bench

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
size() { du -sb "$1" | cut -f1; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
json_field() { sed -n "s/.*\"$1\":\([0-9.e+]*\).*/\1/p" | tail -1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

{
	echo "# Database backup benchmark $STAMP"
	echo
	echo "Command: \`$CMDLINE\`; $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GiB; bunker $($BUNKER version | head -1 | cut -d' ' -f2)."
	[ -n "$NOTE" ] && echo "Note: $NOTE"
	echo
} >"$OUT"

# ---------------------------------------------------------------- postgres
bench_postgres() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	local D="$WORK/pg" port
	port=$(free_port)
	mkdir -p "$D" && chown postgres: "$D"
	runuser -u postgres -- "$bin/initdb" -D "$D/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
	runuser -u postgres -- "$bin/pg_ctl" -D "$D/data" -l "$D/pg.log" -w -s \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $D -c shared_buffers=256MB -c max_wal_size=4GB" start
	trap 'runuser -u postgres -- "$bin/pg_ctl" -D "$D/data" -m fast -w -s stop || true' RETURN
	export BUNKER_POSTGRES_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres"
	local pg="-h 127.0.0.1 -p $port -U postgres"
	echo "== postgres: pgbench -i -s $PG_SCALE"
	"$bin/psql" $pg -qc "CREATE DATABASE bench" postgres
	"$bin/pgbench" $pg -i -q -s "$PG_SCALE" bench 2>&1 | tail -1
	"$bin/psql" $pg -qc "VACUUM ANALYZE" bench
	local dbsize
	dbsize=$("$bin/psql" $pg -Atc "SELECT pg_database_size('bench')" bench)

	local native=() native0=() bunker=() dumpsize=0 dump0size=0 repo=0 t0
	for i in $(seq 1 "$ROUNDS"); do
		rm -f "$WORK/native.dump" "$WORK/native0.dump"
		sync
		t0=$(now); "$bin/pg_dump" $pg -Fc -d bench -f "$WORK/native.dump"; sync "$WORK/native.dump"; native+=("$(elapsed "$t0" "$(now)")")
		dumpsize=$(size "$WORK/native.dump")
		t0=$(now); "$bin/pg_dump" $pg -Fc -Z0 -d bench -f "$WORK/native0.dump"; sync "$WORK/native0.dump"; native0+=("$(elapsed "$t0" "$(now)")")
		dump0size=$(size "$WORK/native0.dump")
		rm -rf "$WORK/repo" && "$BUNKER" -r "$WORK/repo" init >/dev/null
		sync
		t0=$(now); "$BUNKER" -r "$WORK/repo" -q backup postgres --database bench --no-globals; bunker+=("$(elapsed "$t0" "$(now)")")
		repo=$(size "$WORK/repo")
		echo "   round $i: pg_dump -Fc ${native[-1]} s, -Z0 ${native0[-1]} s, bunker ${bunker[-1]} s"
	done
	rm -f "$WORK/native.dump" "$WORK/native0.dump"
	local mn m0 mb
	mn=$(printf '%s\n' "${native[@]}" | median)
	m0=$(printf '%s\n' "${native0[@]}" | median)
	mb=$(printf '%s\n' "${bunker[@]}" | median)

	echo "== postgres: dedup after 1% of rows changed"
	local first second third rows
	rows=$((PG_SCALE * 100000))
	first=$("$BUNKER" -r "$WORK/repo" --json backup postgres --database bench --no-globals | json_field bytes_added)
	"$bin/psql" $pg -qc "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= $((rows / 100))" bench
	second=$("$BUNKER" -r "$WORK/repo" --json backup postgres --database bench --no-globals | json_field bytes_added)
	"$bin/psql" $pg -qc "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 42" bench
	third=$("$BUNKER" -r "$WORK/repo" --json backup postgres --database bench --no-globals | json_field bytes_added)
	{
		echo "## PostgreSQL $("$bin/postgres" --version | awk '{print $3}'): pgbench scale $PG_SCALE, database $(mib "$dbsize") MiB"
		echo
		echo "| | median of $ROUNDS (s) | output | vs \`pg_dump -Fc > file\` |"
		echo "|---|---:|---:|---:|"
		echo "| \`pg_dump -Fc -f file\` (native, zlib) | $mn | $(mib "$dumpsize") MiB file | 1.00 |"
		echo "| \`pg_dump -Fc -Z0 -f file\` (native, uncompressed) | $m0 | $(mib "$dump0size") MiB file | $(ratio "$m0" "$mn") |"
		echo "| \`bunker backup postgres\` (encrypted repository) | $mb | $(mib "$repo") MiB repository | $(ratio "$mb" "$mn") |"
		echo
		echo "Rounds (s): native ${native[*]}; -Z0 ${native0[*]}; bunker ${bunker[*]}."
		echo
		echo "Dedup, same repository: a backup of the unchanged database added $(mib "$first") MiB;"
		echo "after 1% of pgbench_accounts rows changed in one key range (aid ≤ $((rows / 100))): $(mib "$second") MiB"
		echo "($(echo "scale=2; 100 * $second / $dump0size" | bc)% of the $(mib "$dump0size") MiB dump);"
		echo "after 1% changed spread evenly over the table (aid % 100 = 42): $(mib "$third") MiB"
		echo "($(echo "scale=2; 100 * $third / $dump0size" | bc)%: updated rows move, so every chunk of the table's dump changes)."
		echo
	} >>"$OUT"
}

# ---------------------------------------------------------------- mariadb
bench_mariadb() {
	command -v mariadbd >/dev/null || { echo "mariadb: not installed (scripts/tools.sh mariadb)" >&2; return 0; }
	local D="$WORK/my" port
	port=$(free_port)
	mkdir -p "$D" && chown mysql: "$D"
	runuser -u mysql -- mariadb-install-db --no-defaults --datadir="$D/data" --auth-root-authentication-method=normal \
		--skip-test-db --skip-name-resolve >/dev/null
	runuser -u mysql -- mariadbd --no-defaults --datadir="$D/data" --socket="$D/s.sock" --port="$port" --bind-address=127.0.0.1 \
		--pid-file="$D/pid" --log-error="$D/err.log" --log-bin="$D/data/binlog" --server-id=1 --binlog-format=ROW \
		--innodb-buffer-pool-size=512M --skip-name-resolve &
	local pid=$!
	trap 'mariadb-admin --no-defaults -S "$D/s.sock" -uroot shutdown 2>/dev/null || kill $pid; wait $pid 2>/dev/null || true' RETURN
	for _ in $(seq 100); do mariadb-admin --no-defaults -S "$D/s.sock" -uroot ping >/dev/null 2>&1 && break; sleep 0.1; done
	local my=(mariadb --no-defaults -S "$D/s.sock" -uroot)
	"${my[@]}" -e "ALTER USER root@localhost IDENTIFIED BY 'bench'; CREATE USER IF NOT EXISTS root@'127.0.0.1'; ALTER USER root@'127.0.0.1' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION"
	my=(mariadb --no-defaults -S "$D/s.sock" -uroot -pbench)
	echo "== mariadb: $MY_ROWS rows"
	"${my[@]}" -e "CREATE DATABASE bench; USE bench; CREATE TABLE bench.t (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60)) ENGINE=InnoDB;
		INSERT INTO bench.t SELECT seq, seq * 7 % 100003, md5(seq), sha1(seq) FROM seq_1_to_$MY_ROWS"
	local dbsize
	dbsize=$("${my[@]}" -Ne "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'bench'")
	export BUNKER_MYSQL_DSN="mysql://root:bench@127.0.0.1:$port/"
	local native=() bunker=() dumpsize=0 repo=0 t0
	for i in $(seq 1 "$ROUNDS"); do
		rm -f "$WORK/native.sql"
		sync
		t0=$(now); mariadb-dump --no-defaults -S "$D/s.sock" -uroot -pbench --single-transaction --routines --events --triggers --databases bench >"$WORK/native.sql"; sync "$WORK/native.sql"; native+=("$(elapsed "$t0" "$(now)")")
		dumpsize=$(size "$WORK/native.sql")
		rm -rf "$WORK/repo" && "$BUNKER" -r "$WORK/repo" init >/dev/null
		sync
		t0=$(now); "$BUNKER" -r "$WORK/repo" -q backup mysql --database bench --no-users; bunker+=("$(elapsed "$t0" "$(now)")")
		repo=$(size "$WORK/repo")
		echo "   round $i: mariadb-dump ${native[-1]} s, bunker ${bunker[-1]} s"
	done
	rm -f "$WORK/native.sql"
	local mn mb first second
	mn=$(printf '%s\n' "${native[@]}" | median)
	mb=$(printf '%s\n' "${bunker[@]}" | median)
	first=$("$BUNKER" -r "$WORK/repo" --json backup mysql --database bench --no-users | json_field bytes_added)
	"${my[@]}" -e "UPDATE bench.t SET k = k + 1 WHERE id <= $((MY_ROWS / 100))"
	second=$("$BUNKER" -r "$WORK/repo" --json backup mysql --database bench --no-users | json_field bytes_added)
	{
		echo "## MariaDB $("${my[@]}" -Ne 'SELECT VERSION()'): one InnoDB table, $MY_ROWS rows, $(mib "$dbsize") MiB"
		echo
		echo "| | median of $ROUNDS (s) | output | vs \`mariadb-dump > file\` |"
		echo "|---|---:|---:|---:|"
		echo "| \`mariadb-dump --single-transaction … > file\` (native) | $mn | $(mib "$dumpsize") MiB file | 1.00 |"
		echo "| \`bunker backup mysql\` (encrypted repository) | $mb | $(mib "$repo") MiB repository | $(ratio "$mb" "$mn") |"
		echo
		echo "Rounds (s): native ${native[*]}; bunker ${bunker[*]}."
		echo
		echo "Dedup: unchanged database added $(mib "$first") MiB; after 1% of rows changed (id ≤ $((MY_ROWS / 100))): $(mib "$second") MiB."
		echo
	} >>"$OUT"
}

for db in $DBS; do
	case $db in
	postgres) bench_postgres ;;
	mariadb) bench_mariadb ;;
	*) echo "unknown database $db" >&2; exit 2 ;;
	esac
done
# The servers' data directories and the repositories are gigabytes.
rm -rf "$WORK"
echo "results: $OUT"
cat "$OUT"
