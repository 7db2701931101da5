//! The reconcilers: claims are provisioned and expanded, released volumes
//! deleted, and backend volumes nobody wants any more removed.
//!
//! kube-runtime's `Controller` drives both reconcilers from watches (with
//! reflector stores for claims, volumes and classes); it never runs two
//! reconciles of one object at once, and requeues failures with the
//! per-object backoff computed here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::engine::{CreateRequest, Engine, EngineError};
use crate::front::claim::{self, ANN_PROVISIONED_BY, Backend, FINALIZER, ZONE_LABEL};
use crate::front::metrics::{Class, Expansion, Metrics};
use crate::model::storage::{AdminMode, VolumeState};

/// What the reconcilers need to know about this instance.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provisioner name claims and classes ask for.
    pub provisioner: String,
    /// This instance's name in events (`reportingInstance`).
    pub identity: String,
    /// Reconciles run at once, per controller.
    pub workers: u16,
    /// How often backend volumes are checked for an owner.
    pub sweep_interval: Duration,
    /// The first retry after a refusal (doubles up to 10 minutes).
    pub refusal_backoff: Duration,
    /// The first retry after a transient failure (doubles up to 5 minutes).
    pub retry_backoff: Duration,
}

impl Settings {
    /// The defaults for a provisioner name and identity.
    pub fn new(provisioner: &str, identity: &str) -> Settings {
        Settings {
            provisioner: provisioner.to_owned(),
            identity: identity.to_owned(),
            workers: 32,
            sweep_interval: Duration::from_secs(300),
            refusal_backoff: Duration::from_secs(15),
            retry_backoff: Duration::from_secs(1),
        }
    }
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A policy refused, or the claim or class asks for what aplo cannot
    /// give: retried slowly, in case the cause is fixed.
    #[error("{0}")]
    Refused(String),
    /// Anything that may pass by itself: retried soon.
    #[error("{0}")]
    Transient(String),
    /// aplo is read-only (heketi's admin mode): retried at the refusal
    /// pace, without growing, so that work resumes soon after an admin
    /// sets it back to normal.
    #[error("{0}")]
    Paused(String),
}

/// Whether the controllers may change storage now: not while heketi's
/// admin mode is read-only (`POST /admin`, `aplo server mode set`).
/// `local-client` limits remote REST clients only; the controllers are
/// aplo itself.
fn writable(ctx: &Context) -> Result<(), ReconcileError> {
    match ctx.engine.admin_mode().map_err(engine_error)? {
        AdminMode::ReadOnly => Err(ReconcileError::Paused(
            "aplo is in read-only mode (heketi's admin mode, set through POST /admin or \
             `aplo server mode set`): no volume is created, grown or deleted until an admin \
             sets it back to normal"
                .into(),
        )),
        AdminMode::Normal | AdminMode::LocalClient => Ok(()),
    }
}

impl From<kube::Error> for ReconcileError {
    fn from(e: kube::Error) -> Self {
        ReconcileError::Transient(format!("Kubernetes API: {e}"))
    }
}

fn engine_error(e: EngineError) -> ReconcileError {
    match e {
        // The policy pool was full: retried soon, with the growing backoff.
        EngineError::Policy(ref p) if p.is_busy() => ReconcileError::Transient(e.to_string()),
        EngineError::Refused { .. }
        | EngineError::Invalid(_)
        | EngineError::Policy(_)
        | EngineError::NotFound { .. } => ReconcileError::Refused(e.to_string()),
        EngineError::Conflict(_) | EngineError::Store(_) | EngineError::Failed { .. } => {
            ReconcileError::Transient(e.to_string())
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    engine: Arc<Engine>,
    client: Client,
    settings: Settings,
    classes: Store<StorageClass>,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Consecutive failures per object uid, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// Whether every store has had its first list; before that, a missing
    /// class or PV means nothing. Reconciles that come too early requeue
    /// instead of waiting: the stores fill from the same streams that
    /// schedule reconciles, so a waiting reconcile could hold a slot the
    /// stores need.
    fn ready(&self) -> bool {
        use futures::FutureExt;
        self.classes
            .wait_until_ready()
            .now_or_never()
            .is_some_and(|r| r.is_ok())
            && self
                .volumes
                .wait_until_ready()
                .now_or_never()
                .is_some_and(|r| r.is_ok())
            && self
                .claims
                .wait_until_ready()
                .now_or_never()
                .is_some_and(|r| r.is_ok())
    }

    fn succeeded(&self, uid: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    fn backoff(&self, uid: &str, error: &ReconcileError) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(uid.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        let (first, cap) = match error {
            ReconcileError::Paused(_) => {
                *n = 1;
                (self.settings.refusal_backoff, self.settings.refusal_backoff)
            }
            ReconcileError::Refused(_) => (self.settings.refusal_backoff, Duration::from_secs(600)),
            ReconcileError::Transient(_) => (self.settings.retry_backoff, Duration::from_secs(300)),
        };
        first.saturating_mul(1u32 << (*n - 1).min(16)).min(cap)
    }

    async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let reference = object.object_ref(&());
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(reason, object = ?reference.name, error = %e, "could not post an event");
        }
    }
}

fn class_label(name: &str) -> Class {
    Class {
        class: name.to_owned(),
    }
}

fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    )
}

