//! `aplo serve`: the Kubernetes provisioner, with its metrics and health
//! endpoints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;

use super::Config;
use super::engine::runtime;
use crate::exec::driver::SimDriver;
use crate::exec::engine::{Engine, EngineConfig, LoadOptions};
use crate::http::{self, HttpState};
use crate::kube::claim::DEFAULT_PROVISIONER;
use crate::kube::{LeaseConfig, Metrics, ServeOptions, Settings, Status};
use crate::model::parse_size;
use crate::model::storage::Backend;
use crate::model::topology::parse_topology;
use crate::store::RedbStore;

/// What runs the storage commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// Real gluster and LVM commands on the nodes (see the config file's
    /// `nodes:` section).
    Commands,
    /// The simulate executor: every command succeeds without touching a
    /// disk (tests, benchmarks, trying aplo out).
    Simulate,
}

/// Arguments of `aplo serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The provisioner name StorageClasses name; also the CSI driver name
    /// of the PVs.
    #[arg(long, env = "APLO_PROVISIONER_NAME", default_value = DEFAULT_PROVISIONER)]
    pub provisioner_name: String,
    /// This instance's identity in the lease and in events (default: the
    /// host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "aplo-system")]
    pub lease_namespace: String,
    /// The Lease's name (default: the provisioner name with dots as dashes).
    #[arg(long)]
    pub lease_name: Option<String>,
    /// Act at once, without leader election (a single instance only).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Seconds a lease lasts without renewal.
    #[arg(long, default_value_t = 15.0)]
    pub lease_duration: f64,
    /// Seconds the leader keeps trying to renew before it steps down.
    #[arg(long, default_value_t = 10.0)]
    pub renew_deadline: f64,
    /// Seconds between election attempts and renewals.
    #[arg(long, default_value_t = 2.0)]
    pub retry_period: f64,
    /// Where metrics and health endpoints listen.
    #[arg(long, env = "APLO_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// A kubeconfig file (default: in-cluster, or the usual kubeconfig).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Claims (and volumes) reconciled at once.
    #[arg(long, default_value_t = 32)]
    pub workers: u16,
    /// A heketi topology file loaded when the leader starts; nodes and
    /// devices already present are left as they are.
    #[arg(long, env = "APLO_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// The brick backend of topology devices without a `backend` tag.
    #[arg(long, value_enum, default_value = "lvm-thin")]
    pub backend: Backend,
    /// What runs the storage commands.
    #[arg(long, value_enum, default_value = "commands")]
    pub driver: DriverKind,
    /// The size of each device with `--driver simulate`.
    #[arg(long, default_value = "1Ti")]
    pub simulate_device_size: String,
    /// Seconds between sweeps for backend volumes nobody wants.
    #[arg(long, default_value_t = 300)]
    pub sweep_interval: u64,
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0 && value <= 3600.0,
        "--{flag} must be between 0 and 3600 seconds, not {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

impl ServeArgs {
    fn options(&self) -> anyhow::Result<ServeOptions> {
        let identity = match &self.identity {
            Some(identity) => identity.clone(),
            None => format!(
                "{}-{}",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "aplo".into()),
                std::process::id()
            ),
        };
        let lease = if self.no_leader_election {
            None
        } else {
            let name = self
                .lease_name
                .clone()
                .unwrap_or_else(|| self.provisioner_name.replace(['.', '/'], "-"));
            let config = LeaseConfig {
                lease_duration: seconds("lease-duration", self.lease_duration)?,
                renew_deadline: seconds("renew-deadline", self.renew_deadline)?,
                retry_period: seconds("retry-period", self.retry_period)?,
                ..LeaseConfig::new(&self.lease_namespace, &name, &identity)
            };
            config.check().map_err(anyhow::Error::msg)?;
            Some(config)
        };
        anyhow::ensure!(self.workers > 0, "--workers must be at least 1");
        let mut settings = Settings::new(&self.provisioner_name, &identity);
        settings.workers = self.workers;
        settings.sweep_interval = Duration::from_secs(self.sweep_interval.max(1));
        Ok(ServeOptions {
            settings,
            lease,
            health_interval: Duration::from_secs(5),
            remount_bricks: self.driver == DriverKind::Commands,
        })
    }
}

/// Open the engine with the chosen driver and load the topology file.
async fn open_engine(config: &Config, args: &ServeArgs) -> anyhow::Result<Arc<Engine>> {
    let engine = match args.driver {
        DriverKind::Commands => config.open_engine()?,
        DriverKind::Simulate => {
            let size = parse_size(&args.simulate_device_size)
                .map_err(|e| anyhow::anyhow!("--simulate-device-size: {e}"))?;
            Engine::new(
                Arc::new(RedbStore::open(&config.db)?),
                Arc::new(SimDriver::new(size)),
                config.open_registry()?,
                EngineConfig {
                    faults: config.faults(),
                    ..EngineConfig::default()
                },
            )?
        }
    };
    let engine = Arc::new(engine);
    if let Some(path) = &args.topology {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let spec = parse_topology(&text).with_context(|| path.display().to_string())?;
        // Interrupted operations are finished before anything new starts.
        engine.recover().await?;
        let report = engine
            .load_topology(
                &spec,
                LoadOptions {
                    backend: args.backend,
                },
            )
            .await?;
        tracing::info!(
            nodes_added = report.nodes_added.len(),
            devices_added = report.devices_added.len(),
            "topology loaded"
        );
        for failure in &report.failures {
            tracing::warn!(%failure, "topology: not loaded");
        }
    }
    Ok(engine)
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

/// Run `aplo serve`.
pub fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    // Checked now, so that a bad policy directory fails before any lease.
    config.registry_config()?;
    runtime()?.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let metrics = Arc::new(Metrics::new());
        let status = Arc::new(Status::default());
        let (addr, http) = http::bind(
            args.listen,
            HttpState {
                metrics: metrics.clone(),
                status: status.clone(),
            },
        )
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(%addr, provisioner = %args.provisioner_name, "serving metrics and health");
        let http = tokio::spawn(http);
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
        }
        .boxed()
        .shared();
        let result = crate::kube::serve(
            client,
            || open_engine(config, &args),
            options,
            metrics,
            status,
            shutdown,
        )
        .await;
        http.abort();
        result.map(|()| ExitCode::SUCCESS)
    })
}
