#!/usr/bin/env bash
# Installs the servers and peer tools the tests run against into the tool
# cache, .cache/tools/<name>-<version>/ (override with BUNKER_TOOLS), one
# script per tool in scripts/tools/. Each is skipped when its versioned
# directory is already there, so a warm run costs nothing.
# Usage: scripts/tools.sh [name...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export BUNKER_TOOLS="${BUNKER_TOOLS:-$PWD/.cache/tools}"
mkdir -p "$BUNKER_TOOLS"

# install_go NAME VERSION PACKAGE@VERSION: go install into the cache.
install_go() {
	local name=$1 version=$2 pkg=$3 dir="$BUNKER_TOOLS/$1-$2"
	[ -x "$dir/$name" ] && return 0
	echo "== building $name $version"
	local tmp="$dir.tmp.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	if ! GOFLAGS= GOBIN="$tmp" go install "$pkg"; then
		rm -rf "$tmp"
		echo "$name: go install $pkg failed" >&2
		return 1
	fi
	[ -x "$tmp/$name" ] || mv "$tmp"/* "$tmp/$name"
	rm -rf "$dir"; mv "$tmp" "$dir"
}

if [ $# -eq 0 ]; then
	set -- $(cd scripts/tools && ls *.sh | sed 's/\.sh$//')
fi
for t in "$@"; do
	# shellcheck source=/dev/null
	. "scripts/tools/$t.sh"
done
