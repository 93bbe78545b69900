# etcd (Debian package etcd-server) and kube-apiserver, the API server the
# Kubernetes source and operator tests run against (internal/testsrv/kube.go).
# kube-apiserver is built from k8s.io/kubernetes in a throwaway tools module
# that requires it and maps each k8s.io module that its go.mod replaces with
# ./staging/... to the published v0.$minor.$patch release (the sample-*
# modules are not served and not needed). Cold build ~6 min, ~170 MB.
# Sourced by scripts/tools.sh.
KUBERNETES_VERSION=v1.37.2
install_etcd() {
	if command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; then
		return 0
	fi
	apt_install etcd etcd-server || return 1
}
install_kube_apiserver() {
	local dir="$BUNKER_TOOLS/kube-apiserver-$KUBERNETES_VERSION"
	[ -x "$dir/kube-apiserver" ] && return 0
	echo "== building kube-apiserver $KUBERNETES_VERSION (several minutes the first time)"
	local tmp="$dir.tmp.$$" staging="v0.${KUBERNETES_VERSION#v1.}" mods
	rm -rf "$tmp"; mkdir -p "$tmp/mod"
	mods=$(curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod" |
		sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' | grep -v '/sample-') || true
	if [ -z "$mods" ]; then
		rm -rf "$tmp"
		echo "kube-apiserver: cannot read k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod from the module proxy" >&2
		return 1
	fi
	{
		echo "module bunkertools/kube"
		echo "go 1.26"
		echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
		for m in $mods; do echo "replace $m => $m $staging"; done
	} >"$tmp/mod/go.mod"
	printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n' >"$tmp/mod/tools.go"
	if ! (cd "$tmp/mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 &&
		GOFLAGS=-mod=mod go build -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver); then
		rm -rf "$tmp"
		echo "kube-apiserver: go build failed" >&2
		return 1
	fi
	rm -rf "$tmp/mod"
	rm -rf "$dir"; mv "$tmp" "$dir"
}
install_etcd
install_kube_apiserver
