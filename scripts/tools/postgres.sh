# PostgreSQL server and client programs (Debian package postgresql) for the
# database tests (internal/e2e/postgres_test.go, started by
# internal/testsrv/postgres.go as the postgres user). Only the binaries are
# needed: the package's own cluster is not started (policy-rc.d) and tests
# run initdb in temporary directories. Sourced by scripts/tools.sh.
install_postgres() {
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "postgres: no /usr/lib/postgresql/*/bin/initdb; install postgresql (apt-get install postgresql)" >&2
		return 1
	fi
	echo "== installing postgresql (apt)"
	apt-get update -qq
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		echo "postgres: installing postgresql failed (apt-get exit $rc)" >&2
		return 1
	fi
}
install_postgres
