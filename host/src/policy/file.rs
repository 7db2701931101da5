//! Reading a policy module from a file, warily.
//!
//! The policy directory is reloaded on change and `aplo policy inspect`,
//! `test` and `eval` take any path, so the file may be anything: a FIFO
//! (opening it for reading waits for a writer, for ever), a device, a
//! directory, or a sparse file of a terabyte. So a module file is opened
//! without blocking (`O_NONBLOCK`), its type and size are checked on the
//! opened descriptor (`fstat`: what is checked is what is read), and its
//! first four bytes must be WebAssembly's magic number (`\0asm`), all
//! before the rest is read; the read itself stops past the cap, should the
//! file grow in the meantime. Symlinks are followed, as before (within the
//! policy directory, which is how ConfigMap mounts lay files out).

use std::io::Read;
use std::path::Path;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::model::format_size;

/// The largest module read. Policies built from Rust are well under 10 MiB
/// even unoptimised; anything larger is not a policy.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// WebAssembly's magic number, the first four bytes of every module and
/// component.
const MAGIC: &[u8; 4] = b"\0asm";

/// Why a module file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ModuleFileError {
    /// Opening, inspecting or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is a FIFO, a device, a socket or a directory.
    #[error(
        "{path}: not a regular file but a {kind}; only regular files (or symlinks to them) are read as policies"
    )]
    NotRegular {
        /// The file.
        path: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`MAX_MODULE_BYTES`].
    #[error(
        "{path}: {} ({size} bytes) is over the {} cap on a policy module; it was not read",
        format_size(*size),
        format_size(MAX_MODULE_BYTES)
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The file does not start with `\0asm`.
    #[error("{path}: not a WebAssembly file (bad magic number)")]
    BadMagic {
        /// The file.
        path: String,
    },
}

impl ModuleFileError {
    /// Whether the file itself was refused (its type, size or contents), as
    /// opposed to an I/O failure that may pass: a refused file is not looked
    /// at again until it changes.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, ModuleFileError::Io { .. })
    }
}

/// What was read, and the metadata of the descriptor it was read from.
pub struct ModuleFile {
    /// The module's bytes.
    pub bytes: Vec<u8>,
    /// The file's size and modification time, from `fstat`.
    pub metadata: std::fs::Metadata,
}

fn flags() -> i32 {
    (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32
}

/// Read the module `name` in `dir`; `shown` names it in errors.
pub(crate) fn read_in(dir: &Dir, name: &str, shown: &str) -> Result<ModuleFile, ModuleFileError> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(flags());
    let file = dir
        .open_with(name, &options)
        .map_err(|source| ModuleFileError::Io {
            path: shown.to_owned(),
            source,
        })?;
    read_opened(file.into_std(), shown)
}

/// Read the module at `path`.
pub fn read_at(path: &Path) -> Result<ModuleFile, ModuleFileError> {
    let shown = path.display().to_string();
    let file = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        flags(),
    )
    .open(path)
    .map_err(|source| ModuleFileError::Io {
        path: shown.clone(),
        source,
    })?;
    read_opened(file, &shown)
}

fn read_opened(file: std::fs::File, shown: &str) -> Result<ModuleFile, ModuleFileError> {
    use std::os::unix::fs::FileTypeExt;
    let io = |source| ModuleFileError::Io {
        path: shown.to_owned(),
        source,
    };
    let metadata = file.metadata().map_err(io)?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let kind = if kind.is_fifo() {
            "FIFO"
        } else if kind.is_dir() {
            "directory"
        } else if kind.is_char_device() {
            "character device"
        } else if kind.is_block_device() {
            "block device"
        } else if kind.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(ModuleFileError::NotRegular {
            path: shown.to_owned(),
            kind,
        });
    }
    if metadata.len() > MAX_MODULE_BYTES {
        return Err(ModuleFileError::TooLarge {
            path: shown.to_owned(),
            size: metadata.len(),
        });
    }
    let mut limited = file.take(MAX_MODULE_BYTES + 1);
    let mut bytes = vec![0; MAGIC.len()];
    if limited.read_exact(&mut bytes).is_err() || bytes[..] != MAGIC[..] {
        return Err(ModuleFileError::BadMagic {
            path: shown.to_owned(),
        });
    }
    limited.read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_MODULE_BYTES {
        return Err(ModuleFileError::TooLarge {
            path: shown.to_owned(),
            size: bytes.len() as u64,
        });
    }
    Ok(ModuleFile { bytes, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_webassembly_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("good.wasm"), b"\0asm\x0d\0\x01\0rest").unwrap();
        std::fs::write(path("text.wasm"), b"hello world").unwrap();
        std::fs::write(path("tiny.wasm"), b"\0a").unwrap();
        std::fs::create_dir(path("dir.wasm")).unwrap();
        let good = read_at(&path("good.wasm")).unwrap();
        assert_eq!(good.bytes, b"\0asm\x0d\0\x01\0rest");
        assert_eq!(good.metadata.len(), 12);
        for bad in ["text.wasm", "tiny.wasm"] {
            let err = read_at(&path(bad)).err().unwrap();
            assert!(matches!(err, ModuleFileError::BadMagic { .. }), "{err}");
            assert!(err.is_refusal());
        }
        let err = read_at(&path("dir.wasm")).err().unwrap();
        assert!(
            err.to_string()
                .contains("not a regular file but a directory"),
            "{err}"
        );
        let err = read_at(&path("missing.wasm")).err().unwrap();
        assert!(matches!(err, ModuleFileError::Io { .. }) && !err.is_refusal());
    }
}
