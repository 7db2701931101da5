//! Opening the storage engine from the configuration: the store, the
//! policies, and how commands reach each node.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::Config;
use crate::engine::driver::{CommandConfig, CommandDriver, Connections, Reach};
use crate::engine::{Engine, EngineConfig, Faults};
use crate::exec::command::Transport;
use crate::exec::lvm::LvmOptions;
use crate::model::paths::BrickRoot;
use crate::policy::Registry;
use crate::store::{RedbStore, Store};

/// The `nodes:` section of the configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesFile {
    /// How nodes are reached by default: `local` (the default) or `ssh`.
    #[serde(default)]
    reach: ReachFile,
    /// The ssh user, for `reach: ssh`.
    #[serde(default)]
    ssh_user: Option<String>,
    /// Extra ssh options, for `reach: ssh`.
    #[serde(default)]
    ssh_options: Vec<String>,
    /// Per node (by manage hostname): `local`, `{ssh: {destination, options}}`
    /// or `{prefix: [nsenter, -t, PID, -m, -n]}`.
    #[serde(default)]
    transports: BTreeMap<String, TransportFile>,
    /// Where `lvm-thin` bricks are mounted on each node.
    #[serde(default)]
    lvm_root: Option<PathBuf>,
    /// Run LVM with activation disabled (machines without device-mapper).
    #[serde(default)]
    lvm_no_activation: bool,
    /// Keep one gluster CLI session per node (the default) rather than
    /// start a `gluster` process for every command.
    #[serde(default = "yes")]
    gluster_sessions: bool,
}

fn yes() -> bool {
    true
}

impl Default for NodesFile {
    fn default() -> Self {
        NodesFile {
            reach: ReachFile::default(),
            ssh_user: None,
            ssh_options: Vec::new(),
            transports: BTreeMap::new(),
            lvm_root: None,
            lvm_no_activation: false,
            gluster_sessions: true,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum ReachFile {
    #[default]
    Local,
    Ssh,
}

/// One node's transport: exactly one of `local: true`,
/// `ssh: {destination, options}` or `prefix: [argv…]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportFile {
    #[serde(default)]
    local: bool,
    #[serde(default)]
    ssh: Option<SshFile>,
    #[serde(default)]
    prefix: Option<Vec<String>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SshFile {
    destination: String,
    #[serde(default)]
    options: Vec<String>,
}

impl TransportFile {
    fn transport(self, node: &str) -> anyhow::Result<Transport> {
        match (self.local, self.ssh, self.prefix) {
            (true, None, None) => Ok(Transport::Local),
            (false, Some(ssh), None) => Ok(Transport::Ssh {
                destination: ssh.destination,
                options: ssh.options,
            }),
            (false, None, Some(argv)) if !argv.is_empty() => Ok(Transport::Prefix(argv)),
            (false, None, Some(_)) => anyhow::bail!(
                "nodes.transports.{node}.prefix is empty; give the command to run before each command, e.g. [nsenter, -t, PID, -m, -n]"
            ),
            _ => anyhow::bail!(
                "nodes.transports.{node} must have exactly one of `local: true`, `ssh: {{destination: …}}` or `prefix: [...]`"
            ),
        }
    }
}

impl Config {
    pub(super) fn faults(&self) -> Faults {
        #[cfg(feature = "fault-injection")]
        {
            Faults::at(self.fault_at)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            Faults::default()
        }
    }

    /// Open the engine without recovering unfinished operations.
    pub fn open_engine(&self) -> anyhow::Result<Engine> {
        self.open_engine_with(self.open_registry()?)
    }

    /// [`Config::open_engine`] with policies already loaded.
    pub fn open_engine_with(&self, registry: Arc<Registry>) -> anyhow::Result<Engine> {
        self.open_engine_on(Arc::new(RedbStore::open(&self.db)?), registry)
    }

    /// [`Config::open_engine_with`] over a store already open.
    pub fn open_engine_on(
        &self,
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
    ) -> anyhow::Result<Engine> {
        let file = self.file()?.nodes;
        let lvm_root = match &file.lvm_root {
            Some(root) => {
                BrickRoot::new(root).map_err(|e| anyhow::anyhow!("nodes.lvm_root: {e}"))?
            }
            None => EngineConfig::default().lvm_root,
        };
        let reach = match file.reach {
            ReachFile::Local => Reach::Local,
            ReachFile::Ssh => Reach::Ssh {
                user: file.ssh_user.clone(),
                options: file.ssh_options.clone(),
            },
        };
        let overrides: HashMap<String, Transport> = file
            .transports
            .into_iter()
            .map(|(node, t)| Ok((node.clone(), t.transport(&node)?)))
            .collect::<anyhow::Result<_>>()?;
        let connections = Connections::new(reach, overrides);
        let driver = CommandDriver::new(
            if file.gluster_sessions {
                connections
            } else {
                connections.one_shot()
            },
            CommandConfig {
                lvm: LvmOptions {
                    no_activation: file.lvm_no_activation,
                },
                lvm_root: lvm_root.clone(),
                ..CommandConfig::default()
            },
        );
        Ok(Engine::new(
            store,
            Arc::new(driver),
            registry,
            EngineConfig {
                lvm_root,
                faults: self.faults(),
                ..EngineConfig::default()
            },
        )?)
    }
}

/// A runtime for the engine's async work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gluster_sessions_are_on_unless_the_config_turns_them_off() {
        assert!(NodesFile::default().gluster_sessions);
        let file: NodesFile = serde_yaml::from_str("reach: local").unwrap();
        assert!(file.gluster_sessions);
        let file: NodesFile = serde_yaml::from_str("gluster_sessions: false").unwrap();
        assert!(!file.gluster_sessions);
        let typo = serde_yaml::from_str::<NodesFile>("gluster_session: false").unwrap_err();
        assert!(typo.to_string().contains("gluster_session"), "{typo}");
    }
}
