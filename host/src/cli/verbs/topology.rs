//! `aplo topology …`: load a heketi topology file, show what is there.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::model::storage::Backend;

/// `aplo topology …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct TopologyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TopologyCommand,
}

/// Topology commands.
#[derive(Debug, PartialEq, Subcommand)]
pub enum TopologyCommand {
    /// Load a heketi topology file (JSON or YAML). Idempotent: nodes are
    /// matched by manage hostname, devices by name; what is missing is
    /// added (and a cluster created when none of its nodes exists yet).
    Load(TopologyLoad),
    /// Show clusters, nodes, devices (and, with a server, volumes and
    /// bricks).
    #[command(alias = "show")]
    Info {
        /// Print JSON (with a server: heketi's topology shape).
        #[arg(long)]
        json: bool,
    },
}

/// `topology load`'s flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct TopologyLoad {
    /// The topology file (or `--json FILE`, as heketi-cli).
    #[arg(value_name = "FILE", required_unless_present = "json")]
    file: Option<PathBuf>,
    /// The topology file, heketi-cli's spelling.
    #[arg(long, short = 'j', value_name = "FILE", conflicts_with = "file")]
    json: Option<PathBuf>,
    /// The brick backend of devices without a `backend` tag (locally:
    /// lvm-thin when not given; with a server: the server's default).
    #[arg(long)]
    pub backend: Option<Backend>,
}

impl TopologyLoad {
    /// The topology file, in either spelling.
    pub fn file(&self) -> anyhow::Result<PathBuf> {
        self.file
            .clone()
            .or_else(|| self.json.clone())
            .context("give the topology file")
    }
}
