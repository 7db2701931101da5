//! Moving bricks: one brick of a volume to another device with gluster's
//! `replace-brick`, and every brick off a device or node that is being
//! failed (heketi's device and node removal). The placement policy picks
//! the new device; self-heal fills the new brick from its set.

mod evacuate;
mod steps;

pub use self::evacuate::Evacuation;
use super::reserve::DECIDE_ATTEMPTS;
use super::{Engine, EngineError};
use crate::engine::FaultPoint;
use crate::model::journal::{Operation, OperationKind, OperationRecord};
use crate::model::storage::BrickRecord;
use crate::model::{Decision, Id, PlacementRequest, Scheme, format_size};
use crate::plan::volume as plan;
use crate::store::Change;

impl Engine {
    /// Move one brick to a device the volume's placement policy picks,
    /// keeping its set, position, role and size. The device must not be the
    /// brick's own, nor on a node holding another brick of its set (nor on
    /// a node in `leaving`). Journaled: a crash before gluster took the new
    /// brick undoes it; after, finishes it.
    #[tracing::instrument(skip_all, fields(brick = %old))]
    pub async fn replace_brick(&self, old: Id, leaving: &[Id]) -> Result<BrickRecord, EngineError> {
        let (brick, volume) = self
            .with_state(|s| {
                let brick = s.bricks.get(&old)?.clone();
                let volume = s.volumes.get(&brick.volume)?.clone();
                Some((brick, volume))
            })
            .ok_or_else(|| EngineError::NotFound {
                kind: "brick",
                name: old.to_string(),
            })?;
        if volume.state != crate::model::storage::VolumeState::Ready {
            return Err(EngineError::Conflict(format!(
                "volume {} is {:?}, not ready; run `aplo repair` first",
                volume.name, volume.state
            )));
        }
        if volume.scheme == Scheme::None {
            return Err(EngineError::Conflict(format!(
                "volume {} has no redundancy: its bricks hold the only copy of their data, and replace-brick would start them empty; move its data another way, or delete the volume",
                volume.name
            )));
        }
        let set = self.registry.resolve(&volume.parameters)?;
        self.unhealed_check(&volume, &brick).await?;
        self.recent_health().await;
        // Busy until the replacement ends: other operations on the volume
        // are refused at once meanwhile (not made to wait).
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
        if self.with_state(|s| s.bricks.get(&old) != Some(&brick)) {
            return Err(EngineError::Conflict(format!(
                "brick {old} of volume {} changed (moved?) meanwhile; look again",
                volume.name
            )));
        }
        let unfinished = || {
            self.with_state(|s| {
                s.operations
                    .values()
                    .any(|o| o.operation.volume() == Some(volume.id))
            })
            .then(|| {
                EngineError::Conflict(format!(
                    "volume {} has an unfinished operation; run `aplo repair` first",
                    volume.name
                ))
            })
        };
        if let Some(unfinished) = unfinished() {
            return Err(unfinished);
        }
        let zone = self.with_state(|s| s.nodes.get(&brick.node).map(|n| n.zone.clone()));
        let placement = PlacementRequest {
            volume_name: volume.name.clone(),
            bytes: brick.bytes,
            // One brick: the set's durability is already there.
            scheme: Scheme::None,
            snapshot_reserve: volume.snapshot_reserve,
            // Where the old brick was keeps the set's zone spread.
            preferred_zone: zone,
            preferred_node: None,
        };
        let topology = || {
            let topology = self.policy_topology();
            self.with_state(|s| {
                plan::replacement_topology(topology, s, &brick, volume.cluster, leaving)
            })
        };
        // Decide with no lock held (see `reserve`), then reserve what still
        // holds under the planning lock.
        let mut attempt = 1;
        let (new, operation) = loop {
            let placed = self.place(&set, placement.clone(), topology()).await?;
            let chosen: Vec<_> = placed
                .layout
                .sets
                .iter()
                .flat_map(|s| s.bricks.iter())
                .collect();
            let [only] = chosen.as_slice() else {
                return Err(EngineError::Refused {
                    decision: Decision::Placement,
                    policy: set.placement.policy.name().to_owned(),
                    reason: format!(
                        "no single device could take the {} brick ({} bricks were laid out); a replacement must be one brick",
                        format_size(brick.bytes),
                        chosen.len()
                    ),
                });
            };
            let planning = self.planning.lock().await;
            if let Some(unfinished) = unfinished() {
                return Err(unfinished);
            }
            if let Err(why) = Engine::layout_holds(&placement, &topology(), &placed.layout) {
                drop(planning);
                tracing::info!(volume = %volume.name, attempt, %why, "deciding again: the state changed while the policy decided");
                if attempt == DECIDE_ATTEMPTS {
                    return Err(Engine::stale(
                        &format!("replace brick {} of volume {}", brick.id, volume.name),
                        &why,
                    ));
                }
                attempt += 1;
                continue;
            }
            let new = self
                .with_state(|s| {
                    plan::replacement(
                        s,
                        &brick,
                        only.device,
                        volume.snapshot_reserve,
                        &self.config.lvm_root,
                        self.ids.next(),
                    )
                })
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            let operation = OperationRecord {
                id: self.ids.next(),
                operation: Operation::ReplaceBrick {
                    volume: volume.id,
                    old: brick.id,
                    new: new.id,
                },
                done: Vec::new(),
                rolling_back: false,
            };
            self.commit(vec![
                Change::PutBrick(new.clone()),
                Change::PutOperation(operation.clone()),
            ])?;
            drop(planning);
            break (new, operation);
        };
        tracing::info!(volume = %volume.name, old = %brick.id, new = %new.id, "brick replacement journaled");
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::ReplaceBrick));
        match self.replace_steps(operation.clone()).await {
            Ok(()) => Ok(new),
            Err((step, source)) => {
                let current = self
                    .with_state(|s| s.operations.get(&operation.id).cloned())
                    .unwrap_or(operation);
                let outcome = match self.settle(&current).await {
                    Ok(how) => how.to_owned(),
                    Err(e) => format!(
                        "settling it failed too ({e}); the journal keeps the operation, and the next start or `aplo repair` finishes it"
                    ),
                };
                Err(EngineError::Failed {
                    operation: "replace brick",
                    subject: format!("{} of volume {}", brick.id, volume.name),
                    step,
                    source: Box::new(source),
                    outcome,
                })
            }
        }
    }

    /// Refuse to move a brick that holds changes its set has not healed
    /// yet: the new brick starts empty, so they would be lost. A brick that
    /// cannot be reached (its node is down) has nothing to give, and moving
    /// it is how the set becomes whole again.
    async fn unhealed_check(
        &self,
        volume: &crate::model::storage::VolumeRecord,
        brick: &BrickRecord,
    ) -> Result<(), EngineError> {
        let (via, address) =
            self.with_state(|s| (self.target(s, volume).via, plan::address(s, brick)));
        let heal = self
            .driver
            .heal_info(&via, &volume.name)
            .await
            .map_err(|e| {
                EngineError::Conflict(format!(
                    "volume {}: gluster could not say what is waiting for self-heal ({e}); the brick was not moved",
                    volume.name
                ))
            })?;
        let pending = heal
            .iter()
            .find(|h| h.host == address.host && h.path == address.path)
            .filter(|h| h.connected)
            .and_then(|h| h.entries)
            .unwrap_or(0);
        if pending > 0 {
            return Err(EngineError::Conflict(format!(
                "brick {address} of volume {} holds {pending} entries its set has not healed yet; moving it now would lose them. Let self-heal finish (`gluster volume heal {} info` shows what is left) and try again",
                volume.name, volume.name
            )));
        }
        Ok(())
    }
}
