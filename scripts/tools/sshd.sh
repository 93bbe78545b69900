# OpenSSH sshd (Debian package openssh-server) for the SFTP backend tests
# (internal/storage/sftp, started by internal/testsrv/sshd.go). Only the
# binary is needed: no service is enabled or started. Installed with apt
# when /usr/sbin/sshd is missing and we run as root; otherwise it says what
# to install. Sourced by scripts/tools.sh.
install_sshd() {
	[ -x /usr/sbin/sshd ] && return 0
	apt_install sshd openssh-server || return 1
	[ -x /usr/sbin/sshd ] || { echo "sshd: /usr/sbin/sshd still missing" >&2; return 1; }
}
install_sshd
