# MariaDB server, client tools and mariadb-backup (Debian packages
# mariadb-server, mariadb-client, mariadb-backup) for the MySQL/MariaDB
# source tests (internal/cli/mysql_test.go, servers started by
# internal/testsrv/mariadb.go). Only the binaries are needed: no service is
# enabled or started. Installed with apt when mariadbd is missing and we
# run as root; otherwise it says what to install. Sourced by
# scripts/tools.sh.
install_mariadb() {
	if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
		if command -v mariadb-backup >/dev/null 2>&1; then
			return 0
		fi
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "mariadb: mariadbd or mariadb-backup is missing; install mariadb-server mariadb-backup (apt-get install mariadb-server mariadb-backup)" >&2
		return 1
	fi
	echo "== installing mariadb-server mariadb-backup (apt)"
	apt-get update -qq
	# policy-rc.d 101 keeps the package scripts from starting the service
	# on machines where invoke-rc.d would run it.
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		mariadb-server mariadb-client mariadb-backup >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ] || [ ! -x /usr/sbin/mariadbd ]; then
		echo "mariadb: installing mariadb-server mariadb-backup failed (apt-get exit $rc)" >&2
		return 1
	fi
}
install_mariadb
