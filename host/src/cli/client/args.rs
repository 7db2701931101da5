//! The command line of the storage commands: heketi-cli's subcommands and
//! flags, with the local store's older spellings kept.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgAction, Subcommand, ValueEnum};

use super::super::storage::StateArg;
use crate::model::storage::Backend;

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

/// `aplo cluster …`: its flags.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// Cluster commands (through the REST API only).
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create an empty cluster.
    Create {
        /// Whether it may hold block-hosting volumes (aplo provides none,
        /// so the default is false).
        #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true",
              action = ArgAction::Set)]
        block: bool,
        /// Whether it may hold file volumes.
        #[arg(long, num_args = 0..=1, default_value_t = true, default_missing_value = "true",
              action = ArgAction::Set)]
        file: bool,
    },
    /// Delete a cluster that has no nodes and no volumes.
    Delete {
        /// Cluster id.
        id: String,
    },
    /// Show a cluster's nodes and volumes.
    Info {
        /// Cluster id.
        id: String,
    },
    /// List the clusters.
    List,
    /// Change what a cluster may hold; flags not given keep their value.
    #[command(alias = "set")]
    Setflags {
        /// Cluster id.
        id: String,
        /// Whether it may hold block-hosting volumes.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
        block: Option<bool>,
        /// Whether it may hold file volumes.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
        file: Option<bool>,
    },
}

/// `aplo topology …`: its flags.
#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TopologyCommand,
}

/// Topology commands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Load a heketi topology file (JSON or YAML). Idempotent: nodes are
    /// matched by manage hostname, devices by name; what is missing is
    /// added (and a cluster created when none of its nodes exists yet).
    Load {
        /// The topology file (or `--json FILE`, as heketi-cli).
        #[arg(value_name = "FILE", required_unless_present = "json")]
        file: Option<PathBuf>,
        /// The topology file, heketi-cli's spelling.
        #[arg(long, short = 'j', value_name = "FILE", conflicts_with = "file")]
        json: Option<PathBuf>,
        /// The brick backend of devices without a `backend` tag (locally:
        /// lvm-thin when not given; with a server: the server's default).
        #[arg(long)]
        backend: Option<Backend>,
    },
    /// Show clusters, nodes, devices (and, with a server, volumes and
    /// bricks).
    #[command(alias = "show")]
    Info {
        /// Print JSON (with a server: heketi's topology shape).
        #[arg(long)]
        json: bool,
    },
}

/// `aplo node …`: its flags.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// Node commands. A node is named by id or manage hostname.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Add a node to a cluster (server only; locally, nodes come from
    /// `aplo topology load`).
    Add {
        /// Its failure zone.
        #[arg(long)]
        zone: i64,
        /// The cluster id.
        #[arg(long)]
        cluster: String,
        /// The hostname commands are run on.
        #[arg(long = "management-host-name", value_name = "HOST")]
        management_host_name: String,
        /// The address gluster uses for its bricks.
        #[arg(long = "storage-host-name", value_name = "HOST")]
        storage_host_name: String,
    },
    /// Show a node and its devices (server only).
    Info {
        /// Node id or manage hostname.
        node: String,
    },
    /// List the nodes with their cluster (server only).
    List,
    /// Put a node back in service.
    Enable {
        /// Node id or manage hostname.
        node: String,
    },
    /// Take a node out of service: no new bricks go there.
    Disable {
        /// Node id or manage hostname.
        node: String,
    },
    /// With a server, heketi's meaning: mark the node failed and move its
    /// bricks to other nodes. Locally: delete a node without devices (as
    /// `delete`).
    Remove {
        /// Node id or manage hostname.
        node: String,
    },
    /// Delete a node that has no devices.
    Delete {
        /// Node id or manage hostname.
        node: String,
    },
    /// Set a node's state (online, offline, failed).
    State {
        /// Node id or manage hostname.
        node: String,
        /// The state.
        state: StateArg,
    },
    /// Set tags `name:value` (server only): merged with the node's tags, or
    /// replacing them with `--exact`.
    Settags {
        /// Node id or manage hostname.
        node: String,
        /// The tags.
        #[command(flatten)]
        tags: SetTags,
    },
    /// Remove tags by name, or all of them with `--all` (server only).
    #[command(alias = "deltags", alias = "removetags")]
    Rmtags {
        /// Node id or manage hostname.
        node: String,
        /// Tag names (a `name:value` form is accepted; the value is ignored).
        #[arg(value_name = "NAME")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long, conflicts_with = "tags")]
        all: bool,
    },
}

/// `settags`' tags, for a node or a device.
#[derive(Debug, clap::Args)]
pub struct SetTags {
    /// `name:value` pairs.
    #[arg(value_name = "NAME:VALUE", required = true)]
    pub tags: Vec<String>,
    /// Replace all tags with these.
    #[arg(long, short = 'e')]
    pub exact: bool,
}

