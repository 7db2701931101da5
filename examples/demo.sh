#!/usr/bin/env bash
# The classic GlusterFS-on-Kubernetes demo, done for real with aplo on this
# machine: Kubernetes v1.34.4 built from source (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd and a kubelet), three
# gluster nodes in network and mount namespaces with loop-device bricks, and
# aplo's provisioner and CSI node plugin. A StorageClass and a PVC go in with
# kubectl; the class's policies decide; a real gluster volume is created and
# bound; a web-server pod mounts it through the kubelet and aplo; "I love
# GlusterFS!" goes into the volume and curl to the pod returns it. Then the
# pod and the claim are deleted and the volume is gone.
#
#   ./examples/demo.sh                               replica 3 across three zones
#   ./examples/demo.sh --param classes.class=arbiter any StorageClass parameter
#   ./examples/demo.sh --keep                        keep it up; prints kubectl commands
#
# The first run builds Kubernetes and etcd from the Go module proxy (about 10
# minutes on 2 cores, once; cached in ~/.cache/aplo-peers) and aplo (several
# minutes, once). Later runs start in seconds. It installs what a fresh Debian
# machine lacks. It needs root; without it, it says what it needs and shows
# the policy half.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  need=()
  command -v glusterd >/dev/null || need+=(glusterfs-server)
  command -v mount.glusterfs >/dev/null || need+=(glusterfs-client)
  command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
  command -v losetup >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  test -x /usr/lib/cni/loopback || need+=(containernetworking-plugins)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  command -v go >/dev/null || { echo "demo.sh: Go is needed to build Kubernetes from the Go module proxy (install Go 1.24 or later)" >&2; exit 1; }
  echo "== Kubernetes v1.34.4 and etcd v3.6.4 (built from source on the first run: about 10 minutes on 2 cores; cached after)"
  ./tests/k8s/build.sh >/dev/null
fi
rustup target add wasm32-wasip2 >/dev/null
echo "== building aplo (the first build compiles wasmtime: several minutes)"
cargo build --quiet --locked -p aplo --bin aplo -p aplo-e2e --bin aplo-demo
target=${CARGO_TARGET_DIR:-target}
exec "$target/debug/aplo-demo" --aplo "$target/debug/aplo" "$@"
