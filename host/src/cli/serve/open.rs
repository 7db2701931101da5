//! Building what `aplo serve` runs: the store and the engine (with the
//! topology file loaded), the Kubernetes client, the quota usage the
//! webhook sees, and the HTTPS listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::super::Config;
use super::{DriverKind, ServeArgs};
use crate::engine::driver::SimDriver;
use crate::engine::{Engine, EngineConfig, LoadOptions};
use crate::front::Status;
use crate::http::admission::UsageSource;
use crate::http::control::AdminGate;
use crate::http::tls;
use crate::model::parse_size;
use crate::model::storage::Backend;
use crate::model::topology::parse_topology;
use crate::policy::Registry;
use crate::store::{RedbStore, Store};

/// Open the store and the engine with the chosen driver, and load the
/// topology file; the REST API's admin mode (`mode`) is kept in the store
/// from now on.
pub(super) async fn open_engine(
    config: &Config,
    args: &ServeArgs,
    registry: Arc<Registry>,
    mode: Option<Arc<AdminGate>>,
) -> anyhow::Result<Arc<Engine>> {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&config.db)?);
    if let Some(mode) = mode {
        mode.attach(store.clone())?;
    }
    let engine = match args.driver {
        DriverKind::Commands => config.open_engine_on(store, registry)?,
        DriverKind::Simulate => {
            let size = parse_size(&args.simulate_device_size)
                .map_err(|e| anyhow::anyhow!("--simulate-device-size: {e}"))?;
            Engine::new(
                store,
                Arc::new(SimDriver::new(size)),
                registry,
                EngineConfig {
                    faults: config.faults(),
                    ..EngineConfig::default()
                },
            )?
        }
    };
    let engine = Arc::new(engine);
    if let Some(path) = &args.topology {
        load_topology_file(&engine, path, args.backend).await?;
    }
    Ok(engine)
}

/// Finish interrupted operations, then load a heketi topology file (nodes
/// and devices already present are left as they are).
pub(in crate::cli) async fn load_topology_file(
    engine: &Engine,
    path: &Path,
    backend: Backend,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = parse_topology(&text).with_context(|| path.display().to_string())?;
    // Interrupted operations are finished before anything new starts.
    engine.recover().await?;
    let report = engine.load_topology(&spec, LoadOptions { backend }).await?;
    tracing::info!(
        nodes_added = report.nodes_added.len(),
        devices_added = report.devices_added.len(),
        "topology loaded"
    );
    for failure in &report.failures {
        tracing::warn!(%failure, "topology: not loaded");
    }
    Ok(())
}

/// The Kubernetes client, from `--kubeconfig` or the environment.
pub async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (not in a cluster, and no kubeconfig)")?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// The quota usage the admission webhook sees: the leader's store, or
/// nothing on a standby (the webhook's failure policy then answers).
pub(super) fn leader_usage(status: Arc<Status>) -> Arc<dyn UsageSource> {
    Arc::new(move |namespace: &str, claim: &str| {
        status
            .engine()
            .map(|engine| engine.usage_without(namespace, Some(claim)))
    })
}

/// Serve `router` on the HTTPS listener when a certificate is configured.
pub(super) async fn spawn_tls(
    args: &ServeArgs,
    router: axum::Router,
) -> anyhow::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
    let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) else {
        return Ok(None);
    };
    // Fail now, with the file named, rather than in the background.
    tls::load_certified_key(&cert, &key)?;
    let listener = tokio::net::TcpListener::bind(args.tls_listen)
        .await
        .with_context(|| format!("listening on {}", args.tls_listen))?;
    tracing::info!(addr = %args.tls_listen, cert = %cert.display(), "serving HTTPS");
    Ok(Some(tokio::spawn(tls::serve_tls(
        listener,
        router,
        cert,
        key,
        std::future::pending(),
    ))))
}
