//! The Kubernetes provisioner: claims in, GlusterFS volumes and bound PVs
//! out, following the external-provisioner protocol.
//!
//! - [`controller`]: the reconcilers on kube-runtime's `Controller`: they
//!   read objects, perform the I/O, and wire watches to
//! - [`decide`]: what to do with a claim or a PV, as pure functions, with
//!   the typed patches of [`patch`] and the errors and retry delays of
//!   [`error`];
//! - [`watch`]: how the watches retry;
//! - [`leader`]: leader election on a Lease.
//!
//! What a claim asks for and the PV that answers it, the metrics and the
//! serving status are in [`crate::front`], which the webhook and the CSI
//! controller share.
//!
//! [`serve`] ties them together: wait for the lease, then open the engine
//! (so only the leader ever touches the store), recover interrupted
//! operations, remount bricks, and run the controllers until shutdown or
//! until the lease is lost.

pub mod controller;
pub mod decide;
pub mod error;
pub mod leader;
pub mod patch;
pub mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

pub use controller::Settings;
pub use leader::LeaseConfig;

use crate::engine::Engine;
use crate::front::{Metrics, Phase, Status};

/// How `serve` runs.
pub struct ServeOptions {
    /// The reconcilers' settings.
    pub settings: Settings,
    /// Leader election; `None` acts at once (a single instance).
    pub lease: Option<LeaseConfig>,
    /// How often node health is refreshed in the background.
    pub health_interval: Duration,
    /// Remount brick filesystems at start (real drivers; the fstab
    /// equivalent after a node reboot).
    pub remount_bricks: bool,
    /// Our pod, labelled `aplo.dev/role=leader|standby` (in a cluster).
    pub pod: Option<leader::PodRef>,
}

/// How long running reconciles may take to finish once shutdown is asked,
/// before they are dropped. Dropping one is as safe as a crash: every
/// operation is journaled, and the next leader finishes or undoes it.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long each Kubernetes API call on the way in or out (labelling the
/// pod, handing the lease back) may take. kube's client waits 30 s to
/// connect and has no read timeout, so with the API unreachable an
/// unbounded call would hold the start or the exit for minutes.
pub const ROLE_CALL_BOUND: Duration = Duration::from_secs(2);

/// `work`, given up after [`ROLE_CALL_BOUND`] (logged as `what`).
async fn bounded(what: &str, work: impl Future<Output = ()>) {
    if tokio::time::timeout(ROLE_CALL_BOUND, work).await.is_err() {
        tracing::warn!(
            call = what,
            bound = ?ROLE_CALL_BOUND,
            "the Kubernetes API did not answer in time; going on without it"
        );
    }
}

/// Run the provisioner until `shutdown` resolves (`Ok`) or the lease is lost
/// (`Err`: the process should exit and be restarted as a standby).
/// `open_engine` runs only once the lease is held.
///
/// Shutdown is prompt in every phase: waiting for the lease, opening and
/// recovering the store and labelling the pod are all dropped when it
/// comes; running reconciles get [`STOP_GRACE`] to finish; the calls on the
/// way out are bounded by [`ROLE_CALL_BOUND`] each.
pub async fn serve<Open: Future<Output = anyhow::Result<Arc<Engine>>>>(
    client: Client,
    open_engine: impl FnOnce() -> Open,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) -> anyhow::Result<()> {
    let leadership = tokio::select! {
        leadership = elect(&client, &options, &status) => leadership?,
        () = shutdown.clone() => {
            status.set(Phase::Stopped);
            return Ok(());
        }
    };
    metrics.leader.set(1);
    status.set(Phase::Recovering);
    let role_client = client.clone();
    let result = lead(
        client,
        open_engine,
        &options,
        metrics.clone(),
        &status,
        leadership.as_ref(),
        shutdown,
    )
    .await;
    metrics.leader.set(0);
    status.set(Phase::Stopped);
    status.set_synced(false);
    status.set_engine(None);
    if let Some(pod) = &options.pod {
        bounded(
            "label the pod standby",
            leader::label_role(&role_client, pod, "standby"),
        )
        .await;
    }
    if let Some(leadership) = leadership {
        bounded("release the leader lease", leadership.release()).await;
    }
    result
}

/// Label the pod a standby and wait for the lease (none is needed without
/// leader election).
async fn elect(
    client: &Client,
    options: &ServeOptions,
    status: &Status,
) -> anyhow::Result<Option<leader::Leadership>> {
    if let Some(pod) = &options.pod {
        bounded(
            "label the pod standby",
            leader::label_role(client, pod, "standby"),
        )
        .await;
    }
    let Some(config) = &options.lease else {
        return Ok(None);
    };
    config.check()?;
    status.set(Phase::Standby);
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    Ok(Some(leader::acquire(api, config.clone()).await))
}

async fn lead<Open: Future<Output = anyhow::Result<Arc<Engine>>>>(
    client: Client,
    open_engine: impl FnOnce() -> Open,
    options: &ServeOptions,
    metrics: Arc<Metrics>,
    status: &Arc<Status>,
    leadership: Option<&leader::Leadership>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) -> anyhow::Result<()> {
    let lost = async {
        match leadership {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(lost);
    // Until the controllers run, shutdown drops whatever is under way (an
    // interrupted recovery is finished by the next start, as after a crash).
    let stop = shutdown.clone();
    tokio::pin!(stop);
    let engine = tokio::select! {
        opened = open_engine() => opened?,
        () = &mut lost => anyhow::bail!("lost the leader lease while opening the store"),
        () = &mut stop => return Ok(()),
    };
    let recovered = tokio::select! {
        r = engine.recover() => r?,
        () = &mut lost => anyhow::bail!("lost the leader lease while recovering"),
        () = &mut stop => return Ok(()),
    };
    tracing::info!(?recovered, "store recovered");
    if options.remount_bricks {
        let remounted = tokio::select! {
            r = engine.remount_bricks() => r,
            () = &mut stop => return Ok(()),
        };
        match remounted {
            Ok(mounted) if !mounted.is_empty() => {
                tracing::info!(?mounted, "brick filesystems mounted");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "remounting bricks failed; continuing"),
        }
    }
    let health = engine.watch_health(options.health_interval);
    status.set_engine(Some(engine.clone()));
    status.set(Phase::Leading);
    if let Some(pod) = &options.pod {
        tokio::select! {
            () = bounded("label the pod leader", leader::label_role(&client, pod, "leader")) => {}
            () = &mut stop => {
                health.abort();
                return Ok(());
            }
        }
    }
    let controllers = controller::run(
        client,
        engine,
        options.settings.clone(),
        metrics,
        status.clone(),
        shutdown.clone(),
    );
    // Reconciles still running STOP_GRACE after shutdown are dropped.
    let grace_over = async {
        shutdown.await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    let result = tokio::select! {
        () = controllers => Ok(()),
        () = grace_over => {
            tracing::warn!(grace = ?STOP_GRACE, "reconciles still running after the stop grace are dropped; their journaled operations are finished by the next leader");
            Ok(())
        }
        () = &mut lost => Err(anyhow::anyhow!("lost the leader lease; stopping so that a standby can lead")),
    };
    health.abort();
    result
}
