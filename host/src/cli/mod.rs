//! The `aplo` command line: configuration, telemetry and the commands.

mod client;
mod csi;
mod db;
mod demo;
mod engine;
mod policy;
pub mod serve;
mod simulate;
mod storage;
pub mod telemetry;
mod verbs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::{Limits, Registry, RegistryConfig, Runtime, RuntimeConfig};

pub use telemetry::init as init_telemetry;

/// aplo: Kubernetes storage on GlusterFS and LVM, decided by WebAssembly policies.
#[derive(Debug, Parser)]
#[command(name = "aplo", version, about)]
pub struct Cli {
    /// Global settings.
    #[command(flatten)]
    pub config: Config,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings shared by every command, from flags, `APLO_*` variables and an
/// optional file. Nothing else reads the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory of policy modules (`<name>.wasm`), watched for changes.
    #[arg(long, global = true, env = "APLO_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Directory for compiled policy artifacts.
    #[arg(long, global = true, env = "APLO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Default deadline of one policy decision, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "APLO_POLICY_DEADLINE_MS",
        default_value_t = 100
    )]
    pub policy_deadline_ms: u64,
    /// Default memory cap of one policy instance, in MiB.
    #[arg(
        long,
        global = true,
        env = "APLO_POLICY_MEMORY_MIB",
        default_value_t = 64
    )]
    pub policy_memory_mib: usize,
    /// Write `/tmp/perf-<pid>.map` so that `perf record` and `perf report`
    /// name the policies' own functions (profiling a policy).
    #[arg(long, global = true, env = "APLO_POLICY_PERF_MAP")]
    pub policy_perf_map: bool,
    /// A YAML or JSON file with per-policy limits:
    /// `policies: { <name>: { deadline: <ms>, memory_bytes: <n> } }`.
    #[arg(long, global = true, env = "APLO_CONFIG")]
    pub config: Option<PathBuf>,
    /// The store (a redb file, created if missing).
    #[arg(long, global = true, env = "APLO_DB", default_value = "aplo.redb")]
    pub db: PathBuf,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "APLO_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, global = true, env = "APLO_LOG", default_value = "info")]
    pub log: String,
    /// Stop at a fault point (`<operation>:journaled`, `<operation>:<step>`,
    /// `add-node:probe`, `provision:volume-created`) and wait to be killed.
    /// Only in test builds with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    #[arg(long, global = true, env = "APLO_FAULT_AT", hide = true)]
    pub fault_at: Option<crate::engine::FaultPoint>,
    /// The REST API the storage commands call instead of the local store.
    #[command(flatten)]
    pub remote: client::Remote,
}

/// The optional configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Limits per policy.
    #[serde(default)]
    policies: BTreeMap<String, Limits>,
    /// How commands reach the nodes.
    #[serde(default)]
    nodes: engine::NodesFile,
}

impl Config {
    /// Check the settings and build the registry's configuration.
    pub fn registry_config(&self) -> anyhow::Result<RegistryConfig> {
        anyhow::ensure!(
            (1..=60_000).contains(&self.policy_deadline_ms),
            "--policy-deadline-ms must be between 1 and 60000, not {}",
            self.policy_deadline_ms
        );
        anyhow::ensure!(
            (1..=256).contains(&self.policy_memory_mib),
            "--policy-memory-mib must be between 1 and 256, not {}",
            self.policy_memory_mib
        );
        let file = self.file()?;
        if let Some(dir) = &self.policy_dir {
            anyhow::ensure!(
                dir.is_dir(),
                "policy directory {} does not exist",
                dir.display()
            );
        }
        Ok(RegistryConfig {
            dir: self.policy_dir.clone(),
            default_limits: Limits {
                deadline: Duration::from_millis(self.policy_deadline_ms),
                memory_bytes: self.policy_memory_mib << 20,
                ..Limits::default()
            },
            limits: file.policies,
        })
    }