/// Reconcile one claim: provision it, or expand its volume.
pub async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx.ready() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(uid) = claim.uid() else {
        return Ok(Action::await_change());
    };
    let spec = claim.spec.clone().unwrap_or_default();
    if let Some(bound) = spec.volume_name.filter(|v| !v.is_empty()) {
        return expand_if_asked(&claim, &uid, &bound, &ctx).await;
    }
    if claim::provisioner_of(&claim) != Some(ctx.settings.provisioner.as_str()) {
        return Ok(Action::await_change());
    }
    let class_name = spec.storage_class_name.unwrap_or_default();
    let Some(class) = ctx.classes.get(&ObjectRef::new(&class_name)) else {
        let message = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
        ctx.event(
            claim.as_ref(),
            EventType::Warning,
            "ProvisioningFailed",
            "Provision",
            message.clone(),
        )
        .await;
        return Err(ReconcileError::Refused(message));
    };
    if class.provisioner != ctx.settings.provisioner {
        return Ok(Action::await_change());
    }
    let delayed = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    let annotations = claim.annotations();
    if delayed && !annotations.contains_key(claim::ANN_SELECTED_NODE) {
        return Ok(Action::await_change());
    }
    let name = claim::volume_name(&uid);
    if ctx.volumes.get(&ObjectRef::new(&name)).is_some() {
        ctx.succeeded(&uid);
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let label = class_label(&class_name);
    let result = provision(&claim, &class, &name, &ctx).await;
    ctx.metrics
        .provision_duration
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            ctx.metrics.provision_total.get_or_create(&label).inc();
            ctx.succeeded(&uid);
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.metrics.provision_failed.get_or_create(&label).inc();
            tracing::warn!(claim = %claim_key(&claim), error = %e, "provisioning failed");
            ctx.event(
                claim.as_ref(),
                EventType::Warning,
                "ProvisioningFailed",
                "Provision",
                format!("failed to provision volume with StorageClass \"{class_name}\": {e}"),
            )
            .await;
            Err(e)
        }
    }
}

