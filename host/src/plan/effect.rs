//! Effects: what an operation does to the world, as data. The engine asks a
//! driver (`engine::driver`, a layer above this one) to apply them; the command
//! driver turns each into gluster, LVM and filesystem commands, the
//! simulation driver into nothing. Every effect can be applied again after
//! a crash with the same result.

use std::fmt;

use crate::model::storage::{BrickRecord, DeviceRecord, NodeRecord};
use crate::model::{Pairs, Scheme};

/// A gluster brick as the CLI names it: `host:/path`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrickAddress {
    /// The node's storage address.
    pub host: String,
    /// The brick directory.
    pub path: String,
}

impl fmt::Display for BrickAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.path)
    }
}

/// A brick with the node and device it lives on.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The node.
    pub node: NodeRecord,
    /// The device.
    pub device: DeviceRecord,
    /// The brick (for a grow, with its new size).
    pub brick: BrickRecord,
    /// The volume's own group id (`storage.owner-gid`), if it has one: the
    /// brick directory gets that group, group write and setgid, as heketi
    /// made it.
    pub gid: Option<u32>,
}

/// A gluster volume and the nodes its commands may run on, in order of
/// preference.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The volume's name.
    pub name: String,
    /// Nodes of its cluster to run gluster on (the first that answers).
    pub via: Vec<NodeRecord>,
    /// Every brick the volume may own. A gluster volume of this name with a
    /// brick outside this list is not aplo's to stop or delete.
    pub bricks: Vec<BrickAddress>,
}

/// One change to the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Make a device ready for bricks; the driver answers its capacity.
    PrepareDevice {
        /// The node.
        node: NodeRecord,
        /// The device.
        device: DeviceRecord,
        /// Wipe existing signatures first.
        wipe: bool,
    },
    /// Undo [`Effect::PrepareDevice`] on a device without bricks.
    ReleaseDevice {
        /// The node.
        node: NodeRecord,
        /// The device.
        device: DeviceRecord,
    },
    /// Create a brick (filesystem, mount, brick directory, marker).
    CreateBrick(Placed),
    /// Grow a brick and its filesystem to the record's size.
    GrowBrick(Placed),
    /// Remove a brick and everything under it.
    DestroyBrick(Placed),
    /// Add a node to the trusted pool.
    PeerProbe {
        /// Nodes already in the pool to run the probe from.
        via: Vec<NodeRecord>,
        /// The new node.
        node: NodeRecord,
    },
    /// Remove a node from the trusted pool.
    PeerDetach {
        /// Other nodes of the pool to run the detach from.
        via: Vec<NodeRecord>,
        /// The node leaving.
        node: NodeRecord,
    },
    /// `gluster volume create` with the target's bricks in set order.
    CreateVolume {
        /// The volume.
        target: Target,
        /// Its durability.
        scheme: Scheme,
        /// Pass `force` (bricks on a root filesystem).
        force: bool,
    },
    /// `gluster volume set`, one option at a time.
    SetOptions {
        /// The volume.
        target: Target,
        /// Options.
        options: Pairs,
    },
    /// `gluster volume start` (`force` restarts missing brick processes).
    StartVolume {
        /// The volume.
        target: Target,
        /// Restart brick processes of a started volume.
        force: bool,
    },
    /// `gluster volume stop`.
    StopVolume {
        /// The volume.
        target: Target,
    },
    /// `gluster volume delete`.
    DeleteVolume {
        /// The volume.
        target: Target,
    },
    /// `gluster volume add-brick` with new brick sets.
    AddBricks {
        /// The volume.
        target: Target,
        /// Its durability.
        scheme: Scheme,
        /// The new bricks, in set order.
        bricks: Vec<BrickAddress>,
        /// Pass `force`.
        force: bool,
    },
    /// `gluster volume replace-brick … commit force`: the new brick takes
    /// the old one's place in its set, and self-heal fills it.
    ReplaceBrick {
        /// The volume (its bricks include both).
        target: Target,
        /// The brick leaving.
        old: BrickAddress,
        /// The brick taking its place.
        new: BrickAddress,
    },
    /// `gluster volume rebalance start`.
    Rebalance {
        /// The volume.
        target: Target,
    },
    /// Enable quota and set the hard limit on the volume's root.
    SetQuota {
        /// The volume.
        target: Target,
        /// The limit.
        bytes: u64,
    },
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::PrepareDevice { node, device, .. } => {
                write!(f, "prepare device {} on {}", device.name, node.manage)
            }
            Effect::ReleaseDevice { node, device } => {
                write!(f, "release device {} on {}", device.name, node.manage)
            }
            Effect::CreateBrick(p) => write!(f, "create brick {} on {}", p.brick.id, p.node.manage),
            Effect::GrowBrick(p) => write!(f, "grow brick {} on {}", p.brick.id, p.node.manage),
            Effect::DestroyBrick(p) => {
                write!(f, "destroy brick {} on {}", p.brick.id, p.node.manage)
            }
            Effect::PeerProbe { node, .. } => write!(f, "probe peer {}", node.storage),
            Effect::PeerDetach { node, .. } => write!(f, "detach peer {}", node.storage),
            Effect::CreateVolume { target, .. } => write!(f, "create volume {}", target.name),
            Effect::SetOptions { target, .. } => write!(f, "set options on {}", target.name),
            Effect::StartVolume { target, .. } => write!(f, "start volume {}", target.name),
            Effect::StopVolume { target } => write!(f, "stop volume {}", target.name),
            Effect::DeleteVolume { target } => write!(f, "delete volume {}", target.name),
            Effect::AddBricks { target, .. } => write!(f, "add bricks to {}", target.name),
            Effect::ReplaceBrick { target, old, new } => {
                write!(f, "replace brick {old} of {} with {new}", target.name)
            }
            Effect::Rebalance { target } => write!(f, "rebalance {}", target.name),
            Effect::SetQuota { target, .. } => write!(f, "set quota on {}", target.name),
        }
    }
}
