//! The `lvm-thin` brick backend: a thin pool and a thin LV per brick,
//! tagged with the brick's and volume's ids, XFS and a mount.

use std::path::PathBuf;

use super::{BrickError, BrickRoot, finish_brick, format_and_mount, path, unmount_and_remove};
use crate::exec::command::{Cmd, Executor};
use crate::exec::lvm;
use crate::model::Id;

/// How a thin pool is sized for a brick.
pub fn thin_metadata_bytes(pool_bytes: u64) -> u64 {
    (pool_bytes / 200).clamp(8 << 20, 16 << 30)
}

/// What the `lvm-thin` backend needs to know.
#[derive(Debug, Clone)]
pub struct LvmBrick {
    /// Where the brick's filesystem is mounted.
    pub root: BrickRoot,
    /// How LVM runs.
    pub options: lvm::LvmOptions,
    /// The device (its volume group is `vg_aplo_<device>`).
    pub device: Id,
    /// The brick.
    pub brick: Id,
    /// Its volume.
    pub volume: Id,
    /// Usable bytes (the thin LV's virtual size).
    pub bytes: u64,
    /// Bytes of the thin pool (snapshot room included).
    pub pool_bytes: u64,
}

impl LvmBrick {
    fn device_path(&self) -> String {
        format!(
            "/dev/{}/{}",
            lvm::vg_name(self.device),
            lvm::lv_name(self.brick)
        )
    }

    async fn has_lv(&self, node: &dyn Executor, lv: &str) -> Result<bool, BrickError> {
        let out = node.run(&lvm::lvs(self.options)).await?;
        let lvs = lvm::parse_lvs(&out.stdout).map_err(|e| BrickError::Invalid {
            brick: self.brick,
            message: e.to_string(),
        })?;
        let vg = lvm::vg_name(self.device);
        Ok(lvs.iter().any(|l| l.vg == vg && l.name == lv))
    }
}

/// Create (or finish creating) an `lvm-thin` brick: a thin pool and a thin
/// LV tagged with the brick and volume ids, XFS, a mount, the brick
/// directory and the marker. Safe to repeat.
pub async fn create_lvm_brick(node: &dyn Executor, b: &LvmBrick) -> Result<PathBuf, BrickError> {
    if !b.has_lv(node, &lvm::pool_name(b.brick)).await? {
        node.run(&lvm::thin_pool_create(
            b.options,
            b.device,
            b.brick,
            b.pool_bytes,
            thin_metadata_bytes(b.pool_bytes),
        ))
        .await?;
    }
    if !b.has_lv(node, &lvm::lv_name(b.brick)).await? {
        node.run(&lvm::thin_lv_create(
            b.options, b.device, b.brick, b.volume, b.bytes,
        ))
        .await?;
    }
    let device = b.device_path();
    let mount = b.root.mount_point(b.brick);
    node.run(&Cmd::new("mkdir").arg("-p").arg(path(&mount)))
        .await?;
    format_and_mount(node, &device, &mount).await?;
    finish_brick(node, &b.root, b.brick, b.volume).await
}

/// Grow an `lvm-thin` brick: the pool, the thin LV, then XFS.
pub async fn grow_lvm_brick(node: &dyn Executor, b: &LvmBrick) -> Result<(), BrickError> {
    create_lvm_brick(node, b).await?;
    let vg = lvm::vg_name(b.device);
    let out = node.run(&lvm::lvs(b.options)).await?;
    let lvs = lvm::parse_lvs(&out.stdout).map_err(|e| BrickError::Invalid {
        brick: b.brick,
        message: e.to_string(),
    })?;
    let size_of = |name: &str| {
        lvs.iter()
            .find(|l| l.vg == vg && l.name == name)
            .map_or(0, |l| l.size)
    };
    if size_of(&lvm::pool_name(b.brick)) < b.pool_bytes {
        node.run(&lvm::lvextend(
            b.options,
            &vg,
            &lvm::pool_name(b.brick),
            b.pool_bytes,
        ))
        .await?;
    }
    if size_of(&lvm::lv_name(b.brick)) < b.bytes {
        node.run(&lvm::lvextend(
            b.options,
            &vg,
            &lvm::lv_name(b.brick),
            b.bytes,
        ))
        .await?;
    }
    node.run(&Cmd::new("xfs_growfs").arg(path(&b.root.mount_point(b.brick))))
        .await?;
    Ok(())
}

/// Remove an `lvm-thin` brick: unmount, remove the thin LV and its pool,
/// remove the mount point. Safe to repeat and on partial bricks.
pub async fn destroy_lvm_brick(node: &dyn Executor, b: &LvmBrick) -> Result<(), BrickError> {
    unmount_and_remove(node, &b.root.mount_point(b.brick)).await?;
    let vg = lvm::vg_name(b.device);
    for lv in [lvm::lv_name(b.brick), lvm::pool_name(b.brick)] {
        if b.has_lv(node, &lv).await? {
            node.run(&lvm::lvremove(b.options, &vg, &lv)).await?;
        }
    }
    Ok(())
}
