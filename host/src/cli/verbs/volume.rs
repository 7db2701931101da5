//! `aplo volume …` and `aplo brick …`: create, expand, delete, list and
//! show volumes; move a brick. A volume is named by id or name.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

/// `aplo volume …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
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
#[derive(Debug, Default, PartialEq, clap::Args)]
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
#[derive(Debug, PartialEq, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume through the policies.
    Create {
        /// Usable size: a bare number is GiB, as heketi-cli has it (`10`),
        /// or give a unit (`10Gi`, `500Mi`). With a server it must come to
        /// whole GiB.
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
    Expand(VolumeExpand),
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

/// `volume expand`'s flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct VolumeExpand {
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
    pub expand_size: Option<u64>,
    /// The new usable size (a bare number is GiB; with a server: whole
    /// GiB, e.g. `20` or `20Gi`).
    #[arg(long)]
    pub size: Option<String>,
}

impl VolumeExpand {
    /// The volume, in either spelling.
    pub fn volume(&self) -> anyhow::Result<String> {
        self.volume_arg
            .clone()
            .or_else(|| self.volume.clone())
            .context("give the volume (--volume)")
    }
}

/// `aplo brick …`: its flags.
#[derive(Debug, PartialEq, clap::Args)]
pub struct BrickArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BrickCommand,
}

/// Brick commands.
#[derive(Debug, PartialEq, Subcommand)]
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
