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

/// The Kubernetes and etcd builds: `tests/k8s/build.sh` builds what is
/// missing (the versions are pinned there, once) and prints the two
/// directories.
pub struct KubernetesBuild {
    /// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
    /// kubectl.
    pub kubernetes: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

/// Build (once) and locate the Kubernetes peers. Panics, saying what is
/// missing, when they cannot be built.
pub fn kubernetes() -> KubernetesBuild {
    static BUILT: std::sync::OnceLock<Result<(PathBuf, PathBuf), String>> =
        std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/build.sh");
        let out = Command::new(&script)
            .env("APLO_PEERS_CACHE", cache_dir())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", script.display(), out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut dirs = text.lines().map(PathBuf::from);
        match (dirs.next(), dirs.next()) {
            (Some(kubernetes), Some(etcd)) => Ok((kubernetes, etcd)),
            _ => Err(format!(
                "{} printed no directories: {text}",
                script.display()
            )),
        }
    });
    match built {
        Ok((kubernetes, etcd)) => KubernetesBuild {
            kubernetes: kubernetes.clone(),
            etcd: etcd.clone(),
        },
        Err(e) => panic!("the Kubernetes peers cannot be built: {e}"),
    }
}

/// The test cluster's images as OCI archives (`tests/images/build.sh`,
/// rebuilt only when the recipe changes): the pod sandbox
/// (`aplo.test/pause:1`) and a web server (`aplo.test/web:1`, busybox
/// httpd serving `/srv/www` on `$PORT`, default 8080).
pub fn test_images() -> Vec<PathBuf> {
    let out = cache_dir().join("images");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build.sh");
    let status = Command::new(&script)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    vec![out.join("pause.tar"), out.join("web.tar")]
}

/// aplo's image (`ghcr.io/aplo-dev/aplo:0.1.0`, the name `deploy/base`
/// uses) with `binary` as its `aplo`, built by `deploy/image/build.sh` from
/// `deploy/image/Containerfile` as an OCI archive, cached by the binary's
/// and the recipe's hashes (a build takes about two minutes: mmdebstrap).
pub fn aplo_image(binary: &std::path::Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned();
    let image = repository.join("deploy/image");
    let mut hash = Sha256::new();
    for part in [
        binary.to_owned(),
        image.join("Containerfile"),
        image.join("build.sh"),
        image.join("oci.sh"),
    ] {
        hash.update(std::fs::read(&part).unwrap_or_else(|e| panic!("{}: {e}", part.display())));
    }
    let key = hex::encode(&hash.finalize()[..8]);
    let dir = cache_dir().join("images");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("aplo-{key}.tar"));
    if out.is_file() {
        return out;
    }
    // Older builds of other binaries are of no further use.
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("aplo-") && name.ends_with(".tar") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    eprintln!(
        "building aplo's image from deploy/image/Containerfile into {} (about two minutes)",
        out.display()
    );
    let status = Command::new(image.join("build.sh"))
        .arg(binary)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("deploy/image/build.sh: {e}"));
    assert!(status.success(), "deploy/image/build.sh failed: {status}");
    out
}
