//! Devices: prepare one for bricks (its volume group, loop file or
//! directory), and release it when it leaves.

use super::{CommandDriver, usable_vg_bytes};
use crate::engine::driver::{DriverError, tagged_capacity};
use crate::exec::command::{Cmd, Executor};
use crate::exec::lvm;
use crate::model::storage::{Backend, DeviceRecord, NodeRecord};

impl CommandDriver {
    pub(super) async fn prepare(
        &self,
        node: &NodeRecord,
        device: &DeviceRecord,
        wipe: bool,
    ) -> Result<u64, DriverError> {
        let exec = self.connections.node(node);
        let missing = |kind: &str| {
            DriverError::Refused(format!(
                "device {} does not exist on {} (or is not a {kind})",
                device.name, node.manage
            ))
        };
        match device.backend {
            Backend::Loop | Backend::Dir => {
                let root = Self::root(device)?;
                exec.run(&Cmd::new("test").arg("-d").arg(&device.name))
                    .await
                    .map_err(|_| missing("directory"))?;
                exec.run(
                    &Cmd::new("mkdir")
                        .arg("-p")
                        .arg(root.images_dir().display().to_string())
                        .arg(root.mounts_dir().display().to_string()),
                )
                .await?;
                let out = exec
                    .run(
                        &Cmd::new("df")
                            .args(["-B1", "--output=avail"])
                            .arg(&device.name),
                    )
                    .await?;
                let text = String::from_utf8_lossy(&out.stdout);
                let available: u64 = text
                    .lines()
                    .nth(1)
                    .and_then(|l| l.trim().parse().ok())
                    .ok_or_else(|| {
                        DriverError::Refused(format!("cannot read df output: {text}"))
                    })?;
                // A `capacity` tag caps what aplo may use of the directory.
                Ok(tagged_capacity(device)?.map_or(available, |cap| cap.min(available)))
            }
            Backend::LvmThin => {
                let options = self.config.lvm;
                let vg = lvm::vg_name(device.id);
                let find = |out: &[u8]| -> Result<Option<u64>, DriverError> {
                    Ok(lvm::parse_vgs(out)?
                        .into_iter()
                        .find(|g| g.name == vg)
                        .map(|g| g.free))
                };
                if let Some(free) = find(&exec.run(&lvm::vgs(options)).await?.stdout)? {
                    return Ok(usable_vg_bytes(free));
                }
                exec.run(&Cmd::new("test").arg("-b").arg(&device.name))
                    .await
                    .map_err(|_| missing("block device"))?;
                if wipe {
                    exec.run(&Cmd::new("wipefs").args(["-a", &device.name]))
                        .await?;
                }
                exec.run(&lvm::pvcreate(options, &device.name)).await?;
                exec.run(&lvm::vgcreate(options, device.id, &device.name))
                    .await?;
                let free = find(&exec.run(&lvm::vgs(options)).await?.stdout)?
                    .ok_or_else(|| DriverError::Refused(format!("vgcreate did not create {vg}")))?;
                Ok(usable_vg_bytes(free))
            }
        }
    }

    pub(super) async fn release(
        &self,
        node: &NodeRecord,
        device: &DeviceRecord,
    ) -> Result<(), DriverError> {
        let exec = self.connections.node(node);
        match device.backend {
            Backend::Loop | Backend::Dir => {
                let root = Self::root(device)?;
                // Only aplo's empty subdirectories go; the directory stays.
                let _ = exec
                    .run(
                        &Cmd::new("rmdir")
                            .arg(root.images_dir().display().to_string())
                            .arg(root.mounts_dir().display().to_string()),
                    )
                    .await;
                Ok(())
            }
            Backend::LvmThin => {
                let options = self.config.lvm;
                let vg = lvm::vg_name(device.id);
                let groups = lvm::parse_vgs(&exec.run(&lvm::vgs(options)).await?.stdout)?;
                if groups.iter().any(|g| g.name == vg) {
                    exec.run(&lvm::vgremove(options, &vg)).await?;
                    exec.run(&lvm::pvremove(options, &device.name)).await?;
                }
                Ok(())
            }
        }
    }
}
