//! The on-disk cache of compiled policies.
//!
//! An artifact's name is `<module sha256>-<engine hash>.cwasm`, where the
//! engine hash is the sha256 of `Engine::precompile_compatibility_hash`: a
//! new wasmtime or different settings miss the cache instead of loading
//! incompatible code. Beside each artifact, `.sha256` holds the artifact's
//! own digest, checked before loading, so a damaged file is recompiled
//! rather than run. Files are written to a temporary name and renamed, so a
//! crash never leaves half an artifact under a real name.
//!
//! # Who may write the cache
//!
//! An artifact is native code that aplo runs, and its digest sits beside
//! it: whoever can write either can make aplo run their code. So, as ssh
//! treats a private key, aplo trusts a file only if the user it runs as
//! (its effective uid) or root owns it and no one else may write to it (no
//! group or other write bit). The directory is checked when the cache is
//! opened; each artifact and digest when it is read, on the opened file
//! (`fstat` of the descriptor that is then read, so the file cannot be
//! swapped between the check and the read).
//!
//! - **A directory that fails the check is refused at start-up**
//!   ([`ModuleCache::open`] fails, and with it `Runtime::new`): the
//!   operator configured that directory, the mistake is theirs to fix, and
//!   carrying on without the cache would hide it. The error names the
//!   directory, its owner and mode, and the `chown`/`chmod` that fixes it.
//! - **An artifact or digest that fails the check is not loaded; the module
//!   is compiled again in memory** and a warning names the file, its owner
//!   and mode. One bad file (a umask that made it group-writable, a copy
//!   restored by another user) should not stop a policy from loading, and
//!   compiling is always a safe substitute for the cache. The fresh
//!   artifact then replaces the refused one, written by aplo with mode
//!   0644, so the warning does not repeat.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::PolicyError;

/// The mode of the directory when aplo creates it, and of the files it
/// writes: whatever the umask, never writable by group or others.
const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;

/// Why a file of the cache was not read or written.
#[derive(Debug, thiserror::Error)]
enum CacheError {
    /// Opening, reading or writing the file failed.
    #[error("{name}: {source}")]
    Io {
        /// The file.
        name: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is a directory, a device or a pipe.
    #[error("{name} is not a regular file")]
    NotRegular {
        /// The file.
        name: String,
    },
    /// Someone other than aplo's user or root may write the file.
    #[error("{name}: {}", .why.explain("this file"))]
    Untrusted {
        /// The file.
        name: String,
        /// Who owns it and its mode.
        why: Untrusted,
    },
    /// wasmtime could not serialize the compiled component.
    #[error("{0:#}")]
    Serialize(wasmtime::Error),
}

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

/// Why a file or directory is not trusted: who owns it, its mode, and the
/// commands that would fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Untrusted {
    uid: u32,
    mode: u32,
    euid: u32,
    fixes: Vec<String>,
}

/// Whether aplo, running as `euid`, may trust what it reads from a file
/// owned by `uid` with `mode` (see the module docs). `path` is for the
/// advice only.
fn untrusted(uid: u32, mode: u32, euid: u32, path: &str) -> Option<Untrusted> {
    let mode = mode & 0o7777;
    let mut fixes = Vec::new();
    if uid != euid && uid != 0 {
        fixes.push(format!("chown {euid} '{path}'"));
    }
    if mode & 0o022 != 0 {
        fixes.push(format!("chmod go-w '{path}'"));
    }
    (!fixes.is_empty()).then_some(Untrusted {
        uid,
        mode,
        euid,
        fixes,
    })
}

