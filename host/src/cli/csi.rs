//! `aplo csi`: the CSI driver's gRPC server on a unix socket, with the node
//! role, the controller role, or both.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;

use super::Config;
use super::engine::runtime;
use crate::csi::registration::health_router;
use crate::csi::server::Services;
use crate::csi::{
    Controller, Endpoint, Identity, Node, NodeConfig, NotReady, Readiness, Registrar,
};
use crate::exec::command::{NodeExecutor, Transport};
use crate::front::claim::DEFAULT_PROVISIONER;

/// A role the server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Mount volumes for pods on this node (a DaemonSet on every node).
    Node,
    /// Create, expand and delete volumes (behind external-provisioner).
    Controller,
}

/// `aplo csi`.
#[derive(Debug, clap::Args)]
pub struct CsiArgs {
    /// The unix socket to serve on (`unix:///path` or an absolute path).
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///csi/csi.sock")]
    pub endpoint: String,
    /// The roles to serve, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "node")]
    pub role: Vec<Role>,
    /// The driver's name: the provisioner name StorageClasses and PVs carry.
    #[arg(long, env = "APLO_PROVISIONER_NAME", default_value = DEFAULT_PROVISIONER)]
    pub driver_name: String,
    /// This node's name, as kubelet knows it (node role).
    #[arg(long, env = "NODE_NAME")]
    pub node_id: Option<String>,
    /// This node's zone, reported as `topology.kubernetes.io/zone`.
    #[arg(long, env = "NODE_ZONE")]
    pub zone: Option<String>,
    /// Kubelet's root directory: every staging and target path must lie
    /// inside it.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_dir: PathBuf,
    /// Where the node keeps a record of each staged volume, for remounting
    /// it in place when its client dies (not next to the socket).
    #[arg(long, default_value = "/var/lib/aplo/csi")]
    pub state_dir: PathBuf,
    /// Where each volume's glusterfs client log goes (a hostPath, so that
    /// it outlives the plugin's container).
    #[arg(long, default_value = "/var/log/glusterfs/aplo")]
    pub client_log_dir: PathBuf,
    /// The glusterfs clients' log level.
    #[arg(long, default_value = "WARNING")]
    pub client_log_level: String,
    /// Run mount commands in this mount namespace (e.g. `/proc/1/ns/mnt`
    /// with `hostPID: true`: the host's), through `nsenter`; the host's
    /// glusterfs client then does the mounting.
    #[arg(long)]
    pub mount_namespace: Option<PathBuf>,
    /// A cgroup directory to move mount commands, and the FUSE clients
    /// they leave running, into (repeat it once per hierarchy on cgroup
    /// v1), so that the clients outlive the plugin's container.
    #[arg(long)]
    pub client_cgroup: Vec<PathBuf>,
    /// The host's cgroup filesystem as the plugin sees it (e.g.
    /// `/host/sys/fs/cgroup`): a cgroup named `--client-cgroup-name` is made
    /// under it (under each hierarchy on cgroup v1, cpuset aside) and mount
    /// commands move there. Instead of listing `--client-cgroup`s.
    #[arg(long, conflicts_with = "client_cgroup")]
    pub client_cgroup_root: Option<PathBuf>,
    /// The cgroup `--client-cgroup-root` makes.
    #[arg(long, default_value = "aplo-glusterfs")]
    pub client_cgroup_name: String,
    /// A heketi topology file loaded at start (controller role); nodes and
    /// devices already present are left as they are.
    #[arg(long, env = "APLO_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// The brick backend of topology devices without a `backend` tag.
    #[arg(long, value_enum, default_value = "lvm-thin")]
    pub backend: crate::model::storage::Backend,
    /// Register with kubelet through this directory (kubelet's
    /// `plugins_registry`, e.g. `/var/lib/kubelet/plugins_registry`), so
    /// that no node-driver-registrar sidecar is needed (node role).
    #[arg(long)]
    pub registration_dir: Option<PathBuf>,
    /// The path at which kubelet reaches `--endpoint` on the node, when the
    /// plugin sees it elsewhere (e.g. `/csi/csi.sock` in the container is
    /// `/var/lib/kubelet/plugins/glusterfs.aplo.dev/csi.sock` on the node).
    #[arg(long, requires = "registration_dir")]
    pub kubelet_endpoint: Option<PathBuf>,
    /// Serve `GET /healthz` here (e.g. `$(POD_IP):9808`) for a liveness
    /// probe: 200 when ready, 503 naming what is wrong.
    #[arg(long)]
    pub health_address: Option<std::net::SocketAddr>,
}

