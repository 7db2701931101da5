#!/usr/bin/env bash
# Set up and run aplo's main job on the embedded example topology: the
# default policies decide the durability and placement of a 10Gi claim.
# (The storage engine and the Kubernetes provisioner grow this into the full
# GlusterFS demo in later issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
cargo run --quiet --locked -p aplo -- demo "$@"
