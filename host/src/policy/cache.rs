//! The on-disk cache of compiled policies.
//!
//! An artifact's name is `<module sha256>-<engine hash>.cwasm`, where the
//! engine hash is the sha256 of `Engine::precompile_compatibility_hash`: a
//! new wasmtime or different settings miss the cache instead of loading
//! incompatible code. Beside each artifact, `.sha256` holds the artifact's
//! own digest, checked before loading, so a damaged file is recompiled
//! rather than run. Files are written to a temporary name and renamed, so a
//! crash never leaves half an artifact under a real name.

use std::hash::{Hash, Hasher};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::PolicyError;

/// A directory of compiled artifacts.
pub(crate) struct ModuleCache {
    dir: Dir,
    engine_hash: String,
}

/// Feeds `Hash` output into sha256, for a digest that is stable across runs
/// (unlike `DefaultHasher`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    /// Open (creating it if needed) the cache directory.
    pub(crate) fn open(path: &Path, engine: &Engine) -> Result<ModuleCache, PolicyError> {
        let io = |source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        // Artifacts are native code that aplo runs: a directory others can
        // write to would let them run code as aplo.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path).map_err(io)?.permissions(),
        );
        if mode & 0o022 != 0 {
            return Err(PolicyError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "the policy cache must not be writable by group or others (mode {:o})",
                        mode & 0o777
                    ),
                ),
            });
        }
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(io)?;
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ModuleCache { dir, engine_hash })
    }

    fn name(&self, module_sha: &[u8; 32]) -> String {
        format!("{}-{}.cwasm", hex::encode(module_sha), self.engine_hash)
    }

    /// The cached artifact for a module, if present and intact.
    pub(crate) fn get(&self, engine: &Engine, module_sha: &[u8; 32]) -> Option<Component> {
        let name = self.name(module_sha);
        let bytes = self.dir.read(&name).ok()?;
        let digest = self.dir.read_to_string(format!("{name}.sha256")).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != digest.trim() {
            tracing::warn!(artifact = %name, "cached policy artifact is damaged; recompiling");
            return None;
        }
        // SAFETY: `Component::deserialize` runs the artifact's machine code,
        // so it must be an artifact wasmtime produced. This one was written
        // by `put` below, from `Component::serialize`, into a directory the
        // operator gave aplo, and its digest was just verified; wasmtime
        // checks its own header, version and engine settings as well.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(artifact = %name, error = %format!("{err:#}"), "cached policy artifact rejected; recompiling");
                None
            }
        }
    }

    /// Store a compiled component. Failures are logged: the cache is an
    /// optimisation, never a reason to refuse a policy.
    pub(crate) fn put(&self, module_sha: &[u8; 32], component: &Component) {
        let name = self.name(module_sha);
        let result = component
            .serialize()
            .map_err(|e| format!("{e:#}"))
            .and_then(|bytes| {
                let digest = hex::encode(Sha256::digest(&bytes));
                let tmp = format!(".{name}.{}.tmp", std::process::id());
                self.dir.write(&tmp, &bytes).map_err(|e| e.to_string())?;
                self.dir
                    .write(format!("{name}.sha256"), digest)
                    .map_err(|e| e.to_string())?;
                self.dir
                    .rename(&tmp, &self.dir, &name)
                    .map_err(|e| e.to_string())
            });
        if let Err(err) = result {
            tracing::warn!(artifact = %name, error = %err, "could not cache the compiled policy");
        }
    }
}
