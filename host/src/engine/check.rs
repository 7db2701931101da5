//! Reconciliation: compare the store with what gluster and the nodes
//! report, list every difference, and repair the ones that are safe.
//!
//! The comparison ([`find_drift`]) is a pure function over the snapshot and
//! the observations, tested in-module; the engine gathers the observations
//! and applies the repairs.

mod drift;

use std::collections::BTreeMap;
use std::fmt;

use self::drift::find_drift;
use crate::engine::driver::{DeviceFacts, DriverError};
use crate::engine::{Engine, EngineError, Phase};
use crate::exec::gluster::{BrickStatus, Peer, VolumeInfo};
use crate::model::storage::BrickRecord;
use crate::model::{BrickRole, Id};
use crate::plan::effect::Effect;
use crate::plan::volume as plan;

/// What gluster and the nodes reported.
#[derive(Debug, Default)]
pub struct Observed {
    /// Each cluster's gluster volumes, or why they could not be listed.
    pub volumes: BTreeMap<Id, Result<Vec<VolumeInfo>, DriverError>>,
    /// Brick processes of started volumes, by volume name.
    pub status: BTreeMap<String, Vec<BrickStatus>>,
    /// What each device holds, or why it could not be looked at.
    pub devices: BTreeMap<Id, Result<DeviceFacts, DriverError>>,
    /// Each cluster's trusted pool, as one of its nodes lists it.
    pub pools: BTreeMap<Id, Pool>,
}

/// A trusted pool as `pool list` on one node shows it.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The node asked: it lists itself as `localhost`.
    pub asked: Id,
    /// Every member, the node asked included.
    pub peers: Vec<Peer>,
}

/// A safe repair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Repair {
    /// Finish or undo the journal's unfinished operations.
    Recover,
    /// Start a stopped volume.
    Start(Id),
    /// Restart a started volume's missing brick processes.
    RestartBricks(Id),
    /// Set aplo's id options on a volume that lacks them.
    Label(Id),
    /// Mount a brick filesystem that is not mounted.
    Remount(Id),
    /// Remove a brick on a device that no record and no gluster volume uses.
    RemoveOrphan {
        /// The device.
        device: Id,
        /// The brick id found on it.
        brick: Id,
    },
}

/// One difference between the store and the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// What it concerns, e.g. `volume pvc-1` or `device n1:/dev/vdb`.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// The repair, when one is safe.
    pub repair: Option<Repair>,
    /// What to do by hand, when no repair is safe.
    pub advice: Option<String>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)?;
        match (&self.repair, &self.advice) {
            (Some(_), _) => write!(f, " (`aplo repair` fixes this)"),
            (None, Some(advice)) => write!(f, " (not repaired automatically: {advice})"),
            (None, None) => Ok(()),
        }
    }
}

/// The result of `aplo check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every difference found.
    pub drift: Vec<Drift>,
}

impl CheckReport {
    /// Whether the store and the world agree.
    pub fn is_clean(&self) -> bool {
        self.drift.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.drift.is_empty() {
            return writeln!(f, "no drift: the store matches gluster and the nodes");
        }
        writeln!(f, "{} difference(s):", self.drift.len())?;
        for drift in &self.drift {
            writeln!(f, "- {drift}")?;
        }
        Ok(())
    }
}

/// The result of `aplo repair`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// What was repaired.
    pub repaired: Vec<String>,
    /// What failed to repair, or is not safe to, with the reason.
    pub left: Vec<String>,
}

impl Engine {
    /// Gather what gluster and the nodes report.
    async fn observe(&self) -> Observed {
        let snapshot = self.snapshot();
        let mut observed = Observed::default();
        for cluster in snapshot.clusters.keys() {
            let via = plan::via(&snapshot, *cluster, &|n| self.is_unhealthy(n));
            if via.is_empty() {
                continue;
            }
            let volumes = self.driver.volumes(&via).await;
            if volumes.is_ok() {
                // One node at a time, so that `localhost` is known.
                for node in &via {
                    if let Ok(peers) = self.driver.peers(std::slice::from_ref(node)).await {
                        observed.pools.insert(
                            *cluster,
                            Pool {
                                asked: node.id,
                                peers,
                            },
                        );
                        break;
                    }
                }
            }
            if let Ok(volumes) = &volumes {
                for info in volumes.iter().filter(|v| v.status == "Started") {
                    if let Ok(status) = self.driver.volume_status(&via, &info.name).await {
                        observed.status.insert(info.name.clone(), status);
                    }
                }
            }
            observed.volumes.insert(*cluster, volumes);
        }
        for device in snapshot.devices.values() {
            let Some(node) = snapshot.nodes.get(&device.node) else {
                continue;
            };
            let facts = self.driver.device_facts(node, device).await;
            observed.devices.insert(device.id, facts);
        }
        observed
    }

