//! The volume queries, and what the volume operations share (creating
//! lives in `volume/create.rs`; delete, expand and recovery beside this
//! file). Each operation runs as named steps; each step is journaled once
//! done.

mod create;

pub use self::create::{CreateRequest, OWNER_GID};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Engine, EngineError, MAX_VOLUME_BYTES, StepError};
use crate::engine::driver::{Driver, DriverError};
use crate::model::journal::{OperationRecord, Step};
use crate::model::options::OptionNames;
use crate::model::storage::{BrickRecord, ClaimRef, Snapshot, VolumeRecord};
use crate::model::{Decision, Id, Pairs, PlacementRequest, Verdict, format_size};
use crate::plan::effect::{Effect, Target};
use crate::plan::volume as plan;
use crate::policy::{PolicySet, PreparedTopology};
use crate::store::Change;

pub(super) fn refused<T>(
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

pub(super) fn check_size(bytes: u64) -> Result<(), EngineError> {
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
pub(super) async fn apply_all(
    driver: &Arc<dyn Driver>,
    effects: Vec<Effect>,
) -> Result<(), DriverError> {
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
    pub(super) fn find_volume(&self, name_or_id: &str) -> Result<VolumeRecord, EngineError> {
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

    /// The storage hostnames of the nodes holding a volume's bricks, each
    /// once, in brick order: the servers a client mounts from.
    pub fn volume_hosts(&self, volume: Id) -> Vec<String> {
        self.with_state(|s| {
            let mut hosts: Vec<String> = Vec::new();
            for brick in s.bricks_of(volume) {
                let host = s.nodes.get(&brick.node).map(|n| n.storage.clone());
                if let Some(host) = host.filter(|h| !hosts.contains(h)) {
                    hosts.push(host);
                }
            }
            hosts
        })
    }

    /// Record that a PersistentVolume now stands for a volume made for a
    /// claim (see [`ClaimRef::published`]). Idempotent.
    pub fn mark_published(&self, name_or_id: &str) -> Result<(), EngineError> {
        let volume = self.find_volume(name_or_id)?;
        if volume.claim.as_ref().is_none_or(|c| c.published) {
            return Ok(());
        }
        // Not while an operation runs on it (a delete must not see its
        // record written back); the caller marks it again later.
        let Ok(_busy) = self.claim_busy(volume.id, &format!("volume {}", volume.name)) else {
            return Ok(());
        };
        let volume = self.find_volume(name_or_id)?;
        let Some(claim) = volume.claim.as_ref().filter(|c| !c.published) else {
            return Ok(());
        };
        let claim = ClaimRef {
            published: true,
            ..claim.clone()
        };
        self.commit(vec![Change::PutVolume(VolumeRecord {
            claim: Some(claim),
            ..volume
        })])
    }

    /// The volume options gluster has: every option a volume is given must
    /// be one of them (or a custom `user.` one). Asked of the nodes (the
    /// driver keeps the answer); the list built into aplo when none answers.
    pub async fn option_names(&self) -> Arc<OptionNames> {
        let via: Vec<_> = self.with_state(|s| {
            s.clusters
                .keys()
                .flat_map(|c| plan::via(s, *c, &|n| self.is_unhealthy(n)))
                .collect()
        });
        self.driver.option_names(&via).await
    }

    /// Every volume.
    pub fn volumes(&self) -> Vec<VolumeRecord> {
        self.with_state(|s| s.volumes.values().cloned().collect())
    }

    pub(super) fn target(&self, s: &Snapshot, volume: &VolumeRecord) -> Target {
        plan::target(s, volume, &|n| self.is_unhealthy(n))
    }

    pub(super) fn bricks_effects(
        &self,
        s: &Snapshot,
        bricks: &[&BrickRecord],
        make: fn(crate::plan::effect::Placed) -> Effect,
    ) -> Result<Vec<Effect>, EngineError> {
        bricks
            .iter()
            .map(|b| {
                plan::placed(s, b)
                    .map(make)
                    .map_err(|e| EngineError::Invalid(e.to_string()))
            })
            .collect()
    }

    /// The placement decision for `request` over `topology`, in the
    /// sandbox off the reactor, a refusal turned into an error.
    pub(super) async fn place(
        &self,
        set: &PolicySet,
        request: PlacementRequest,
        topology: crate::model::Topology,
    ) -> Result<crate::policy::Placed, EngineError> {
        let topology = Arc::new(PreparedTopology::new(Arc::new(topology)));
        let verdict = set.place_async(request, topology).await?;
        refused(verdict, Decision::Placement, &set.placement)
    }

    pub(super) fn undo_outcome(&self, undo: Result<(), EngineError>) -> String {
        match undo {
            Ok(()) => "rolled back: nothing of it is left".into(),
            Err(e) => format!(
                "rolling back failed too ({e}); the journal keeps the operation, and the next start or `aplo repair` finishes undoing it"
            ),
        }
    }

    /// Tear a volume down as journaled steps: stop it, delete it in gluster
    /// (only if it is aplo's), destroy every brick; then drop its records
    /// and the journal entry in one transaction. Deletes and undone creates
    /// both end here.
    pub(super) async fn teardown(
        &self,
        mut operation: OperationRecord,
        what: &'static str,
        outcome: &str,
    ) -> Result<(), EngineError> {
        let Some(id) = operation.operation.volume() else {
            unreachable!("teardown runs volume operations")
        };
        let Some((volume, target, bricks, brick_ids)) = self.with_state(|s| {
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
            return self.commit(vec![Change::DeleteOperation(operation.id)]);
        };
        let failed = |(step, source): StepError| EngineError::Failed {
            operation: what,
            subject: volume.name.clone(),
            step,
            source: Box::new(source),
            outcome: outcome.to_owned(),
        };
        let stop = Effect::StopVolume {
            target: target.clone(),
        };
        operation = self
            .step(operation, Step::Stop, Ok(vec![stop]))
            .await
            .map_err(failed)?;
        let delete = Effect::DeleteVolume { target };
        operation = self
            .step(operation, Step::Delete, Ok(vec![delete]))
            .await
            .map_err(failed)?;
        operation = self
            .step(operation, Step::Bricks, bricks)
            .await
            .map_err(failed)?;
        let mut changes: Vec<Change> = brick_ids.into_iter().map(Change::DeleteBrick).collect();
        changes.push(Change::DeleteVolume(id));
        changes.push(Change::DeleteOperation(operation.id));
        self.commit(changes)
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
