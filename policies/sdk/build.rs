//! Writes the `export!` macro with the absolute path of the WIT package baked
//! in: wit-bindgen resolves a relative `path` against the crate that invokes
//! the macro (the policy), not against this SDK.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // Inside the repository the package lives in `wit/`; a published SDK
    // carries its own copy in `sdk/wit/`.
    let candidates = [manifest.join("../../wit/0.1.0"), manifest.join("wit/0.1.0")];
    let wit = candidates
        .iter()
        .find(|dir| dir.join("policy.wit").is_file())
        .unwrap_or_else(|| panic!("aplo-policy-sdk: no WIT package at {candidates:?}"))
        .canonicalize()
        .expect("WIT directory resolves");
    println!(
        "cargo:rerun-if-changed={}",
        wit.join("policy.wit").display()
    );
    let wit = wit.to_str().expect("WIT path is UTF-8");

    let template = include_str!("src/export_macro.rs.in");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(
        out.join("export_macro.rs"),
        template.replace("@WIT_DIR@", &format!("{wit:?}")),
    )
    .expect("write export_macro.rs");
    println!("cargo:rerun-if-changed=src/export_macro.rs.in");
}
