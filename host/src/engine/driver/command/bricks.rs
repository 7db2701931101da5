//! Bricks: create, grow and destroy one on its device's backend (an LVM thin
//! volume, a loop file or a directory).

use super::CommandDriver;
use crate::engine::driver::DriverError;
use crate::exec::brick::{self, LvmBrick};
use crate::exec::command::Executor;
use crate::model::paths::BrickRoot;
use crate::model::storage::{Backend, DeviceRecord};
use crate::plan::effect::{Effect, Placed};

impl CommandDriver {
    pub(super) fn lvm_brick(&self, p: &Placed) -> LvmBrick {
        LvmBrick {
            root: self.config.lvm_root.clone(),
            options: self.config.lvm,
            device: p.device.id,
            brick: p.brick.id,
            volume: p.brick.volume,
            bytes: p.brick.bytes,
            pool_bytes: p.brick.consumed.max(p.brick.bytes),
        }
    }

    pub(super) fn root(device: &DeviceRecord) -> Result<BrickRoot, DriverError> {
        BrickRoot::new(&device.name).map_err(|e| DriverError::Refused(e.to_string()))
    }

    pub(super) async fn brick(&self, effect: &Effect) -> Result<(), DriverError> {
        let (Effect::CreateBrick(p) | Effect::GrowBrick(p) | Effect::DestroyBrick(p)) = effect
        else {
            unreachable!("only brick effects come here")
        };
        let exec = self.connections.node(&p.node);
        let node: &dyn Executor = exec.as_ref();
        let (brick, volume, bytes) = (p.brick.id, p.brick.volume, p.brick.bytes);
        match (effect, p.device.backend) {
            (Effect::CreateBrick(_), backend) => {
                let dir = match backend {
                    Backend::Loop => {
                        brick::create_loop_brick(
                            node,
                            &Self::root(&p.device)?,
                            brick,
                            volume,
                            bytes,
                        )
                        .await?
                    }
                    Backend::Dir => {
                        brick::create_dir_brick(node, &Self::root(&p.device)?, brick, volume)
                            .await?
                    }
                    Backend::LvmThin => brick::create_lvm_brick(node, &self.lvm_brick(p)).await?,
                };
                if let Some(gid) = p.gid {
                    brick::give_group(node, &dir, gid).await?;
                }
            }
            (Effect::GrowBrick(_), Backend::Loop) => {
                brick::grow_loop_brick(node, &Self::root(&p.device)?, brick, volume, bytes).await?;
            }
            (Effect::GrowBrick(_), Backend::Dir) => {
                brick::create_dir_brick(node, &Self::root(&p.device)?, brick, volume).await?;
            }
            (Effect::GrowBrick(_), Backend::LvmThin) => {
                brick::grow_lvm_brick(node, &self.lvm_brick(p)).await?;
            }
            (_, Backend::Loop) => {
                brick::destroy_loop_brick(node, &Self::root(&p.device)?, brick).await?;
            }
            (_, Backend::Dir) => {
                brick::destroy_dir_brick(node, &Self::root(&p.device)?, brick).await?;
            }
            (_, Backend::LvmThin) => {
                brick::destroy_lvm_brick(node, &self.lvm_brick(p)).await?;
            }
        }
        Ok(())
    }
}
