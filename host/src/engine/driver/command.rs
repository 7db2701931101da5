//! The command driver: effects as gluster, LVM and filesystem commands run
//! through each node's executor.

mod bricks;
mod connect;
mod device;
mod effects;
mod glusterd;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::connect::{Connections, Reach};
use crate::engine::driver::{Applied, DeviceFacts, Driver, DriverError};
use crate::exec::brick;
use crate::exec::command::{BoxFuture, Executor};
use crate::exec::gluster::{self, BrickStatus, Failure, Peer, VolumeInfo};
use crate::exec::lvm::{self, LvmOptions};
use crate::model::options::OptionNames;
use crate::model::paths::BrickRoot;
use crate::model::storage::{Backend, DeviceRecord, NodeRecord};
use crate::plan::effect::Effect;

/// Settings of the command driver.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// How LVM runs.
    pub lvm: LvmOptions,
    /// Where `lvm-thin` bricks are mounted on each node.
    pub lvm_root: BrickRoot,
    /// How many times a gluster command that found the cluster busy is tried.
    pub busy_attempts: u32,
    /// The first wait after a busy answer; it doubles each time.
    pub busy_backoff: Duration,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            lvm: LvmOptions::default(),
            lvm_root: BrickRoot::new("/var/lib/aplo/bricks").expect("an absolute root"),
            busy_attempts: 8,
            busy_backoff: Duration::from_millis(250),
        }
    }
}

/// What bricks may use of a new volume group: its free space less 2 %
/// for thin-pool metadata (each brick's pool takes 0.5 % of its size, and
/// at least 8 MiB), so that the space placement counts is really there.
pub fn usable_vg_bytes(free: u64) -> u64 {
    free - free / 50
}

/// Applies effects by running commands on the nodes.
pub struct CommandDriver {
    connections: Connections,
    config: CommandConfig,
    /// The volume options gluster listed, once a node answered.
    option_names: Mutex<Option<Arc<OptionNames>>>,
}

impl CommandDriver {
    /// A driver reaching nodes through `connections`.
    pub fn new(connections: Connections, config: CommandConfig) -> CommandDriver {
        CommandDriver {
            connections,
            config,
            option_names: Mutex::new(None),
        }
    }
}

impl Driver for CommandDriver {
    fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>> {
        Box::pin(async move {
            let result = self.apply_effect(effect).await;
            match &result {
                Ok(_) => tracing::debug!(%effect, "applied"),
                Err(e) => tracing::warn!(%effect, error = %e, "effect failed"),
            }
            result
        })
    }

    /// Asked of the first node that answers, once: the answer is kept for
    /// every later call (nodes of one deployment run one gluster). Until a
    /// node answers, each call asks again and falls back on the built-in
    /// list.
    fn option_names<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Arc<OptionNames>> {
        Box::pin(async move {
            let kept = self
                .option_names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(names) = kept {
                return names;
            }
            match self.read_option_names(via).await {
                Ok(names) => {
                    tracing::info!(
                        options = names.len(),
                        source = names.source(),
                        "read gluster's volume options"
                    );
                    let names = Arc::new(names);
                    *self.option_names.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(names.clone());
                    names
                }
                Err(e) => {
                    let builtin = gluster::builtin_options();
                    tracing::warn!(error = %e, source = builtin.source(), "cannot read gluster's volume options; checking options against the built-in list");
                    builtin
                }
            }
        })
    }

    fn peers<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::pool_list()).await?;
            gluster::parse_pool_list(&xml).map_err(|source| DriverError::Gluster {
                command: "pool list".into(),
                source,
            })
        })
    }

    fn volumes<'a>(
        &'a self,
        via: &'a [NodeRecord],
    ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_info(None)).await;
            match xml {
                Ok(xml) => {
                    gluster::parse_volume_info(&xml).map_err(|source| DriverError::Gluster {
                        command: "volume info".into(),
                        source,
                    })
                }
                // gluster without --xml answers "No volumes present" as a
                // failure.
                Err(DriverError::Gluster { source, .. }) if source.kind() == Failure::NoVolumes => {
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            }
        })
    }

    fn volume_status<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_status(name)).await?;
            gluster::parse_volume_status(&xml).map_err(|source| DriverError::Gluster {
                command: "volume status".into(),
                source,
            })
        })
    }

    fn heal_info<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<gluster::HealInfo>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_heal_info(name)).await?;
            gluster::parse_heal_info(&xml).map_err(|source| DriverError::Gluster {
                command: "volume heal info".into(),
                source,
            })
        })
    }

    fn device_facts<'a>(
        &'a self,
        node: &'a NodeRecord,
        device: &'a DeviceRecord,
    ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>> {
        Box::pin(async move {
            let exec = self.connections.node(node);
            let root = match device.backend {
                Backend::LvmThin => self.config.lvm_root.clone(),
                Backend::Loop | Backend::Dir => Self::root(device)?,
            };
            let mut facts = DeviceFacts::default();
            let mounts: BTreeSet<String> = brick::mount_points(exec.as_ref())
                .await?
                .into_iter()
                .collect();
            match device.backend {
                Backend::LvmThin => {
                    let vg = lvm::vg_name(device.id);
                    let lvs = lvm::parse_lvs(&exec.run(&lvm::lvs(self.config.lvm)).await?.stdout)?;
                    facts.bricks = lvs
                        .iter()
                        .filter(|l| l.vg == vg)
                        .filter_map(|l| {
                            l.name
                                .strip_prefix("brick_")
                                .or_else(|| l.name.strip_prefix("tp_"))
                                .and_then(|id| id.parse().ok())
                        })
                        .collect();
                }
                Backend::Loop | Backend::Dir => {
                    facts.bricks = brick::bricks_under(exec.as_ref(), &root)
                        .await?
                        .into_iter()
                        .collect();
                }
            }
            if device.backend != Backend::Dir {
                facts.mounted = facts
                    .bricks
                    .iter()
                    .copied()
                    .filter(|id| mounts.contains(&root.mount_point(*id).display().to_string()))
                    .collect();
            }
            Ok(facts)
        })
    }
}
