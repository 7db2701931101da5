//! Volume operations: create, delete, expand, and recovery of unfinished
//! ones. Each runs as named steps; each step is journaled once done.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Engine, EngineError, MAX_VOLUME_BYTES};
use crate::exec::driver::{Driver, DriverError};
use crate::model::paths::check_volume_name;
use crate::model::storage::{
    BrickRecord, ClaimRef, Operation, OperationRecord, Snapshot, VolumeRecord, VolumeState,
};
use crate::model::{
    Claim, Decision, Id, Pairs, PlacementRequest, QuotaRequest, Verdict, format_size,
};
use crate::plan::effect::{Effect, Target};
use crate::plan::volume as plan;
use crate::policy::{PolicySet, PreparedTopology};
use crate::store::Change;

/// A request for a new volume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateRequest {
    /// The gluster volume name; `vol_<id>` when not given.
    pub name: Option<String>,
    /// Usable bytes wanted.
    pub bytes: u64,
    /// StorageClass parameters: which policies decide, and their settings.
    pub parameters: Pairs,
    /// The claim the volume is for (Kubernetes), if any.
    pub claim: Option<Claim>,
    /// Preferred zone for the first brick of each set.
    pub preferred_zone: Option<String>,
    /// Preferred node (manage hostname) for the first brick of each set.
    pub preferred_node: Option<String>,
}

/// What recovery did with each unfinished operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// One line per operation: what it was and how it ended.
    pub outcomes: Vec<String>,
    /// Operations still unfinished (recovery failed; they stay journaled).
    pub unfinished: usize,
}

fn refused<T>(
    verdict: Verdict<T>,
    decision: Decision,
    policy: &crate::policy::Bound,
) -> Result<T, EngineError> {
    match verdict {
        Verdict::Granted(value) => Ok(value),
        Verdict::Refused(reason) => Err(EngineError::Refused {
            decision,
            policy: policy.policy.name().to_owned(),
            reason,
        }),
    }
}

fn check_size(bytes: u64) -> Result<(), EngineError> {
    if bytes == 0 {
        return Err(EngineError::Invalid(
            "the size is zero; a volume needs at least one byte".into(),
        ));
    }
    if bytes > MAX_VOLUME_BYTES {
        return Err(EngineError::Invalid(format!(
            "the size {} is larger than the {} aplo accepts",
            format_size(bytes),
            format_size(MAX_VOLUME_BYTES)
        )));
    }
    Ok(())
}

