# FerretDB: a MongoDB-compatible server (wire protocol, SQLite storage), the
# server the MongoDB source tests run against. Sourced by scripts/tools.sh.
# A plain `go install` builds a binary that panics on start (its version
# comes from build/version/version.txt, which the module zip leaves
# empty), so it is built from a writable copy of the module source with
# that file written. Cold build ~2 min, ~45 MB.
FERRETDB_VERSION=v1.24.2
install_ferretdb() {
	local dir="$BUNKER_TOOLS/ferretdb-$FERRETDB_VERSION"
	[ -x "$dir/ferretdb" ] && return 0
	echo "== building ferretdb $FERRETDB_VERSION"
	local tmp="$dir.tmp.$$" src
	rm -rf "$tmp"; mkdir -p "$tmp"
	src=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$src" ] || [ ! -d "$src" ]; then
		rm -rf "$tmp"
		echo "ferretdb: go mod download github.com/FerretDB/FerretDB@$FERRETDB_VERSION failed" >&2
		return 1
	fi
	cp -R "$src" "$tmp/src"
	chmod -R u+w "$tmp/src"
	echo "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
	if ! (cd "$tmp/src" && GOFLAGS=-mod=mod go build -o "$tmp/ferretdb" ./cmd/ferretdb); then
		rm -rf "$tmp"
		echo "ferretdb: go build failed" >&2
		return 1
	fi
	rm -rf "$tmp/src"
	rm -rf "$dir"; mv "$tmp" "$dir"
}
install_ferretdb
