//! The storage commands: topology, node, device, volume, check, repair.
//! Every command that changes something first finishes the journal's
//! unfinished operations (start-up recovery).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Config;
use super::engine::runtime;
use crate::engine::{CreateRequest, Engine, LoadOptions};
use crate::model::storage::Backend;
use crate::model::topology::{DeviceSpec, parse_topology};
use crate::model::{Pairs, State, format_size, parse_size};

/// Topology commands.
#[derive(Debug)]
pub enum TopologyCommand {
    /// Load a heketi topology file (JSON or YAML). Idempotent: nodes are
    /// matched by manage hostname, devices by name.
    Load {
        /// The topology file.
        file: PathBuf,
        /// The brick backend of devices without a `backend` tag.
        backend: Backend,
    },
    /// Show clusters, nodes and devices with their usage.
    Show {
        /// Print JSON.
        json: bool,
    },
}

/// Node commands.
#[derive(Debug)]
pub enum NodeCommand {
    /// Set a node's state (online, offline, failed).
    State {
        /// Manage hostname or id.
        node: String,
        /// The state.
        state: StateArg,
    },
    /// Remove a node that has no devices.
    Remove {
        /// Manage hostname or id.
        node: String,
    },
}

/// Device commands.
#[derive(Debug)]
pub enum DeviceCommand {
    /// Add a device to a node.
    Add {
        /// Manage hostname or id of the node.
        node: String,
        /// The block device (`lvm-thin`) or directory (`loop`, `dir`).
        name: String,
        /// Its brick backend.
        backend: Backend,
        /// Wipe existing signatures first.
        destroy_data: bool,
    },
    /// Remove a device that holds no bricks.
    Remove {
        /// Manage hostname or id of the node.
        node: String,
        /// Device name or id.
        device: String,
    },
    /// Set a device's state (online, offline, failed).
    State {
        /// Manage hostname or id of the node.
        node: String,
        /// Device name or id.
        device: String,
        /// The state.
        state: StateArg,
    },
}

/// A node or device state.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StateArg {
    /// In service.
    Online,
    /// Out of service, for maintenance.
    Offline,
    /// Broken or leaving: its bricks are moved elsewhere first
    /// (`replace-brick`, placed by the volume's placement policy).
    Failed,
}

impl From<StateArg> for State {
    fn from(s: StateArg) -> State {
        match s {
            StateArg::Online => State::Online,
            StateArg::Offline => State::Offline,
            StateArg::Failed => State::Failed,
        }
    }
}

/// Volume commands.
#[derive(Debug)]
pub enum VolumeCommand {
    /// Create a volume through the class's policies.
    Create {
        /// Usable size, e.g. `1Gi`.
        size: String,
        /// The gluster volume name (default `vol_<id>`).
        name: Option<String>,
        /// StorageClass parameters, `key=value` (e.g. `placement=binpack`).
        params: Vec<String>,
    },
    /// Grow a volume.
    Expand {
        /// Name or id.
        volume: String,
        /// The new usable size.
        size: String,
    },
    /// Delete a volume and its bricks.
    Delete {
        /// Name or id.
        volume: String,
    },
    /// List volumes.
    List {
        /// Print JSON.
        json: bool,
    },
    /// Show a volume and its bricks.
    Info {
        /// Name or id.
        volume: String,
        /// Print JSON.
        json: bool,
    },
}

/// Parse `key=value` parameters.
pub fn parse_params(params: &[String]) -> anyhow::Result<Pairs> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("parameter '{p}' is not key=value"))
        })
        .collect()
}

fn size(text: &str) -> anyhow::Result<u64> {
    volume_size("--size", text)
}

/// A volume size given on the command line, in bytes: a bare number is
/// GiB, as heketi-cli has it (`--size 10`), with or without a server; with
/// a unit it is that (`10Gi`, `500Mi`, `1Ti`).
pub(crate) fn volume_size(flag: &str, text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .and_then(|gib| gib.checked_mul(crate::model::GIB))
            .ok_or_else(|| anyhow::anyhow!("{flag} {text}: too large"));
    }
    parse_size(text).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {text}: {e} (a bare number is GiB, e.g. 10; or give a unit: 10Gi, 500Mi)"
        )
    })
}

