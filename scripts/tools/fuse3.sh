# fusermount3 (Debian package fuse3) for the FUSE mount tests
# (internal/engine/fusefs, internal/cli's mount test): go-fuse mounts and
# unmounts through it when not root, and as a fallback for root. Installed
# with apt when missing and we run as root; otherwise it says what to
# install. Sourced by scripts/tools.sh.
install_fuse3() {
	command -v fusermount3 >/dev/null && return 0
	apt_install fusermount3 fuse3 || return 1
	command -v fusermount3 >/dev/null || { echo "fuse3: fusermount3 still missing" >&2; return 1; }
}
install_fuse3
