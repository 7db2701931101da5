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
//! Each verb's command line is defined once (`super::verbs`) and both
//! modes take it as parsed. Subcommands and flags follow heketi-cli's
//! (`volume create --size 10 --durability disperse`, `volume expand
//! --volume ID --expand-size 5`, `node add --zone 1 --cluster ID
//! --management-host-name H --storage-host-name H`, `device add --name
//! /dev/vdb --node ID`, `topology load --json FILE`, …). Where the local store's commands took
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

mod commands;
mod http;
mod lookup;
mod node;
mod render;
mod server;
mod tags;
mod topology;
mod volume;
mod wire;

use std::process::ExitCode;

use super::Config;
use super::storage;
use super::verbs::{
    BrickArgs, ClusterArgs, DeviceArgs, NodeArgs, TopologyArgs, VolumeArgs, server_only,
};
use http::Api;
pub use server::{LogLevelArgs, ServerArgs};

/// Where the REST API is and who calls it (global flags, so that they go
/// before or after the subcommand, as with heketi-cli).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Remote {
    /// The REST API (`http://` or `https://`), e.g. `http://aplo:8080`.
    /// Without it the command acts on the local store (`--db`).
    /// `HEKETI_CLI_SERVER` is read when neither is set.
    #[arg(
        long,
        short = 's',
        global = true,
        help_heading = "REST API",
        env = "APLO_SERVER",
        value_name = "URL"
    )]
    pub server: Option<String>,
    /// The role to call as: `admin` (default) or `user`.
    /// `HEKETI_CLI_USER` is read when neither is set.
    #[arg(long, global = true, help_heading = "REST API", env = "APLO_USER")]
    pub user: Option<String>,
    /// The role's key: requests carry a JWT signed with it (none without a
    /// key). `HEKETI_CLI_KEY` is read when neither is set.
    #[arg(
        long,
        global = true,
        help_heading = "REST API",
        env = "APLO_KEY",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// heketi-cli's variable, when `APLO_SERVER` is not set.
    #[arg(long, global = true, hide = true, env = "HEKETI_CLI_SERVER")]
    pub heketi_cli_server: Option<String>,
    /// heketi-cli's variable, when `APLO_USER` is not set.
    #[arg(long, global = true, hide = true, env = "HEKETI_CLI_USER")]
    pub heketi_cli_user: Option<String>,
    /// heketi-cli's variable, when `APLO_KEY` is not set.
    #[arg(
        long,
        global = true,
        hide = true,
        env = "HEKETI_CLI_KEY",
        hide_env_values = true
    )]
    pub heketi_cli_key: Option<String>,
}
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
        None => storage::topology(config, args.command),
    }
}

/// `aplo node …`.
pub fn node(config: &Config, args: NodeArgs) -> anyhow::Result<ExitCode> {
    match config.remote.connect()? {
        Some(api) => api.run(node::node(&api, args.json, args.command)),
        None => storage::node(config, args.command),
    }
}

/// `aplo device …`.
pub fn device(config: &Config, args: DeviceArgs) -> anyhow::Result<ExitCode> {
    match config.remote.connect()? {
        Some(api) => api.run(node::device(&api, args.json, args.command)),
        None => storage::device(config, args.command),
    }
}

/// `aplo brick …`.
pub fn brick(config: &Config, args: BrickArgs) -> anyhow::Result<ExitCode> {
    match config.remote.connect()? {
        Some(api) => api.run(commands::brick(&api, args.command)),
        None => storage::brick(config, args.command),
    }
}

/// `aplo volume …`.
pub fn volume(config: &Config, args: VolumeArgs) -> anyhow::Result<ExitCode> {
    match config.remote.connect()? {
        Some(api) => api.run(volume::volume(&api, args.json, args.command)),
        None => storage::volume(config, args.json, args.command),
    }
}
