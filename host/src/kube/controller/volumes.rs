//! The PV reconciler (delete the backend of a released `Delete` volume,
//! then let the PV go) and the sweep of orphaned backend volumes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::{Context, UNSYNCED_RECHECK, class_label};
use crate::engine::EngineError;
use crate::kube::decide::reclaim::{self, VolumeStep};
use crate::kube::error::{ReconcileError, engine_error};

/// Reconcile one PV: delete the backend of a released `Delete` volume, then
/// let the PV go.
pub async fn reconcile_volume(
    pv: Arc<PersistentVolume>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx.ready() {
        return Ok(Action::requeue(UNSYNCED_RECHECK));
    }
    let step = reclaim::volume_step(&pv, &ctx.settings.provisioner);
    if step == VolumeStep::NotOurs {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    // A PV stands for the volume (also when a crash came between making the
    // PV and recording that): the sweep must leave the volume alone.
    match ctx.engine.mark_published(&name) {
        Ok(()) | Err(EngineError::NotFound { .. }) => {}
        Err(e) => return Err(engine_error(e)),
    }
    let (backend, delete_pv, class_name) = match step {
        VolumeStep::NotOurs | VolumeStep::InUse => return Ok(Action::await_change()),
        VolumeStep::Retain { release } => {
            if release {
                remove_finalizer(&pv, &ctx).await?;
            }
            return Ok(Action::await_change());
        }
        VolumeStep::Reclaim {
            backend,
            delete_pv,
            class_name,
        } => (backend, delete_pv, class_name),
    };
    if backend {
        let label = class_label(&class_name);
        let started = Instant::now();
        let result = match ctx.writable() {
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
            ctx.publish(pv.as_ref(), reclaim::delete_failed(&e)).await;
            return Err(e);
        }
        ctx.metrics.delete_total.get_or_create(&label).inc();
        tracing::info!(volume = %name, "backend volume deleted");
        remove_finalizer(&pv, &ctx).await?;
    }
    if delete_pv {
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
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let patch = Patch::Merge(reclaim::without_finalizer(pv));
    match pvs
        .patch(&pv.name_any(), &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Remove backend volumes that a crash left without a PV and whose claim is
/// gone (see [`reclaim::orphan_candidate`]), once the API server confirms
/// that neither exists.
pub(super) async fn sweep_orphans(ctx: &Context) {
    if ctx.writable().is_err() {
        return;
    }
    let claimed: HashSet<String> = ctx.claims.state().iter().filter_map(|c| c.uid()).collect();
    for volume in ctx.engine.volumes() {
        let Some(uid) =
            reclaim::orphan_candidate(&volume.name, volume.claim.as_ref(), &claimed, ctx)
        else {
            continue;
        };
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
        let claim = volume
            .claim
            .as_ref()
            .expect("an orphan candidate has a claim");
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &claim.namespace);
        match claims.get_opt(&claim.name).await {
            Ok(found) if reclaim::same_claim(found.as_ref(), uid) => continue,
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
