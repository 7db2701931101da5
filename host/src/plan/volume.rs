//! Planning volume operations: the records a create or an expand writes to
//! the journal, the effects each step applies, and whether a volume can
//! grow in place. Pure functions over the store's snapshot.

mod usage;

use std::collections::BTreeMap;

pub use self::usage::{usage, usage_except_volume, usage_without};
use super::effect::{BrickAddress, Placed, Target};
use crate::model::paths::{BrickRoot, PathError};
use crate::model::storage::{
    Backend, BrickRecord, ClaimRef, DeviceRecord, NodeRecord, Snapshot, VolumeRecord, VolumeState,
};
use crate::model::{
    DurabilityDecision, Id, Layout, Pairs, Scheme, State, Topology, consumed_bytes,
};

/// Why a volume's records or a brick's effects cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A `loop` or `dir` device's name is not a brick root.
    #[error(transparent)]
    BrickRoot(#[from] PathError),
    /// The layout has no bricks, so no cluster.
    #[error("the layout has no bricks")]
    NoBricks,
    /// A layout or a replacement names a device the store does not hold.
    #[error("device {0} is not in the store")]
    UnknownDevice(Id),
    /// A brick's record names a device the store does not hold.
    #[error("brick {brick} names device {device}, which is not in the store")]
    BrickDevice {
        /// The brick.
        brick: Id,
        /// Its device.
        device: Id,
    },
    /// A brick's record names a node the store does not hold.
    #[error("brick {brick} names node {node}, which is not in the store")]
    BrickNode {
        /// The brick.
        brick: Id,
        /// Its node.
        node: Id,
    },
}

/// The brick directory of a brick on a device: under the device's
/// directory for `loop` and `dir`, under the node's LVM brick root for
/// `lvm-thin`.
pub fn brick_dir(
    device: &DeviceRecord,
    brick: Id,
    lvm_root: &BrickRoot,
) -> Result<String, PlanError> {
    let root = match device.backend {
        Backend::LvmThin => lvm_root.clone(),
        Backend::Loop | Backend::Dir => BrickRoot::new(&device.name)?,
    };
    Ok(root.brick_dir(brick).display().to_string())
}

/// What a new volume is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVolume {
    /// The volume, state `creating`.
    pub volume: VolumeRecord,
    /// Its bricks, in set order.
    pub bricks: Vec<BrickRecord>,
}

/// The records of a new volume from validated policy answers.
#[allow(clippy::too_many_arguments)]
pub fn new_volume(
    snapshot: &Snapshot,
    id: Id,
    name: &str,
    decision: &DurabilityDecision,
    layout: &Layout,
    hard_limit: Option<u64>,
    claim: Option<ClaimRef>,
    lvm_root: &BrickRoot,
    mut next_id: impl FnMut() -> Id,
) -> Result<NewVolume, PlanError> {
    let bricks = bricks_for(
        snapshot,
        id,
        layout,
        0,
        decision.snapshot_reserve,
        lvm_root,
        &mut next_id,
    )?;
    let cluster = bricks
        .first()
        .and_then(|b| snapshot.nodes.get(&b.node))
        .map(|n| n.cluster)
        .ok_or(PlanError::NoBricks)?;
    let bytes = usable(&decision.scheme, &bricks);
    Ok(NewVolume {
        volume: VolumeRecord {
            id,
            name: name.to_owned(),
            cluster,
            bytes,
            scheme: decision.scheme,
            options: decision.volume_options.clone(),
            snapshot_reserve: decision.snapshot_reserve,
            hard_limit,
            claim,
            parameters: Pairs::new(),
            state: VolumeState::Creating,
        },
        bricks,
    })
}