/// Make the backend volume (or find the one an earlier attempt made) and
/// the PV for a claim.
async fn provision(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    name: &str,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let options = claim::class_options(class).map_err(ReconcileError::Refused)?;
    let request = claim::provision_request(claim).map_err(ReconcileError::Refused)?;
    writable(ctx)?;
    ctx.event(
        claim,
        EventType::Normal,
        "Provisioning",
        "Provision",
        format!(
            "External provisioner is provisioning volume for claim \"{}\"",
            claim_key(claim)
        ),
    )
    .await;
    let mut preferred_zone = None;
    if let Some(node) = &request.selected_node {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        match nodes.get_opt(node).await? {
            Some(n) => preferred_zone = n.labels().get(ZONE_LABEL).cloned(),
            None => {
                return Err(ReconcileError::Transient(format!(
                    "the selected node '{node}' does not exist"
                )));
            }
        }
    }
    let record = match ctx.engine.volume(name) {
        Ok((volume, _)) if volume.state == VolumeState::Ready => {
            tracing::info!(volume = name, "reusing the volume an earlier attempt made");
            volume
        }
        Ok((volume, _)) => {
            // An earlier attempt failed and could not clean up: finish or
            // undo it now (operations running in this process are left
            // alone), then try again.
            let recovered = ctx.engine.recover().await.map_err(engine_error)?;
            return Err(ReconcileError::Transient(format!(
                "volume {name} was left {:?} by an earlier attempt; recovery: {}",
                volume.state,
                recovered.outcomes.join("; ")
            )));
        }
        Err(EngineError::NotFound { .. }) => ctx
            .engine
            .create_volume(CreateRequest {
                name: Some(name.to_owned()),
                bytes: request.claim.requested_bytes,
                parameters: options.policy_parameters.clone(),
                claim: Some(request.claim.clone()),
                preferred_zone,
                preferred_node: request.selected_node.clone(),
                gid_range: Some(options.gid_range),
            })
            .await
            .map_err(engine_error)?,
        Err(e) => return Err(engine_error(e)),
    };
    ctx.engine.fault_point("provision:volume-created");
    let backend = Backend {
        id: record.id.to_string(),
        name: record.name.clone(),
        bytes: record.bytes,
        hosts: ctx.engine.volume_hosts(record.id),
        gid: record
            .options
            .get(crate::engine::OWNER_GID)
            .and_then(|g| g.parse().ok()),
    };
    let pv = claim::build_pv(&ctx.settings.provisioner, claim, class, &options, &backend);
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            tracing::info!(volume = name, "the PV already exists");
        }
        Err(e) => return Err(e.into()),
    }
    ctx.engine.mark_published(name).map_err(engine_error)?;
    tracing::info!(claim = %claim_key(claim), volume = name, bytes = record.bytes, "provisioned");
    ctx.event(
        claim,
        EventType::Normal,
        "ProvisioningSucceeded",
        "Provision",
        format!("Successfully provisioned volume {name}"),
    )
    .await;
    Ok(())
}

/// Expand a bound claim's volume when the claim asks for more than the PV
/// has, reporting progress as external-resizer does.
async fn expand_if_asked(
    claim: &PersistentVolumeClaim,
    uid: &str,
    pv_name: &str,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let Some(pv) = ctx.volumes.get(&ObjectRef::new(pv_name)) else {
        // Bound to a PV this instance has not seen yet, or not ours.
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    if pv.annotations().get(ANN_PROVISIONED_BY) != Some(&ctx.settings.provisioner) {
        return Ok(Action::await_change());
    }
    let bound_uid = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|r| r.uid.as_deref());
    if bound_uid != Some(uid) {
        return Ok(Action::await_change());
    }
    let (Ok(wanted), Ok(has)) = (claim::requested_bytes(claim), claim::pv_bytes(&pv)) else {
        return Ok(Action::await_change());
    };
    if wanted <= has {
        ctx.succeeded(uid);
        return Ok(Action::await_change());
    }
    let class_name = pv
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default();
    let expandable = ctx
        .classes
        .get(&ObjectRef::new(&class_name))
        .is_some_and(|c| c.allow_volume_expansion == Some(true));
    if !expandable {
        // The API server refuses such edits for classes that do not allow
        // expansion; a class changed afterwards is left alone.
        return Ok(Action::await_change());
    }
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status_patch = |value: serde_json::Value| Patch::Merge(json!({ "status": value }));
    // A retry after a failure keeps the error condition up until it
    // succeeds, rather than flipping back to Resizing on every attempt.
    let failed_before = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "ControllerResizeError"));
    if !failed_before {
        claims
            .patch_status(
                &claim.name_any(),
                &PatchParams::default(),
                &status_patch(json!({
                    "conditions": [{"type": "Resizing", "status": "True", "lastTransitionTime": now}],
                    "allocatedResources": {"storage": claim::quantity(wanted)},
                    "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                })),
            )
            .await?;
        ctx.event(
            claim,
            EventType::Normal,
            "Resizing",
            "Resize",
            format!("External resizer is resizing volume {pv_name}"),
        )
        .await;
    }
    let label = |outcome| Expansion {
        class: class_name.clone(),
        outcome,
    };
    let expanded = match ctx.engine.volume(pv_name) {
        // An earlier attempt grew the volume but did not finish the patches.
        Ok((volume, _)) if volume.bytes >= wanted => Ok(volume),
        Ok(_) => match writable(ctx) {
            Ok(()) => ctx.engine.expand_volume(pv_name, wanted).await,
            Err(paused) => {
                ctx.event(
                    claim,
                    EventType::Warning,
                    "VolumeResizeFailed",
                    "Resize",
                    paused.to_string(),
                )
                .await;
                return Err(paused);
            }
        },
        Err(e) => Err(e),
    };
    match expanded {
        Ok(volume) => {
            let capacity = claim::quantity(volume.bytes);
            let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
            pvs.patch(
                pv_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"capacity": {"storage": capacity}}})),
            )
            .await?;
            claims
                .patch_status(
                    &claim.name_any(),
                    &PatchParams::default(),
                    &status_patch(json!({
                        "capacity": {"storage": capacity},
                        "conditions": null,
                        "allocatedResourceStatuses": null,
                    })),
                )
                .await?;
            ctx.metrics
                .expansions
                .get_or_create(&label("succeeded"))
                .inc();
            ctx.event(
                claim,
                EventType::Normal,
                "VolumeResizeSuccessful",
                "Resize",
                format!(
                    "Resize volume {pv_name} succeeded: it now has {}",
                    crate::model::format_size(volume.bytes)
                ),
            )
            .await;
            ctx.succeeded(uid);
            Ok(Action::await_change())
        }
        Err(e) => {
            let error = engine_error(e);
            let infeasible = matches!(error, ReconcileError::Refused(_));
            let message = error.to_string();
            claims
                .patch_status(
                    &claim.name_any(),
                    &PatchParams::default(),
                    &status_patch(json!({
                        "conditions": [{
                            "type": "ControllerResizeError",
                            "status": "True",
                            "lastTransitionTime": now,
                            "message": format!("resize volume {pv_name} failed: {message}"),
                        }],
                        "allocatedResources": {"storage": claim::quantity(wanted)},
                        "allocatedResourceStatuses": {"storage": if infeasible {
                            "ControllerResizeInfeasible"
                        } else {
                            "ControllerResizeInProgress"
                        }},
                    })),
                )
                .await?;
            ctx.metrics.expansions.get_or_create(&label("failed")).inc();
            ctx.event(
                claim,
                EventType::Warning,
                "VolumeResizeFailed",
                "Resize",
                format!("resize volume {pv_name} failed: {message}"),
            )
            .await;
            Err(error)
        }
    }
}

