# PostgreSQL server and client programs (Debian package postgresql) for the
# database tests (internal/e2e/postgres_test.go, started by
# internal/testsrv/postgres.go as the postgres user). Only the binaries are
# needed: the package's own cluster is not started (policy-rc.d) and tests
# run initdb in temporary directories. Sourced by scripts/tools.sh.
install_postgres() {
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
	apt_install postgres postgresql postgresql-contrib || return 1
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "postgres: initdb still missing" >&2; return 1; }
}
install_postgres
