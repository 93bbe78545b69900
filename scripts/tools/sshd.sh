# OpenSSH sshd (Debian package openssh-server) for the SFTP backend tests
# (internal/storage/sftp, started by internal/testsrv/sshd.go). Only the
# binary is needed: no service is enabled or started. Installed with apt
# when /usr/sbin/sshd is missing and we run as root; otherwise it says what
# to install. Sourced by scripts/tools.sh.
install_sshd() {
	[ -x /usr/sbin/sshd ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "sshd: /usr/sbin/sshd is missing; install openssh-server (apt-get install openssh-server)" >&2
		return 1
	fi
	echo "== installing openssh-server (apt)"
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
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ] || [ ! -x /usr/sbin/sshd ]; then
		echo "sshd: installing openssh-server failed (apt-get exit $rc)" >&2
		return 1
	fi
}
install_sshd
