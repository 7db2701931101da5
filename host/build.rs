//! Builds the bundled default policies (and the hostile test guest) for
//! `wasm32-wasip2` from the `policies/` workspace, so that the `aplo`
//! binary embeds them and the tests can load them.
//!
//! The nested build uses its own target directory (`target/wasm-policies`)
//! and a clean environment, so it never contends with the outer cargo.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates built and embedded, as (policy name, crate's file stem).
const BUNDLED: [(&str, &str); 5] = [
    ("zone-spread", "zone_spread"),
    ("binpack", "binpack"),
    ("classes", "classes"),
    ("requested", "requested"),
    ("namespace-quota", "namespace_quota"),
];

fn main() {
    compile_csi();
    compile_plugin_registration();
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ sits in the repository")
        .to_path_buf();
    let policies = root.join("policies");
    watch(&policies, &root);

    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-policies");
    // APLO_POLICIES_TOOLCHAIN builds the policies with another rustup
    // toolchain than the outer build's: the fuzz targets build the host
    // with nightly, which need not have the Wasm target.
    println!("cargo:rerun-if-env-changed=APLO_POLICIES_TOOLCHAIN");
    let toolchain = env::var_os("APLO_POLICIES_TOOLCHAIN");
    let cargo = match toolchain {
        Some(_) => "cargo".into(),
        None => env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
    };
    let mut command = Command::new(cargo);
    command
        .current_dir(&policies)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--workspace",
            "--target-dir",
        ])
        .arg(&target);
    // The outer build's CARGO_*/RUSTFLAGS settings are for the host target.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.contains("RUSTFLAGS")
        {
            command.env_remove(key.as_ref());
        }
    }
    if let Some(toolchain) = toolchain {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    let status = command
        .status()
        .expect("run cargo for the policies workspace");
    assert!(
        status.success(),
        "building the bundled policies failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let out = target.join("wasm32-wasip2").join("release");
    for (name, stem) in BUNDLED {
        let wasm = out.join(format!("{stem}.wasm"));
        assert!(
            wasm.is_file(),
            "policy {name} was not built at {}",
            wasm.display()
        );
        println!(
            "cargo:rustc-env=APLO_BUNDLED_{}={}",
            stem.to_uppercase(),
            wasm.display()
        );
    }
    println!(
        "cargo:rustc-env=APLO_HOSTILE_WASM={}",
        out.join("hostile.wasm").display()
    );
    println!("cargo:rustc-env=APLO_POLICIES_DIR={}", policies.display());
}

/// Rebuild when policy sources, manifests or the WIT package change (not on
/// `tests/` changes: golden cases are data read at test time).
fn watch(policies: &Path, root: &Path) {
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for file in ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", policies.join(file).display());
    }
    let crates = [
        "sdk",
        "types",
        "zone-spread",
        "binpack",
        "classes",
        "namespace-quota",
        "testing/hostile",
    ];
    for krate in crates {
        let dir = policies.join(krate);
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        if dir.join("build.rs").exists() {
            println!("cargo:rerun-if-changed={}", dir.join("build.rs").display());
        }
    }
}

/// Generate the CSI gRPC server and client from the vendored `csi.proto`
/// (spec v1.12.0) with protox, a protobuf compiler written in Rust, which
/// also supplies the well-known `google/protobuf` files it imports.
fn compile_csi() {
    let dir = Path::new("proto/csi");
    println!("cargo:rerun-if-changed={}", dir.join("csi.proto").display());
    let files = protox::compile(["csi.proto"], [dir]).expect("csi.proto compiles");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)
        .expect("the CSI bindings are generated");
}

/// Generate kubelet's plugin registration service (the vendored
/// `pluginregistration/api.proto`, kubelet v1), which the node plugin
/// serves so that kubelet finds it.
fn compile_plugin_registration() {
    let dir = Path::new("proto/pluginregistration");
    println!("cargo:rerun-if-changed={}", dir.join("api.proto").display());
    let files = protox::compile(["api.proto"], [dir]).expect("api.proto compiles");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)
        .expect("the plugin registration bindings are generated");
}