/// Brick records for a layout's sets, numbered from `first_set`.
pub fn bricks_for(
    snapshot: &Snapshot,
    volume: Id,
    layout: &Layout,
    first_set: u32,
    reserve: f64,
    lvm_root: &BrickRoot,
    next_id: &mut impl FnMut() -> Id,
) -> Result<Vec<BrickRecord>, PlanError> {
    let mut bricks = Vec::new();
    for (s, set) in layout.sets.iter().enumerate() {
        for (p, brick) in set.bricks.iter().enumerate() {
            let device = snapshot
                .devices
                .get(&brick.device)
                .ok_or(PlanError::UnknownDevice(brick.device))?;
            let id = next_id();
            bricks.push(BrickRecord {
                id,
                volume,
                device: device.id,
                node: device.node,
                bytes: brick.bytes,
                consumed: consumed_bytes(brick.bytes, reserve),
                role: brick.role,
                set: first_set + s as u32,
                position: p as u32,
                path: brick_dir(device, id, lvm_root)?,
            });
        }
    }
    Ok(bricks)
}

/// The record of a brick taking `old`'s place on `device`: the same volume,
/// set, position, role and size, with a new id and a path on the device.
pub fn replacement(
    snapshot: &Snapshot,
    old: &BrickRecord,
    device: Id,
    reserve: f64,
    lvm_root: &BrickRoot,
    id: Id,
) -> Result<BrickRecord, PlanError> {
    let device = snapshot
        .devices
        .get(&device)
        .ok_or(PlanError::UnknownDevice(device))?;
    Ok(BrickRecord {
        id,
        volume: old.volume,
        device: device.id,
        node: device.node,
        bytes: old.bytes,
        consumed: consumed_bytes(old.bytes, reserve),
        role: old.role,
        set: old.set,
        position: old.position,
        path: brick_dir(device, id, lvm_root)?,
    })
}

/// What a placement policy may choose from for a brick replacing `old`:
/// the volume's cluster only, with `old`'s device and every node that holds
/// another brick of its set shown offline (so no set gets two bricks on one
/// node), and any node in `leaving` shown offline too. The layout is then
/// validated against this view, so a policy that picks one of them is
/// refused.
pub fn replacement_topology(
    mut topology: Topology,
    snapshot: &Snapshot,
    old: &BrickRecord,
    cluster: Id,
    leaving: &[Id],
) -> Topology {
    let mates: Vec<Id> = snapshot
        .bricks_of(old.volume)
        .into_iter()
        .filter(|b| b.set == old.set && b.id != old.id)
        .map(|b| b.node)
        .collect();
    topology.clusters.retain(|c| c.id == cluster);
    for node in topology
        .clusters
        .iter_mut()
        .flat_map(|c| c.nodes.iter_mut())
    {
        let barred = mates.contains(&node.id) || leaving.contains(&node.id);
        if barred {
            node.state = State::Offline;
        }
        for device in node
            .devices
            .iter_mut()
            .filter(|d| barred || d.id == old.device)
        {
            device.state = State::Offline;
        }
    }
    topology
}

/// The usable size of bricks laid out in sets under a scheme: the sum over
/// sets of the smallest data brick times the data multiplier.
pub fn usable(scheme: &Scheme, bricks: &[BrickRecord]) -> u64 {
    let mut smallest: BTreeMap<u32, u64> = BTreeMap::new();
    for brick in bricks
        .iter()
        .filter(|b| b.role == crate::model::BrickRole::Data)
    {
        let entry = smallest.entry(brick.set).or_insert(u64::MAX);
        *entry = (*entry).min(brick.bytes);
    }
    smallest
        .values()
        .map(|b| b.saturating_mul(scheme.data_multiplier()))
        .fold(0u64, u64::saturating_add)
}

/// A brick with its node and device, as effects need it.
pub fn placed(snapshot: &Snapshot, brick: &BrickRecord) -> Result<Placed, PlanError> {
    let device = snapshot
        .devices
        .get(&brick.device)
        .ok_or(PlanError::BrickDevice {
            brick: brick.id,
            device: brick.device,
        })?;
    let node = snapshot
        .nodes
        .get(&brick.node)
        .ok_or(PlanError::BrickNode {
            brick: brick.id,
            node: brick.node,
        })?;
    let gid = snapshot
        .volumes
        .get(&brick.volume)
        .and_then(|v| v.options.get("storage.owner-gid"))
        .and_then(|g| g.parse().ok());
    Ok(Placed {
        node: node.clone(),
        device: device.clone(),
        brick: brick.clone(),
        gid,
    })
}

