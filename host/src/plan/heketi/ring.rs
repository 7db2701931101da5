//! Heketi's device ring: devices grouped zone → node → device, interleaved
//! as its counter walks them, and rotated to a brick set's start position.

use super::cluster::{Groups, Slot};
use crate::model::Id;

/// Group slots zone → node → device, zones and nodes in order of first
/// appearance, each node's devices sorted by id.
pub(super) fn group(slots: &[Slot<'_>], members: &[usize]) -> Groups {
    /// A node's id and its devices.
    type NodeDevices = (Id, Vec<usize>);
    let mut zones: Vec<(&str, Vec<NodeDevices>)> = Vec::new();
    for &i in members {
        let node = slots[i].node;
        let z = match zones.iter().position(|(zone, _)| *zone == node.zone) {
            Some(z) => z,
            None => {
                zones.push((node.zone.as_str(), Vec::new()));
                zones.len() - 1
            }
        };
        let nodes = &mut zones[z].1;
        let n = match nodes.iter().position(|(id, _)| *id == node.id) {
            Some(n) => n,
            None => {
                nodes.push((node.id, Vec::new()));
                nodes.len() - 1
            }
        };
        nodes[n].1.push(i);
    }
    zones
        .into_iter()
        .map(|(_, nodes)| {
            nodes
                .into_iter()
                .map(|(_, mut devices)| {
                    devices.sort_by_key(|&i| slots[i].device.id);
                    devices
                })
                .collect()
        })
        .collect()
}

/// Heketi's `Rebalance`: one counter picks the zone (`i % zones`) and the
/// node within it (`i % nodes`); that node's last device is taken; emptied
/// nodes and zones are removed.
pub(super) fn balance(mut zones: Groups) -> Vec<usize> {
    let mut list = Vec::new();
    let mut i = 0usize;
    while !zones.is_empty() {
        let z = i % zones.len();
        let n = i % zones[z].len();
        if let Some(device) = zones[z][n].pop() {
            list.push(device);
        }
        if zones[z][n].is_empty() {
            zones[z].remove(n);
        }
        if zones[z].is_empty() {
            zones.remove(z);
        }
        i += 1;
    }
    list
}

/// Heketi's `GetDeviceList`: the ring from position `set_id % len` on.
pub(super) fn rotated(mut ring: Vec<usize>, set_id: u64) -> Vec<usize> {
    if !ring.is_empty() {
        let start = (set_id % ring.len() as u64) as usize;
        ring.rotate_left(start);
    }
    ring
}
