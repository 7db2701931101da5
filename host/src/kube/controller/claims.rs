//! The claim reconciler: provision a claim, or expand its volume.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::{Context, UNSYNCED_RECHECK, class_label};
use crate::engine::EngineError;
use crate::front::claim::{self, Backend, ZONE_LABEL};
use crate::front::metrics::Expansion;
use crate::kube::decide::expand::{self, ExpandStep, UNSEEN_VOLUME_RECHECK};
use crate::kube::decide::provision::{self, ClaimStep, Earlier, claim_key};
use crate::kube::error::{ReconcileError, engine_error};

/// Reconcile one claim: provision it, or expand its volume.
pub async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx.ready() {
        return Ok(Action::requeue(UNSYNCED_RECHECK));
    }
    let (uid, class_name, class, name) =
        match provision::claim_step(&claim, &ctx.settings.provisioner, ctx.as_ref()) {
            ClaimStep::Skip(_) => return Ok(Action::await_change()),
            ClaimStep::Expand { uid, volume } => {
                return expand_if_asked(&claim, &uid, &volume, &ctx).await;
            }
            ClaimStep::Refuse { event, error } => {
                ctx.publish(claim.as_ref(), event).await;
                return Err(error);
            }
            ClaimStep::Provisioned { uid } => {
                ctx.succeeded(&uid);
                return Ok(Action::await_change());
            }
            ClaimStep::Provision {
                uid,
                class_name,
                class,
                volume,
            } => (uid, class_name, class, volume),
        };
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
            ctx.publish(
                claim.as_ref(),
                provision::provisioning_failed(&class_name, &e),
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
    let options =
        claim::class_options(class).map_err(|e| ReconcileError::Refused(e.to_string()))?;
    let request =
        claim::provision_request(claim).map_err(|e| ReconcileError::Refused(e.to_string()))?;
    ctx.writable()?;
    ctx.publish(claim, provision::provisioning(claim)).await;
    let mut preferred_zone = None;
    if let Some(node) = &request.selected_node {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        match nodes.get_opt(node).await? {
            Some(n) => preferred_zone = n.labels().get(ZONE_LABEL).cloned(),
            None => return Err(provision::missing_node(node)),
        }
    }
    let record = match ctx.engine.volume(name) {
        Ok((volume, _)) => match provision::earlier(volume.state) {
            Earlier::Reuse => {
                tracing::info!(volume = name, "reusing the volume an earlier attempt made");
                volume
            }
            Earlier::Recover => {
                // An earlier attempt failed and could not clean up: finish
                // or undo it now (operations running in this process are
                // left alone), then try again.
                let recovered = ctx.engine.recover().await.map_err(engine_error)?;
                return Err(provision::left_by_earlier(
                    name,
                    volume.state,
                    &recovered.outcomes,
                ));
            }
        },
        Err(EngineError::NotFound { .. }) => ctx
            .engine
            .create_volume(provision::create_request(
                name,
                &request,
                &options,
                preferred_zone,
            ))
            .await
            .map_err(engine_error)?,
        Err(e) => return Err(engine_error(e)),
    };
    ctx.engine
        .fault_point(crate::engine::FaultPoint::VolumeCreated);
    let backend = Backend {
        id: record.id.to_string(),
        name: record.name.clone(),
        bytes: record.bytes,
        hosts: ctx.engine.volume_hosts(record.id),
        gid: provision::volume_gid(&record.options),
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
    ctx.publish(claim, provision::provisioned(name)).await;
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
    let pv = ctx.volumes.get(&ObjectRef::new(pv_name));
    let step = expand::expand_step(claim, uid, pv.as_deref(), &ctx.settings.provisioner, ctx);
    let (wanted, class_name, announce) = match step {
        ExpandStep::Unseen => return Ok(Action::requeue(UNSEEN_VOLUME_RECHECK)),
        ExpandStep::Skip(_) => return Ok(Action::await_change()),
        ExpandStep::Done => {
            ctx.succeeded(uid);
            return Ok(Action::await_change());
        }
        ExpandStep::Expand {
            wanted,
            class_name,
            announce,
        } => (wanted, class_name, announce),
    };
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let claim_name = claim.name_any();
    let now = k8s_openapi::jiff::Timestamp::now();
    if announce {
        let (patch, event) = expand::resizing(pv_name, wanted, now);
        claims
            .patch_status(&claim_name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        ctx.publish(claim, event).await;
    }
    let label = |outcome| Expansion {
        class: class_name.clone(),
        outcome,
    };
    let expanded = match ctx.engine.volume(pv_name) {
        Ok((volume, _)) if !expand::needs_growing(volume.bytes, wanted) => Ok(volume),
        Ok(_) => match ctx.writable() {
            Ok(()) => ctx.engine.expand_volume(pv_name, wanted).await,
            Err(paused) => {
                ctx.publish(claim, expand::resize_paused(&paused)).await;
                return Err(paused);
            }
        },
        Err(e) => Err(e),
    };
    match expanded {
        Ok(volume) => {
            let done = expand::resized(pv_name, volume.bytes);
            let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
            pvs.patch(pv_name, &PatchParams::default(), &Patch::Merge(done.volume))
                .await?;
            claims
                .patch_status(
                    &claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(done.claim),
                )
                .await?;
            ctx.metrics
                .expansions
                .get_or_create(&label("succeeded"))
                .inc();
            ctx.publish(claim, done.event).await;
            ctx.succeeded(uid);
            Ok(Action::await_change())
        }
        Err(e) => {
            let error = engine_error(e);
            let (patch, event) = expand::resize_failed(pv_name, wanted, &error, now);
            claims
                .patch_status(&claim_name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            ctx.metrics.expansions.get_or_create(&label("failed")).inc();
            ctx.publish(claim, event).await;
            Err(error)
        }
    }
}