impl Untrusted {
    /// As ssh says it of a key file: what, whose and which mode, why that
    /// is refused, and what to do.
    fn explain(&self, what: &str) -> String {
        format!(
            "{what} is owned by uid {} with mode {:04o}, but it holds native code that aplo runs, so it must be owned by aplo's user (uid {}) or root and writable by no one else; fix it with `{}`",
            self.uid,
            self.mode,
            self.euid,
            self.fixes.join("` and `")
        )
    }
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl ModuleCache {
    /// Open (creating it if needed) the cache directory, and refuse it
    /// unless aplo's user or root owns it and no one else can write to it.
    pub(crate) fn open(path: &Path, engine: &Engine) -> Result<ModuleCache, PolicyError> {
        let shown = path.display().to_string();
        let io = |source| PolicyError::Io {
            path: shown.clone(),
            source,
        };
        std::os::unix::fs::DirBuilderExt::mode(
            std::fs::DirBuilder::new().recursive(true),
            DIR_MODE,
        )
        .create(path)
        .map_err(io)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(io)?;
        // Checked on the opened directory: what was checked is what is used.
        let meta = dir.dir_metadata().map_err(io)?;
        if let Some(untrusted) = untrusted(meta.uid(), meta.mode(), effective_uid(), &shown) {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{}, or give aplo another --cache-dir",
                    untrusted.explain("the policy cache")
                ),
            )));
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ModuleCache { dir, engine_hash })
    }

    fn name(&self, module_sha: &[u8; 32]) -> String {
        format!("{}-{}.cwasm", hex::encode(module_sha), self.engine_hash)
    }

    /// A file of the cache, if present, regular and trusted; read from the
    /// descriptor that was checked. `Err` says why it was refused.
    fn read_trusted(&self, name: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let io = |source| CacheError::Io {
            name: name.to_owned(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).custom_flags(
            (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32,
        );
        let mut file = match self.dir.open_with(name, &options) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io(err)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(CacheError::NotRegular {
                name: name.to_owned(),
            });
        }
        if let Some(why) = untrusted(meta.uid(), meta.mode(), effective_uid(), name) {
            return Err(CacheError::Untrusted {
                name: name.to_owned(),
                why,
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes).map_err(io)?;
        Ok(Some(bytes))
    }

    /// The cached artifact for a module, if present, trusted and intact.
    pub(crate) fn get(&self, engine: &Engine, module_sha: &[u8; 32]) -> Option<Component> {
        let name = self.name(module_sha);
        let read = |file: &str| {
            self.read_trusted(file).unwrap_or_else(|refusal| {
                tracing::warn!(artifact = %name, %refusal, "cached policy artifact not trusted; compiling the policy instead");
                None
            })
        };
        let bytes = read(&name)?;
        let digest = String::from_utf8(read(&format!("{name}.sha256"))?).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != digest.trim() {
            tracing::warn!(artifact = %name, "cached policy artifact is damaged; recompiling");
            return None;
        }
        // SAFETY: `Component::deserialize` runs the artifact's machine code,
        // so it must be an artifact wasmtime produced. This one was read
        // from a directory and a file that only aplo's user or root can
        // write (checked on the opened descriptors, see the module docs),
        // where `put` below wrote it from `Component::serialize`; its digest,
        // from a file checked the same way, was just verified over the very
        // bytes deserialized here; wasmtime checks its own header, version
        // and engine settings as well.
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

    /// Write `bytes` under `name`: to a new temporary file of mode 0644,
    /// then renamed over whatever was there.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        // A temporary left by a crashed process of the same pid.
        let _ = self.dir.remove_file(&tmp);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(FILE_MODE);
        let written = self
            .dir
            .open_with(&tmp, &options)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| self.dir.rename(&tmp, &self.dir, name));
        if written.is_err() {
            let _ = self.dir.remove_file(&tmp);
        }
        written.map_err(|source| CacheError::Io {
            name: name.to_owned(),
            source,
        })
    }

    /// Store a compiled component. Failures are logged: the cache is an
    /// optimisation, never a reason to refuse a policy.
    pub(crate) fn put(&self, module_sha: &[u8; 32], component: &Component) {
        let name = self.name(module_sha);
        let result = component
            .serialize()
            .map_err(CacheError::Serialize)
            .and_then(|bytes| {
                let digest = hex::encode(Sha256::digest(&bytes));
                self.write(&format!("{name}.sha256"), digest.as_bytes())?;
                self.write(&name, &bytes)
            });
        if let Err(err) = result {
            tracing::warn!(artifact = %name, error = %err, "could not cache the compiled policy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_needs_aplos_user_or_root_and_no_foreign_write_bit() {
        // (owner, mode) as aplo running as uid 1000 sees them.
        for trusted in [(1000, 0o644), (1000, 0o600), (0, 0o755), (1000, 0o40755)] {
            assert_eq!(
                untrusted(trusted.0, trusted.1, 1000, "f"),
                None,
                "{trusted:?}"
            );
        }
        let group = untrusted(1000, 0o664, 1000, "f").unwrap();
        assert_eq!(group.fixes, ["chmod go-w 'f'"]);
        assert!(untrusted(1000, 0o646, 1000, "f").is_some());
        let other = untrusted(65534, 0o40700, 1000, "f").unwrap();
        assert_eq!(other.fixes, ["chown 1000 'f'"]);
        assert_eq!(
            other.explain("the policy cache"),
            "the policy cache is owned by uid 65534 with mode 0700, but it holds native code \
             that aplo runs, so it must be owned by aplo's user (uid 1000) or root and writable \
             by no one else; fix it with `chown 1000 'f'`"
        );
        let both = untrusted(65534, 0o777, 1000, "f").unwrap();
        assert!(
            both.explain("x")
                .ends_with("fix it with `chown 1000 'f'` and `chmod go-w 'f'`"),
            "{}",
            both.explain("x")
        );
    }
}
