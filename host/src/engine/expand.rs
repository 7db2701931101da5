//! Expanding a volume: in place when every brick's device has room,
//! otherwise by new brick sets from the placement policy and a rebalance.

use super::reserve::{DECIDE_ATTEMPTS, Stale};
use super::volume::{apply_all, check_size};
use super::{Engine, EngineError, StepError};
use crate::engine::driver::DriverError;
use crate::engine::{FaultPoint, Phase};
use crate::model::journal::{Operation, OperationKind, OperationRecord, Step};
use crate::model::storage::{BrickRecord, VolumeRecord, VolumeState};
use crate::model::{Claim, Id, Pairs, PlacementRequest, format_size};
use crate::plan::effect::Effect;
use crate::plan::volume as plan;
use crate::store::Change;

impl Engine {
    /// Grow a volume to `to_bytes` usable: in place when every brick's
    /// device has the room, otherwise by new brick sets from the placement
    /// policy, then a rebalance. The quota policy is asked first.
    #[tracing::instrument(skip_all, fields(volume = name_or_id, to_bytes))]
    pub async fn expand_volume(
        &self,
        name_or_id: &str,
        to_bytes: u64,
    ) -> Result<VolumeRecord, EngineError> {
        check_size(to_bytes)?;
        let ready = |volume: &VolumeRecord| {
            if to_bytes <= volume.bytes {
                return Err(EngineError::Invalid(format!(
                    "volume {} already has {}; an expansion needs a larger size than that, not {}",
                    volume.name,
                    format_size(volume.bytes),
                    format_size(to_bytes)
                )));
            }
            if volume.state != VolumeState::Ready {
                return Err(EngineError::Conflict(format!(
                    "volume {} is {:?}, not ready; run `aplo repair` first",
                    volume.name, volume.state
                )));
            }
            Ok(())
        };
        let volume = self.find_volume(name_or_id)?;
        ready(&volume)?;
        let set = self.registry.resolve(&volume.parameters)?;
        self.recent_health().await;
        // Busy for the whole expansion: other operations on the volume are
        // refused at once meanwhile (not made to wait), and none changes
        // its record, so what is read now stays true until the journal.
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
        let volume = self.find_volume(&volume.id.to_string())?;
        ready(&volume)?;
        let claim = Claim {
            namespace: volume
                .claim
                .as_ref()
                .map(|c| c.namespace.clone())
                .unwrap_or_default(),
            name: volume
                .claim
                .as_ref()
                .map_or_else(|| volume.name.clone(), |c| c.name.clone()),
            labels: Pairs::new(),
            annotations: Pairs::new(),
            requested_bytes: to_bytes,
            access_modes: Vec::new(),
        };
        let placement = PlacementRequest {
            volume_name: volume.name.clone(),
            bytes: to_bytes - volume.bytes,
            scheme: volume.scheme,
            snapshot_reserve: volume.snapshot_reserve,
            preferred_zone: None,
            preferred_node: None,
        };
        // Decide with no lock held (see `reserve`), then reserve what still
        // holds under the planning lock.
        let mut attempt = 1;
        let operation = loop {
            let quota = self
                .quota(&set, &claim, volume.bytes, Some(volume.id))
                .await?;
            let hard_limit = match quota.hard_limit {
                Some(limit) => Some(limit),
                None if set.quota.is_some() => None,
                None => volume.hard_limit.map(|_| to_bytes),
            };
            // Placement is asked only when the bricks cannot grow in place.
            let placed = match self.with_state(|s| plan::grow_in_place(s, &volume, to_bytes)) {
                Some(_) => None,
                None => Some(
                    self.place(&set, placement.clone(), self.policy_topology())
                        .await?,
                ),
            };
            let planning = self.planning.lock().await;
            let grown = self.with_state(|s| plan::grow_in_place(s, &volume, to_bytes));
            let holds = self
                .quota_holds(&quota, &claim.namespace, Some(volume.id))
                .and_then(|()| match (&grown, &placed) {
                    (Some(_), _) => Ok(()),
                    (None, Some(placed)) => {
                        Engine::layout_holds(&placement, &self.policy_topology(), &placed.layout)
                    }
                    (None, None) => Err(Stale::NoRoomToGrow),
                });
            if let Err(why) = holds {
                drop(planning);
                tracing::info!(volume = %volume.name, attempt, %why, "deciding again: the state changed while the policies decided");
                if attempt == DECIDE_ATTEMPTS {
                    return Err(Engine::stale(
                        &format!("expand volume {}", volume.name),
                        &why,
                    ));
                }
                attempt += 1;
                continue;
            }
            let mut changes = Vec::new();
            let operation = match (grown, placed) {
                (Some(grown), _) => {
                    let before = self.with_state(|s| {
                        grown
                            .iter()
                            .filter_map(|b| s.bricks.get(&b.id))
                            .map(|b| (b.id, b.bytes, b.consumed))
                            .collect()
                    });
                    changes.extend(grown.into_iter().map(Change::PutBrick));
                    Operation::ExpandVolume {
                        volume: volume.id,
                        from_bytes: volume.bytes,
                        to_bytes,
                        grown: before,
                        added: Vec::new(),
                        hard_limit,
                    }
                }
                (None, placed) => {
                    let placed = placed.expect("checked above");
                    let added = self
                        .with_state(|s| {
                            let first_set = s
                                .bricks_of(volume.id)
                                .iter()
                                .map(|b| b.set + 1)
                                .max()
                                .unwrap_or(0);
                            plan::bricks_for(
                                s,
                                volume.id,
                                &placed.layout,
                                first_set,
                                volume.snapshot_reserve,
                                &self.config.lvm_root,
                                &mut || self.ids.next(),
                            )
                        })
                        .map_err(|e| EngineError::Invalid(e.to_string()))?;
                    let ids = added.iter().map(|b| b.id).collect();
                    changes.extend(added.into_iter().map(Change::PutBrick));
                    Operation::ExpandVolume {
                        volume: volume.id,
                        from_bytes: volume.bytes,
                        to_bytes,
                        grown: Vec::new(),
                        added: ids,
                        hard_limit,
                    }
                }
            };
            let operation = OperationRecord::new(self.ids.next(), operation);
            changes.push(Change::PutVolume(VolumeRecord {
                state: VolumeState::Expanding,
                ..volume.clone()
            }));
            changes.push(Change::PutOperation(operation.clone()));
            self.commit(changes)?;
            drop(planning);
            break operation;
        };
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::ExpandVolume));
        match self.expand_steps(operation.clone()).await {
            Ok(volume) => Ok(volume),
            Err((step, source)) => {
                let outcome = if operation.expansion_undoable() {
                    self.undo_outcome(self.undo_expand(&operation).await)
                } else {
                    "the journal keeps the operation; the next start or `aplo repair` finishes it"
                        .into()
                };
                Err(EngineError::Failed {
                    operation: "expand volume",
                    subject: volume.name,
                    step,
                    source: Box::new(source),
                    outcome,
                })
            }
        }
    }

    pub(super) async fn expand_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<VolumeRecord, StepError> {
        let Operation::ExpandVolume {
            volume: id,
            ref grown,
            ref added,
            hard_limit,
            ..
        } = operation.operation
        else {
            unreachable!("expand_steps runs expand operations")
        };
        let (grown, added) = (grown.clone(), added.clone());
        let fail = |step: Phase, e: EngineError| (step, DriverError::Refused(e.to_string()));
        let prepared = self.with_state(|s| {
            let volume = s.volumes.get(&id)?.clone();
            let pick = |ids: Vec<Id>| -> Vec<BrickRecord> {
                ids.iter()
                    .filter_map(|b| s.bricks.get(b))
                    .cloned()
                    .collect()
            };
            let grow = pick(grown.iter().map(|g| g.0).collect());
            let new = pick(added.clone());
            let refs: Vec<&BrickRecord> = new.iter().collect();
            let force = plan::needs_force(s, &refs);
            let addresses = new.iter().map(|b| plan::address(s, b)).collect::<Vec<_>>();
            let grow_effects =
                self.bricks_effects(s, &grow.iter().collect::<Vec<_>>(), Effect::GrowBrick);
            let create_effects = self.bricks_effects(s, &refs, Effect::CreateBrick);
            Some((
                volume.clone(),
                self.target(s, &volume),
                grow_effects,
                create_effects,
                addresses,
                force,
            ))
        });
        let Some((volume, target, grow_effects, create_effects, addresses, force)) = prepared
        else {
            return Err(fail(
                Phase::Plan,
                EngineError::Invalid(format!("volume {id} is not in the store")),
            ));
        };
        if !grown.is_empty() {
            operation = self.step(operation, Step::Grow, grow_effects).await?;
        }
        if !added.is_empty() {
            operation = self.step(operation, Step::Bricks, create_effects).await?;
            let add = Effect::AddBricks {
                target: target.clone(),
                scheme: volume.scheme,
                bricks: addresses,
                force,
            };
            operation = self.step(operation, Step::AddBricks, Ok(vec![add])).await?;
            let rebalance = Effect::Rebalance {
                target: target.clone(),
            };
            operation = self
                .step(operation, Step::Rebalance, Ok(vec![rebalance]))
                .await?;
        }
        if let Some(bytes) = hard_limit {
            let quota = Effect::SetQuota { target, bytes };
            operation = self.step(operation, Step::Quota, Ok(vec![quota])).await?;
        }
        let bricks: Vec<BrickRecord> =
            self.with_state(|s| s.bricks_of(id).into_iter().cloned().collect());
        let ready = VolumeRecord {
            bytes: plan::usable(&volume.scheme, &bricks),
            hard_limit,
            state: VolumeState::Ready,
            ..volume
        };
        self.commit(vec![
            Change::PutVolume(ready.clone()),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| fail(Phase::Finish, e))?;
        tracing::info!(volume = %ready.name, bytes = ready.bytes, "volume expanded");
        Ok(ready)
    }

    /// Undo an expansion by new brick sets that gluster has not taken yet:
    /// destroy the new bricks and drop their records.
    pub(super) async fn undo_expand(&self, operation: &OperationRecord) -> Result<(), EngineError> {
        let Operation::ExpandVolume {
            volume: id,
            ref added,
            ..
        } = operation.operation
        else {
            unreachable!("undo_expand undoes expand operations")
        };
        let mut marked = operation.clone();
        marked.rolling_back = true;
        self.commit(vec![Change::PutOperation(marked)])?;
        let (volume, effects) = self.with_state(|s| {
            let bricks: Vec<&BrickRecord> = added.iter().filter_map(|b| s.bricks.get(b)).collect();
            (
                s.volumes.get(&id).cloned(),
                self.bricks_effects(s, &bricks, Effect::DestroyBrick),
            )
        });
        apply_all(&self.driver, effects?)
            .await
            .map_err(|source| EngineError::Failed {
                operation: "undo expand volume",
                subject: id.to_string(),
                step: Phase::Step(Step::Bricks),
                source: Box::new(source),
                outcome: "the journal keeps the operation".into(),
            })?;
        let mut changes: Vec<Change> = added.iter().copied().map(Change::DeleteBrick).collect();
        if let Some(volume) = volume {
            changes.push(Change::PutVolume(VolumeRecord {
                state: VolumeState::Ready,
                ..volume
            }));
        }
        changes.push(Change::DeleteOperation(operation.id));
        self.commit(changes)
    }
}
