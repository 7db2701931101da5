//! `aplo serve`: the Kubernetes provisioner, the heketi-compatible REST
//! API, the PVC admission webhook, metrics and health, in one process; or
//! `aplo serve --api-only`: the REST API alone, without Kubernetes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;

use futures::StreamExt;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::Config;
use super::engine::runtime;
use crate::engine::driver::SimDriver;
use crate::engine::{Engine, EngineConfig, LoadOptions};
use crate::front::claim::DEFAULT_PROVISIONER;
use crate::front::{Metrics, Phase, Status};
use crate::http::admission::{self, AdmissionOptions, AdmissionState, FailurePolicy, UsageSource};
use crate::http::api::KEEP_RESULTS;
use crate::http::auth::Keys;
use crate::http::control::{AdminGate, LogControl, ServerControl};
use crate::http::queue::Queue;
use crate::http::{self, ApiConfig, HttpState, tls};
use crate::kube::leader::PodRef;
use crate::kube::{LeaseConfig, ServeOptions, Settings};
use crate::model::parse_size;
use crate::model::storage::Backend;
use crate::model::topology::parse_topology;
use crate::policy::Registry;
use crate::store::{RedbStore, Store};

/// The shortest key the REST API takes.
const MIN_KEY_LENGTH: usize = 16;

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
    /// Seconds between rescans of the policy directory for changed
    /// modules.
    #[arg(long, default_value_t = 5)]
    pub policy_reload_interval: u64,
    /// Serve only the REST API (and metrics and health), without watching
    /// Kubernetes: the store is opened at once, with no leader election.
    /// Run one such instance per store.
    #[arg(long)]
    pub api_only: bool,
    /// The key of heketi's `admin` JWT issuer.
    #[arg(long, env = "APLO_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// The key of heketi's `user` JWT issuer (volume operations only).
    #[arg(long, env = "APLO_USER_KEY", hide_env_values = true)]
    pub user_key: Option<String>,
    /// DEVELOPMENT ONLY: serve the REST API without authentication.
    #[arg(long, conflicts_with_all = ["admin_key", "user_key"])]
    pub no_auth: bool,
    /// Seconds a token's `iat` may lie in the future (clock skew).
    #[arg(long, default_value_t = 120)]
    pub jwt_iat_leeway: u64,
    /// Long REST operations (volume create, delete...) in flight at once;
    /// more get 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_operations: usize,
    /// Where the HTTPS listener (admission webhook, and the same API)
    /// listens, when a certificate is given.
    #[arg(long, env = "APLO_TLS_LISTEN", default_value = "0.0.0.0:8443")]
    pub tls_listen: SocketAddr,
    /// PEM certificate chain for HTTPS; re-read when the file changes.
    #[arg(long, env = "APLO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS; re-read when the file changes.
    #[arg(long, env = "APLO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// What the admission webhook answers when it cannot decide (a policy
    /// timeout or trap, usage unknown): `Fail` denies, `Ignore` allows
    /// with a warning. A policy's refusal is always a denial.
    #[arg(long, default_value = "Fail")]
    pub admission_failure_policy: FailurePolicy,
    /// Seconds the admission webhook's policies may take before the
    /// failure policy answers instead; keep it below the webhook
    /// configuration's `timeoutSeconds`, so that the API server always
    /// gets aplo's answer.
    #[arg(long, default_value_t = admission::DEFAULT_ANSWER_WITHIN.as_secs_f64())]
    pub admission_timeout: f64,
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
        // Only in a pod (POD_NAME set by the downward API) is there a pod
        // to label with its role.
        let pod = std::env::var("POD_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .map(|name| PodRef {
                namespace: self.lease_namespace.clone(),
                name,
            });
        Ok(ServeOptions {
            settings,
            lease,
            health_interval: Duration::from_secs(5),
            remount_bricks: self.driver == DriverKind::Commands,
            pod,
        })
    }

    /// The REST API's configuration, or `None` when it is not configured;
    /// `logging` lets it change the log level.
    fn api(&self, logging: Option<Arc<dyn LogControl>>) -> anyhow::Result<Option<ApiConfig>> {
        let key = |flag: &str, key: &Option<String>| -> anyhow::Result<Option<Vec<u8>>> {
            match key {
                // A security floor, kept although heketi's own examples and
                // test setups use shorter keys.
                Some(k) if k.len() < MIN_KEY_LENGTH => {
                    anyhow::bail!(
                        "--{flag} is too short ({} characters): use at least {MIN_KEY_LENGTH}. \
                         heketi accepts shorter keys and its examples use them; aplo does not. To \
                         migrate, generate a key with `openssl rand -hex 32` and give the same \
                         key to the clients (heketi-cli --secret, the StorageClass's secret)",
                        k.chars().count()
                    )
                }
                Some(k) => Ok(Some(k.clone().into_bytes())),
                None => Ok(None),
            }
        };
        let admin = key("admin-key", &self.admin_key)?;
        let user = key("user-key", &self.user_key)?;
        anyhow::ensure!(
            self.max_operations > 0,
            "--max-operations must be at least 1"
        );
        anyhow::ensure!(
            self.jwt_iat_leeway <= 3600,
            "--jwt-iat-leeway must be between 0 and 3600 seconds"
        );
        let keys = match (admin, user) {
            (None, None) if self.no_auth => None,
            (None, None) => {
                tracing::info!(
                    "the REST API is off: give --admin-key (and --user-key), or --no-auth for development"
                );
                return Ok(None);
            }
            (None, Some(_)) => anyhow::bail!("--user-key needs --admin-key too"),
            (Some(admin), user) => Some(Keys {
                admin,
                // Without a user key no user token verifies: a random key
                // nobody knows disables the role.
                user: match user {
                    Some(user) => user,
                    None => {
                        use std::io::Read;
                        let mut random = vec![0; 32];
                        std::fs::File::open("/dev/urandom")
                            .and_then(|mut f| f.read_exact(&mut random))
                            .context("reading /dev/urandom")?;
                        random
                    }
                },
                iat_leeway: self.jwt_iat_leeway,
            }),
        };
        Ok(Some(ApiConfig {
            keys,
            queue: Queue::new(self.max_operations, KEEP_RESULTS),
            control: ServerControl {
                // The store is attached when it opens.
                mode: Arc::new(AdminGate::in_memory()),
                logging,
            },
        }))
    }
}

