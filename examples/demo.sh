#!/usr/bin/env bash
# The classic GlusterFS demo, done with aplo: three gluster nodes in network
# and mount namespaces on this machine, an example topology, a replica-3
# volume created through the default policies on real loop bricks (sparse
# file, loop device, XFS), FUSE-mounted, "I love GlusterFS!" written and
# read back, then everything torn down. `--keep` keeps it up until Ctrl-C;
# `--param classes.class=arbiter` (or any StorageClass parameter) changes a
# decision.
#
# It installs what a fresh Debian machine lacks. The storage demo needs
# root; without it, the policy half runs (the default policies decide a
# volume on an embedded example topology).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  need=()
  command -v glusterd >/dev/null || need+=(glusterfs-server)
  command -v mount.glusterfs >/dev/null || need+=(glusterfs-client)
  command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
  command -v losetup >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
rustup target add wasm32-wasip2 >/dev/null
echo "== building aplo (the first build compiles wasmtime: several minutes)"
cargo build --quiet --locked -p aplo-e2e --bin aplo-demo
exec ./target/debug/aplo-demo "$@"
