//! Drivers apply [`Effect`]s. The [`CommandDriver`] runs them as gluster,
//! LVM and filesystem commands through each node's executor; the
//! [`SimDriver`] runs nothing, so that `aplo simulate` plays the real
//! engine against the model only.
//!
//! Every effect is idempotent: applying it again after a crash finishes
//! the job or finds it done. Gluster effects check what gluster has first,
//! and never stop or delete a volume that has a brick aplo did not plan.

mod command;
mod sim;

pub use self::command::{CommandConfig, CommandDriver, Connections, Reach, usable_vg_bytes};
pub use self::sim::SimDriver;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::exec::brick::BrickError;
use crate::exec::command::{BoxFuture, ExecError};
use crate::exec::gluster::{BrickStatus, GlusterError, HealInfo, Peer, VolumeInfo};
use crate::exec::lvm::LvmError;
use crate::model::Id;
use crate::model::options::OptionNames;
use crate::model::storage::{DeviceRecord, NodeRecord};
use crate::plan::effect::Effect;

/// The device tag that caps how much of a `loop` or `dir` device's
/// directory aplo may use, e.g. `capacity: 20Gi`.
pub const CAPACITY_TAG: &str = "capacity";

/// The capacity a device's `capacity` tag gives, if it has one.
pub fn tagged_capacity(device: &DeviceRecord) -> Result<Option<u64>, DriverError> {
    device
        .tags
        .get(CAPACITY_TAG)
        .map(|text| {
            crate::model::parse_size(text).map_err(|e| {
                DriverError::Refused(format!(
                    "device {}: tag {CAPACITY_TAG}={text}: {e}",
                    device.name
                ))
            })
        })
        .transpose()
}

/// An effect that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A command failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Gluster refused.
    #[error("{command}: {source}")]
    Gluster {
        /// The command.
        command: String,
        /// Gluster's answer.
        #[source]
        source: GlusterError,
    },
    /// A brick backend failed.
    #[error(transparent)]
    Brick(#[from] BrickError),
    /// An LVM report could not be read.
    #[error(transparent)]
    Lvm(#[from] LvmError),
    /// The effect would harm something that is not aplo's, or cannot be
    /// applied as asked.
    #[error("{0}")]
    Refused(String),
    /// No node of the cluster answered.
    #[error("no node answered for {what}: {last}")]
    Unreachable {
        /// What was attempted.
        what: String,
        /// The last node's error.
        last: String,
    },
}

impl DriverError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DriverError::Exec(e) => e.label(),
            DriverError::Gluster { source, .. } => source.label(),
            DriverError::Brick(_) => "brick",
            DriverError::Lvm(_) => "lvm",
            DriverError::Refused(_) => "refused",
            DriverError::Unreachable { .. } => "unreachable",
        }
    }
}

/// What applying an effect produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Done.
    Done,
    /// A prepared device's capacity in bytes.
    Capacity(u64),
}

/// What a node's device holds, as found on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Bricks found (brick directories, loop images or LVs named by id).
    pub bricks: BTreeSet<Id>,
    /// Bricks whose filesystem is mounted (`loop`, `lvm-thin`).
    pub mounted: BTreeSet<Id>,
}

/// Applies effects and reports what is there.
pub trait Driver: Send + Sync {
    /// Apply one effect.
    fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>>;

    /// The trusted pool as seen from the first node of `via` that answers.
    fn peers<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>>;

    /// Every gluster volume of the cluster `via` belongs to.
    fn volumes<'a>(
        &'a self,
        via: &'a [NodeRecord],
    ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>>;

    /// The brick processes of a started volume.
    fn volume_status<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>>;

    /// What each brick of a started replicated or dispersed volume holds
    /// that its set has not healed yet. A driver with no gluster (a
    /// simulation) has nothing to heal.
    fn heal_info<'a>(
        &'a self,
        _via: &'a [NodeRecord],
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HealInfo>, DriverError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The volume options the gluster of `via` has, which every option
    /// set on a volume must be one of (or a custom `user.` option). This
    /// never fails: when gluster cannot be asked, the list built into aplo
    /// ([`crate::exec::gluster::builtin_options`]) stands in. A driver with no
    /// gluster (a simulation) always uses that list.
    fn option_names<'a>(&'a self, _via: &'a [NodeRecord]) -> BoxFuture<'a, Arc<OptionNames>> {
        Box::pin(async { crate::exec::gluster::builtin_options() })
    }

    /// What a device holds.
    fn device_facts<'a>(
        &'a self,
        node: &'a NodeRecord,
        device: &'a DeviceRecord,
    ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>>;
}
