# MariaDB server, client tools and mariadb-backup (Debian packages
# mariadb-server, mariadb-client, mariadb-backup) for the MySQL/MariaDB
# source tests (internal/cli/mysql_test.go, servers started by
# internal/testsrv/mariadb.go). Only the binaries are needed: no service is
# enabled or started. Installed with apt when mariadbd is missing and we
# run as root; otherwise it says what to install. Sourced by
# scripts/tools.sh.
install_mariadb() {
	if { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } && command -v mariadb-backup >/dev/null 2>&1; then
		return 0
	fi
	apt_install mariadb mariadb-server mariadb-client mariadb-backup || return 1
	[ -x /usr/sbin/mariadbd ] || { echo "mariadb: /usr/sbin/mariadbd still missing" >&2; return 1; }
}
install_mariadb