    /// Compare the store with gluster and the nodes.
    pub async fn check(&self) -> CheckReport {
        self.refresh_health().await;
        let observed = self.observe().await;
        CheckReport {
            drift: self.with_state(|s| find_drift(s, &observed)),
        }
    }

    /// Check, then apply every safe repair; explain the rest.
    pub async fn repair(&self) -> Result<RepairReport, EngineError> {
        let report = self.check().await;
        let mut out = RepairReport::default();
        let mut recovered = false;
        for drift in report.drift {
            let Some(repair) = drift.repair.clone() else {
                out.left.push(drift.to_string());
                continue;
            };
            if repair == Repair::Recover {
                if !recovered {
                    recovered = true;
                    let recovery = self.recover().await?;
                    out.repaired.extend(recovery.outcomes);
                }
                continue;
            }
            match self.apply_repair(&repair).await {
                Ok(()) => out
                    .repaired
                    .push(format!("{}: {} (repaired)", drift.subject, drift.problem)),
                Err(e) => out.left.push(format!(
                    "{}: {} (repair failed: {e})",
                    drift.subject, drift.problem
                )),
            }
        }
        Ok(out)
    }

    /// Mount every brick filesystem the store knows that is not mounted
    /// (after a reboot: the "equivalent" of fstab entries); run at start
    /// by `aplo recover`. Returns what was remounted.
    pub async fn remount_bricks(&self) -> Result<Vec<String>, EngineError> {
        let mut remounted = Vec::new();
        for drift in self.check().await.drift {
            if let Some(repair @ Repair::Remount(_)) = &drift.repair {
                self.apply_repair(repair).await?;
                remounted.push(drift.subject);
            }
        }
        Ok(remounted)
    }

    async fn apply_repair(&self, repair: &Repair) -> Result<(), EngineError> {
        let effect = self.with_state(|s| -> Result<Effect, EngineError> {
            let volume = |id: &Id| {
                s.volumes
                    .get(id)
                    .cloned()
                    .ok_or_else(|| EngineError::NotFound {
                        kind: "volume",
                        name: id.to_string(),
                    })
            };
            Ok(match repair {
                Repair::Recover => unreachable!("recovery is not an effect"),
                Repair::Start(id) => Effect::StartVolume {
                    target: self.target(s, &volume(id)?),
                    force: false,
                },
                Repair::RestartBricks(id) => Effect::StartVolume {
                    target: self.target(s, &volume(id)?),
                    force: true,
                },
                Repair::Label(id) => {
                    let v = volume(id)?;
                    Effect::SetOptions {
                        target: self.target(s, &v),
                        options: super::volume::gluster_options(&v),
                    }
                }
                Repair::Remount(brick) => {
                    let record = s.bricks.get(brick).ok_or_else(|| EngineError::NotFound {
                        kind: "brick",
                        name: brick.to_string(),
                    })?;
                    Effect::CreateBrick(
                        plan::placed(s, record).map_err(|e| EngineError::Invalid(e.to_string()))?,
                    )
                }
                Repair::RemoveOrphan { device, brick } => {
                    let d = s.devices.get(device).ok_or_else(|| EngineError::NotFound {
                        kind: "device",
                        name: device.to_string(),
                    })?;
                    let orphan = BrickRecord {
                        id: *brick,
                        volume: Id(0),
                        device: d.id,
                        node: d.node,
                        bytes: 0,
                        consumed: 0,
                        role: BrickRole::Data,
                        set: 0,
                        position: 0,
                        path: plan::brick_dir(d, *brick, &self.config.lvm_root)
                            .map_err(|e| EngineError::Invalid(e.to_string()))?,
                    };
                    Effect::DestroyBrick(
                        plan::placed(s, &orphan)
                            .map_err(|e| EngineError::Invalid(e.to_string()))?,
                    )
                }
            })
        })?;
        self.driver
            .apply(&effect)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::Failed {
                operation: "repair",
                subject: effect.to_string(),
                step: Phase::Apply,
                source: Box::new(source),
                outcome: "nothing else was changed".into(),
            })
    }
}