/// Open the store and the engine with the chosen driver, and load the
/// topology file; the REST API's admin mode (`mode`) is kept in the store
/// from now on.
async fn open_engine(
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
pub(super) async fn load_topology_file(
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
fn leader_usage(status: Arc<Status>) -> Arc<dyn UsageSource> {
    Arc::new(move |namespace: &str, claim: &str| {
        status
            .engine()
            .map(|engine| engine.usage_without(namespace, Some(claim)))
    })
}

/// Serve `router` on the HTTPS listener when a certificate is configured.
async fn spawn_tls(
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

/// Resolves once shutdown is asked; every task that must stop holds a clone.
pub(super) type Stop = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// Resolves on SIGTERM or SIGINT. The handlers are installed now (inside
/// the runtime), so that a signal that comes early is not missed.
pub(super) fn shutdown_signal() -> anyhow::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    }
    .boxed()
    .shared())
}

/// After shutdown is asked, how long the process may take to stop cleanly
/// (reconciles finishing, the pod's label, the lease handed back) before it
/// exits regardless.
const EXIT_WITHIN: Duration = Duration::from_secs(
    crate::kube::STOP_GRACE.as_secs() + 2 * crate::kube::ROLE_CALL_BOUND.as_secs() + 1,
);

/// How long the exit waits for blocking threads (a policy decision under
/// way, a name lookup): they are abandoned, not waited for.
const BLOCKING_WAIT: Duration = Duration::from_millis(500);

