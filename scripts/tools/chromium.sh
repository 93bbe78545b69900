# Chromium (Debian package chromium) for the dashboard test
# (internal/cli/dashboard_test.go drives it headless with chromedp). Only the
# browser binary is needed. Installed with apt when no chromium binary is on
# PATH and we run as root; otherwise it says what to install. Sourced by
# scripts/tools.sh; also runs on its own (bash scripts/tools/chromium.sh).
install_chromium() {
	local b
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	if [ "$(id -u)" -ne 0 ]; then
		echo "chromium: no chromium binary on PATH; install chromium (apt-get install chromium)" >&2
		return 1
	fi
	echo "== installing chromium (apt)"
	apt-get update -qq
	# policy-rc.d 101 keeps the package scripts from starting services
	# on machines where invoke-rc.d would run them.
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ] || ! command -v chromium >/dev/null 2>&1; then
		echo "chromium: installing chromium failed (apt-get exit $rc)" >&2
		return 1
	fi
}
install_chromium
