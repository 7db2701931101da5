#!/usr/bin/env bash
# Run aplo's whole test suite: host unit and integration tests (sandbox,
# registry, golden cases through the sandbox, engine, CLI), end-to-end and
# crash-recovery tests on a real three-node gluster cluster, the CSI driver
# (its node and controller services, and csi-sanity, the Kubernetes CSI
# conformance suite built from the Go module proxy), a real Kubernetes
# built from source (the classic flow from PVC to curl, the node plugin
# DaemonSet surviving its restart, the admission webhook called by the API
# server), the provisioner, leader election, events, metrics and RBAC
# against that real control plane (and on the gluster cluster), the
# deploy manifests (rendered with kubectl, validated with kubernetes-validate
# from PyPI in a venv under target/), the policies' native golden tests,
# every bundled policy's golden cases through `aplo policy test`, and the
# README's demo. Installs what a fresh machine lacks: the wasm32-wasip2
# target, lvm2, glusterfs-server, glusterfs-client, xfsprogs,
# openssh-server (the ssh transport is tested against a real sshd the test
# starts on 127.0.0.1) and python3-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null

# The LVM and gluster tests run the real tools (as root, like CI): lvm2 on
# loop devices, and a glusterd the test starts and stops.
# The Kubernetes node runs Debian's containerd and runc; the images are
# built from Debian packages (mmdebstrap, busybox-static via apt-get
# download).
if ! command -v pvcreate >/dev/null || ! command -v glusterd >/dev/null || ! command -v mkfs.xfs >/dev/null || ! command -v mount.glusterfs >/dev/null || ! test -x /usr/sbin/sshd || ! python3 -c 'import venv, ensurepip' 2>/dev/null || ! command -v containerd >/dev/null || ! command -v runc >/dev/null || ! test -x /usr/lib/cni/loopback || ! command -v mmdebstrap >/dev/null || ! command -v curl >/dev/null; then
  echo "== installing lvm2, glusterfs-server, xfsprogs, openssh-server, python3-venv, containerd, runc, containernetworking-plugins and mmdebstrap from Debian (the tests run the real tools)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lvm2 glusterfs-server glusterfs-client xfsprogs python3-venv openssh-server containerd runc containernetworking-plugins mmdebstrap curl >/dev/null
fi
# Go builds the upstream test peers from source (csi-sanity, Kubernetes
# v1.34.4 and etcd), cached outside the repository by version
# (tests/src/peers.rs, tests/k8s/build.sh; about 10 minutes the first time).
command -v go >/dev/null || { echo "go is needed to build csi-sanity, Kubernetes and etcd from the Go module proxy (this machine kind ships Go 1.26)"; exit 1; }
echo "== the Kubernetes test peers (built once, then cached)"
./tests/k8s/build.sh
command -v kubectl >/dev/null || { echo "kubectl is needed to render deploy/ (it ships on these machines; Debian's is too old)"; exit 1; }
export LVM_SUPPRESS_FD_WARNINGS=1

# cargo-fuzz, pinned and built once into a cache outside the repository
# keyed by its version (as tests/k8s/build.sh caches the Go peers).
CARGO_FUZZ_VERSION=0.13.2
cargo_fuzz_root=${APLO_TOOLS_CACHE:-${HOME:-/root}/.cache/aplo-tools}/cargo-fuzz-$CARGO_FUZZ_VERSION
if ! test -x "$cargo_fuzz_root/bin/cargo-fuzz"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $cargo_fuzz_root (once)"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$cargo_fuzz_root"
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install --profile minimal nightly

