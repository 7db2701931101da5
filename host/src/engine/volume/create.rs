//! Creating a volume: the request, its group id, the decisions and
//! reservation, and the journaled steps forward and back.

use crate::engine::{FaultPoint, Phase};

use crate::engine::driver::DriverError;
use crate::engine::reserve::DECIDE_ATTEMPTS;
use crate::engine::volume::{check_size, gluster_options, refused};
use crate::engine::{Engine, EngineError, StepError};
use crate::model::journal::{Operation, OperationKind, OperationRecord, Step};
use crate::model::paths::check_volume_name;
use crate::model::storage::{BrickRecord, ClaimRef, VolumeRecord, VolumeState};
use crate::model::{Claim, Decision, Id, Pairs, PlacementRequest};
use crate::plan::effect::Effect;
use crate::plan::volume as plan;
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
    /// Give the volume a group id of its own from this range (inclusive),
    /// as the `storage.owner-gid` option: the lowest one no other volume
    /// has. Members of that group (a pod's supplemental group, which
    /// kubelet adds from the PV's `pv.beta.kubernetes.io/gid`) may write,
    /// as with heketi and the in-tree glusterfs plugin.
    pub gid_range: Option<(u32, u32)>,
}

/// The option that holds a volume's group id.
pub const OWNER_GID: &str = "storage.owner-gid";

/// Every gid of the range asked for is some volume's.
#[derive(Debug, thiserror::Error)]
#[error("every gid from {low} to {high} is taken by a volume (widen gidMin/gidMax)")]
struct NoFreeGid {
    low: u32,
    high: u32,
}

/// The lowest gid in `range` that no volume in `s` has.
fn free_gid(
    s: &crate::model::storage::Snapshot,
    (low, high): (u32, u32),
) -> Result<u32, NoFreeGid> {
    let taken: std::collections::BTreeSet<u32> = s
        .volumes
        .values()
        .filter_map(|v| v.options.get(OWNER_GID)?.parse().ok())
        .collect();
    (low..=high)
        .find(|gid| !taken.contains(gid))
        .ok_or(NoFreeGid { low, high })
}

impl Engine {
    /// Create a volume: the policies decide durability, quota and
    /// placement, then bricks, the gluster volume, its options, start and
    /// quota follow as journaled steps. On failure everything created is
    /// removed again before the error is returned.
    pub async fn create_volume(&self, request: CreateRequest) -> Result<VolumeRecord, EngineError> {
        self.create_volume_in(request, &[]).await
    }

    /// [`Engine::create_volume`] in one of `clusters` only (any cluster
    /// when empty): placement sees only those clusters (heketi's
    /// `clusters` field of a volume request).
    #[tracing::instrument(skip_all, fields(name = ?request.name, bytes = request.bytes))]
    pub async fn create_volume_in(
        &self,
        request: CreateRequest,
        clusters: &[Id],
    ) -> Result<VolumeRecord, EngineError> {
        check_size(request.bytes)?;
        let id = self.ids.next();
        let name = request.name.clone().unwrap_or_else(|| format!("vol_{id}"));
        check_volume_name(&name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let set = self.registry.resolve(&request.parameters)?;
        let claim = request.claim.clone().unwrap_or_else(|| Claim {
            namespace: String::new(),
            name: name.clone(),
            labels: Pairs::new(),
            annotations: Pairs::new(),
            requested_bytes: request.bytes,
            access_modes: Vec::new(),
        });
        if let Some((low, high)) = request.gid_range
            && (low == 0 || low > high)
        {
            return Err(EngineError::Invalid(format!(
                "the gid range {low} to {high} is empty or starts at 0 (root's group)"
            )));
        }
        let known = self.option_names().await;
        let decision = refused(
            set.durability_async(claim.clone(), known).await?,
            Decision::Durability,
            &set.durability,
        )?;
        if request.gid_range.is_some() && decision.volume_options.contains_key(OWNER_GID) {
            return Err(EngineError::Invalid(format!(
                "the durability policy sets {OWNER_GID}, and the volume gets a gid of its own \
                 too (gidMin, gidMax); drop one of them"
            )));
        }
        self.recent_health().await;
        let taken = || {
            self.with_state(|s| s.volume_named(&name).is_some())
                .then(|| EngineError::Conflict(format!("a volume named '{name}' already exists")))
        };
        if let Some(taken) = taken() {
            return Err(taken);
        }
        let placement = PlacementRequest {
            volume_name: name.clone(),
            bytes: request.bytes,
            scheme: decision.scheme,
            snapshot_reserve: decision.snapshot_reserve,
            preferred_zone: request.preferred_zone.clone(),
            preferred_node: request.preferred_node.clone(),
        };
        let topology = || {
            let mut topology = self.policy_topology();
            if !clusters.is_empty() {
                topology.clusters.retain(|c| clusters.contains(&c.id));
            }
            topology
        };
        let claim_ref = request.claim.as_ref().map(|c| ClaimRef {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            published: false,
        });
        // Decide with no lock held (see `reserve`), then reserve what still
        // holds under the planning lock.
        let mut attempt = 1;
        let (new, operation, _busy) = loop {
            let quota = self.quota(&set, &claim, 0, None).await?;
            let placed = self.place(&set, placement.clone(), topology()).await?;
            let planning = self.planning.lock().await;
            if let Some(taken) = taken() {
                return Err(taken);
            }
            let holds = self
                .quota_holds(&quota, &claim.namespace, None)
                .and_then(|()| Engine::layout_holds(&placement, &topology(), &placed.layout));
            if let Err(why) = holds {
                drop(planning);
                tracing::info!(volume = %name, attempt, %why, "deciding again: the state changed while the policies decided");
                if attempt == DECIDE_ATTEMPTS {
                    return Err(Engine::stale(&format!("create volume {name}"), &why));
                }
                attempt += 1;
                continue;
            }
            let mut new = self
                .with_state(|s| {
                    plan::new_volume(
                        s,
                        id,
                        &name,
                        &decision,
                        &placed.layout,
                        quota.hard_limit,
                        claim_ref.clone(),
                        &self.config.lvm_root,
                        || self.ids.next(),
                    )
                })
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            new.volume.parameters = request.parameters.clone();
            // Chosen under the planning lock, so two creates never share one.
            if let Some(range) = request.gid_range {
                let gid = self
                    .with_state(|s| free_gid(s, range))
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                new.volume.options.insert(OWNER_GID.into(), gid.to_string());
            }
            let operation =
                OperationRecord::new(self.ids.next(), Operation::CreateVolume { volume: id });
            let busy = self.claim_busy(id, &format!("volume {name}"))?;
            let mut changes = vec![Change::PutVolume(new.volume.clone())];
            changes.extend(new.bricks.iter().cloned().map(Change::PutBrick));
            changes.push(Change::PutOperation(operation.clone()));
            self.commit(changes)?;
            drop(planning);
            break (new, operation, busy);
        };
        tracing::info!(volume = %name, %id, bricks = new.bricks.len(), "volume planned and journaled");
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::CreateVolume));

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

