//! `aplo serve`: the Kubernetes provisioner, the heketi-compatible REST
//! API, the PVC admission webhook, metrics and health, in one process; or
//! `aplo serve --api-only`: the REST API alone, without Kubernetes. This
//! file holds its arguments; `open` builds the pieces, `run` runs them.

mod open;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::front::claim::DEFAULT_PROVISIONER;
use crate::http::ApiConfig;
use crate::http::admission::{self, FailurePolicy};
use crate::http::api::KEEP_RESULTS;
use crate::http::auth::Keys;
use crate::http::control::{AdminGate, LogControl, ServerControl};
use crate::http::queue::Queue;
use crate::kube::leader::PodRef;
use crate::kube::{LeaseConfig, ServeOptions, Settings};
use crate::model::storage::Backend;

pub(super) use open::load_topology_file;
pub use run::run;
pub(super) use run::shutdown_signal;

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