/// Reconcile one PV: delete the backend of a released `Delete` volume, then
/// let the PV go.
pub async fn reconcile_volume(
    pv: Arc<PersistentVolume>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx.ready() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if pv.annotations().get(ANN_PROVISIONED_BY) != Some(&ctx.settings.provisioner) {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    let spec = pv.spec.clone().unwrap_or_default();
    let reclaim = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("Retain");
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    let deleting = pv.metadata.deletion_timestamp.is_some();
    // A PV stands for the volume (also when a crash came between making the
    // PV and recording that): the sweep must leave the volume alone.
    match ctx.engine.mark_published(&name) {
        Ok(()) | Err(EngineError::NotFound { .. }) => {}
        Err(e) => return Err(engine_error(e)),
    }
    let ours = pv.finalizers().iter().any(|f| f == FINALIZER);
    if reclaim != "Delete" {
        if deleting && ours {
            remove_finalizer(&pv, &ctx).await?;
        }
        return Ok(Action::await_change());
    }
    if phase == Some("Bound") || !(deleting || phase == Some("Released")) {
        return Ok(Action::await_change());
    }
    if ours {
        let class = spec.storage_class_name.clone().unwrap_or_default();
        let label = class_label(&class);
        let started = Instant::now();
        let result = match writable(&ctx) {
            Err(paused) => Err(paused),
            Ok(()) => match ctx.engine.delete_volume(&name).await {
                Ok(()) | Err(EngineError::NotFound { .. }) => Ok(()),
                Err(e) => Err(engine_error(e)),
            },
        };
        ctx.metrics
            .delete_duration
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            ctx.metrics.delete_failed.get_or_create(&label).inc();
            tracing::warn!(volume = %name, error = %e, "deleting the volume failed");
            ctx.event(
                pv.as_ref(),
                EventType::Warning,
                "VolumeFailedDelete",
                "Delete",
                e.to_string(),
            )
            .await;
            return Err(e);
        }
        ctx.metrics.delete_total.get_or_create(&label).inc();
        tracing::info!(volume = %name, "backend volume deleted");
        remove_finalizer(&pv, &ctx).await?;
    }
    if !deleting {
        let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
        match pvs.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(uid) = pv.uid() {
        ctx.succeeded(&uid);
    }
    Ok(Action::await_change())
}

async fn remove_finalizer(pv: &PersistentVolume, ctx: &Context) -> Result<(), ReconcileError> {
    let kept: Vec<&String> = pv.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    // The resourceVersion makes this a compare-and-swap: a concurrent
    // change of the finalizer list fails with a conflict and is retried.
    let patch = json!({"metadata": {
        "finalizers": kept,
        "resourceVersion": pv.resource_version(),
    }});
    match pvs
        .patch(
            &pv.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn error_policy<K: Resource>(object: Arc<K>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let uid = object.meta().uid.clone().unwrap_or_default();
    Action::requeue(ctx.backoff(&uid, error))
}

/// Remove backend volumes that a crash left without a PV and whose claim is
/// gone: made by this provisioner (`pvc-<uid>` with a claim) and never
/// published as a PV, not wanted by any PV, and not for a claim that still
/// exists. A volume that had a PV is never swept: its reclaim policy rules
/// (a `Retain` volume outlives its PV on purpose).
async fn sweep_orphans(ctx: &Context) {
    if writable(ctx).is_err() {
        return;
    }
    let claimed: std::collections::HashSet<String> =
        ctx.claims.state().iter().filter_map(|c| c.uid()).collect();
    for volume in ctx.engine.volumes() {
        let Some(uid) = claim::claim_uid_of(&volume.name) else {
            continue;
        };
        if volume.claim.as_ref().is_none_or(|c| c.published)
            || claimed.contains(uid)
            || ctx.volumes.get(&ObjectRef::new(&volume.name)).is_some()
        {
            continue;
        }
        // The stores may lag: ask the API server before deleting anything.
        let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
        match pvs.get_opt(&volume.name).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "orphan sweep: cannot check PVs; trying later");
                return;
            }
        }
        let claim = volume.claim.as_ref().expect("checked above");
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &claim.namespace);
        match claims.get_opt(&claim.name).await {
            Ok(Some(c)) if c.uid().as_deref() == Some(uid) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "orphan sweep: cannot check claims; trying later");
                return;
            }
        }
        tracing::warn!(volume = %volume.name, claim = %format!("{}/{}", claim.namespace, claim.name),
            "removing a volume whose claim is gone and that has no PV (left by an interrupted provisioning)");
        match ctx.engine.delete_volume(&volume.name).await {
            Ok(()) => {
                ctx.metrics.orphans_removed.inc();
            }
            Err(e) => {
                tracing::warn!(volume = %volume.name, error = %e, "could not remove an orphaned volume")
            }
        }
    }
}

