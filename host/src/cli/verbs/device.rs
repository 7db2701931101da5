//! `aplo device …`: add, show, take in and out of service, remove, resync
//! and tag devices. A device is named by its id (server only) or by `NODE
//! DEVICE`.

use anyhow::Context;
use clap::Subcommand;

use super::{SetTags, StateArg};
use crate::model::storage::Backend;

/// `aplo device …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct DeviceArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// `device add`'s flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct DeviceAdd {
    /// Node id or manage hostname.
    #[arg(value_name = "NODE", required_unless_present = "node")]
    node_arg: Option<String>,
    /// The block device (`lvm-thin`) or directory (`loop`, `dir`).
    #[arg(value_name = "NAME", required_unless_present = "name")]
    name_arg: Option<String>,
    /// Node id or manage hostname (heketi-cli's spelling).
    #[arg(long, conflicts_with = "node_arg")]
    node: Option<String>,
    /// The device (heketi-cli's spelling).
    #[arg(long, conflicts_with = "name_arg")]
    name: Option<String>,
    /// Its brick backend (locally: lvm-thin when not given; with a
    /// server: sent as the `backend` tag).
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Wipe existing signatures first.
    #[arg(long, alias = "destroy-existing-data")]
    pub destroy_data: bool,
}

impl DeviceAdd {
    /// The node and the device, in either spelling. The device's name is
    /// checked here, before anything is asked of a server or the store:
    /// it goes into command lines.
    pub fn node_and_name(&mut self) -> anyhow::Result<(String, String)> {
        let node = self.node_arg.take().or(self.node.take());
        let name = self.name_arg.take().or(self.name.take());
        let node = node.context("give the node (--node)")?;
        let name = name.context("give the device (--name)")?;
        crate::model::topology::check_device_name(&name)
            .map_err(|why| anyhow::anyhow!("device NAME: {why}"))?;
        Ok((node, name))
    }
}

/// Device commands. A device is named by its id (server only) or by `NODE
/// DEVICE`: the node's id or manage hostname and the device's name or id.
#[derive(Debug, PartialEq, Subcommand)]
pub enum DeviceCommand {
    /// Add a device to a node: `device add NODE NAME` or, as heketi-cli,
    /// `device add --node NODE --name NAME`.
    Add(DeviceAdd),
    /// Show a device and its bricks (server only).
    Info {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// Put a device back in service.
    Enable {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// Take a device out of service: no new bricks go there.
    Disable {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// With a server, heketi's meaning: mark the device failed and move its
    /// bricks away. Locally: delete a device that holds no bricks (as
    /// `delete`).
    Remove {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// Delete a device that holds no bricks.
    Delete {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// Set a device's state: `state [NODE] DEVICE STATE`.
    State {
        /// `DEVICE-ID STATE` or `NODE DEVICE STATE` (online, offline, failed).
        #[arg(value_name = "ARGS", num_args = 2..=3, required = true)]
        args: Vec<String>,
    },
    /// Update the device's size after it grew (server only).
    Resync {
        /// `DEVICE-ID` or `NODE DEVICE`.
        #[arg(value_name = "DEVICE", num_args = 1..=2, required = true)]
        device: Vec<String>,
    },
    /// Set tags `name:value` (server only): merged, or replacing all with
    /// `--exact`.
    Settags {
        /// Device id.
        device: String,
        /// The tags.
        #[command(flatten)]
        tags: SetTags,
    },
    /// Remove tags by name, or all with `--all` (server only).
    #[command(alias = "deltags", alias = "removetags")]
    Rmtags {
        /// Device id.
        device: String,
        /// Tag names.
        #[arg(value_name = "NAME")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long, conflicts_with = "tags")]
        all: bool,
    },
}

/// `device state`'s words: the device (`DEVICE-ID` or `NODE DEVICE`) and
/// the state, last.
pub fn device_and_state(mut args: Vec<String>) -> anyhow::Result<(Vec<String>, StateArg)> {
    let text = args.pop().expect("clap gives two or three");
    Ok((args, StateArg::parse(&text)?))
}