/// The log levels the glusterfs client takes.
const CLIENT_LOG_LEVELS: [&str; 7] = [
    "TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NONE",
];

impl CsiArgs {
    fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let node_id = self
            .node_id
            .clone()
            .filter(|id| !id.is_empty())
            .context("the node role needs --node-id (or NODE_NAME)")?;
        anyhow::ensure!(
            CLIENT_LOG_LEVELS.contains(&self.client_log_level.to_ascii_uppercase().as_str()),
            "--client-log-level '{}': one of {}",
            self.client_log_level,
            CLIENT_LOG_LEVELS.join(", ")
        );
        for (flag, dir) in [
            ("--kubelet-dir", &self.kubelet_dir),
            ("--state-dir", &self.state_dir),
            ("--client-log-dir", &self.client_log_dir),
        ] {
            anyhow::ensure!(dir.is_absolute(), "{flag} must be an absolute path");
        }
        let client_cgroups = match &self.client_cgroup_root {
            Some(root) => client_cgroups_under(root, &self.client_cgroup_name)?,
            None => self.client_cgroup.clone(),
        };
        for cgroup in &client_cgroups {
            anyhow::ensure!(
                cgroup.join("cgroup.procs").is_file(),
                "--client-cgroup {}: not a cgroup directory (no cgroup.procs)",
                cgroup.display()
            );
        }
        Ok(NodeConfig {
            node_id,
            zone: self.zone.clone().filter(|z| !z.is_empty()),
            kubelet_dir: self.kubelet_dir.clone(),
            state_dir: self.state_dir.clone(),
            log_dir: self.client_log_dir.clone(),
            log_level: self.client_log_level.to_ascii_uppercase(),
            client_cgroups,
        })
    }

    /// How mount commands reach the mount namespace they run in.
    fn transport(&self) -> anyhow::Result<Transport> {
        Ok(match &self.mount_namespace {
            None => Transport::Local,
            Some(ns) => {
                anyhow::ensure!(
                    ns.exists(),
                    "--mount-namespace {}: no such file",
                    ns.display()
                );
                Transport::Prefix(vec![
                    "nsenter".into(),
                    format!("--mount={}", ns.display()),
                    "--".into(),
                ])
            }
        })
    }

    /// The root of the filesystem mount commands see: `/proc/PID/root` for
    /// `--mount-namespace /proc/PID/ns/mnt`, else `/`.
    fn client_root(&self) -> PathBuf {
        self.mount_namespace
            .as_deref()
            .and_then(|ns| ns.parent()?.parent())
            .map_or_else(|| PathBuf::from("/"), |proc| proc.join("root"))
    }
}

/// The cgroups named `name` under a cgroup filesystem at `root`, made when
/// missing: one on cgroup v2; one per hierarchy on v1, except cpuset (whose
/// new cgroups take no process until their CPUs and memory nodes are set,
/// and which no container runtime kills by).
fn client_cgroups_under(root: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        !name.is_empty() && !name.contains('/') && name != "." && name != "..",
        "--client-cgroup-name '{name}' must be one path element"
    );
    let hierarchies: Vec<PathBuf> = if root.join("cgroup.procs").is_file() {
        vec![root.to_owned()]
    } else {
        let entries = std::fs::read_dir(root)
            .with_context(|| format!("--client-cgroup-root {}", root.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            // v1 aliases such as cpu -> cpu,cpuacct are symlinks.
            if entry.file_type()?.is_symlink()
                || entry.file_name().to_string_lossy().contains("cpuset")
            {
                continue;
            }
            if entry.path().join("cgroup.procs").is_file() {
                found.push(entry.path());
            }
        }
        found.sort();
        found
    };
    anyhow::ensure!(
        !hierarchies.is_empty(),
        "--client-cgroup-root {}: no cgroup hierarchy there",
        root.display()
    );
    hierarchies
        .into_iter()
        .map(|h| {
            let dir = h.join(name);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("making cgroup {}", dir.display()))?;
            Ok(dir)
        })
        .collect()
}

