//! heketi's REST API wire format: the JSON shapes heketi's clients send and
//! expect, and their construction from aplo's store. Field names, nesting
//! and units follow heketi's public API types: storage sizes in KiB,
//! volume sizes in GiB, ids as 32 hex characters, states `online`,
//! `offline`, `failed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod checks;
mod server;

pub use self::checks::{
    NewDevice, NewNode, RequestError, TagChange, check_device_add, check_healcheck, check_node_add,
    check_tags, device_transition, node_transition, operations_info, parse_id, parse_state,
};
pub use self::server::{
    AdminStatus, DbBucketCheck, DbCheckResponse, LOGGER, LogLevelInfo, PendingChangeInfo,
    PendingOperationDetails, PendingOperationInfo, PendingOperationList, db_check,
    operation_status, pending_details, pending_info, pending_list,
};

use crate::model::storage::{
    BrickRecord, ClusterRecord, DeviceRecord, NodeRecord, Snapshot, VolumeRecord,
};
use crate::model::{GIB, KIB, Pairs, Scheme, State};

/// `{"state": ...}` bodies and fields.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Online => "online",
        State::Offline => "offline",
        State::Failed => "failed",
    }
}

/// Total, free and used, in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSize {
    /// Total KiB.
    pub total: u64,
    /// Free KiB.
    pub free: u64,
    /// Used KiB.
    pub used: u64,
}

/// Management and storage hostnames.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAddresses {
    /// Where commands are run.
    #[serde(default)]
    pub manage: Vec<String>,
    /// Where clients and peers connect.
    #[serde(default)]
    pub storage: Vec<String>,
}

/// A brick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrickInfo {
    /// Id.
    pub id: String,
    /// Path on its node.
    pub path: String,
    /// Its device.
    pub device: String,
    /// Its node.
    pub node: String,
    /// Its volume.
    pub volume: String,
    /// Size in KiB.
    pub size: u64,
}

/// A device with its bricks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfoResponse {
    /// The device path.
    pub name: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Sizes.
    pub storage: StorageSize,
    /// Id.
    pub id: String,
    /// `online`, `offline` or `failed`.
    pub state: String,
    /// Its bricks.
    pub bricks: Vec<BrickInfo>,
}

/// A node with its devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfoResponse {
    /// Failure domain.
    pub zone: i64,
    /// Hostnames.
    pub hostnames: HostAddresses,
    /// Its cluster.
    pub cluster: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Id.
    pub id: String,
    /// `online`, `offline` or `failed`.
    pub state: String,
    /// Its devices.
    pub devices: Vec<DeviceInfoResponse>,
}

/// A cluster: ids of its nodes and volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfoResponse {
    /// Id.
    pub id: String,
    /// Node ids.
    pub nodes: Vec<String>,
    /// Volume ids.
    pub volumes: Vec<String>,
    /// Serves block volumes.
    pub block: bool,
    /// Serves file volumes.
    pub file: bool,
    /// Block volume ids (aplo has none).
    pub blockvolumes: Vec<String>,
}

/// Replication settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDurability {
    /// Copies.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replica: u32,
}

/// Erasure-coding settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisperseDurability {
    /// Data bricks per set.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub data: u32,
    /// Redundancy bricks per set.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redundancy: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A volume's durability: `none`, `replicate` or `disperse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durability {
    /// `none`, `replicate` or `disperse` (empty: not given).
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// For `replicate`.
    #[serde(default)]
    pub replicate: ReplicaDurability,
    /// For `disperse`.
    #[serde(default)]
    pub disperse: DisperseDurability,
}

/// Snapshot reserve settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSettings {
    /// Reserve room for snapshots.
    #[serde(default)]
    pub enable: bool,
    /// Room per usable byte (heketi: at least 1).
    #[serde(default)]
    pub factor: f32,
}

/// `POST /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeCreateRequest {
    /// Size in GiB.
    pub size: i64,
    /// Clusters allowed (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// The gluster volume name (`vol_<id>` when empty).
    #[serde(default)]
    pub name: String,
    /// Durability.
    #[serde(default)]
    pub durability: Durability,
    /// Group id owning the volume's root.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub gid: i64,
    /// Extra options, `"key value"` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub glustervolumeoptions: Vec<String>,
    /// Block hosting (not supported by aplo).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub block: bool,
    /// Snapshot reserve.
    #[serde(default)]
    pub snapshot: SnapshotSettings,
    /// aplo's extension: StorageClass-style parameters. When they name a
    /// `durability` policy, they decide durability, options, snapshot
    /// reserve and gid, and the request's own `durability`,
    /// `glustervolumeoptions`, `snapshot` and `gid` are ignored; otherwise
    /// they are added over the parameters made from those fields (e.g. a
    /// `placement` policy and its settings).
    #[serde(default, skip_serializing_if = "Pairs::is_empty")]
    pub parameters: Pairs,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// How to mount a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlusterMount {
    /// Servers holding bricks.
    pub hosts: Vec<String>,
    /// `host:volume`.
    pub device: String,
    /// Mount options (`backup-volfile-servers`).
    pub options: BTreeMap<String, String>,
}

