#!/bin/sh
# Time to first answer: a new policy crate, made as this folder's README
# says (outside the checkout, nothing built), until `aplo policy test`
# passes on its golden cases. docs/benchmarks.md has the figures.
#
#   first-answer.sh before
#       the walk-through as it was: the crate's own target/, a wasm
#       release build, the native `cargo test`, then `aplo policy test .`
#   first-answer.sh after [TARGET_DIR]
#       the walk-through now: this folder's Cargo.lock copied in,
#       CARGO_TARGET_DIR=TARGET_DIR (a target directory shared by all your
#       policy crates; a new empty one when not given), the wasm release
#       build, then `aplo policy test .`
#
# APLO names the aplo binary (default: `aplo` on PATH). Time it with any
# timer, e.g. `/usr/bin/time -v sh first-answer.sh after`. To time a second
# crate, build once into a directory, then time `after DIR` again:
#
#   shared=$(mktemp -d); sh first-answer.sh after "$shared"
#   /usr/bin/time -v sh first-answer.sh after "$shared"
set -eu

mode=${1:?usage: first-answer.sh before|after [TARGET_DIR]}
aplo=${APLO:-aplo}
example=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$example/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Create the crate (README step 1), with the Cargo.toml the README
# shows, `<aplo>` being this checkout; the code and the golden cases are
# this folder's, as an author would have typed them.
cd "$work"
cargo new --lib --vcs none --quiet rack-aware
cd rack-aware
cat >Cargo.toml <<EOF
[package]
name = "rack-aware"
version = "0.1.0"
edition = "2024"

[workspace]

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
aplo-policy-sdk = { path = "$checkout/policies/sdk" }

[dev-dependencies]
aplo-policy-sdk = { path = "$checkout/policies/sdk", features = ["testing"] }
EOF
cp "$example/src/lib.rs" src/lib.rs
cp -R "$example/tests" tests

# 2. Build and test, as the walk-through says.
case $mode in
before)
    unset CARGO_TARGET_DIR
    cargo build --quiet --target wasm32-wasip2 --release
    cargo test --quiet
    ;;
after)
    cp "$example/Cargo.lock" Cargo.lock
    CARGO_TARGET_DIR=${2:-$work/target}
    export CARGO_TARGET_DIR
    cargo build --quiet --target wasm32-wasip2 --release
    ;;
*)
    echo "first-answer.sh: before or after, not '$mode'" >&2
    exit 2
    ;;
esac
"$aplo" policy test . --cache-dir "$work/cache"
