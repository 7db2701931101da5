//! The storage commands in two modes, one command line: `aplo cluster`,
//! `topology`, `node`, `device` and `volume` call a REST API (aplo's or
//! heketi's) when a server is given, and act on the local store (`--db`)
//! otherwise. heketi-cli's `server`, `loglevel` and `db dump|check` need a
//! server (`db dump` and `db check` fall back to the local store).
//!
//! The server comes from `--server` or `APLO_SERVER`, the role from
//! `--user` or `APLO_USER` (`admin` unless said), the key from `--secret`
//! or `APLO_KEY`. For people coming from heketi-cli, `HEKETI_CLI_SERVER`,
//! `HEKETI_CLI_USER` and `HEKETI_CLI_KEY` are read when the `APLO_*`
//! variable and the flag are absent. These flags are global: they go
//! before the subcommand, as with heketi-cli (`aplo -s URL volume list`),
//! or after it. `--json` goes after the noun (`aplo volume list --json`).
//!
//! Subcommands and flags follow heketi-cli's (`volume create --size 10
//! --durability disperse`, `volume expand --volume ID --expand-size 5`,
//! `node add --zone 1 --cluster ID --management-host-name H
//! --storage-host-name H`, `device add --name /dev/vdb --node ID`,
//! `topology load --json FILE`, …). Where the local store's commands took
//! other shapes (positional names, `--size` as the new total, `topology
//! show`), both spellings are accepted. Nodes can be named by id or manage
//! hostname and volumes by id or name in both modes; devices by `NODE
//! DEVICE` in both, or by id alone with a server.
//!
//! Two heketi meanings differ from the local store's older ones and are
//! kept per mode: with a server, `node remove` and `device remove` mark
//! the node or device failed (heketi); locally they delete it, as
//! `delete` does. A bare `--size 10` is GiB in both modes (heketi-cli's
//! unit), one definition for both (`storage::volume_size`).

mod args;
mod commands;
mod http;
mod lookup;
mod render;
mod server;
mod topology;
mod volume;
mod wire;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;

use super::Config;
use super::storage::{self, StateArg};
use crate::model::storage::Backend;

pub use args::{
    BrickArgs, BrickCommand, ClusterArgs, ClusterCommand, DeviceArgs, DeviceCommand, DurabilityArg,
    HeketiVolumeArgs, NodeArgs, NodeCommand, Remote, TopologyArgs, TopologyCommand, VolumeArgs,
    VolumeCommand,
};
use http::Api;
pub use server::{LogLevelArgs, ServerArgs};

impl Remote {
    /// The server, if one is given (an empty value counts as none).
    pub fn server(&self) -> Option<&str> {
        [&self.server, &self.heketi_cli_server]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
    }

    /// Connect to the server, or `None` for the local store.
    fn connect(&self) -> anyhow::Result<Option<Api>> {
        let Some(server) = self.server() else {
            return Ok(None);
        };
        let pick = |a: &Option<String>, b: &Option<String>| {
            a.clone()
                .filter(|s| !s.is_empty())
                .or_else(|| b.clone().filter(|s| !s.is_empty()))
        };
        let user = pick(&self.user, &self.heketi_cli_user);
        let key = pick(&self.secret, &self.heketi_cli_key);
        Api::new(server, user.as_deref(), key.as_deref()).map(Some)
    }
}

fn server_only(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`aplo {what}` needs a server: give --server URL or set APLO_SERVER (the local store \
         has no such command)"
    )
}

/// `aplo server …`.
pub fn server(config: &Config, args: ServerArgs) -> anyhow::Result<ExitCode> {
    let Some(api) = config.remote.connect()? else {
        return Err(server_only("server"));
    };
    api.run(server::server(&api, args.command))
}

/// `aplo loglevel …`.
pub fn loglevel(config: &Config, args: LogLevelArgs) -> anyhow::Result<ExitCode> {
    let Some(api) = config.remote.connect()? else {
        return Err(server_only("loglevel"));
    };
    api.run(server::loglevel(&api, args.command))
}

/// Print what the server answers to `GET path` (`db dump`: `/db/dump`,
/// `db check`: `/db/check`); `None` without a server.
pub fn from_server(config: &Config, path: &str) -> anyhow::Result<Option<ExitCode>> {
    let Some(api) = config.remote.connect()? else {
        return Ok(None);
    };
    api.run(server::print_get(&api, path)).map(Some)
}

/// `aplo cluster …`.
pub fn cluster(config: &Config, args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let Some(api) = config.remote.connect()? else {
        return Err(server_only("cluster"));
    };
    api.run(commands::cluster(&api, args.json, args.command))
}