    /// The configuration file, or the defaults when there is none.
    fn file(&self) -> anyhow::Result<ConfigFile> {
        Ok(match &self.config {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_yaml::from_str(&text)
                    .with_context(|| format!("{} is not a valid aplo config", path.display()))?
            }
        })
    }

    /// Open the runtime and the registry.
    pub fn open_registry(&self) -> anyhow::Result<Arc<Registry>> {
        let registry_config = self.registry_config()?;
        let runtime = Arc::new(Runtime::new(RuntimeConfig {
            cache_dir: self.cache_dir.clone(),
            perf_map: self.policy_perf_map,
            ..Default::default()
        })?);
        Ok(Arc::new(Registry::open(runtime, registry_config)?))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write, inspect, test and evaluate policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The demo: the default policies decide a volume on an example topology.
    Demo(demo::DemoArgs),
    /// Export or import the store as JSON; dump or check it (the local
    /// store, or the REST API with --server or APLO_SERVER).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Create, list, inspect and delete clusters (through the REST API:
    /// --server or APLO_SERVER).
    Cluster(verbs::ClusterArgs),
    /// Clusters, nodes and devices: load a heketi topology file, show it
    /// (the local store, or the REST API with --server or APLO_SERVER).
    Topology(verbs::TopologyArgs),
    /// Add, remove and set the state of nodes (the local store, or the REST
    /// API with --server or APLO_SERVER).
    Node(verbs::NodeArgs),
    /// Add, remove and set the state of devices (the local store, or the
    /// REST API with --server or APLO_SERVER).
    Device(verbs::DeviceArgs),
    /// Create, expand, delete, list and inspect volumes (the local store, or
    /// the REST API with --server or APLO_SERVER).
    Volume(verbs::VolumeArgs),
    /// Move a brick elsewhere (the local store, or the REST API with
    /// --server or APLO_SERVER).
    Brick(verbs::BrickArgs),
    /// The server's admin mode and unfinished operations (through the
    /// REST API: --server or APLO_SERVER).
    Server(client::ServerArgs),
    /// The server's log level (through the REST API: --server or
    /// APLO_SERVER).
    Loglevel(client::LogLevelArgs),
    /// Compare the store with gluster and the nodes; exit 1 on any drift.
    Check,
    /// Finish or undo the journal's unfinished operations, as every
    /// command that changes something does first, and mount brick
    /// filesystems that are not mounted (run it at boot).
    Recover,
    /// Finish unfinished operations and fix every safe drift; explain the rest.
    Repair,
    /// Play a workload of claims through the real policies on a topology,
    /// without touching any disk.
    Simulate(simulate::SimulateArgs),
    /// Run the Kubernetes provisioner: watch claims, provision, bind,
    /// expand and delete volumes, with leader election and metrics.
    Serve(Box<serve::ServeArgs>),
    /// Run the CSI driver: the node role mounts volumes for pods, the
    /// controller role creates them (behind the stock sidecars).
    Csi(Box<csi::CsiArgs>),
}

/// The binary's whole life: parse the command line, start telemetry, run,
/// report an error on stderr. Shared by `aplo` and the test build
/// `aplo-faulty`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = match telemetry::init_reloadable(cli.config.log_format, cli.log_filter()) {
        Ok(logging) => logging,
        Err(err) => {
            eprintln!("aplo: {err:#}");
            return ExitCode::from(2);
        }
    };
    match cli.run_logged(Some(Arc::new(logging))) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("aplo: {err:#}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// The log filter: as configured, except that `aplo simulate` keeps the
    /// engine's per-volume lines out of its report unless asked.
    pub fn log_filter(&self) -> &str {
        match self.command {
            Command::Simulate(_) | Command::Demo(_) if self.config.log == "info" => "warn",
            _ => &self.config.log,
        }
    }

    /// Run the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.run_logged(None)
    }

    /// Run the command; `aplo serve` lets the REST API change the log
    /// level through `logging` (the installed subscriber's filter).
    pub fn run_logged(
        self,
        logging: Option<Arc<dyn crate::http::control::LogControl>>,
    ) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Policy(command) => policy::run(&self.config, command),
            Command::Demo(args) => demo::run(&self.config, args),
            Command::Db(command) => db::run(&self.config, command),
            Command::Cluster(args) => client::cluster(&self.config, args),
            Command::Topology(args) => client::topology(&self.config, args),
            Command::Node(args) => client::node(&self.config, args),
            Command::Device(args) => client::device(&self.config, args),
            Command::Volume(args) => client::volume(&self.config, args),
            Command::Brick(args) => client::brick(&self.config, args),
            Command::Server(args) => client::server(&self.config, args),
            Command::Loglevel(args) => client::loglevel(&self.config, args),
            Command::Check => storage::check(&self.config),
            Command::Recover => storage::recover(&self.config),
            Command::Repair => storage::repair(&self.config),
            Command::Simulate(args) => simulate::run(&self.config, args),
            Command::Serve(args) => serve::run(&self.config, *args, logging),
            Command::Csi(args) => csi::run(&self.config, *args),
        }
    }
}
