#!/bin/sh
# Build the Kubernetes test peers from the Go module proxy into a cache
# outside the repository, keyed by version, and rebuild only what is
# missing: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# and kubectl from k8s.io/kubernetes (through the wrapper module next to this
# script), and etcd (through etcd/). Prints the directory of each.
#
#   tests/k8s/build.sh            build what is missing
#   APLO_PEERS_CACHE=dir ...      cache somewhere else (default ~/.cache/aplo-peers)
#
# The first build takes about 10 minutes on 2 cores with a warm module
# download (measured: see tests/README.md); later runs return at once.
set -eu

KUBERNETES=v1.34.4
ETCD=v3.6.4
here=$(cd "$(dirname "$0")" && pwd)
cache=${APLO_PEERS_CACHE:-${HOME:-/root}/.cache/aplo-peers}

command -v go >/dev/null || {
	echo "build.sh: Go is missing; this machine kind has Go 1.26 and the module proxy (or set APLO_PEERS_CACHE to a cache holding kubernetes-$KUBERNETES/ and etcd-$ETCD/)" >&2
	exit 1
}

# build MODULE_DIR OUT_DIR LDFLAGS NAME=PACKAGE...
build() {
	module=$1 out=$2 ldflags=$3
	shift 3
	missing=
	for pair in "$@"; do
		[ -x "$out/${pair%%=*}" ] || missing="$missing $pair"
	done
	[ -n "$missing" ] || return 0
	mkdir -p "$out"
	for pair in $missing; do
		name=${pair%%=*} package=${pair#*=}
		start=$(date +%s)
		echo "build.sh: building $name into $out (once; the first Kubernetes binary takes the longest)" >&2
		# Into a temporary name first: an interrupted build leaves no
		# binary that looks whole.
		(cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$name.part" "$package")
		mv "$out/.$name.part" "$out/$name"
		echo "build.sh: $name built in $(($(date +%s) - start)) s" >&2
	done
}

minor=${KUBERNETES#v1.}
minor=${minor%%.*}
build "$here" "$cache/kubernetes-$KUBERNETES" \
	"-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
	kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
	kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
	kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
	kubelet=k8s.io/kubernetes/cmd/kubelet \
	kubectl=k8s.io/kubernetes/cmd/kubectl
# etcd's package main is the module root.
build "$here/etcd" "$cache/etcd-$ETCD" "-s -w" etcd=go.etcd.io/etcd/server/v3
echo "$cache/kubernetes-$KUBERNETES"
echo "$cache/etcd-$ETCD"
