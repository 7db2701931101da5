//! Upstream programs the tests run against, built from source with the Go
//! toolchain and the Go module proxy, and cached outside the repository,
//! keyed by version, so that later runs (and CI on the same machine) reuse
//! them.

use std::path::PathBuf;
use std::process::Command;

/// csi-sanity, the Kubernetes project's CSI conformance suite.
pub const CSI_SANITY: (&str, &str) = (
    "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity",
    "v5.4.0",
);

/// Where built peers are kept: `$APLO_PEERS_CACHE`, else
/// `~/.cache/aplo-peers`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("APLO_PEERS_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/aplo-peers")
}

/// The binary of `module@version` (its last path element), built with `go
/// install` on first use. Panics, saying what is missing, when it cannot
/// be built: a test that needs it must not pass without it.
pub fn go_binary((module, version): (&str, &str)) -> PathBuf {
    let name = module.rsplit('/').next().expect("a module path");
    let dir = cache_dir().join(format!("{name}-{version}"));
    let binary = dir.join(name);
    if binary.is_file() {
        return binary;
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
    eprintln!(
        "building {module}@{version} with go into {} (once)",
        dir.display()
    );
    let status = Command::new("go")
        .args(["install", &format!("{module}@{version}")])
        .env("GOBIN", &dir)
        .env("CGO_ENABLED", "0")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `go` to build {module}@{version}: {e}; this machine kind has Go 1.26 and the module proxy (install Go, or set APLO_PEERS_CACHE to a directory holding {name}-{version}/{name})")
        });
    assert!(
        status.success(),
        "go install {module}@{version} failed: {status}"
    );
    assert!(
        binary.is_file(),
        "go install did not leave {}",
        binary.display()
    );
    binary
}
