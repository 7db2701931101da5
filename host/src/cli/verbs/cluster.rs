//! `aplo cluster …`: heketi-cli's cluster commands (a server's only).

use clap::{ArgAction, Subcommand};

/// `aplo cluster …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct ClusterArgs {
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// Cluster commands (through the REST API only).
#[derive(Debug, PartialEq, Subcommand)]
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
