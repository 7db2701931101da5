//! Brick backends that work without device-mapper: `loop` (a sparse file,
//! a loop device, XFS, a mount: a real, size-limited filesystem per brick)
//! and `dir` (a directory on an existing filesystem, for development).
//! The production `lvm-thin` backend builds on [`super::lvm`].
//!
//! Every path is built from the configured root and the brick's id (32 hex
//! characters), never from user input, so no name can escape the root.
//! Every step runs through the node's executor and can be repeated: running
//! `create` or `destroy` again after a crash finishes the job.

use std::path::{Path, PathBuf};

use super::command::{Cmd, ExecError, Executor};
use crate::model::Id;

/// The smallest XFS filesystem mkfs.xfs 6.x creates.
pub const MIN_XFS_BYTES: u64 = 300 << 20;

/// The mount options of a brick filesystem.
pub const MOUNT_OPTIONS: &str = "rw,inode64,noatime,nouuid";

/// A brick backend failure.
#[derive(Debug, thiserror::Error)]
pub enum BrickError {
    /// A command failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The request cannot be met.
    #[error("brick {brick}: {message}")]
    Invalid {
        /// The brick.
        brick: Id,
        /// Why.
        message: String,
    },
}

/// Where a node keeps its bricks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickRoot {
    root: PathBuf,
}

impl BrickRoot {
    /// A root directory; it must be absolute and plain (no `..`).
    pub fn new(root: impl Into<PathBuf>) -> Result<BrickRoot, String> {
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
            Err(format!(
                "brick root {} must be an absolute path without '..'",
                root.display()
            ))
        }
    }

    /// The loop backend's image file of a brick.
    pub fn image(&self, brick: Id) -> PathBuf {
        self.root.join("images").join(format!("{brick}.img"))
    }

    /// Where a brick's filesystem is mounted.
    pub fn mount_point(&self, brick: Id) -> PathBuf {
        self.root.join("mounts").join(brick.to_string())
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

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The loop devices backed by `image` (from `losetup -j`).
async fn loops_of(node: &dyn Executor, image: &Path) -> Result<Vec<String>, ExecError> {
    let out = node
        .run(&Cmd::new("losetup").arg("-j").arg(path(image)))
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(str::to_owned)
        .collect())
}

async fn mounted(node: &dyn Executor, mount: &Path) -> bool {
    node.run(
        &Cmd::new("findmnt")
            .args(["-n", "--mountpoint"])
            .arg(path(mount)),
    )
    .await
    .is_ok()
}

/// Create (or finish creating) a loop-backed XFS brick of `bytes` and
/// return its brick directory.
pub async fn create_loop_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
    volume: Id,
    bytes: u64,
) -> Result<PathBuf, BrickError> {
    if bytes < MIN_XFS_BYTES {
        return Err(BrickError::Invalid {
            brick,
            message: format!("{bytes} bytes is below the {MIN_XFS_BYTES}-byte XFS minimum"),
        });
    }
    let (image, mount) = (root.image(brick), root.mount_point(brick));
    node.run(
        &Cmd::new("mkdir")
            .arg("-p")
            .arg(path(&root.root.join("images")))
            .arg(path(&mount)),
    )
    .await?;
    let device = match loops_of(node, &image).await?.into_iter().next() {
        Some(device) => device,
        None => {
            // `truncate` only grows or shrinks the file to the size: repeatable.
            node.run(
                &Cmd::new("truncate")
                    .args(["-s", &bytes.to_string()])
                    .arg(path(&image)),
            )
            .await?;
            let out = node
                .run(
                    &Cmd::new("losetup")
                        .args(["--find", "--show"])
                        .arg(path(&image)),
                )
                .await?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    let has_xfs = node
        .run(&Cmd::new("blkid").args(["-o", "value", "-s", "TYPE", &device]))
        .await
        .is_ok_and(|out| out.stdout.starts_with(b"xfs"));
    if !has_xfs {
        node.run(&Cmd::new("mkfs.xfs").args(["-q", "-i", "size=512", "-n", "size=8192", &device]))
            .await?;
    }
    if !mounted(node, &mount).await {
        node.run(
            &Cmd::new("mount")
                .args(["-t", "xfs", "-o", MOUNT_OPTIONS, &device])
                .arg(path(&mount)),
        )
        .await?;
    }
    finish_brick(node, root, brick, volume).await
}

/// The last steps of every backend: the brick directory inside the root
/// of the brick's filesystem, and the marker naming brick and volume.
async fn finish_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
    volume: Id,
) -> Result<PathBuf, BrickError> {
    node.run(
        &Cmd::new("mkdir")
            .arg("-p")
            .arg(path(&root.brick_dir(brick))),
    )
    .await?;
    let mut marker = Cmd::new("tee").arg(path(&root.marker(brick)));
    marker.stdin =
        Some(format!("{{\"brick\": \"{brick}\", \"volume\": \"{volume}\"}}\n").into_bytes());
    node.run(&marker).await?;
    Ok(root.brick_dir(brick))
}

/// Remove a loop brick entirely: unmount, detach, delete. Safe to repeat,
/// and safe on a brick that was only partly created.
pub async fn destroy_loop_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
) -> Result<(), BrickError> {
    let (image, mount) = (root.image(brick), root.mount_point(brick));
    if mounted(node, &mount).await {
        node.run(&Cmd::new("umount").arg(path(&mount))).await?;
    }
    for device in loops_of(node, &image).await? {
        node.run(&Cmd::new("losetup").args(["-d", &device])).await?;
    }
    node.run(&Cmd::new("rm").arg("-f").arg(path(&image)))
        .await?;
    node.run(
        &Cmd::new("rm")
            .arg("-rf")
            .arg("--one-file-system")
            .arg(path(&mount)),
    )
    .await?;
    Ok(())
}

/// Create (or finish creating) a `dir` brick: a directory on the root's
/// filesystem, with no size limit of its own. For development only; gluster
/// needs `force` to use it.
pub async fn create_dir_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
    volume: Id,
) -> Result<PathBuf, BrickError> {
    finish_brick(node, root, brick, volume).await
}

/// Remove a `dir` brick and everything in it. Safe to repeat.
pub async fn destroy_dir_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
) -> Result<(), BrickError> {
    node.run(
        &Cmd::new("rm")
            .arg("-rf")
            .arg("--one-file-system")
            .arg(path(&root.mount_point(brick))),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
