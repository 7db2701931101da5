//! Finding things by the names people use: a node by id or manage
//! hostname, a device by id or `NODE DEVICE`, a volume by id or name; and
//! the whole topology, assembled from the read endpoints as heketi's
//! clients do.

use anyhow::{Context, bail};

use super::http::Api;
use super::wire::{Topology, TopologyCluster};
use crate::http::heketi::{
    ClusterInfoResponse, ClusterList, NodeInfoResponse, VolumeInfoResponse, VolumeList, parse_id,
};

fn is_id(text: &str) -> bool {
    parse_id(text).is_some()
}

/// Every cluster with its nodes and volumes in full, as heketi's clients
/// assemble it from the read endpoints.
pub async fn fetch_topology(api: &Api) -> anyhow::Result<Topology> {
    let list: ClusterList = api.get_json("/clusters").await?;
    let mut clusters = Vec::new();
    for id in list.clusters {
        let info: ClusterInfoResponse = api.get_json(&format!("/clusters/{id}")).await?;
        let mut volumes = Vec::new();
        for v in &info.volumes {
            volumes.push(api.get_json(&format!("/volumes/{v}")).await?);
        }
        let mut nodes = Vec::new();
        for n in &info.nodes {
            nodes.push(api.get_json(&format!("/nodes/{n}")).await?);
        }
        clusters.push(TopologyCluster {
            volumes,
            nodes,
            id: info.id,
            block: info.block,
            file: info.file,
        });
    }
    Ok(Topology { clusters })
}

/// A node's id from its id or manage hostname.
pub async fn node_id(api: &Api, node: &str) -> anyhow::Result<String> {
    if is_id(node) {
        return Ok(node.to_owned());
    }
    let list: ClusterList = api.get_json("/clusters").await?;
    for cluster in list.clusters {
        let info: ClusterInfoResponse = api.get_json(&format!("/clusters/{cluster}")).await?;
        for id in info.nodes {
            let n: NodeInfoResponse = api.get_json(&format!("/nodes/{id}")).await?;
            if n.hostnames.manage.iter().any(|h| h == node) {
                return Ok(n.id);
            }
        }
    }
    bail!("no node has the id or manage hostname '{node}'")
}

/// A device's id from `[DEVICE-ID]` or `[NODE, DEVICE]` (name or id).
pub async fn device_id(api: &Api, words: &[String]) -> anyhow::Result<String> {
    match words {
        [device] if is_id(device) => Ok(device.clone()),
        [device] => bail!(
            "'{device}' is not a device id; name a device by name as NODE DEVICE (e.g. `node1 \
             /dev/vdb`)"
        ),
        [node, device] => {
            let id = node_id(api, node).await?;
            let info: NodeInfoResponse = api.get_json(&format!("/nodes/{id}")).await?;
            info.devices
                .iter()
                .find(|d| d.name == *device || d.id == *device)
                .map(|d| d.id.clone())
                .with_context(|| format!("node '{node}' has no device '{device}'"))
        }
        _ => bail!("name a device as DEVICE-ID or NODE DEVICE"),
    }
}

/// A volume's id from its id or name.
pub async fn volume_id(api: &Api, volume: &str) -> anyhow::Result<String> {
    if is_id(volume) {
        return Ok(volume.to_owned());
    }
    let list: VolumeList = api.get_json("/volumes").await?;
    for id in list.volumes {
        let v: VolumeInfoResponse = api.get_json(&format!("/volumes/{id}")).await?;
        if v.name == volume {
            return Ok(v.id);
        }
    }
    bail!("no volume has the id or name '{volume}'")
}
