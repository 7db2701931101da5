//! `aplo node`, `device` and `brick` on the local store: states, removal,
//! adding a device, evicting a brick. What only a server does is refused
//! here, before the store is opened.

use std::process::ExitCode;

use anyhow::bail;

use super::super::Config;
use super::super::engine::runtime;
use super::super::verbs::{
    BrickCommand, DeviceCommand, NodeCommand, StateArg, device_and_state, server_only,
};
use super::started;
use crate::model::storage::Backend;
use crate::model::topology::DeviceSpec;
use crate::model::{Pairs, State, format_size};

/// `aplo node …`.
pub fn node(config: &Config, command: NodeCommand) -> anyhow::Result<ExitCode> {
    match command {
        NodeCommand::Enable { node } => node_state(config, node, StateArg::Online),
        NodeCommand::Disable { node } => node_state(config, node, StateArg::Offline),
        NodeCommand::State { node, state } => node_state(config, node, state),
        NodeCommand::Remove { node } | NodeCommand::Delete { node } => remove_node(config, node),
        NodeCommand::Add { .. } => bail!(
            "`aplo node add` needs a server (--server or APLO_SERVER); locally, nodes come from \
             `aplo topology load`"
        ),
        NodeCommand::Info { .. } | NodeCommand::List => {
            bail!(
                "this needs a server (--server or APLO_SERVER); locally, see `aplo topology info`"
            )
        }
        NodeCommand::Settags { .. } | NodeCommand::Rmtags { .. } => {
            Err(server_only("node settags/rmtags"))
        }
    }
}

/// Set a node's state (online, offline, failed).
fn node_state(config: &Config, node: String, state: StateArg) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        let node = match State::from(state) {
            // Failing a node moves its bricks to the other nodes.
            State::Failed => engine.fail_node(engine.find_node(&node)?.id).await?,
            to => engine.set_node_state(&node, to)?,
        };
        println!("node {} is {:?}", node.manage, node.state);
        Ok(ExitCode::SUCCESS)
    })
}

/// Remove a node that has no devices.
fn remove_node(config: &Config, node: String) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        engine.remove_node(&node).await?;
        println!("node {node} removed");
        Ok(ExitCode::SUCCESS)
    })
}

/// Split `[NODE] DEVICE` for the local store, which needs both.
fn node_and_device(mut words: Vec<String>, what: &str) -> anyhow::Result<(String, String)> {
    if words.len() != 2 {
        bail!(
            "locally, name the device as NODE DEVICE (`aplo device {what} node1 /dev/vdb`); a \
             device id alone works with a server"
        );
    }
    let device = words.pop().expect("two words");
    let node = words.pop().expect("two words");
    Ok((node, device))
}

/// `aplo device …`.
pub fn device(config: &Config, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Add(mut add) => {
            let (node, name) = add.node_and_name()?;
            let backend = add.backend.unwrap_or(Backend::LvmThin);
            add_device(config, node, name, backend, add.destroy_data)
        }
        DeviceCommand::Enable { device } => {
            device_state(config, node_and_device(device, "enable")?, StateArg::Online)
        }
        DeviceCommand::Disable { device } => device_state(
            config,
            node_and_device(device, "disable")?,
            StateArg::Offline,
        ),
        DeviceCommand::State { args } => {
            let (device, state) = device_and_state(args)?;
            device_state(config, node_and_device(device, "state")?, state)
        }
        DeviceCommand::Remove { device } | DeviceCommand::Delete { device } => {
            remove_device(config, node_and_device(device, "delete")?)
        }
        DeviceCommand::Info { .. } | DeviceCommand::Resync { .. } => {
            Err(server_only("device info/resync"))
        }
        DeviceCommand::Settags { .. } | DeviceCommand::Rmtags { .. } => {
            Err(server_only("device settags/rmtags"))
        }
    }
}

/// Add a device to a node.
fn add_device(
    config: &Config,
    node: String,
    name: String,
    backend: Backend,
    destroy_data: bool,
) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
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
        Ok(ExitCode::SUCCESS)
    })
}

/// Set a device's state (online, offline, failed).
fn device_state(
    config: &Config,
    (node, device): (String, String),
    state: StateArg,
) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
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
        Ok(ExitCode::SUCCESS)
    })
}

/// Remove a device that holds no bricks.
fn remove_device(config: &Config, (node, device): (String, String)) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        engine.remove_device(&node, &device).await?;
        println!("device {device} removed");
        Ok(ExitCode::SUCCESS)
    })
}

/// `aplo brick …` on the local store.
pub fn brick(config: &Config, command: BrickCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        match command {
            BrickCommand::Evict { brick } => {
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
