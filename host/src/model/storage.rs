//! What aplo owns: clusters, nodes, devices, volumes, bricks and the
//! operation journal ([`super::journal`]), as the store keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::journal::OperationRecord;
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

/// How a device holds its bricks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The production layout: the device is an LVM physical volume; each
    /// brick is a thin pool with a thin LV, XFS and a mount.
    LvmThin,
    /// The device is a directory; each brick is a sparse file on a loop
    /// device with XFS and a mount: a real, size-limited filesystem that
    /// works without device-mapper.
    Loop,
    /// The device is a directory; each brick is a subdirectory (for
    /// development: sizes are not enforced).
    Dir,
}

impl Backend {
    /// The backend's name, as in topology tags and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::LvmThin => "lvm-thin",
            Backend::Loop => "loop",
            Backend::Dir => "dir",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Backend`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown brick backend '{0}' (use lvm-thin, loop or dir)")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lvm-thin" => Ok(Backend::LvmThin),
            "loop" => Ok(Backend::Loop),
            "dir" => Ok(Backend::Dir),
            other => Err(UnknownBackend(other.to_owned())),
        }
    }
}

/// A device on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// Id.
    pub id: Id,
    /// Its node.
    pub node: Id,
    /// The block device, e.g. `/dev/vdb` (`lvm-thin`), or the directory
    /// that holds the bricks (`loop`, `dir`).
    pub name: String,
    /// How it holds bricks.
    pub backend: Backend,
    /// State.
    pub state: State,
    /// Tags.
    #[serde(default)]
    pub tags: Pairs,
    /// Capacity in bytes, measured when the device was added. What bricks
    /// use is never stored here: it is summed from the bricks themselves,
    /// so the accounting cannot drift.
    pub total_bytes: u64,
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
    /// The claim it was made for, if any.
    #[serde(default)]
    pub claim: Option<ClaimRef>,
    /// The StorageClass parameters it was made with: an expansion asks the
    /// same policies.
    #[serde(default)]
    pub parameters: Pairs,
    /// Life cycle state.
    pub state: VolumeState,
}

/// The claim a volume serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRef {
    /// Namespace.
    pub namespace: String,
    /// Claim name.
    pub name: String,
    /// A PersistentVolume for it was made: from then on the PV's reclaim
    /// policy decides the volume's fate, and the sweep for volumes left by
    /// an interrupted provisioning leaves it alone (a `Retain` volume
    /// outlives its PV on purpose).
    #[serde(default)]
    pub published: bool,
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
    /// Bytes it takes from its device (usable bytes times the volume's
    /// snapshot reserve).
    pub consumed: u64,
    /// Data or arbiter.
    pub role: BrickRole,
    /// Which brick set it belongs to.
    pub set: u32,
    /// Its position in the set (gluster orders bricks by it).
    pub position: u32,
    /// The brick directory on the node.
    pub path: String,
}

/// heketi's admin mode: whether the REST API accepts requests that change
/// something, and from whom. The store keeps it beside the records (not in
/// a [`Snapshot`]: it is the service's setting, not part of the storage it
/// describes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminMode {
    /// Every request runs.
    #[default]
    Normal,
    /// Only reads run; changes are refused.
    ReadOnly,
    /// Reads run from anywhere; changes only from a client on aplo's own
    /// machine (the loopback address).
    LocalClient,
}

impl AdminMode {
    /// Every mode, in heketi's order.
    pub const ALL: [AdminMode; 3] = [
        AdminMode::Normal,
        AdminMode::ReadOnly,
        AdminMode::LocalClient,
    ];

    /// heketi's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminMode::Normal => "normal",
            AdminMode::ReadOnly => "read-only",
            AdminMode::LocalClient => "local-client",
        }
    }

    /// Whether a request that changes something may run, from a local
    /// client (`local`) or not.
    pub fn allows_change(self, local: bool) -> bool {
        match self {
            AdminMode::Normal => true,
            AdminMode::ReadOnly => false,
            AdminMode::LocalClient => local,
        }
    }
}

impl std::fmt::Display for AdminMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`AdminMode`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not one of normal, read-only, local-client")]
pub struct UnknownAdminMode(pub String);

impl std::str::FromStr for AdminMode {
    type Err = UnknownAdminMode;

    fn from_str(s: &str) -> Result<AdminMode, UnknownAdminMode> {
        AdminMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownAdminMode(s.to_owned()))
    }
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
        let usage = self.device_usage();
        // Group once (devices by node, nodes by cluster), so that building
        // the topology is linear in its size.
        let mut devices_of: BTreeMap<Id, Vec<Device>> = BTreeMap::new();
        for d in self.devices.values() {
            devices_of.entry(d.node).or_default().push(Device {
                id: d.id,
                state: d.state,
                total_bytes: d.total_bytes,
                free_bytes: d
                    .total_bytes
                    .saturating_sub(usage.get(&d.id).map_or(0, |u| u.0)),
                brick_count: usage.get(&d.id).map_or(0, |u| u.1),
                tags: d.tags.clone(),
            });
        }
        let mut nodes_of: BTreeMap<Id, Vec<Node>> = BTreeMap::new();
        for node in self.nodes.values() {
            nodes_of.entry(node.cluster).or_default().push(Node {
                id: node.id,
                hostname: node.manage.clone(),
                zone: node.zone.clone(),
                state: node.state,
                tags: node.tags.clone(),
                devices: devices_of.remove(&node.id).unwrap_or_default(),
            });
        }
        let clusters = self
            .clusters
            .values()
            .map(|cluster| Cluster {
                id: cluster.id,
                nodes: nodes_of.remove(&cluster.id).unwrap_or_default(),
            })
            .collect();
        Topology { clusters }
    }

    /// Bytes consumed and bricks held, per device, summed from the bricks.
    pub fn device_usage(&self) -> BTreeMap<Id, (u64, u32)> {
        let mut usage: BTreeMap<Id, (u64, u32)> = BTreeMap::new();
        for brick in self.bricks.values() {
            let entry = usage.entry(brick.device).or_default();
            entry.0 = entry.0.saturating_add(brick.consumed);
            entry.1 += 1;
        }
        usage
    }

    /// The bricks of a volume, by set then position.
    pub fn bricks_of(&self, volume: Id) -> Vec<&BrickRecord> {
        let mut bricks: Vec<&BrickRecord> = self
            .bricks
            .values()
            .filter(|b| b.volume == volume)
            .collect();
        bricks.sort_by_key(|b| (b.set, b.position));
        bricks
    }

    /// The volume named `name`, if any.
    pub fn volume_named(&self, name: &str) -> Option<&VolumeRecord> {
        self.volumes.values().find(|v| v.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_modes_have_heketis_names_and_rules() {
        for mode in AdminMode::ALL {
            assert_eq!(mode.as_str().parse::<AdminMode>(), Ok(mode));
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(mode.as_str())
            );
        }
        assert!(
            "readonly"
                .parse::<AdminMode>()
                .unwrap_err()
                .to_string()
                .contains("read-only")
        );
        // (mode, from a local client, from elsewhere)
        for (mode, local, remote) in [
            (AdminMode::Normal, true, true),
            (AdminMode::ReadOnly, false, false),
            (AdminMode::LocalClient, true, false),
        ] {
            assert_eq!(mode.allows_change(true), local, "{mode} locally");
            assert_eq!(mode.allows_change(false), remote, "{mode} remotely");
        }
    }
}
