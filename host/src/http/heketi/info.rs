//! heketi's answers built from aplo's store: bricks, devices, nodes,
//! clusters and volumes as heketi's clients read them.

use std::collections::BTreeMap;

use super::{
    BrickInfo, ClusterInfoResponse, DeviceInfoResponse, DisperseDurability, Durability,
    GlusterMount, HostAddresses, Mount, NodeInfoResponse, ReplicaDurability, SnapshotSettings,
    StorageSize, VolumeInfoResponse, state_name,
};
use crate::model::storage::{
    BrickRecord, ClusterRecord, DeviceRecord, NodeRecord, Snapshot, VolumeRecord,
};
use crate::model::{GIB, KIB, Scheme};

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
