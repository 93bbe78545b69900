# Azurite (Azure Storage emulator, blob service only is used) from npm into
# $BUNKER_TOOLS/azurite-3.35.0/; the tests run
# azurite-3.35.0/node_modules/.bin/azurite-blob. Pinned to 3.35.0: newer
# releases need Node 22. Tested with Node 20; Debian bookworm's own nodejs
# (18, installed below when npm is missing) was not tried.
# Sourced by scripts/tools.sh.
install_azurite() {
	local version=3.35.0 dir="$BUNKER_TOOLS/azurite-3.35.0"
	[ -x "$dir/node_modules/.bin/azurite-blob" ] && return 0
	if ! command -v npm >/dev/null 2>&1; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "azurite: npm is missing; install nodejs and npm (apt-get install nodejs npm)" >&2
			return 1
		fi
		echo "== installing nodejs npm (apt)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
	fi
	echo "== installing azurite $version (npm)"
	local tmp="$dir.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	(cd "$tmp" && npm install --no-audit --no-fund --loglevel=error --prefix "$tmp" "azurite@$version")
	[ -x "$tmp/node_modules/.bin/azurite-blob" ] || { echo "azurite: azurite-blob missing after npm install" >&2; return 1; }
	rm -rf "$dir"; mv "$tmp" "$dir"
}
install_azurite