/// The address gluster knows a brick by.
pub fn address(snapshot: &Snapshot, brick: &BrickRecord) -> BrickAddress {
    BrickAddress {
        host: snapshot
            .nodes
            .get(&brick.node)
            .map(|n| n.storage.clone())
            .unwrap_or_default(),
        path: brick.path.clone(),
    }
}

/// The nodes of a cluster to run gluster on: online and healthy ones first,
/// then the rest (a node marked offline may still answer).
pub fn via(snapshot: &Snapshot, cluster: Id, unhealthy: &dyn Fn(Id) -> bool) -> Vec<NodeRecord> {
    let mut nodes: Vec<NodeRecord> = snapshot
        .nodes
        .values()
        .filter(|n| n.cluster == cluster)
        .cloned()
        .collect();
    nodes.sort_by_key(|n| {
        (
            n.state != State::Online || unhealthy(n.id),
            n.manage.clone(),
        )
    });
    nodes
}

/// The gluster target of a volume: its name, where to run commands, and
/// every brick it owns (including bricks being added).
pub fn target(
    snapshot: &Snapshot,
    volume: &VolumeRecord,
    unhealthy: &dyn Fn(Id) -> bool,
) -> Target {
    Target {
        name: volume.name.clone(),
        via: via(snapshot, volume.cluster, unhealthy),
        bricks: snapshot
            .bricks_of(volume.id)
            .into_iter()
            .map(|b| address(snapshot, b))
            .collect(),
    }
}

/// Whether the volume's bricks use only directories on shared
/// filesystems, which gluster accepts only with `force`.
pub fn needs_force(snapshot: &Snapshot, bricks: &[&BrickRecord]) -> bool {
    bricks.iter().any(|b| {
        snapshot
            .devices
            .get(&b.device)
            .is_some_and(|d| d.backend == Backend::Dir)
    })
}

/// New sizes for growing every brick of a volume in place to reach
/// `to_bytes` usable, or `None` when some device lacks the room (or a
/// device's backend cannot grow). Data bricks of set `s` grow so that each
/// set carries its share; arbiter bricks grow in proportion.
pub fn grow_in_place(
    snapshot: &Snapshot,
    volume: &VolumeRecord,
    to_bytes: u64,
) -> Option<Vec<BrickRecord>> {
    let bricks = snapshot.bricks_of(volume.id);
    let sets = bricks.iter().map(|b| b.set).max()? + 1;
    let per_set = to_bytes.div_ceil(u64::from(sets));
    let data_bytes = per_set.div_ceil(volume.scheme.data_multiplier());
    let usage = snapshot.device_usage();
    let mut extra: BTreeMap<Id, u64> = BTreeMap::new();
    let mut grown = Vec::new();
    for brick in bricks {
        let bytes = match brick.role {
            crate::model::BrickRole::Data => data_bytes.max(brick.bytes),
            crate::model::BrickRole::Arbiter => {
                let scaled = (u128::from(brick.bytes) * u128::from(to_bytes))
                    .div_ceil(u128::from(volume.bytes.max(1)));
                u64::try_from(scaled).unwrap_or(u64::MAX).max(brick.bytes)
            }
        };
        let consumed = consumed_bytes(bytes, volume.snapshot_reserve);
        *extra.entry(brick.device).or_default() += consumed.saturating_sub(brick.consumed);
        grown.push(BrickRecord {
            bytes,
            consumed,
            ..brick.clone()
        });
    }
    for (device, more) in &extra {
        let record = snapshot.devices.get(device)?;
        let used = usage.get(device).map_or(0, |u| u.0);
        let online = record.state == State::Online
            && snapshot
                .nodes
                .get(&record.node)
                .is_some_and(|n| n.state == State::Online);
        if !online || record.total_bytes.saturating_sub(used) < *more {
            return None;
        }
    }
    Some(grown)
}