/// The node role is ready when the glusterfs client is installed where
/// mounts run and `/dev/fuse` exists.
fn node_readiness(root: PathBuf) -> Readiness {
    Arc::new(move || {
        let helper = ["sbin/mount.glusterfs", "usr/sbin/mount.glusterfs"]
            .iter()
            .map(|p| root.join(p))
            .find(|p| p.exists());
        if helper.is_none() {
            return Err(NotReady::NoGlusterClient(root.clone()));
        }
        if !Path::new("/dev/fuse").exists() {
            return Err(NotReady::NoFuse);
        }
        Ok(())
    })
}

/// Run `aplo csi`.
pub fn run(config: &Config, args: CsiArgs) -> anyhow::Result<ExitCode> {
    let endpoint: Endpoint = args.endpoint.parse()?;
    anyhow::ensure!(
        !args.role.is_empty(),
        "--role needs node, controller or both"
    );
    let serves = |role| args.role.contains(&role);
    let mut checks = Vec::new();
    let node = if serves(Role::Node) {
        let config = args.node_config()?;
        let exec = NodeExecutor::one_shot(config.node_id.clone(), args.transport()?);
        checks.push(node_readiness(args.client_root()));
        Some(Node::new(config, exec))
    } else {
        None
    };
    let identity = Identity {
        name: args.driver_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        controller: serves(Role::Controller),
        checks,
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let controller = if serves(Role::Controller) {
            // The policies are loaded and the store opened before the
            // socket answers: Probe is ready only then.
            let engine = Arc::new(config.open_engine_with(config.open_registry()?)?);
            match &args.topology {
                Some(path) => super::serve::load_topology_file(&engine, path, args.backend).await?,
                None => {
                    engine.recover().await?;
                }
            }
            Some(Controller::new(engine))
        } else {
            None
        };
        let listener = endpoint.bind()?;
        let stop = super::serve::shutdown_signal()?;
        tracing::info!(endpoint = %endpoint.path().display(), roles = ?args.role, driver = %args.driver_name, "serving CSI");
        // The health endpoint and the registration socket come up once the
        // CSI socket is bound: kubelet calls it as soon as it registers it.
        let registration = match &args.registration_dir {
            Some(dir) => {
                let registrar = Registrar::new(
                    args.driver_name.clone(),
                    args.kubelet_endpoint
                        .clone()
                        .unwrap_or_else(|| endpoint.path().to_owned()),
                );
                let socket = registrar.socket(dir)?;
                let listener = socket.bind()?;
                tracing::info!(socket = %socket.path().display(), "registering with kubelet");
                Some((registrar, socket, listener))
            }
            None => None,
        };
        let health = match args.health_address {
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("--health-address {address}"))?;
                let router = health_router(
                    identity.clone(),
                    registration.as_ref().map(|(r, _, _)| r.clone()),
                );
                let stop = stop.clone();
                Some(tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stop)
                        .await
                }))
            }
            None => None,
        };
        let services = Services {
            identity,
            node,
            controller,
        };
        let csi = crate::csi::server::serve(&endpoint, listener, services, stop.clone());
        let register = async {
            match registration {
                Some((registrar, socket, listener)) => {
                    crate::csi::registration::serve(&socket, listener, registrar, stop.clone()).await
                }
                None => Ok(()),
            }
        };
        let served = tokio::try_join!(csi, register);
        let _ = std::fs::remove_file(endpoint.path());
        served?;
        if let Some(health) = health {
            health.await.context("the health endpoint")??;
        }
        Ok(ExitCode::SUCCESS)
    })
}
