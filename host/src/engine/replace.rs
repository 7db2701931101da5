//! Moving bricks: one brick of a volume to another device with gluster's
//! `replace-brick`, and every brick off a device or node that is being
//! failed (heketi's device and node removal). The placement policy picks
//! the new device; self-heal fills the new brick from its set.

use super::reserve::DECIDE_ATTEMPTS;
use super::volume::apply_all;
use super::{Engine, EngineError, StepError};
use crate::engine::driver::DriverError;
use crate::engine::{FaultPoint, Phase};
use crate::model::journal::{Operation, OperationKind, OperationRecord, Step};
use crate::model::storage::BrickRecord;
use crate::model::{Decision, Id, PlacementRequest, Scheme, State, format_size};
use crate::plan::effect::Effect;
use crate::plan::volume as plan;
use crate::store::Change;

/// Bricks moved off a device or node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evacuation {
    /// One line per brick moved: volume, old and new place.
    pub moved: Vec<String>,
}

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

    /// The forward steps: the new brick, `replace-brick`, the old brick's
    /// teardown (given up when its node is not online or unreachable),
    /// records.
    pub(super) async fn replace_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<(), StepError> {
        let Operation::ReplaceBrick { volume, old, new } = operation.operation else {
            unreachable!("replace_steps runs replace operations")
        };
        let fail = |step: Phase, e: EngineError| (step, DriverError::Refused(e.to_string()));
        let prepared = self.with_state(|s| {
            let volume = s.volumes.get(&volume)?.clone();
            let old = s.bricks.get(&old)?.clone();
            let new = s.bricks.get(&new)?.clone();
            Some((
                self.target(s, &volume),
                plan::address(s, &old),
                plan::address(s, &new),
                plan::placed(s, &old),
                plan::placed(s, &new),
                s.nodes
                    .get(&old.node)
                    .is_none_or(|n| n.state != State::Online)
                    || self.is_unhealthy(old.node),
            ))
        });
        let Some((target, old_address, new_address, old_placed, new_placed, old_node_down)) =
            prepared
        else {
            return Err(fail(
                Phase::Plan,
                EngineError::Invalid(format!(
                    "volume {volume} or brick {old} or {new} is not in the store"
                )),
            ));
        };
        let create = new_placed
            .map(|p| vec![Effect::CreateBrick(p)])
            .map_err(|e| EngineError::Invalid(e.to_string()));
        operation = self.step(operation, Step::Brick, create).await?;
        let (name, via) = (target.name.clone(), target.via.clone());
        let replace = Effect::ReplaceBrick {
            target,
            old: old_address,
            new: new_address.clone(),
        };
        operation = self
            .step(operation, Step::Replace, Ok(vec![replace]))
            .await?;
        self.await_brick_online(&name, &via, &new_address).await;
        if !operation.has_done(Step::Teardown) {
            let teardown = match old_placed {
                Ok(p) => apply_all(&self.driver, vec![Effect::DestroyBrick(p)]).await,
                Err(e) => Err(DriverError::Refused(e.to_string())),
            };
            match teardown {
                Ok(()) => {}
                // A node that is leaving (offline or failed) or unreachable
                // keeps its old brick; if it comes back, `aplo check`
                // reports it as an orphan and `aplo repair` removes it (no
                // gluster volume uses it now).
                Err(e) if old_node_down => {
                    tracing::warn!(brick = %old, error = %e, "the old brick's node is leaving or unreachable; its brick is left there for `aplo repair` if it returns");
                }
                Err(e) => return Err((Phase::Step(Step::Teardown), e)),
            }
            operation = self
                .step_done(&operation, Step::Teardown)
                .map_err(|e| fail(Phase::Step(Step::Teardown), e))?;
        }
        self.commit(vec![
            Change::DeleteBrick(old),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| fail(Phase::Finish, e))?;
        tracing::info!(volume = %volume, %old, %new, "brick replaced");
        Ok(())
    }

    /// Wait (up to 30 s) until gluster reports the new brick's process
    /// online: glusterd starts it during `replace-brick`, and it takes a
    /// second or two to sign in. Not a failure if it does not: `aplo check`
    /// reports a brick whose process is down, and `aplo repair` restarts it.
    async fn await_brick_online(
        &self,
        volume: &str,
        via: &[crate::model::storage::NodeRecord],
        brick: &crate::plan::effect::BrickAddress,
    ) {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(30) {
            let Ok(status) = self.driver.volume_status(via, volume).await else {
                return;
            };
            match status
                .iter()
                .find(|b| b.host == brick.host && b.path == brick.path)
            {
                Some(b) if b.online => return,
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                // Not listed (a simulation, or a status gluster could not
                // give in full): nothing to wait for.
                None => return,
            }
        }
        tracing::warn!(%volume, %brick, "the new brick's process is not online after 30 s; `aplo check` will report it");
    }

    /// Undo a replacement gluster has not taken: destroy the new brick and
    /// drop its record; the old brick stays the volume's.
    pub(super) async fn undo_replace(
        &self,
        operation: &OperationRecord,
    ) -> Result<(), EngineError> {
        let Operation::ReplaceBrick { new, .. } = operation.operation else {
            unreachable!("undo_replace undoes replace operations")
        };
        let mut marked = operation.clone();
        marked.rolling_back = true;
        self.commit(vec![Change::PutOperation(marked)])?;
        let effects = self.with_state(|s| {
            let bricks: Vec<&BrickRecord> = s.bricks.get(&new).into_iter().collect();
            self.bricks_effects(s, &bricks, Effect::DestroyBrick)
        })?;
        apply_all(&self.driver, effects)
            .await
            .map_err(|source| EngineError::Failed {
                operation: "undo replace brick",
                subject: new.to_string(),
                step: Phase::Step(Step::Brick),
                source: Box::new(source),
                outcome: "the journal keeps the operation".into(),
            })?;
        self.commit(vec![
            Change::DeleteBrick(new),
            Change::DeleteOperation(operation.id),
        ])
    }

    /// Whether gluster's volume already has the operation's new brick.
    pub(super) async fn gluster_took(
        &self,
        operation: &OperationRecord,
    ) -> Result<bool, EngineError> {
        let Operation::ReplaceBrick { volume, new, .. } = operation.operation else {
            return Ok(false);
        };
        let Some((name, via, address)) = self.with_state(|s| {
            let volume = s.volumes.get(&volume)?;
            let brick = s.bricks.get(&new)?;
            Some((
                volume.name.clone(),
                self.target(s, volume).via,
                plan::address(s, brick),
            ))
        }) else {
            return Ok(false);
        };
        let volumes = self.driver.volumes(&via).await.map_err(|e| {
            EngineError::Conflict(format!(
                "gluster could not be asked whether volume {name} already uses brick {address} ({e}); the replacement stays journaled"
            ))
        })?;
        Ok(volumes.iter().any(|v| {
            v.name == name
                && v.bricks
                    .iter()
                    .any(|b| b.host == address.host && b.path == address.path)
        }))
    }

    /// Move every brick off `device` (heketi's device removal), then mark
    /// it failed. The device is taken offline first, so no placement picks
    /// it meanwhile. Each brick moves whole or not at all; if one cannot,
    /// the device stays offline with the bricks not yet moved, and asking
    /// again goes on.
    pub async fn evacuate_device(&self, device: Id) -> Result<Evacuation, EngineError> {
        self.evacuate(|b| b.device == device, &[], &format!("device {device}"))
            .await
    }

    /// Move every brick off `node` to the cluster's other nodes.
    pub async fn evacuate_node(&self, node: Id) -> Result<Evacuation, EngineError> {
        self.evacuate(|b| b.node == node, &[node], &format!("node {node}"))
            .await
    }

    async fn evacuate(
        &self,
        on: impl Fn(&BrickRecord) -> bool,
        leaving: &[Id],
        what: &str,
    ) -> Result<Evacuation, EngineError> {
        let mut bricks: Vec<BrickRecord> =
            self.with_state(|s| s.bricks.values().filter(|b| on(b)).cloned().collect());
        bricks.sort_by_key(|b| (b.volume, b.set, b.position));
        let mut report = Evacuation::default();
        for brick in bricks {
            let name = self
                .with_state(|s| s.volumes.get(&brick.volume).map(|v| v.name.clone()))
                .unwrap_or_else(|| brick.volume.to_string());
            let new = self.replace_brick(brick.id, leaving).await.map_err(|e| {
                EngineError::Conflict(format!(
                    "moving brick {} of volume {name} off {what} failed: {e}; {} brick(s) moved before it",
                    brick.id,
                    report.moved.len()
                ))
            })?;
            let (from, to) = self.with_state(|s| {
                let node = |id: Id| {
                    s.nodes
                        .get(&id)
                        .map_or_else(|| id.to_string(), |n| n.manage.clone())
                };
                (node(brick.node), node(new.node))
            });
            report.moved.push(format!(
                "volume {name}: brick {} on {from} -> brick {} on {to}",
                brick.id, new.id
            ));
        }
        Ok(report)
    }
}