fn watch_config() -> watcher::Config {
    watcher::Config::default()
}

/// The first wait of a watch that failed.
const WATCH_RETRY_MIN: Duration = Duration::from_millis(250);
/// The longest wait of a watch that keeps failing.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(5);

/// How aplo's watches retry after an error: from 250 ms, doubling, at most
/// 5 s, back to 250 ms after a minute without errors. kube-runtime's
/// default grows to 30 s and resets only after two quiet minutes: after
/// two or three API server restarts in a row (a control-plane upgrade),
/// new claims went unseen for half a minute. A relist is cheap next to
/// that.
#[derive(Debug, Clone)]
struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff {
            next: WATCH_RETRY_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(WATCH_RETRY_MAX);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_RETRY_MIN;
    }
}

fn watch_backoff() -> kube::runtime::utils::ResetTimerBackoff<WatchBackoff> {
    kube::runtime::utils::ResetTimerBackoff::new(WatchBackoff::default(), Duration::from_secs(60))
}

/// A controller's run, `done`, ended early on shutdown if its store never
/// listed: kube-runtime holds a controller's runner, and with it the end
/// of a graceful shutdown, until the store is ready, so with the API
/// unreachable `done` would never end. Until then no reconcile of it has
/// started, so nothing is cut short.
async fn stopped<K: Resource + Clone>(
    done: impl std::future::Future<Output = ()>,
    store: &Store<K>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::FutureExt;
    let unsynced = async {
        shutdown.await;
        let listed = store
            .wait_until_ready()
            .now_or_never()
            .is_some_and(|r| r.is_ok());
        if listed {
            std::future::pending::<()>().await;
        }
        tracing::debug!("stopping a controller whose store never listed");
    };
    tokio::select! {
        () = done => {}
        () = unsynced => {}
    }
}

