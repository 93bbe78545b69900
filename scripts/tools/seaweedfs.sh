# SeaweedFS: a distributed object store with an S3 gateway, versioning and
# Object Lock. Sourced by scripts/tools.sh. `go install` refuses its go.mod
# (it has a replace directive), so it is built from a small wrapper module
# that requires it and repeats the replace. Cold build ~10 min, ~230 MB.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
install_seaweedfs() {
	local dir="$BUNKER_TOOLS/seaweedfs-$SEAWEEDFS_VERSION"
	[ -x "$dir/weed" ] && return 0
	echo "== building seaweedfs $SEAWEEDFS_VERSION"
	local tmp="$dir.tmp.$$" mod
	rm -rf "$tmp"; mkdir -p "$tmp"
	mod=$(mktemp -d)
	cat >"$mod/go.mod" <<MOD
module bunker.local/seaweedfs-build

go 1.25

require github.com/seaweedfs/seaweedfs $SEAWEEDFS_VERSION

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
	cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
GO
	(
		cd "$mod"
		GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
		GOFLAGS=-mod=mod go get "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION"
		GOFLAGS=-mod=mod go build -o "$tmp/weed" github.com/seaweedfs/seaweedfs/weed
	)
	rm -rf "$mod"
	rm -rf "$dir"; mv "$tmp" "$dir"
}
install_seaweedfs
