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

# apt_install NAME PACKAGE...: install Debian packages for a test tool,
# without starting any service they bring (policy-rc.d 101). Needs root;
# otherwise it says what to install and fails.
apt_install() {
	local name=$1
	shift
	if [ "$(id -u)" -ne 0 ]; then
		echo "$name: missing; install $* (apt-get install $*)" >&2
		return 1
	fi
	echo "== installing $* (apt)"
	apt-get update -qq
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	if [ "$rc" -ne 0 ]; then
		echo "$name: installing $* failed (apt-get exit $rc)" >&2
		return 1
	fi
}

if [ $# -eq 0 ]; then
	set -- $(cd scripts/tools && ls *.sh | sed 's/\.sh$//')
fi
for t in "$@"; do
	# shellcheck source=/dev/null
	. "scripts/tools/$t.sh"
done
