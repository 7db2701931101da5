//! Brick backends that work without device-mapper: `loop` (a sparse file,
//! a loop device, XFS, a mount: a real, size-limited filesystem per brick)
//! and `dir` (a directory on an existing filesystem, for development).
//! The production `lvm-thin` backend builds on [`super::lvm`].
//!
//! Every path is built from the configured root and the brick's id (32 hex
//! characters), never from user input, so no name can escape the root.
//! Every step runs through the node's executor and can be repeated: running
//! `create` or `destroy` again after a crash finishes the job.

mod thin;

use std::path::{Path, PathBuf};

pub use self::thin::{
    LvmBrick, create_lvm_brick, destroy_lvm_brick, grow_lvm_brick, thin_metadata_bytes,
};
use super::command::{Cmd, ExecError, Executor};
use crate::model::Id;
pub use crate::model::paths::BrickRoot;

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

/// Create (or finish creating) a loop-backed XFS brick of `bytes` (at
/// least [`MIN_XFS_BYTES`]) and return its brick directory.
pub async fn create_loop_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
    volume: Id,
    bytes: u64,
) -> Result<PathBuf, BrickError> {
    // Arbiter bricks can be smaller than the smallest XFS: their
    // filesystem gets the minimum (the image is sparse, so unused room
    // costs nothing).
    let bytes = bytes.max(MIN_XFS_BYTES);
    let (image, mount) = (root.image(brick), root.mount_point(brick));
    node.run(
        &Cmd::new("mkdir")
            .arg("-p")
            .arg(path(&root.images_dir()))
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
    format_and_mount(node, &device, &mount).await?;
    finish_brick(node, root, brick, volume).await
}

/// XFS on `device` unless it has it already (`-i size=512 -n size=8192`,
/// as gluster recommends), mounted at `mount` unless it is already.
async fn format_and_mount(
    node: &dyn Executor,
    device: &str,
    mount: &Path,
) -> Result<(), ExecError> {
    let has_xfs = node
        .run(&Cmd::new("blkid").args(["-o", "value", "-s", "TYPE", device]))
        .await
        .is_ok_and(|out| out.stdout.starts_with(b"xfs"));
    if !has_xfs {
        node.run(&Cmd::new("mkfs.xfs").args(["-q", "-i", "size=512", "-n", "size=8192", device]))
            .await?;
    }
    if !mounted(node, mount).await {
        node.run(
            &Cmd::new("mount")
                .args(["-t", "xfs", "-o", MOUNT_OPTIONS, device])
                .arg(path(mount)),
        )
        .await?;
    }
    Ok(())
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
    let image = root.image(brick);
    unmount_and_remove(node, &root.mount_point(brick)).await?;
    for device in loops_of(node, &image).await? {
        node.run(&Cmd::new("losetup").args(["-d", &device])).await?;
    }
    node.run(&Cmd::new("rm").arg("-f").arg(path(&image)))
        .await?;
    Ok(())
}

/// Unmount a brick's filesystem if it is mounted, then remove its mount
/// point and everything under it (never crossing into another filesystem).
async fn unmount_and_remove(node: &dyn Executor, mount: &Path) -> Result<(), ExecError> {
    if mounted(node, mount).await {
        node.run(&Cmd::new("umount").arg(path(mount))).await?;
    }
    node.run(
        &Cmd::new("rm")
            .arg("-rf")
            .arg("--one-file-system")
            .arg(path(mount)),
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

/// Give a brick directory (the volume's root on that brick) the volume's
/// group, group write and setgid (mode 2775), as heketi did for a volume
/// with a gid: members of the group may write, and what they make keeps
/// the group.
pub async fn give_group(node: &dyn Executor, dir: &Path, gid: u32) -> Result<(), BrickError> {
    node.run(&Cmd::new("chown").arg(format!(":{gid}")).arg(path(dir)))
        .await?;
    node.run(&Cmd::new("chmod").arg("2775").arg(path(dir)))
        .await?;
    Ok(())
}

/// Remove a `dir` brick and everything in it. Safe to repeat.
pub async fn destroy_dir_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
) -> Result<(), BrickError> {
    unmount_and_remove(node, &root.mount_point(brick)).await?;
    Ok(())
}

/// Grow a loop brick to `bytes`: the image, the loop device's idea of its
/// size, then the filesystem. Safe to repeat.
pub async fn grow_loop_brick(
    node: &dyn Executor,
    root: &BrickRoot,
    brick: Id,
    volume: Id,
    bytes: u64,
) -> Result<(), BrickError> {
    // Make sure it exists and is mounted (after a crash or a reboot).
    create_loop_brick(node, root, brick, volume, bytes).await?;
    let image = root.image(brick);
    node.run(
        &Cmd::new("truncate")
            .args(["-s", &format!(">{bytes}")])
            .arg(path(&image)),
    )
    .await?;
    for device in loops_of(node, &image).await? {
        node.run(&Cmd::new("losetup").args(["-c", &device])).await?;
    }
    node.run(&Cmd::new("xfs_growfs").arg(path(&root.mount_point(brick))))
        .await?;
    Ok(())
}

/// The brick ids found under a root: mount directories and loop images.
pub async fn bricks_under(node: &dyn Executor, root: &BrickRoot) -> Result<Vec<Id>, ExecError> {
    let out = node
        .run(
            &Cmd::new("find")
                .arg(path(&root.mounts_dir()))
                .arg(path(&root.images_dir()))
                .args(["-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\n"]),
        )
        .await;
    let out = match out {
        Ok(out) => out,
        // Neither directory exists yet: no bricks.
        Err(ExecError::Failed { stdout, .. }) => super::command::Output {
            stdout,
            stderr: Vec::new(),
            duration: Default::default(),
        },
        Err(e) => return Err(e),
    };
    let mut ids: Vec<Id> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|name| name.trim_end_matches(".img").parse().ok())
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The mount points in use on a node.
pub async fn mount_points(node: &dyn Executor) -> Result<Vec<String>, ExecError> {
    let out = node
        .run(&Cmd::new("findmnt").args(["-rn", "-o", "TARGET"]))
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.replace("\\x20", " "))
        .collect())
}
