//! `aplo node …`: add, show, list, take in and out of service, remove and
//! tag nodes. A node is named by id or manage hostname.

use clap::Subcommand;

use super::StateArg;

/// `aplo node …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct NodeArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// Node commands. A node is named by id or manage hostname.
#[derive(Debug, PartialEq, Subcommand)]
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
#[derive(Debug, PartialEq, clap::Args)]
pub struct SetTags {
    /// `name:value` pairs.
    #[arg(value_name = "NAME:VALUE", required = true)]
    pub tags: Vec<String>,
    /// Replace all tags with these.
    #[arg(long, short = 'e')]
    pub exact: bool,
}