/// The `mount` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The FUSE mount.
    pub glusterfs: GlusterMount,
}

/// A volume with its bricks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeInfoResponse {
    /// Size in GiB.
    pub size: i64,
    /// Name.
    pub name: String,
    /// Durability.
    pub durability: Durability,
    /// Group id (0: none).
    #[serde(default)]
    pub gid: i64,
    /// Options set, `"key value"` each.
    #[serde(default)]
    pub glustervolumeoptions: Vec<String>,
    /// Always false.
    #[serde(default)]
    pub block: bool,
    /// Snapshot reserve.
    pub snapshot: SnapshotSettings,
    /// Id.
    pub id: String,
    /// Its cluster.
    pub cluster: String,
    /// How to mount it.
    pub mount: Mount,
    /// Its bricks.
    pub bricks: Vec<BrickInfo>,
}

/// `{"clusters": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterList {
    /// Ids.
    pub clusters: Vec<String>,
}

/// `{"volumes": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeList {
    /// Ids.
    pub volumes: Vec<String>,
}

/// `POST /volumes/{id}/expand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeExpandRequest {
    /// GiB to add.
    pub expand_size: i64,
}

/// Cluster flags, for create and `POST /clusters/{id}/flags`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFlags {
    /// Serves block volumes.
    #[serde(default)]
    pub block: bool,
    /// Serves file volumes.
    #[serde(default)]
    pub file: bool,
}

/// `POST /nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddRequest {
    /// Failure domain, at least 1.
    #[serde(default)]
    pub zone: i64,
    /// One manage and one storage hostname.
    #[serde(default)]
    pub hostnames: HostAddresses,
    /// The cluster id.
    #[serde(default)]
    pub cluster: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `POST /devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAddRequest {
    /// The device path, e.g. `/dev/vdb`.
    #[serde(default)]
    pub name: String,
    /// Tags (`backend` chooses aplo's brick backend, `lvm-thin` by default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The node id.
    #[serde(default)]
    pub node: String,
    /// Wipe signatures found on the device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destroydata: bool,
}

/// The optional body of `DELETE /devices/{id}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDeleteOptions {
    /// Forget the device without releasing it on its node.
    #[serde(default)]
    pub forceforget: bool,
}

/// `POST /nodes/{id}/state` and `POST /devices/{id}/state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRequest {
    /// `online`, `offline` or `failed`.
    #[serde(default)]
    pub state: String,
    /// heketi's heal-info check before bricks move: `enable`, `disable`
    /// or empty. aplo always checks, and never moves a reachable brick
    /// that holds entries its set has not healed; `disable` does not
    /// change that.
    #[serde(default)]
    pub healcheck: String,
}

/// The optional body of `POST /bricks/to-evict/{id}` (heketi's brick
/// evict).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrickEvictOptions {
    /// As in [`StateRequest::healcheck`]: accepted, and aplo checks anyway.
    #[serde(default)]
    pub healcheck: String,
}

/// `POST /nodes/{id}/tags` and `POST /devices/{id}/tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagsChangeRequest {
    /// The tags to set, add or delete (only the names count for delete).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `set`, `update` or `delete`.
    #[serde(default)]
    pub change_type: String,
}

/// `GET /operations`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationsInfo {
    /// Journaled operations (unfinished).
    pub total: u64,
    /// Operations running through the API's queue now.
    pub in_flight: u64,
    /// Journaled operations nothing runs in this process (left by a crash;
    /// the next start or `aplo repair` finishes them).
    pub stale: u64,
    /// Stale operations whose undo failed.
    pub failed: u64,
    /// Running operations that have done no step yet.
    pub new: u64,
}

fn kib(bytes: u64) -> u64 {
    bytes / KIB
}

fn durability(scheme: &Scheme) -> Durability {
    match *scheme {
        Scheme::None => Durability {
            kind: "none".into(),
            ..Durability::default()
        },
        Scheme::Replicate { count, .. } => Durability {
            kind: "replicate".into(),
            replicate: ReplicaDurability {
                replica: count.into(),
            },
            ..Durability::default()
        },
        Scheme::Disperse { data, redundancy } => Durability {
            kind: "disperse".into(),
            disperse: DisperseDurability {
                data: data.into(),
                redundancy: redundancy.into(),
            },
            ..Durability::default()
        },
    }
}

/// A brick as heketi shows it.
pub fn brick_info(brick: &BrickRecord) -> BrickInfo {
    BrickInfo {
        id: brick.id.to_string(),
        path: brick.path.clone(),
        device: brick.device.to_string(),
        node: brick.node.to_string(),
        volume: brick.volume.to_string(),
        size: kib(brick.bytes),
    }
}

/// A device as heketi shows it.
pub fn device_info(s: &Snapshot, device: &DeviceRecord) -> DeviceInfoResponse {
    device_info_with(s, device, &s.device_usage())
}

