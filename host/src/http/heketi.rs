//! heketi's REST API wire format: the JSON shapes heketi's clients send and
//! expect, and their construction from aplo's store. Field names, nesting
//! and units follow heketi's public API types: storage sizes in KiB,
//! volume sizes in GiB, ids as 32 hex characters, states `online`,
//! `offline`, `failed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod checks;
mod info;
mod server;

pub use self::checks::{
    NewDevice, NewNode, RequestError, TagChange, check_device_add, check_healcheck, check_node_add,
    check_tags, device_transition, node_transition, operations_info, parse_id, parse_state,
};
pub use self::info::{brick_info, cluster_info, device_info, node_info, volume_info};
pub use self::server::{
    AdminStatus, DbBucketCheck, DbCheckResponse, LOGGER, LogLevelInfo, PendingChangeInfo,
    PendingOperationDetails, PendingOperationInfo, PendingOperationList, db_check,
    operation_status, pending_details, pending_info, pending_list,
};

use crate::model::{Pairs, State};

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
}
