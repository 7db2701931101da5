//! Where each claim's bricks went, by node hostname and device name.

use std::collections::HashMap;

use serde::Serialize;

use super::{NO_TAG, SimClaim};
use crate::model::storage::{BrickRecord, Snapshot};
use crate::model::{BrickRole, Id, Layout};

/// Where one brick of a simulated volume went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacedBrick {
    /// The node's hostname.
    pub node: String,
    /// The device's name, e.g. `/dev/vdb`.
    pub device: String,
    /// Data or arbiter.
    pub role: BrickRole,
    /// Usable bytes of the brick.
    pub bytes: u64,
    /// The value of the report's tag (`--by-tag`) for this device, if
    /// asked for: the device's own, else its node's, else [`NO_TAG`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Where one claim's bricks went: its sets, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimLayout {
    /// The claim (and volume) name.
    pub claim: String,
    /// The brick sets, each in gluster's brick order.
    pub sets: Vec<Vec<PlacedBrick>>,
}

/// Where the bricks of each claim's volume are in `snapshot` (the state
/// after a run), in the order of `claims`; claims without a volume are
/// left out. With `tag`, each brick says its device's value of that tag.
pub fn claim_layouts(
    snapshot: &Snapshot,
    claims: &[SimClaim],
    tag: Option<&str>,
) -> Vec<ClaimLayout> {
    let by_name: HashMap<&str, Id> = snapshot
        .volumes
        .values()
        .map(|v| (v.name.as_str(), v.id))
        .collect();
    let mut bricks_of: HashMap<Id, Vec<&BrickRecord>> = HashMap::new();
    for brick in snapshot.bricks.values() {
        bricks_of.entry(brick.volume).or_default().push(brick);
    }
    let mut out = Vec::new();
    for claim in claims {
        let Some(id) = by_name.get(claim.name.as_str()) else {
            continue;
        };
        let mut bricks = bricks_of.remove(id).unwrap_or_default();
        bricks.sort_by_key(|b| (b.set, b.position));
        let mut sets: Vec<Vec<PlacedBrick>> = Vec::new();
        let mut current = None;
        for brick in bricks {
            if current != Some(brick.set) {
                sets.push(Vec::new());
                current = Some(brick.set);
            }
            let placed = placed_brick(snapshot, brick.device, brick.role, brick.bytes, tag);
            sets.last_mut().expect("pushed above").push(placed);
        }
        out.push(ClaimLayout {
            claim: claim.name.clone(),
            sets,
        });
    }
    out
}

/// Where a layout's bricks are, named from `snapshot`; with `tag`, each
/// brick says its device's value of that tag.
pub fn layout_places(
    snapshot: &Snapshot,
    claim: &str,
    layout: &Layout,
    tag: Option<&str>,
) -> ClaimLayout {
    ClaimLayout {
        claim: claim.to_owned(),
        sets: layout
            .sets
            .iter()
            .map(|set| {
                set.bricks
                    .iter()
                    .map(|b| placed_brick(snapshot, b.device, b.role, b.bytes, tag))
                    .collect()
            })
            .collect(),
    }
}

fn placed_brick(
    snapshot: &Snapshot,
    device: Id,
    role: BrickRole,
    bytes: u64,
    tag: Option<&str>,
) -> PlacedBrick {
    let record = snapshot.devices.get(&device);
    let node = record.and_then(|d| snapshot.nodes.get(&d.node));
    PlacedBrick {
        node: node.map_or_else(|| "?".to_owned(), |n| n.manage.clone()),
        device: record.map_or_else(|| device.to_string(), |d| d.name.clone()),
        role,
        bytes,
        tag: tag.map(|key| {
            record
                .and_then(|d| d.tags.get(key))
                .or_else(|| node.and_then(|n| n.tags.get(key)))
                .map_or(NO_TAG, String::as_str)
                .to_owned()
        }),
    }
}