/// Open the engine and finish the journal's unfinished operations.
async fn started(config: &Config) -> anyhow::Result<Engine> {
    let engine = config.open_engine()?;
    let recovery = engine.recover().await?;
    for line in &recovery.outcomes {
        eprintln!("recovered: {line}");
    }
    if recovery.unfinished > 0 {
        eprintln!(
            "aplo: {} operation(s) could not be recovered; see `aplo check`",
            recovery.unfinished
        );
    }
    Ok(engine)
}

/// `aplo topology …`.
pub fn topology(config: &Config, command: TopologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopologyCommand::Load { file, backend } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let spec = parse_topology(&text).with_context(|| format!("{}", file.display()))?;
            runtime()?.block_on(async {
                let engine = started(config).await?;
                let report = engine.load_topology(&spec, LoadOptions { backend }).await?;
                println!(
                    "clusters added: {}; nodes added: {}, already present: {}; devices added: {}, already present: {}",
                    report.clusters_added,
                    report.nodes_added.len(),
                    report.nodes_present.len(),
                    report.devices_added.len(),
                    report.devices_present.len()
                );
                for failure in &report.failures {
                    println!("not loaded: {failure}");
                }
                Ok(if report.failures.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            })
        }
        TopologyCommand::Show { json } => {
            let engine = config.open_engine()?;
            let snapshot = engine.snapshot();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&snapshot.policy_topology())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let usage = snapshot.device_usage();
            for cluster in snapshot.clusters.values() {
                println!("cluster {}", cluster.id);
                for node in snapshot.nodes.values().filter(|n| n.cluster == cluster.id) {
                    println!(
                        "  node {} (storage {}, zone {}, {:?})",
                        node.manage, node.storage, node.zone, node.state
                    );
                    for d in snapshot.devices.values().filter(|d| d.node == node.id) {
                        let (used, bricks) = usage.get(&d.id).copied().unwrap_or_default();
                        println!(
                            "    device {} [{}] {:?}: {} used of {}, {bricks} brick(s)",
                            d.name,
                            d.backend,
                            d.state,
                            format_size(used),
                            format_size(d.total_bytes)
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `aplo node …`.
pub fn node(config: &Config, command: NodeCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        match command {
            NodeCommand::State { node, state } => {
                let node = match State::from(state) {
                    // Failing a node moves its bricks to the other nodes.
                    State::Failed => engine.fail_node(engine.find_node(&node)?.id).await?,
                    to => engine.set_node_state(&node, to)?,
                };
                println!("node {} is {:?}", node.manage, node.state);
            }
            NodeCommand::Remove { node } => {
                engine.remove_node(&node).await?;
                println!("node {node} removed");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `aplo device …`.
pub fn device(config: &Config, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        match command {
            DeviceCommand::Add {
                node,
                name,
                backend,
                destroy_data,
            } => {
                let node_id = engine.find_node(&node)?.id;
                let device = engine
                    .add_device(
                        node_id,
                        &DeviceSpec {
                            name,
                            destroy_data,
                            tags: Pairs::new(),
                        },
                        backend,
                    )
                    .await?;
                println!(
                    "device {} added with {}",
                    device.name,
                    format_size(device.total_bytes)
                );
            }
            DeviceCommand::Remove { node, device } => {
                engine.remove_device(&node, &device).await?;
                println!("device {device} removed");
            }
            DeviceCommand::State {
                node,
                device,
                state,
            } => {
                let device = match State::from(state) {
                    // Failing a device moves its bricks to other devices.
                    State::Failed => {
                        engine
                            .fail_device(engine.find_device(&node, &device)?.id)
                            .await?
                    }
                    to => engine.set_device_state(&node, &device, to)?,
                };
                println!("device {} is {:?}", device.name, device.state);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `aplo brick …` on the local store.
pub fn brick(config: &Config, command: super::client::BrickCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        match command {
            super::client::BrickCommand::Evict { brick } => {
                let id: crate::model::Id = brick
                    .parse()
                    .map_err(|_| anyhow::anyhow!("'{brick}' is not a brick id (32 hex digits)"))?;
                let new = engine.replace_brick(id, &[]).await?;
                println!("Brick {brick} evicted: brick {} took its place", new.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `aplo volume …`.
pub fn volume(config: &Config, command: VolumeCommand) -> anyhow::Result<ExitCode> {
    match command {
        VolumeCommand::List { json } => {
            let engine = config.open_engine()?;
            let volumes = engine.volumes();
            if json {
                println!("{}", serde_json::to_string_pretty(&volumes)?);
            } else {
                for v in volumes {
                    println!(
                        "{}  {}  {}  {:?}  {}",
                        v.id,
                        v.name,
                        format_size(v.bytes),
                        v.state,
                        crate::model::validate::describe(&v.scheme)
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        VolumeCommand::Info { volume, json } => {
            let engine = config.open_engine()?;
            let (volume, bricks) = engine.volume(&volume)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "volume": volume,
                        "bricks": bricks,
                    }))?
                );
            } else {
                let snapshot = engine.snapshot();
                println!(
                    "volume {} ({}): {} usable, {}, {:?}",
                    volume.name,
                    volume.id,
                    format_size(volume.bytes),
                    crate::model::validate::describe(&volume.scheme),
                    volume.state
                );
                for b in bricks {
                    let host = snapshot
                        .nodes
                        .get(&b.node)
                        .map_or("?", |n| n.storage.as_str());
                    println!(
                        "  set {} brick {} {:?} {} on {host}:{}",
                        b.set,
                        b.id,
                        b.role,
                        format_size(b.bytes),
                        b.path
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    runtime()?.block_on(async {
        let engine = started(config).await?;
        match command {
            VolumeCommand::Create {
                size: text,
                name,
                params,
            } => {
                let volume = engine
                    .create_volume(CreateRequest {
                        name,
                        bytes: size(&text)?,
                        parameters: parse_params(&params)?,
                        ..CreateRequest::default()
                    })
                    .await?;
                println!(
                    "volume {} created: {} usable, {}",
                    volume.name,
                    format_size(volume.bytes),
                    crate::model::validate::describe(&volume.scheme)
                );
            }
            VolumeCommand::Expand { volume, size: text } => {
                let volume = engine.expand_volume(&volume, size(&text)?).await?;
                println!(
                    "volume {} now has {} usable",
                    volume.name,
                    format_size(volume.bytes)
                );
            }
            VolumeCommand::Delete { volume } => {
                engine.delete_volume(&volume).await?;
                println!("volume {volume} deleted");
            }
            VolumeCommand::List { .. } | VolumeCommand::Info { .. } => {
                unreachable!("handled above")
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `aplo check`.
pub fn check(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.check().await;
        print!("{report}");
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `aplo recover`.
pub fn recover(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.recover().await?;
        for line in &report.outcomes {
            println!("{line}");
        }
        if report.outcomes.is_empty() {
            println!("no unfinished operations");
        }
        for brick in engine.remount_bricks().await? {
            println!("{brick}: remounted");
        }
        Ok(if report.unfinished == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `aplo repair`.
pub fn repair(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.repair().await?;
        for line in &report.repaired {
            println!("repaired: {line}");
        }
        for line in &report.left {
            println!("left: {line}");
        }
        if report.repaired.is_empty() && report.left.is_empty() {
            println!("nothing to repair");
        }
        Ok(if report.left.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

#[cfg(test)]
mod tests {
    use super::volume_size;
    use crate::model::{GIB, MIB};

    #[test]
    fn a_bare_size_is_gib_with_or_without_a_server() {
        assert_eq!(volume_size("--size", "10").unwrap(), 10 * GIB);
        assert_eq!(volume_size("--size", " 1 ").unwrap(), GIB);
        assert_eq!(volume_size("--size", "10Gi").unwrap(), 10 * GIB);
        assert_eq!(volume_size("--size", "512Mi").unwrap(), 512 * MIB);
        let too_big = volume_size("--size", "99999999999999999999").unwrap_err();
        assert!(too_big.to_string().contains("too large"), "{too_big}");
        let bad = volume_size("--size", "ten").unwrap_err().to_string();
        assert!(bad.contains("a bare number is GiB"), "{bad}");
    }
}