    /// The forward steps of a create, skipping those already done.
    pub(in crate::engine) async fn create_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<VolumeRecord, StepError> {
        let Operation::CreateVolume { volume: id } = operation.operation else {
            unreachable!("create_steps runs create operations")
        };
        let fail = |step: Phase, e: EngineError| (step, DriverError::Refused(e.to_string()));
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
                    Phase::Plan,
                    EngineError::Invalid(format!("volume {id} is not in the store")),
                )
            })?;
        let bricks = self.with_state(|s| {
            let refs: Vec<&BrickRecord> = bricks.iter().collect();
            self.bricks_effects(s, &refs, Effect::CreateBrick)
        });
        operation = self.step(operation, Step::Bricks, bricks).await?;
        let create = Effect::CreateVolume {
            target: target.clone(),
            scheme: volume.scheme,
            force,
        };
        operation = self.step(operation, Step::Volume, Ok(vec![create])).await?;
        let options = Effect::SetOptions {
            target: target.clone(),
            options: gluster_options(&volume),
        };
        operation = self
            .step(operation, Step::Options, Ok(vec![options]))
            .await?;
        let start = Effect::StartVolume {
            target: target.clone(),
            force: false,
        };
        operation = self.step(operation, Step::Start, Ok(vec![start])).await?;
        if let Some(bytes) = volume.hard_limit {
            let quota = Effect::SetQuota { target, bytes };
            operation = self.step(operation, Step::Quota, Ok(vec![quota])).await?;
        }
        let ready = VolumeRecord {
            state: VolumeState::Ready,
            ..volume
        };
        self.commit(vec![
            Change::PutVolume(ready.clone()),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| fail(Phase::Finish, e))?;
        tracing::info!(volume = %ready.name, "volume created");
        Ok(ready)
    }

    /// Undo a create: the gluster volume (if it is aplo's), then every
    /// brick, then the records. An undo that was interrupted goes on where
    /// it stopped.
    pub(in crate::engine) async fn undo_create(
        &self,
        operation: &OperationRecord,
    ) -> Result<(), EngineError> {
        let undoing = if operation.rolling_back {
            operation.clone()
        } else {
            // The undo's steps are journaled afresh.
            let marked = OperationRecord {
                done: Vec::new(),
                rolling_back: true,
                ..operation.clone()
            };
            self.commit(vec![Change::PutOperation(marked.clone())])?;
            marked
        };
        self.teardown(
            undoing,
            "undo create volume",
            "the journal keeps the operation, and the next start or `aplo repair` finishes undoing it",
        )
        .await
    }
}
