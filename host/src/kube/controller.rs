//! The reconcilers: claims are provisioned and expanded, released volumes
//! deleted, and backend volumes nobody wants any more removed.
//!
//! kube-runtime's `Controller` drives both reconcilers from watches (with
//! reflector stores for claims, volumes and classes); it never runs two
//! reconciles of one object at once, and requeues failures with the
//! per-object backoff of [`super::error::retry_after`].
//!
//! What to do is decided in [`super::decide`]; this module reads the
//! objects, asks it, and does the I/O: engine calls, API calls, events and
//! metrics.
//!
//! - [`claims`]: provisioning and expansion;
//! - [`volumes`]: reclaiming released PVs and sweeping orphans.

mod claims;
mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

pub use claims::reconcile_claim;
pub use volumes::reconcile_volume;

use super::decide::{Known, Notice, reclaim};
use super::error::{self, FirstWaits};
use super::watch;
use crate::engine::Engine;
use crate::front::metrics::{Class, Metrics};

pub use super::error::ReconcileError;

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

/// How soon a reconcile that came before the stores listed runs again.
const UNSYNCED_RECHECK: Duration = Duration::from_millis(200);

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

impl Known for Context {
    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }

    fn has_volume(&self, name: &str) -> bool {
        self.volumes.get(&ObjectRef::new(name)).is_some()
    }
}

impl Context {
    /// Whether every store has had its first list; before that, a missing
    /// class or PV means nothing. Reconciles that come too early requeue
    /// instead of waiting: the stores fill from the same streams that
    /// schedule reconciles, so a waiting reconcile could hold a slot the
    /// stores need.
    fn ready(&self) -> bool {
        watch::listed(&self.classes) && watch::listed(&self.volumes) && watch::listed(&self.claims)
    }

    /// Whether the controllers may change storage now (see
    /// [`error::writable_in`]).
    fn writable(&self) -> Result<(), ReconcileError> {
        let mode = self.engine.admin_mode().map_err(error::engine_error)?;
        error::writable_in(mode)
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
        let first = FirstWaits {
            refusal: self.settings.refusal_backoff,
            retry: self.settings.retry_backoff,
        };
        let (count, wait) = error::retry_after(*n, error, first);
        *n = count;
        wait
    }

    /// Post `event` about `object`; a failure is only logged.
    async fn publish<K: Resource<DynamicType = ()>>(&self, object: &K, notice: Notice) {
        let reference = object.object_ref(&());
        let reason = notice.reason;
        if let Err(e) = self
            .recorder
            .publish(&notice.into_event(), &reference)
            .await
        {
            tracing::warn!(reason, object = ?reference.name, error = %e, "could not post an event");
        }
    }
}

fn class_label(name: &str) -> Class {
    Class {
        class: name.to_owned(),
    }
}

fn error_policy<K: Resource>(object: Arc<K>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let uid = object.meta().uid.clone().unwrap_or_default();
    Action::requeue(ctx.backoff(&uid, error))
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
        watcher(Api::<StorageClass>::all(client.clone()), watch::config()),
    )
    .backoff(watch::backoff())
    .touched_objects();

    let volume_controller = Controller::new(
        Api::<PersistentVolume>::all(client.clone()),
        watch::config(),
    )
    .with_config(config.clone())
    .trigger_backoff(watch::backoff());
    let volumes = volume_controller.store();
    let claim_controller = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watch::config(),
    )
    .with_config(config)
    .trigger_backoff(watch::backoff());
    let claims = claim_controller.store();
    let pending_of_class = {
        let claims = claims.clone();
        move |class: StorageClass| {
            let name = class.name_any();
            claims
                .state()
                .into_iter()
                .filter(|c| reclaim::waits_for_class(c, &name))
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
    let claims_done = watch::stopped(claims_done, &ctx.claims, shutdown.clone());
    let volumes_done = volume_controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_volume, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "volume reconcile");
            }
        });
    let volumes_done = watch::stopped(volumes_done, &ctx.volumes, shutdown.clone());
    let sweeper = {
        let ctx = ctx.clone();
        async move {
            watch::sweep_every(
                || ctx.ready(),
                ctx.settings.sweep_interval,
                UNSYNCED_RECHECK,
                || volumes::sweep_orphans(&ctx),
            )
            .await;
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