/// Apply effects concurrently (per-node order is kept by each node's
/// executor); every effect runs to its end, then the first error is
/// returned.
async fn apply_all(driver: &Arc<dyn Driver>, effects: Vec<Effect>) -> Result<(), DriverError> {
    let mut tasks = JoinSet::new();
    for effect in effects {
        let driver = driver.clone();
        tasks.spawn(async move { driver.apply(&effect).await.map(|_| ()) });
    }
    let mut first = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .unwrap_or_else(|e| Err(DriverError::Refused(format!("a brick task failed: {e}"))));
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

impl Engine {
    fn find_volume(&self, name_or_id: &str) -> Result<VolumeRecord, EngineError> {
        self.with_state(|s| {
            s.volume_named(name_or_id)
                .or_else(|| {
                    name_or_id
                        .parse()
                        .ok()
                        .and_then(|id: Id| s.volumes.get(&id))
                })
                .cloned()
        })
        .ok_or_else(|| EngineError::NotFound {
            kind: "volume",
            name: name_or_id.to_owned(),
        })
    }

    /// One volume, by name or id.
    pub fn volume(
        &self,
        name_or_id: &str,
    ) -> Result<(VolumeRecord, Vec<BrickRecord>), EngineError> {
        let volume = self.find_volume(name_or_id)?;
        let bricks = self.with_state(|s| s.bricks_of(volume.id).into_iter().cloned().collect());
        Ok((volume, bricks))
    }

    /// Every volume.
    pub fn volumes(&self) -> Vec<VolumeRecord> {
        self.with_state(|s| s.volumes.values().cloned().collect())
    }

    pub(super) fn target(&self, s: &Snapshot, volume: &VolumeRecord) -> Target {
        plan::target(s, volume, &|n| self.is_unhealthy(n))
    }

    fn bricks_effects(
        &self,
        s: &Snapshot,
        bricks: &[&BrickRecord],
        make: fn(crate::plan::effect::Placed) -> Effect,
    ) -> Result<Vec<Effect>, EngineError> {
        bricks
            .iter()
            .map(|b| plan::placed(s, b).map(make).map_err(EngineError::Invalid))
            .collect()
    }

    async fn quota(
        &self,
        set: &PolicySet,
        claim: &Claim,
        current_bytes: u64,
    ) -> Result<Option<u64>, EngineError> {
        let Some(bound) = &set.quota else {
            return Ok(None);
        };
        let (namespace_usage, cluster_usage) =
            self.with_state(|s| plan::usage(s, &claim.namespace));
        let verdict = set
            .quota_async(QuotaRequest {
                claim: claim.clone(),
                current_bytes,
                namespace_usage,
                cluster_usage,
            })
            .await?;
        Ok(refused(verdict, Decision::Quota, bound)?.hard_limit)
    }

    /// Create a volume: the policies decide durability, quota and
    /// placement, then bricks, the gluster volume, its options, start and
    /// quota follow as journaled steps. On failure everything created is
    /// removed again before the error is returned.
    #[tracing::instrument(skip_all, fields(name = ?request.name, bytes = request.bytes))]
    pub async fn create_volume(&self, request: CreateRequest) -> Result<VolumeRecord, EngineError> {
        check_size(request.bytes)?;
        let id = self.ids.next();
        let name = request.name.clone().unwrap_or_else(|| format!("vol_{id}"));
        check_volume_name(&name).map_err(EngineError::Invalid)?;
        let set = self.registry.resolve(&request.parameters)?;
        let claim = request.claim.clone().unwrap_or_else(|| Claim {
            namespace: String::new(),
            name: name.clone(),
            labels: Pairs::new(),
            annotations: Pairs::new(),
            requested_bytes: request.bytes,
            access_modes: Vec::new(),
        });
        let decision = refused(
            set.durability_async(claim.clone()).await?,
            Decision::Durability,
            &set.durability,
        )?;
        self.recent_health().await;

        let planning = self.planning.lock().await;
        if self.with_state(|s| s.volume_named(&name).is_some()) {
            return Err(EngineError::Conflict(format!(
                "a volume named '{name}' already exists"
            )));
        }
        let hard_limit = self.quota(&set, &claim, 0).await?;
        let topology = Arc::new(PreparedTopology::new(Arc::new(self.policy_topology())));
        let placed = refused(
            set.place_async(
                PlacementRequest {
                    volume_name: name.clone(),
                    bytes: request.bytes,
                    scheme: decision.scheme,
                    snapshot_reserve: decision.snapshot_reserve,
                    preferred_zone: request.preferred_zone.clone(),
                    preferred_node: request.preferred_node.clone(),
                },
                topology,
            )
            .await?,
            Decision::Placement,
            &set.placement,
        )?;
        let claim_ref = request.claim.as_ref().map(|c| ClaimRef {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
        });
        let mut new = self
            .with_state(|s| {
                plan::new_volume(
                    s,
                    id,
                    &name,
                    &decision,
                    &placed.layout,
                    hard_limit,
                    claim_ref,
                    &self.config.lvm_root,
                    || self.ids.next(),
                )
            })
            .map_err(EngineError::Invalid)?;
        new.volume.parameters = request.parameters.clone();
        let operation = OperationRecord {
            id: self.ids.next(),
            operation: Operation::CreateVolume { volume: id },
            done: Vec::new(),
            rolling_back: false,
        };
        let _busy = self.claim_busy(id, &format!("volume {name}"))?;
        let mut changes = vec![Change::PutVolume(new.volume.clone())];
        changes.extend(new.bricks.iter().cloned().map(Change::PutBrick));
        changes.push(Change::PutOperation(operation.clone()));
        self.commit(changes)?;
        drop(planning);
        tracing::info!(volume = %name, %id, bricks = new.bricks.len(), "volume planned and journaled");
        self.config.faults.reached("create-volume:journaled");

        match self.create_steps(operation.clone()).await {
            Ok(volume) => Ok(volume),
            Err((step, source)) => {
                let outcome = self.undo_outcome(self.undo_create(&operation).await);
                Err(EngineError::Failed {
                    operation: "create volume",
                    subject: name,
                    step,
                    source: Box::new(source),
                    outcome,
                })
            }
        }
    }

    pub(super) fn undo_outcome(&self, undo: Result<(), EngineError>) -> String {
        match undo {
            Ok(()) => "rolled back: nothing of it is left".into(),
            Err(e) => format!(
                "rolling back failed too ({e}); the journal keeps the operation, and the next start or `aplo repair` finishes undoing it"
            ),
        }
    }

    /// The forward steps of a create, skipping those already done.
    async fn create_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<VolumeRecord, (String, DriverError)> {
        let Operation::CreateVolume { volume: id } = operation.operation else {
            unreachable!("create_steps runs create operations")
        };
        let fail =
            |step: &str, e: EngineError| (step.to_owned(), DriverError::Refused(e.to_string()));
        let (volume, target, bricks, force) = self
            .with_state(|s| {
                let volume = s.volumes.get(&id)?.clone();
                let bricks: Vec<BrickRecord> = s.bricks_of(id).into_iter().cloned().collect();
                let refs: Vec<&BrickRecord> = bricks.iter().collect();
                let force = plan::needs_force(s, &refs);
                Some((volume.clone(), self.target(s, &volume), bricks, force))
            })
            .ok_or_else(|| {
                fail(
                    "plan",
                    EngineError::Invalid(format!("volume {id} is not in the store")),
                )
            })?;
        let done = |op: &OperationRecord, step: &str| op.done.iter().any(|d| d == step);

        if !done(&operation, "bricks") {
            let effects = self
                .with_state(|s| {
                    let refs: Vec<&BrickRecord> = bricks.iter().collect();
                    self.bricks_effects(s, &refs, Effect::CreateBrick)
                })
                .map_err(|e| fail("bricks", e))?;
            apply_all(&self.driver, effects)
                .await
                .map_err(|e| ("bricks".to_owned(), e))?;
            operation = self
                .step_done(&operation, "bricks")
                .map_err(|e| fail("bricks", e))?;
        }
        let steps: Vec<(&str, Option<Effect>)> = vec![
            (
                "volume",
                Some(Effect::CreateVolume {
                    target: target.clone(),
                    scheme: volume.scheme,
                    force,
                }),
            ),
            (
                "options",
                Some(Effect::SetOptions {
                    target: target.clone(),
                    options: gluster_options(&volume),
                }),
            ),
            (
                "start",
                Some(Effect::StartVolume {
                    target: target.clone(),
                    force: false,
                }),
            ),
            (
                "quota",
                volume.hard_limit.map(|bytes| Effect::SetQuota {
                    target: target.clone(),
                    bytes,
                }),
            ),
        ];
        for (step, effect) in steps {
            let Some(effect) = effect else { continue };
            if done(&operation, step) {
                continue;
            }
            self.driver
                .apply(&effect)
                .await
                .map_err(|e| (step.to_owned(), e))?;
            operation = self
                .step_done(&operation, step)
                .map_err(|e| fail(step, e))?;
        }
        let ready = VolumeRecord {
            state: VolumeState::Ready,
            ..volume
        };
        self.commit(vec![
            Change::PutVolume(ready.clone()),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| fail("finish", e))?;
        tracing::info!(volume = %ready.name, "volume created");
        Ok(ready)
    }

    /// Undo a create: the gluster volume (if it is aplo's), then every
    /// brick, then the records.
    async fn undo_create(&self, operation: &OperationRecord) -> Result<(), EngineError> {
        let Operation::CreateVolume { volume: id } = operation.operation else {
            unreachable!("undo_create undoes create operations")
        };
        let mut marked = operation.clone();
        marked.rolling_back = true;
        self.commit(vec![Change::PutOperation(marked)])?;
        self.remove_volume_and_bricks(id, operation.id, "undo create volume")
            .await
    }

    /// Delete the gluster volume and every brick of a volume, then its
    /// records and the journal entry, in one transaction.
    async fn remove_volume_and_bricks(
        &self,
        id: Id,
        operation: Id,
        what: &'static str,
    ) -> Result<(), EngineError> {
        let Some((volume, target, brick_effects, brick_ids)) = self.with_state(|s| {
            let volume = s.volumes.get(&id)?.clone();
            let bricks = s.bricks_of(id);
            Some((
                volume.clone(),
                self.target(s, &volume),
                self.bricks_effects(s, &bricks, Effect::DestroyBrick),
                bricks.iter().map(|b| b.id).collect::<Vec<_>>(),
            ))
        }) else {
            // Nothing left but the journal entry.
            return self.commit(vec![Change::DeleteOperation(operation)]);
        };
        let failed = |step: &str, source: DriverError| EngineError::Failed {
            operation: what,
            subject: volume.name.clone(),
            step: step.to_owned(),
            source: Box::new(source),
            outcome: "the journal keeps the operation".into(),
        };
        self.driver
            .apply(&Effect::DeleteVolume { target })
            .await
            .map_err(|e| failed("delete", e))?;
        apply_all(&self.driver, brick_effects?)
            .await
            .map_err(|e| failed("bricks", e))?;
        let mut changes: Vec<Change> = brick_ids.into_iter().map(Change::DeleteBrick).collect();
        changes.push(Change::DeleteVolume(id));
        changes.push(Change::DeleteOperation(operation));
        self.commit(changes)
    }

    /// Delete a volume: stop it, delete it, tear its bricks down and free
    /// their space. A delete, once journaled, always rolls forward.
    #[tracing::instrument(skip_all, fields(volume = name_or_id))]
    pub async fn delete_volume(&self, name_or_id: &str) -> Result<(), EngineError> {
        let planning = self.planning.lock().await;
        let volume = self.find_volume(name_or_id)?;
        let pending = self.with_state(|s| {
            s.operations
                .values()
                .any(|o| o.operation.volume() == Some(volume.id))
        });
        if pending {
            return Err(EngineError::Conflict(format!(
                "volume {} has an unfinished operation; run `aplo repair` first",
                volume.name
            )));
        }
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
        let operation = OperationRecord {
            id: self.ids.next(),
            operation: Operation::DeleteVolume { volume: volume.id },
            done: Vec::new(),
            rolling_back: false,
        };
        self.commit(vec![
            Change::PutVolume(VolumeRecord {
                state: VolumeState::Deleting,
                ..volume.clone()
            }),
            Change::PutOperation(operation.clone()),
        ])?;
        drop(planning);
        self.config.faults.reached("delete-volume:journaled");
        self.delete_steps(operation).await
    }

    async fn delete_steps(&self, mut operation: OperationRecord) -> Result<(), EngineError> {
        let Operation::DeleteVolume { volume: id } = operation.operation else {
            unreachable!("delete_steps runs delete operations")
        };
        let Some((volume, target, brick_effects, brick_ids)) = self.with_state(|s| {
            let volume = s.volumes.get(&id)?.clone();
            let bricks = s.bricks_of(id);
            Some((
                volume.clone(),
                self.target(s, &volume),
                self.bricks_effects(s, &bricks, Effect::DestroyBrick),
                bricks.iter().map(|b| b.id).collect::<Vec<_>>(),
            ))
        }) else {
            return self.commit(vec![Change::DeleteOperation(operation.id)]);
        };
        let failed = |step: &str, source: DriverError| EngineError::Failed {
            operation: "delete volume",
            subject: volume.name.clone(),
            step: step.to_owned(),
            source: Box::new(source),
            outcome:
                "the volume is marked deleting; the next start or `aplo repair` finishes the delete"
                    .into(),
        };
        let steps = [
            (
                "stop",
                Effect::StopVolume {
                    target: target.clone(),
                },
            ),
            ("delete", Effect::DeleteVolume { target }),
        ];
        for (step, effect) in steps {
            if operation.done.iter().any(|d| d == step) {
                continue;
            }
            self.driver
                .apply(&effect)
                .await
                .map_err(|e| failed(step, e))?;
            operation = self.step_done(&operation, step)?;
        }
        if !operation.done.iter().any(|d| d == "bricks") {
            apply_all(&self.driver, brick_effects?)
                .await
                .map_err(|e| failed("bricks", e))?;
            operation = self.step_done(&operation, "bricks")?;
        }
        let mut changes: Vec<Change> = brick_ids.into_iter().map(Change::DeleteBrick).collect();
        changes.push(Change::DeleteVolume(id));
        changes.push(Change::DeleteOperation(operation.id));
        self.commit(changes)?;
        tracing::info!(volume = %volume.name, "volume deleted");
        Ok(())
    }

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
        let volume = self.find_volume(name_or_id)?;
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
        let set = self.registry.resolve(&volume.parameters)?;
        self.recent_health().await;
        let planning = self.planning.lock().await;
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
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
        let hard_limit = match self.quota(&set, &claim, volume.bytes).await? {
            Some(limit) => Some(limit),
            None if set.quota.is_some() => None,
            None => volume.hard_limit.map(|_| to_bytes),
        };
        let grown = self.with_state(|s| plan::grow_in_place(s, &volume, to_bytes));
        let mut changes = Vec::new();
        let operation = match grown {
            Some(grown) => {
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
            None => {
                let topology = Arc::new(PreparedTopology::new(Arc::new(self.policy_topology())));
                let placed = refused(
                    set.place_async(
                        PlacementRequest {
                            volume_name: volume.name.clone(),
                            bytes: to_bytes - volume.bytes,
                            scheme: volume.scheme,
                            snapshot_reserve: volume.snapshot_reserve,
                            preferred_zone: None,
                            preferred_node: None,
                        },
                        topology,
                    )
                    .await?,
                    Decision::Placement,
                    &set.placement,
                )?;
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
                    .map_err(EngineError::Invalid)?;
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
        let operation = OperationRecord {
            id: self.ids.next(),
            operation,
            done: Vec::new(),
            rolling_back: false,
        };
        changes.push(Change::PutVolume(VolumeRecord {
            state: VolumeState::Expanding,
            ..volume.clone()
        }));
        changes.push(Change::PutOperation(operation.clone()));
        self.commit(changes)?;
        drop(planning);
        self.config.faults.reached("expand-volume:journaled");
        match self.expand_steps(operation.clone()).await {
            Ok(volume) => Ok(volume),
            Err((step, source)) => {
                let outcome = if undoable(&operation) {
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

    async fn expand_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<VolumeRecord, (String, DriverError)> {
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
        let fail =
            |step: &str, e: EngineError| (step.to_owned(), DriverError::Refused(e.to_string()));
        let done = |op: &OperationRecord, step: &str| op.done.iter().any(|d| d == step);
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
                "plan",
                EngineError::Invalid(format!("volume {id} is not in the store")),
            ));
        };
        if !grown.is_empty() && !done(&operation, "grow") {
            apply_all(&self.driver, grow_effects.map_err(|e| fail("grow", e))?)
                .await
                .map_err(|e| ("grow".to_owned(), e))?;
            operation = self
                .step_done(&operation, "grow")
                .map_err(|e| fail("grow", e))?;
        }
        if !added.is_empty() {
            if !done(&operation, "bricks") {
                apply_all(&self.driver, create_effects.map_err(|e| fail("bricks", e))?)
                    .await
                    .map_err(|e| ("bricks".to_owned(), e))?;
                operation = self
                    .step_done(&operation, "bricks")
                    .map_err(|e| fail("bricks", e))?;
            }
            let steps = [
                (
                    "add-bricks",
                    Effect::AddBricks {
                        target: target.clone(),
                        scheme: volume.scheme,
                        bricks: addresses,
                        force,
                    },
                ),
                (
                    "rebalance",
                    Effect::Rebalance {
                        target: target.clone(),
                    },
                ),
            ];
            for (step, effect) in steps {
                if done(&operation, step) {
                    continue;
                }
                self.driver
                    .apply(&effect)
                    .await
                    .map_err(|e| (step.to_owned(), e))?;
                operation = self
                    .step_done(&operation, step)
                    .map_err(|e| fail(step, e))?;
            }
        }
        if let Some(bytes) = hard_limit
            && !done(&operation, "quota")
        {
            self.driver
                .apply(&Effect::SetQuota { target, bytes })
                .await
                .map_err(|e| ("quota".to_owned(), e))?;
            operation = self
                .step_done(&operation, "quota")
                .map_err(|e| fail("quota", e))?;
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
        .map_err(|e| fail("finish", e))?;
        tracing::info!(volume = %ready.name, bytes = ready.bytes, "volume expanded");
        Ok(ready)
    }

    /// Undo an expansion by new brick sets that gluster has not taken yet:
    /// destroy the new bricks and drop their records.
    async fn undo_expand(&self, operation: &OperationRecord) -> Result<(), EngineError> {
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
                step: "bricks".into(),
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

    /// Finish or undo every unfinished operation in the journal. Creates
    /// that had not started their volume are undone; everything else rolls
    /// forward (a create that cannot is undone). Operations whose recovery
    /// fails stay journaled for the next attempt.
    pub async fn recover(&self) -> Result<RecoveryReport, EngineError> {
        let operations: Vec<OperationRecord> =
            self.with_state(|s| s.operations.values().cloned().collect());
        let mut report = RecoveryReport::default();
        if !operations.is_empty() {
            self.refresh_health().await;
        }
        for operation in operations {
            let subject = operation
                .operation
                .volume()
                .and_then(|v| self.with_state(|s| s.volumes.get(&v).map(|v| v.name.clone())))
                .unwrap_or_else(|| operation.id.to_string());
            let what = format!("{} {subject}", operation.operation.name());
            let outcome = self.recover_one(&operation).await;
            match outcome {
                Ok(how) => report.outcomes.push(format!("{what}: {how}")),
                Err(e) => {
                    report.unfinished += 1;
                    report
                        .outcomes
                        .push(format!("{what}: still unfinished: {e}"));
                }
            }
        }
        Ok(report)
    }

    async fn recover_one(&self, operation: &OperationRecord) -> Result<&'static str, EngineError> {
        let _busy = match operation.operation {
            Operation::AddDevice { device, .. } | Operation::RemoveDevice { device } => {
                self.claim_busy(device, "the device")?
            }
            Operation::CreateVolume { volume }
            | Operation::DeleteVolume { volume }
            | Operation::ExpandVolume { volume, .. } => self.claim_busy(volume, "the volume")?,
        };
        match &operation.operation {
            Operation::CreateVolume { .. } => {
                let started = operation.done.iter().any(|d| d == "start");
                if started && !operation.rolling_back {
                    match self.create_steps(operation.clone()).await {
                        Ok(_) => return Ok("rolled forward: the volume is whole"),
                        Err((step, e)) => {
                            tracing::warn!(%step, error = %e, "rolling a create forward failed; undoing it");
                        }
                    }
                }
                let current = self
                    .with_state(|s| s.operations.get(&operation.id).cloned())
                    .unwrap_or_else(|| operation.clone());
                self.undo_create(&current).await?;
                Ok("rolled back: nothing of the volume is left")
            }
            Operation::DeleteVolume { .. } => {
                self.delete_steps(operation.clone()).await?;
                Ok("rolled forward: the volume is deleted")
            }
            Operation::ExpandVolume { .. } => {
                if undoable(operation) {
                    self.undo_expand(operation).await?;
                    Ok("rolled back: the volume has its old size")
                } else {
                    self.expand_steps(operation.clone())
                        .await
                        .map_err(|(step, source)| EngineError::Failed {
                            operation: "expand volume",
                            subject: operation.id.to_string(),
                            step,
                            source: Box::new(source),
                            outcome: "the journal keeps the operation".into(),
                        })?;
                    Ok("rolled forward: the volume has its new size")
                }
            }
            Operation::AddDevice { .. } | Operation::RemoveDevice { .. } => {
                self.recover_device(operation).await
            }
        }
    }
}

/// Whether an expansion can still be undone: it adds brick sets and gluster
/// has not taken them yet (growing in place only goes forward).
fn undoable(operation: &OperationRecord) -> bool {
    match &operation.operation {
        Operation::ExpandVolume { added, grown, .. } => {
            grown.is_empty()
                && !added.is_empty()
                && (operation.rolling_back || !operation.done.iter().any(|d| d == "add-bricks"))
        }
        _ => false,
    }
}

/// The gluster options of a volume: the durability policy's, and aplo's
/// own ids, so that a volume can be traced back to its record.
pub(super) fn gluster_options(volume: &VolumeRecord) -> Pairs {
    let mut options = volume.options.clone();
    options.insert("user.aplo.volume".into(), volume.id.to_string());
    if let Some(claim) = &volume.claim {
        options.insert(
            "user.aplo.claim".into(),
            format!("{}/{}", claim.namespace, claim.name),
        );
    }
    options
}