/// `aplo topology …`.
pub fn topology(config: &Config, args: TopologyArgs) -> anyhow::Result<ExitCode> {
    match config.remote.connect()? {
        Some(api) => api.run(topology::topology(&api, args.command)),
        None => storage::topology(
            config,
            match args.command {
                TopologyCommand::Load {
                    file,
                    json,
                    backend,
                } => storage::TopologyCommand::Load {
                    file: file.or(json).context("give the topology file")?,
                    backend: backend.unwrap_or(Backend::LvmThin),
                },
                TopologyCommand::Info { json } => storage::TopologyCommand::Show { json },
            },
        ),
    }
}

/// `aplo node …`.
pub fn node(config: &Config, args: NodeArgs) -> anyhow::Result<ExitCode> {
    if let Some(api) = config.remote.connect()? {
        return api.run(commands::node(&api, args.json, args.command));
    }
    let local = match args.command {
        NodeCommand::Enable { node } => storage::NodeCommand::State {
            node,
            state: StateArg::Online,
        },
        NodeCommand::Disable { node } => storage::NodeCommand::State {
            node,
            state: StateArg::Offline,
        },
        NodeCommand::State { node, state } => storage::NodeCommand::State { node, state },
        NodeCommand::Remove { node } | NodeCommand::Delete { node } => {
            storage::NodeCommand::Remove { node }
        }
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
            return Err(server_only("node settags/rmtags"));
        }
    };
    storage::node(config, local)
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
pub fn device(config: &Config, args: DeviceArgs) -> anyhow::Result<ExitCode> {
    if let Some(api) = config.remote.connect()? {
        return api.run(commands::device(&api, args.json, args.command));
    }
    let state = |words: Vec<String>, state: StateArg, what: &str| {
        let (node, device) = node_and_device(words, what)?;
        anyhow::Ok(storage::DeviceCommand::State {
            node,
            device,
            state,
        })
    };
    let local = match args.command {
        DeviceCommand::Add(mut add) => {
            let (node, name) = add.node_and_name()?;
            storage::DeviceCommand::Add {
                node,
                name,
                backend: add.backend.unwrap_or(Backend::LvmThin),
                destroy_data: add.destroy_data,
            }
        }
        DeviceCommand::Enable { device } => state(device, StateArg::Online, "enable")?,
        DeviceCommand::Disable { device } => state(device, StateArg::Offline, "disable")?,
        DeviceCommand::State { mut args } => {
            let text = args.pop().expect("clap gives two or three");
            let value = StateArg::from_str(&text, true)
                .map_err(|_| anyhow::anyhow!("'{text}' is not online, offline or failed"))?;
            state(args, value, "state")?
        }
        DeviceCommand::Remove { device } | DeviceCommand::Delete { device } => {
            let (node, device) = node_and_device(device, "delete")?;
            storage::DeviceCommand::Remove { node, device }
        }
        DeviceCommand::Info { .. } | DeviceCommand::Resync { .. } => {
            return Err(server_only("device info/resync"));
        }
        DeviceCommand::Settags { .. } | DeviceCommand::Rmtags { .. } => {
            return Err(server_only("device settags/rmtags"));
        }
    };
    storage::device(config, local)
}

/// `aplo brick …`.
pub fn brick(config: &Config, args: BrickArgs) -> anyhow::Result<ExitCode> {
    if let Some(api) = config.remote.connect()? {
        return api.run(commands::brick(&api, args.command));
    }
    storage::brick(config, args.command)
}

/// `aplo volume …`.
pub fn volume(config: &Config, args: VolumeArgs) -> anyhow::Result<ExitCode> {
    if let Some(api) = config.remote.connect()? {
        return api.run(volume::volume(&api, args.json, args.command));
    }
    let json = args.json;
    let local = match args.command {
        VolumeCommand::Create {
            size,
            name,
            heketi,
            params,
        } => {
            if let Some(flag) = heketi.first_given() {
                bail!(
                    "{flag} needs a server (--server or APLO_SERVER); with the local store, \
                     choose with --param (e.g. --param classes.class=replica2)"
                );
            }
            storage::VolumeCommand::Create { size, name, params }
        }
        VolumeCommand::Expand {
            volume_arg,
            volume,
            expand_size,
            size,
        } => {
            if expand_size.is_some() {
                bail!(
                    "--expand-size needs a server; with the local store give the new total with --size"
                );
            }
            storage::VolumeCommand::Expand {
                volume: volume_arg.or(volume).context("give the volume")?,
                size: size.context("give --size")?,
            }
        }
        VolumeCommand::Delete { volume } => storage::VolumeCommand::Delete { volume },
        VolumeCommand::List => storage::VolumeCommand::List { json },
        VolumeCommand::Info { volume } => storage::VolumeCommand::Info { volume, json },
    };
    storage::volume(config, local)
}