/// `aplo device …`: its flags.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// `aplo brick …`: its flags.
#[derive(Debug, clap::Args)]
pub struct BrickArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BrickCommand,
}

/// Brick commands.
#[derive(Debug, Subcommand)]
pub enum BrickCommand {
    /// Move a brick to a device the volume's placement policy picks
    /// (heketi-cli's `brick evict`): `replace-brick`, then self-heal fills
    /// the new brick. Refused while the brick holds entries its set has not
    /// healed, and for a volume without redundancy.
    Evict {
        /// The brick's id (`volume info` lists them).
        brick: String,
    },
}

/// `device add`'s flags.
#[derive(Debug, clap::Args)]
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
#[derive(Debug, Subcommand)]
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

/// `aplo volume …`: its flags.
#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    /// Print the API's JSON (locally: the store's records).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: VolumeCommand,
}

/// A volume's durability, as heketi names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Distributed only: one copy.
    None,
    /// Replicated (`--replica`, 3 by default).
    Replicate,
    /// Erasure-coded (`--disperse-data` + `--redundancy`, 4+2 by default).
    Disperse,
}

/// `volume create`'s heketi-cli flags, which only a server takes.
#[derive(Debug, Default, clap::Args)]
pub struct HeketiVolumeArgs {
    /// Durability (server only; locally use `--param classes.class=…`).
    #[arg(long)]
    pub durability: Option<DurabilityArg>,
    /// Copies, for `replicate` (server only).
    #[arg(long)]
    pub replica: Option<u32>,
    /// Data bricks per set, for `disperse` (server only).
    #[arg(long = "disperse-data")]
    pub disperse_data: Option<u32>,
    /// Redundancy bricks per set, for `disperse` (server only).
    #[arg(long)]
    pub redundancy: Option<u32>,
    /// Group id owning the volume's root (server only).
    #[arg(long)]
    pub gid: Option<i64>,
    /// Room for snapshots per usable byte, above 1 to reserve any
    /// (server only).
    #[arg(long = "snapshot-factor")]
    pub snapshot_factor: Option<f32>,
    /// Comma-separated cluster ids the volume may go to (server only).
    #[arg(long)]
    pub clusters: Option<String>,
    /// Comma-separated gluster options, `"name value"` each (server only).
    #[arg(long = "gluster-volume-options")]
    pub gluster_volume_options: Option<String>,
}

impl HeketiVolumeArgs {
    /// The first of these flags that is given, if any.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--durability", self.durability.is_some()),
            ("--replica", self.replica.is_some()),
            ("--disperse-data", self.disperse_data.is_some()),
            ("--redundancy", self.redundancy.is_some()),
            ("--gid", self.gid.is_some()),
            ("--snapshot-factor", self.snapshot_factor.is_some()),
            ("--clusters", self.clusters.is_some()),
            (
                "--gluster-volume-options",
                self.gluster_volume_options.is_some(),
            ),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// Volume commands. A volume is named by id or name.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume through the policies.
    Create {
        /// Usable size. With a server: GiB as heketi-cli (`10`), or a size
        /// with a unit that is whole GiB (`10Gi`). Locally: a size with a
        /// unit (`1Gi`; a bare number is bytes).
        #[arg(long)]
        size: String,
        /// The gluster volume name (default `vol_<id>`).
        #[arg(long)]
        name: Option<String>,
        /// heketi's choices (server only).
        #[command(flatten)]
        heketi: HeketiVolumeArgs,
        /// StorageClass parameters, `key=value` (e.g. `placement=binpack`);
        /// with a server, sent as aplo's `parameters` extension.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// Grow a volume: by `--expand-size` GiB (heketi-cli), or to a new
    /// total `--size`.
    Expand {
        /// Volume id or name (or `--volume`).
        #[arg(value_name = "VOLUME", required_unless_present = "volume")]
        volume_arg: Option<String>,
        /// Volume id or name (heketi-cli's spelling).
        #[arg(long, conflicts_with = "volume_arg")]
        volume: Option<String>,
        /// GiB to add (server only; locally use `--size`).
        #[arg(
            long = "expand-size",
            required_unless_present = "size",
            conflicts_with = "size"
        )]
        expand_size: Option<u64>,
        /// The new usable size (with a server: whole GiB, e.g. `20` or `20Gi`).
        #[arg(long)]
        size: Option<String>,
    },
    /// Delete a volume and its bricks.
    Delete {
        /// Volume id or name.
        volume: String,
    },
    /// List volumes.
    List,
    /// Show a volume and its bricks.
    Info {
        /// Volume id or name.
        volume: String,
    },
}
