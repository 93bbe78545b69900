# Chromium (Debian package chromium) for the dashboard test
# (internal/cli/dashboard_test.go drives it headless with chromedp). Only the
# browser binary is needed. Installed with apt when no chromium binary is on
# PATH and we run as root; otherwise it says what to install. Sourced by
# scripts/tools.sh (scripts/tools.sh chromium installs only it).
install_chromium() {
	local b
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	apt_install chromium chromium || return 1
	command -v chromium >/dev/null 2>&1 || { echo "chromium: still missing" >&2; return 1; }
}
install_chromium