/// Run the controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    engine: Arc<Engine>,
    settings: Settings,
    metrics: Arc<Metrics>,
    status: Arc<super::Status>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static + Clone,
) {
    let config = controller::Config::default().concurrency(settings.workers);
    let (classes, class_writer) = reflector::store();
    let class_events = reflector::reflector(
        class_writer,
        watcher(Api::<StorageClass>::all(client.clone()), watch_config()),
    )
    .backoff(watch_backoff())
    .touched_objects();

    let volume_controller =
        Controller::new(Api::<PersistentVolume>::all(client.clone()), watch_config())
            .with_config(config.clone())
            .trigger_backoff(watch_backoff());
    let volumes = volume_controller.store();
    let claim_controller = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watch_config(),
    )
    .with_config(config)
    .trigger_backoff(watch_backoff());
    let claims = claim_controller.store();
    let pending_of_class = {
        let claims = claims.clone();
        move |class: StorageClass| {
            let name = class.name_any();
            claims
                .state()
                .into_iter()
                .filter(|c| {
                    let spec = c.spec.as_ref();
                    spec.and_then(|s| s.storage_class_name.as_deref()) == Some(name.as_str())
                        && spec
                            .and_then(|s| s.volume_name.as_deref())
                            .is_none_or(str::is_empty)
                })
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let claim_controller = claim_controller.watches_stream(class_events, pending_of_class);

    let recorder = Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: settings.provisioner.clone(),
            instance: Some(settings.identity.clone()),
        },
    );
    let ctx = Arc::new(Context {
        engine,
        client,
        settings,
        classes,
        volumes,
        claims,
        recorder,
        metrics,
        failures: Mutex::new(HashMap::new()),
    });

    let claims_done = claim_controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_claim, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "claim reconcile");
            }
        });
    let claims_done = stopped(claims_done, &ctx.claims, shutdown.clone());
    let volumes_done = volume_controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_volume, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "volume reconcile");
            }
        });
    let volumes_done = stopped(volumes_done, &ctx.volumes, shutdown.clone());
    let sweeper = {
        let ctx = ctx.clone();
        async move {
            loop {
                if ctx.ready() {
                    sweep_orphans(&ctx).await;
                    tokio::time::sleep(ctx.settings.sweep_interval).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    };
    let synced = {
        let ctx = ctx.clone();
        async move {
            let ready = futures::future::join3(
                ctx.classes.wait_until_ready(),
                ctx.volumes.wait_until_ready(),
                ctx.claims.wait_until_ready(),
            )
            .await;
            if let (Ok(()), Ok(()), Ok(())) = ready {
                status.set_synced(true);
            }
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = futures::future::join(claims_done, volumes_done) => {}
        () = sweeper => {}
        () = synced => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Fault, PolicyError};

    #[test]
    fn a_failing_watch_retries_within_five_seconds_and_starts_over_on_reset() {
        use kube::runtime::utils::Backoff;
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u64> = backoff
            .by_ref()
            .take(8)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(WATCH_RETRY_MIN));
    }

    fn fault(fault: Fault) -> EngineError {
        EngineError::Policy(PolicyError::Fault {
            policy: "zone-spread".into(),
            decision: crate::model::Decision::Placement,
            fault,
        })
    }

    #[test]
    fn a_full_policy_pool_is_retried_soon_and_other_faults_slowly() {
        let busy = fault(Fault::Busy {
            slots: 64,
            waited: Duration::from_millis(100),
        });
        assert!(matches!(engine_error(busy), ReconcileError::Transient(_)));
        let timeout = fault(Fault::Timeout {
            deadline: Duration::from_millis(100),
        });
        assert!(matches!(engine_error(timeout), ReconcileError::Refused(_)));
    }
}