/// Run `aplo serve`; `logging` (the installed log filter) lets the REST
/// API change the log level.
pub fn run(
    config: &Config,
    args: ServeArgs,
    logging: Option<Arc<dyn LogControl>>,
) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let api = args.api(logging)?;
    let answer_within = seconds("admission-timeout", args.admission_timeout)?;
    // Loaded now, so that a bad policy directory fails before any lease;
    // the webhook and the engine share these compiled policies.
    let registry = config.open_registry()?;
    // A changed policy file is loaded (or rejected, keeping the previous
    // version) without a restart; the webhook and the engine share it.
    let policy_watch = registry.watch(Duration::from_secs(args.policy_reload_interval.max(1)));
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let stop = shutdown_signal()?;
        // Whatever is under way when shutdown comes has EXIT_WITHIN to end
        // cleanly; then the process exits regardless.
        let exit_anyway = {
            let stop = stop.clone();
            async move {
                stop.await;
                tokio::time::sleep(EXIT_WITHIN).await;
            }
        };
        tokio::select! {
            result = serve(config, &args, options, api, answer_within, registry, stop) => result,
            () = exit_anyway => {
                tracing::warn!(within = ?EXIT_WITHIN, "still stopping; exiting anyway");
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    runtime.shutdown_timeout(BLOCKING_WAIT);
    // Stop watching the policy directory without waiting for a rescan under
    // way (a large module may take seconds to compile).
    std::thread::spawn(move || drop(policy_watch));
    result
}

/// Everything `aplo serve` runs, until `stop` resolves.
async fn serve(
    config: &Config,
    args: &ServeArgs,
    options: ServeOptions,
    api: Option<ApiConfig>,
    answer_within: Duration,
    registry: Arc<Registry>,
    stop: Stop,
) -> anyhow::Result<ExitCode> {
    let metrics = Arc::new(Metrics::new());
    metrics.add_policies(registry.runtime().metrics());
    let status = Arc::new(Status::default());
    let mode = api.as_ref().map(|api| api.control.mode.clone());
    let mut state = HttpState::new(metrics.clone(), status.clone());
    if let Some(api) = api {
        state = state.with_api(api);
    }
    if args.api_only {
        return api_only(config, args, registry, state, mode, stop).await;
    }
    // Reading the configuration may run a credential plugin: not past a
    // shutdown.
    let client = tokio::select! {
        client = client(args.kubeconfig.as_ref()) => client?,
        () = stop.clone() => return Ok(ExitCode::SUCCESS),
    };
    let (classes, class_writer) = reflector::store::<StorageClass>();
    let class_watch = tokio::spawn(
        reflector::reflector(
            class_writer,
            watcher(
                Api::<StorageClass>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    let admission = AdmissionState::new(
        registry.clone(),
        Arc::new(classes),
        leader_usage(status.clone()),
        AdmissionOptions {
            provisioner: args.provisioner_name.clone(),
            failure_policy: args.admission_failure_policy,
            answer_within,
        },
    );
    let state = state.with_routes(admission::router(admission));
    let tls = spawn_tls(args, http::router(state.clone())).await?;
    let (addr, http) = http::bind(args.listen, state)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(%addr, provisioner = %args.provisioner_name, "serving HTTP");
    let http = tokio::spawn(http);
    let result = crate::kube::serve(
        client,
        || open_engine(config, args, registry, mode),
        options,
        metrics,
        status,
        stop,
    )
    .await;
    http.abort();
    class_watch.abort();
    if let Some(tls) = tls {
        tls.abort();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// `aplo serve --api-only`: open the store at once and serve the REST API
/// until SIGTERM.
async fn api_only(
    config: &Config,
    args: &ServeArgs,
    registry: Arc<Registry>,
    state: HttpState,
    mode: Option<Arc<AdminGate>>,
    stop: Stop,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        state.api.is_some(),
        "--api-only serves the REST API: give --admin-key (and --user-key), or --no-auth for development"
    );
    let state = state.without_controller();
    let status = state.status.clone();
    let tls = spawn_tls(args, http::router(state.clone())).await?;
    let (addr, http) = http::bind(args.listen, state)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let http = tokio::spawn(http);
    status.enter(Phase::Recovering);
    // An interrupted recovery is finished by the next start, as after a
    // crash: shutdown does not wait for it.
    let opened = async {
        let engine = open_engine(config, args, registry, mode).await?;
        let recovered = engine.recover().await?;
        anyhow::Ok((engine, recovered))
    };
    let (engine, recovered) = tokio::select! {
        opened = opened => opened?,
        () = stop.clone() => {
            http.abort();
            if let Some(tls) = tls {
                tls.abort();
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    tracing::info!(?recovered, "store recovered");
    let health = engine.watch_health(Duration::from_secs(5));
    status.set_engine(Some(engine));
    status.enter(Phase::Leading);
    tracing::info!(%addr, "serving the REST API (no Kubernetes controller)");
    stop.await;
    status.enter(Phase::Stopped);
    status.set_engine(None);
    health.abort();
    http.abort();
    if let Some(tls) = tls {
        tls.abort();
    }
    Ok(ExitCode::SUCCESS)
}
