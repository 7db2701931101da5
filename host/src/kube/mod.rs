//! The Kubernetes provisioner: claims in, GlusterFS volumes and bound PVs
//! out, following the external-provisioner protocol.
//!
//! - [`claim`]: what a claim asks for and the PV that answers it (pure);
//! - [`controller`]: the reconcilers on kube-runtime's `Controller`;
//! - [`leader`]: leader election on a Lease;
//! - [`metrics`]: the Prometheus metrics.
//!
//! [`serve`] ties them together: wait for the lease, then open the engine
//! (so only the leader ever touches the store), recover interrupted
//! operations, remount bricks, and run the controllers until shutdown or
//! until the lease is lost.

pub mod claim;
pub mod controller;
#[cfg(feature = "dev-apiserver")]
pub mod demo;
pub mod leader;
pub mod metrics;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

pub use controller::Settings;
pub use leader::LeaseConfig;
pub use metrics::Metrics;

use crate::exec::engine::Engine;

/// Where `serve` is, for the health endpoints and the HTTP API: the phase,
/// the engine while this instance leads, and whether the watches synced.
#[derive(Default)]
pub struct Status {
    phase: AtomicU8,
    synced: AtomicBool,
    engine: RwLock<Option<Arc<Engine>>>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("phase", &self.phase())
            .field("synced", &self.synced())
            .field("engine", &self.engine().is_some())
            .finish()
    }
}

/// The phases of [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting up.
    Starting,
    /// Waiting for the lease.
    Standby,
    /// Recovering the store before acting.
    Recovering,
    /// Leading: the controllers run.
    Leading,
    /// Stopped (shut down or lost the lease).
    Stopped,
}

impl Status {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Standby,
            2 => Phase::Recovering,
            3 => Phase::Leading,
            _ => Phase::Stopped,
        }
    }

    fn set(&self, phase: Phase) {
        let n = match phase {
            Phase::Starting => 0,
            Phase::Standby => 1,
            Phase::Recovering => 2,
            Phase::Leading => 3,
            Phase::Stopped => 4,
        };
        self.phase.store(n, Ordering::Relaxed);
    }

    /// Mark the phase (for `aplo serve --api-only`, which has no lease).
    pub fn enter(&self, phase: Phase) {
        self.set(phase);
    }

    /// Whether the controllers' watches have listed everything once
    /// (always false outside controller mode).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Relaxed);
    }

    /// The engine, while this instance has the store open.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publish (or withdraw) the engine.
    pub fn set_engine(&self, engine: Option<Arc<Engine>>) {
        *self
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine;
    }
}

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

/// Run the provisioner until `shutdown` resolves (`Ok`) or the lease is lost
/// (`Err`: the process should exit and be restarted as a standby).
/// `open_engine` runs only once the lease is held.
pub async fn serve<Open: Future<Output = anyhow::Result<Arc<Engine>>>>(
    client: Client,
    open_engine: impl FnOnce() -> Open,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) -> anyhow::Result<()> {
    if let Some(pod) = &options.pod {
        leader::label_role(&client, pod, "standby").await;
    }
    let leadership = match &options.lease {
        Some(config) => {
            config.check().map_err(anyhow::Error::msg)?;
            status.set(Phase::Standby);
            let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
            tokio::select! {
                held = leader::acquire(api, config.clone()) => Some(held),
                () = shutdown.clone() => {
                    status.set(Phase::Stopped);
                    return Ok(());
                }
            }
        }
        None => None,
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
        leader::label_role(&role_client, pod, "standby").await;
    }
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    result
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
    let engine = tokio::select! {
        opened = open_engine() => opened?,
        () = &mut lost => anyhow::bail!("lost the leader lease while opening the store"),
    };
    let recovered = tokio::select! {
        r = engine.recover() => r?,
        () = &mut lost => anyhow::bail!("lost the leader lease while recovering"),
    };
    tracing::info!(?recovered, "store recovered");
    if options.remount_bricks {
        match engine.remount_bricks().await {
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
        leader::label_role(&client, pod, "leader").await;
    }
    let controllers = controller::run(
        client,
        engine,
        options.settings.clone(),
        metrics,
        status.clone(),
        shutdown,
    );
    let result = tokio::select! {
        () = controllers => Ok(()),
        () = &mut lost => Err(anyhow::anyhow!("lost the leader lease; stopping so that a standby can lead")),
    };
    health.abort();
    result
}
