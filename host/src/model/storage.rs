//! What aplo owns: clusters, nodes, devices, volumes, bricks and the
//! operation journal, as the store keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BrickRole, Cluster, Device, Id, Node, Pairs, Scheme, State, Topology};

/// A trusted storage pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRecord {
    /// Id.
    pub id: Id,
    /// Whether file volumes may be created here (heketi's cluster flag).
    #[serde(default = "yes")]
    pub file: bool,
    /// Whether block-hosting volumes may be created here (heketi's flag).
    #[serde(default)]
    pub block: bool,
}

fn yes() -> bool {
    true
}

/// A storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// Id.
    pub id: Id,
    /// Its cluster.
    pub cluster: Id,
    /// The hostname aplo reaches it by.
    pub manage: String,
    /// The address gluster uses for its bricks.
    pub storage: String,
    /// Failure zone.
    pub zone: String,
    /// State.
    pub state: State,
    /// Tags.
    #[serde(default)]
    pub tags: Pairs,
}

/// A device on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// Id.
    pub id: Id,
    /// Its node.
    pub node: Id,
    /// The block device, e.g. `/dev/vdb`.
    pub name: String,
    /// State.
    pub state: State,
    /// Tags.
    #[serde(default)]
    pub tags: Pairs,
    /// Capacity in bytes.
    pub total_bytes: u64,
    /// Bytes allocated to bricks (snapshot reserve included).
    pub used_bytes: u64,
}

/// Where a volume is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    /// Being created: not usable until the journal's operation finishes.
    Creating,
    /// Whole and serving.
    Ready,
    /// Growing.
    Expanding,
    /// Being deleted.
    Deleting,
}

/// A gluster volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRecord {
    /// Id.
    pub id: Id,
    /// The gluster volume name.
    pub name: String,
    /// Its cluster.
    pub cluster: Id,
    /// Usable bytes.
    pub bytes: u64,
    /// Durability.
    pub scheme: Scheme,
    /// Gluster options set on it.
    #[serde(default)]
    pub options: Pairs,
    /// Snapshot reserve factor.
    pub snapshot_reserve: f64,
    /// Quota hard limit, if any.
    #[serde(default)]
    pub hard_limit: Option<u64>,
    /// Life cycle state.
    pub state: VolumeState,
}

/// A brick of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrickRecord {
    /// Id.
    pub id: Id,
    /// Its volume.
    pub volume: Id,
    /// Its device.
    pub device: Id,
    /// Its node.
    pub node: Id,
    /// Usable bytes.
    pub bytes: u64,
    /// Data or arbiter.
    pub role: BrickRole,
    /// Which brick set it belongs to.
    pub set: u32,
    /// The brick directory on the node.
    pub path: String,
}

/// An unfinished operation, written before its first side effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRecord {
    /// Id.
    pub id: Id,
    /// What it does, e.g. `volume-create`.
    pub kind: String,
    /// The volume it concerns, if any.
    #[serde(default)]
    pub volume: Option<Id>,
    /// The last step completed.
    pub step: u32,
    /// What the operation needs to roll forward or back.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// Everything the store holds, at one moment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Clusters by id.
    #[serde(default)]
    pub clusters: BTreeMap<Id, ClusterRecord>,
    /// Nodes by id.
    #[serde(default)]
    pub nodes: BTreeMap<Id, NodeRecord>,
    /// Devices by id.
    #[serde(default)]
    pub devices: BTreeMap<Id, DeviceRecord>,
    /// Volumes by id.
    #[serde(default)]
    pub volumes: BTreeMap<Id, VolumeRecord>,
    /// Bricks by id.
    #[serde(default)]
    pub bricks: BTreeMap<Id, BrickRecord>,
    /// Unfinished operations by id.
    #[serde(default)]
    pub operations: BTreeMap<Id, OperationRecord>,
}

impl Snapshot {
    /// The topology a placement policy sees: every cluster, node and
    /// device, with free space as capacity minus what bricks hold.
    pub fn policy_topology(&self) -> Topology {
        let mut bricks_per_device: BTreeMap<Id, u32> = BTreeMap::new();
        for brick in self.bricks.values() {
            *bricks_per_device.entry(brick.device).or_default() += 1;
        }
        let clusters = self
            .clusters
            .values()
            .map(|cluster| Cluster {
                id: cluster.id,
                nodes: self
                    .nodes
                    .values()
                    .filter(|n| n.cluster == cluster.id)
                    .map(|node| Node {
                        id: node.id,
                        hostname: node.manage.clone(),
                        zone: node.zone.clone(),
                        state: node.state,
                        tags: node.tags.clone(),
                        devices: self
                            .devices
                            .values()
                            .filter(|d| d.node == node.id)
                            .map(|d| Device {
                                id: d.id,
                                state: d.state,
                                total_bytes: d.total_bytes,
                                free_bytes: d.total_bytes.saturating_sub(d.used_bytes),
                                brick_count: bricks_per_device.get(&d.id).copied().unwrap_or(0),
                                tags: d.tags.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Topology { clusters }
    }
}