/// [`device_info`] with the usage of every device summed once by the
/// caller (a node shows several devices).
fn device_info_with(
    s: &Snapshot,
    device: &DeviceRecord,
    usage: &BTreeMap<crate::model::Id, (u64, u32)>,
) -> DeviceInfoResponse {
    let used = usage.get(&device.id).map_or(0, |u| u.0);
    let bricks = s
        .bricks
        .values()
        .filter(|b| b.device == device.id)
        .map(brick_info)
        .collect();
    DeviceInfoResponse {
        name: device.name.clone(),
        tags: device.tags.clone().into_iter().collect(),
        storage: StorageSize {
            total: kib(device.total_bytes),
            free: kib(device.total_bytes.saturating_sub(used)),
            used: kib(used),
        },
        id: device.id.to_string(),
        state: state_name(device.state).into(),
        bricks,
    }
}

/// A node as heketi shows it.
pub fn node_info(s: &Snapshot, node: &NodeRecord) -> NodeInfoResponse {
    let usage = s.device_usage();
    NodeInfoResponse {
        zone: node.zone.parse().unwrap_or(1),
        hostnames: HostAddresses {
            manage: vec![node.manage.clone()],
            storage: vec![node.storage.clone()],
        },
        cluster: node.cluster.to_string(),
        tags: node.tags.clone().into_iter().collect(),
        id: node.id.to_string(),
        state: state_name(node.state).into(),
        devices: s
            .devices
            .values()
            .filter(|d| d.node == node.id)
            .map(|d| device_info_with(s, d, &usage))
            .collect(),
    }
}

/// A cluster as heketi shows it.
pub fn cluster_info(s: &Snapshot, cluster: &ClusterRecord) -> ClusterInfoResponse {
    ClusterInfoResponse {
        id: cluster.id.to_string(),
        nodes: s
            .nodes
            .values()
            .filter(|n| n.cluster == cluster.id)
            .map(|n| n.id.to_string())
            .collect(),
        volumes: s
            .volumes
            .values()
            .filter(|v| v.cluster == cluster.id)
            .map(|v| v.id.to_string())
            .collect(),
        block: cluster.block,
        file: cluster.file,
        blockvolumes: Vec::new(),
    }
}

/// A volume as heketi shows it; `hosts` are the storage hostnames holding
/// its bricks, first one first.
pub fn volume_info(s: &Snapshot, volume: &VolumeRecord, hosts: Vec<String>) -> VolumeInfoResponse {
    let first = hosts.first().cloned().unwrap_or_default();
    let backups = hosts.iter().skip(1).cloned().collect::<Vec<_>>().join(",");
    let gid = volume
        .options
        .get("storage.owner-gid")
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    VolumeInfoResponse {
        size: i64::try_from(volume.bytes.div_ceil(GIB)).unwrap_or(i64::MAX),
        name: volume.name.clone(),
        durability: durability(&volume.scheme),
        gid,
        glustervolumeoptions: volume
            .options
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect(),
        block: false,
        snapshot: SnapshotSettings {
            enable: volume.snapshot_reserve > 1.0,
            // heketi reports 1 when snapshots are off.
            factor: volume.snapshot_reserve.max(1.0) as f32,
        },
        id: volume.id.to_string(),
        cluster: volume.cluster.to_string(),
        mount: Mount {
            glusterfs: GlusterMount {
                device: format!("{first}:{}", volume.name),
                options: BTreeMap::from([("backup-volfile-servers".to_owned(), backups)]),
                hosts,
            },
        },
        bricks: s.bricks_of(volume.id).into_iter().map(brick_info).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_reads_heketi_clients_json() {
        let body = r#"{"size": 10, "name": "db", "durability": {"type": "disperse",
            "disperse": {"data": 4, "redundancy": 2}}, "gid": 2000,
            "glustervolumeoptions": ["performance.rda-cache-limit 10MB"],
            "snapshot": {"enable": true, "factor": 1.5}}"#;
        let request: VolumeCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.size, 10);
        assert_eq!(request.durability.kind, "disperse");
        assert_eq!(request.durability.disperse.data, 4);
        assert_eq!(request.gid, 2000);
        assert!(request.snapshot.enable);
        // heketi-cli's smallest request.
        let minimal: VolumeCreateRequest =
            serde_json::from_str(r#"{"size": 1, "snapshot": {"enable": false, "factor": 0}}"#)
                .unwrap();
        assert_eq!(minimal.durability, Durability::default());
    }

    #[test]
    fn durabilities_serialize_like_heketi() {
        let replica = serde_json::to_value(durability(&Scheme::Replicate {
            count: 3,
            arbiter: false,
        }))
        .unwrap();
        assert_eq!(
            replica,
            serde_json::json!({"type": "replicate", "replicate": {"replica": 3}, "disperse": {}})
        );
        let none = serde_json::to_value(durability(&Scheme::None)).unwrap();
        assert_eq!(none["type"], "none");
    }
}