echo "== fuzz targets (host/fuzz), 30 s each"
# Each target starts from its committed seeds (host/fuzz/corpus/<target>)
# and writes what it finds to a corpus under target/, not into the repo;
# a crash leaves its input in target/fuzz/artifacts/<target>/ and fails.
# The sanitizer build (about 10 minutes cold, for dependencies that never
# change between runs) is kept in a cache outside the repository; cargo's
# fingerprints rebuild whatever the checkout changed.
fuzz_runs=$PWD/target/fuzz
fuzz_build_dir=${APLO_FUZZ_TARGET_DIR:-${APLO_TOOLS_CACHE:-${HOME:-/root}/.cache/aplo-tools}/fuzz-target}
policies_toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
for target in quantity topology admission_review heketi_bodies; do
  mkdir -p "$fuzz_runs/corpus/$target" "$fuzz_runs/artifacts/$target"
  # The bundled policies the host embeds are built with the toolchain the
  # rest of the suite uses (it has the Wasm target; nightly need not).
  PATH="$cargo_fuzz_root/bin:$PATH" APLO_POLICIES_TOOLCHAIN=$policies_toolchain \
    cargo +nightly fuzz run --fuzz-dir host/fuzz --target-dir "$fuzz_build_dir" "$target" \
      "$fuzz_runs/corpus/$target" "host/fuzz/corpus/$target" -- \
      -max_total_time=30 -artifact_prefix="$fuzz_runs/artifacts/$target/"
done

echo "== host workspace: unit, integration, golden-in-sandbox and CLI tests"
cargo test --workspace --all-targets --locked

echo "== policies workspace: native golden tests and SDK unit tests"
(cd policies && cargo test --workspace --locked --features aplo-policy-sdk/testing)

echo "== the example policy from the walk-through, built and tested in the sandbox"
(cd examples/custom-policy && cargo build --quiet --locked --release --target wasm32-wasip2 && \
  cargo run --quiet --locked --manifest-path ../../Cargo.toml -p aplo -- policy test .)

echo "== the placement walk-through's policy: a case generated, built, tested in the sandbox and simulated"
# Step 6: `aplo policy case` on the simulation's topology writes exactly
# the input the walk-through committed (ids derived from names, stable).
# The simulation is step 7: the module goes into a policy directory as
# rack-aware.wasm, and `--layouts --by-tag rack` must name the three racks
# (in the layouts and in the usage per rack).
(cd examples/placement-policy && policies=$(mktemp -d) && \
  cargo run --quiet --locked --manifest-path ../../Cargo.toml -p aplo -- policy case \
    --topology simulate/topology.yaml --size 10Gi --durability "replica 3" --out "$policies/generated" && \
  { diff -u tests/from-the-topology-file/input.json "$policies/generated/input.json" ||
    { echo "aplo policy case no longer writes the walk-through's case"; exit 1; }; } && \
  cargo build --quiet --locked --release --target wasm32-wasip2 && \
  cargo run --quiet --locked --manifest-path ../../Cargo.toml -p aplo -- policy test . && \
  cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/rack_aware.wasm" "$policies/rack-aware.wasm" && \
  cargo run --quiet --locked --manifest-path ../../Cargo.toml -p aplo -- simulate \
    --policy-dir "$policies" --placement rack-aware \
    --topology simulate/topology.yaml --workload simulate/workload.yaml \
    --layouts --by-tag rack >"$policies/simulate.txt" && \
  for rack in r1 r2 r3; do
    grep -q "rack=$rack data" "$policies/simulate.txt" && grep -q "^  $rack: .* device(s), " "$policies/simulate.txt" ||
      { cat "$policies/simulate.txt"; echo "aplo simulate --by-tag rack does not name rack $rack"; exit 1; }
  done && \
  APLO_RACK_AWARE_WASM="$policies/rack-aware.wasm" \
    cargo test --quiet --locked --manifest-path ../../Cargo.toml -p aplo --test cli simulate_with_the_rack_aware_module -- --ignored && \
  rm -r "$policies")

echo "== bundled policies through the aplo CLI"
cargo run --quiet --locked -p aplo -- policy test --bundled

echo "== the README's first command: the storage demo on three local gluster nodes"
./examples/demo.sh
