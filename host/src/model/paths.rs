//! Where bricks live on a node. Every path is built from a configured,
//! checked root and the brick's id (32 hex characters), never from user
//! input, so no name can escape the root.

use std::path::PathBuf;

use super::Id;

/// A brick root or a volume name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The brick root is relative or has a `..`.
    #[error("brick root {} must be an absolute path without '..'", .0.display())]
    BrickRoot(PathBuf),
    /// The volume name is empty.
    #[error("the volume name is empty")]
    EmptyVolumeName,
    /// The volume name is longer than 100 bytes; the length.
    #[error("the volume name is {0} characters long; at most 100 are allowed")]
    LongVolumeName(usize),
    /// The volume name has a character other than letters, digits, `-`
    /// and `_`; the name, escaped.
    #[error("the volume name '{0}' may contain only letters, digits, '-' and '_'")]
    VolumeNameCharacters(String),
    /// The volume name starts with `-` or `_`.
    #[error("the volume name '{0}' must start with a letter or a digit")]
    VolumeNameStart(String),
}

/// Where a node keeps its bricks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickRoot {
    root: PathBuf,
}

impl BrickRoot {
    /// A root directory; it must be absolute and plain (no `..`).
    pub fn new(root: impl Into<PathBuf>) -> Result<BrickRoot, PathError> {
        let root = root.into();
        let plain = root.is_absolute()
            && root.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            });
        if plain {
            Ok(BrickRoot { root })
        } else {
            Err(PathError::BrickRoot(root))
        }
    }

    /// Where the loop backend keeps brick images.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Where brick filesystems are mounted.
    pub fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    /// The loop backend's image file of a brick.
    pub fn image(&self, brick: Id) -> PathBuf {
        self.root.join("images").join(format!("{brick}.img"))
    }

    /// Where a brick's filesystem is mounted.
    pub fn mount_point(&self, brick: Id) -> PathBuf {
        self.mounts_dir().join(brick.to_string())
    }

    /// The directory gluster uses as the brick: a subdirectory of the mount,
    /// so that an unmounted filesystem never becomes a brick by accident.
    pub fn brick_dir(&self, brick: Id) -> PathBuf {
        self.mount_point(brick).join("brick")
    }

    /// The marker file naming the brick and volume a filesystem belongs to.
    pub fn marker(&self, brick: Id) -> PathBuf {
        self.mount_point(brick).join(".aplo-brick")
    }
}

/// Why a volume name cannot be used.
pub fn check_volume_name(name: &str) -> Result<(), PathError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() {
        Err(PathError::EmptyVolumeName)
    } else if name.len() > 100 {
        Err(PathError::LongVolumeName(name.len()))
    } else if !ok_chars {
        Err(PathError::VolumeNameCharacters(
            name.escape_default().to_string(),
        ))
    } else if !name.as_bytes()[0].is_ascii_alphanumeric() {
        Err(PathError::VolumeNameStart(name.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = BrickRoot::new("/var/lib/aplo/bricks").unwrap();
        let brick = Id(0xab);
        assert_eq!(
            root.brick_dir(brick),
            Path::new(&format!("/var/lib/aplo/bricks/mounts/{brick}/brick"))
        );
        assert_eq!(
            root.image(brick),
            Path::new(&format!("/var/lib/aplo/bricks/images/{brick}.img"))
        );
        assert!(BrickRoot::new("relative/bricks").is_err());
        assert!(BrickRoot::new("/var/lib/../etc").is_err());
    }

    #[test]
    fn volume_names_cannot_escape_or_confuse() {
        assert!(check_volume_name("pvc-1234_ab").is_ok());
        for bad in ["", "../etc", "a/b", "-rf", "a b", "vol;rm", "é"] {
            let err = check_volume_name(bad).unwrap_err().to_string();
            assert!(err.contains("volume name"), "{bad}: {err}");
        }
        assert!(
            check_volume_name(&"a".repeat(101))
                .unwrap_err()
                .to_string()
                .contains("101")
        );
    }
}
