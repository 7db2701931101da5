//! The rules a layout must obey against the request and the topology it
//! was made for, each named when broken.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{MAX_SETS, MIN_DATA_BRICK_BYTES, describe};
use crate::model::{
    BrickRole, Device, Id, Layout, Node, PlacementRequest, State, Topology, consumed_bytes,
    format_size,
};

/// A rule a layout must obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayoutRule {
    /// The layout has at least one set and at most [`MAX_SETS`].
    SetCount,
    /// Every brick names a device in the topology.
    UnknownDevice,
    /// Every brick's device and node are online.
    DeviceOnline,
    /// Every device has the space for all bricks placed on it.
    DeviceSpace,
    /// No two bricks of a set are on one node.
    DistinctNodes,
    /// With strict zones, no two bricks of a set are in one zone.
    DistinctZones,
    /// All bricks come from one cluster.
    OneCluster,
    /// Each set's brick count and roles match the durability.
    SetShape,
    /// Data bricks of a set are equal and non-zero; an arbiter is no larger.
    BrickSizes,
    /// Data bricks are at least [`MIN_DATA_BRICK_BYTES`].
    BrickMinimum,
    /// The usable size covers the requested size.
    UsableSize,
}

impl LayoutRule {
    /// The rule's name, as used in errors and metrics.
    pub fn name(self) -> &'static str {
        match self {
            LayoutRule::SetCount => "set-count",
            LayoutRule::UnknownDevice => "known-device",
            LayoutRule::DeviceOnline => "device-online",
            LayoutRule::DeviceSpace => "device-space",
            LayoutRule::DistinctNodes => "distinct-nodes",
            LayoutRule::DistinctZones => "distinct-zones",
            LayoutRule::OneCluster => "one-cluster",
            LayoutRule::SetShape => "set-shape",
            LayoutRule::BrickSizes => "brick-sizes",
            LayoutRule::BrickMinimum => "brick-minimum",
            LayoutRule::UsableSize => "usable-size",
        }
    }
}

impl fmt::Display for LayoutRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken rule: which one and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layout breaks rule {rule}: {detail}")]
pub struct LayoutViolation {
    /// The rule.
    pub rule: LayoutRule,
    /// Where and how it was broken.
    pub detail: String,
}

/// What a valid layout amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutSummary {
    /// Usable bytes of the volume.
    pub usable_bytes: u64,
    /// Bytes consumed on devices, snapshot reserve included.
    pub consumed_bytes: u64,
    /// Number of bricks.
    pub bricks: usize,
}

fn violation(rule: LayoutRule, detail: impl Into<String>) -> LayoutViolation {
    LayoutViolation {
        rule,
        detail: detail.into(),
    }
}

struct Located<'a> {
    cluster: Id,
    node: &'a Node,
    device: &'a Device,
}

/// Check a layout against the request and the topology it was made for.
pub fn validate_layout(
    request: &PlacementRequest,
    topology: &Topology,
    layout: &Layout,
) -> Result<LayoutSummary, LayoutViolation> {
    if layout.sets.is_empty() || layout.sets.len() > MAX_SETS {
        return Err(violation(
            LayoutRule::SetCount,
            format!("{} sets (allowed 1..={MAX_SETS})", layout.sets.len()),
        ));
    }
    // Only the devices the layout names are looked up: a topology may hold
    // tens of thousands, a layout a few dozen.
    let named: BTreeSet<Id> = layout
        .sets
        .iter()
        .flat_map(|set| set.bricks.iter().map(|b| b.device))
        .collect();
    let mut devices: BTreeMap<Id, Located<'_>> = BTreeMap::new();
    'search: for cluster in &topology.clusters {
        for node in &cluster.nodes {
            for device in node.devices.iter().filter(|d| named.contains(&d.id)) {
                devices.insert(
                    device.id,
                    Located {
                        cluster: cluster.id,
                        node,
                        device,
                    },
                );
                if devices.len() == named.len() {
                    break 'search;
                }
            }
        }
    }
    let scheme = request.scheme;
    let arbiter = scheme.has_arbiter();
    let mut consumed: BTreeMap<Id, u64> = BTreeMap::new();
    let mut clusters: BTreeSet<Id> = BTreeSet::new();
    let mut summary = LayoutSummary {
        usable_bytes: 0,
        consumed_bytes: 0,
        bricks: 0,
    };
    for (index, set) in layout.sets.iter().enumerate() {
        let at = |detail: String| format!("set {index}: {detail}");
        if set.bricks.len() != scheme.set_size() {
            return Err(violation(
                LayoutRule::SetShape,
                at(format!(
                    "{} bricks, but {} needs {}",
                    set.bricks.len(),
                    describe(&scheme),
                    scheme.set_size()
                )),
            ));
        }
        let mut nodes = BTreeSet::new();
        let mut zones = BTreeSet::new();
        for (position, brick) in set.bricks.iter().enumerate() {
            let should_be_arbiter = arbiter && position + 1 == set.bricks.len();
            let role_ok = (brick.role == BrickRole::Arbiter) == should_be_arbiter;
            if !role_ok {
                return Err(violation(
                    LayoutRule::SetShape,
                    at(format!(
                        "brick {position} is a {:?} brick; {} wants {}",
                        brick.role,
                        describe(&scheme),
                        if arbiter {
                            "the last brick an arbiter and the others data"
                        } else {
                            "data bricks only"
                        }
                    )),
                ));
            }
            let Some(found) = devices.get(&brick.device) else {
                return Err(violation(
                    LayoutRule::UnknownDevice,
                    at(format!("device '{}' is not in the topology", brick.device)),
                ));
            };
            if found.device.state != State::Online || found.node.state != State::Online {
                return Err(violation(
                    LayoutRule::DeviceOnline,
                    at(format!(
                        "device {} ({:?}) on node {} ({:?}) is not online",
                        found.device.id, found.device.state, found.node.hostname, found.node.state
                    )),
                ));
            }
            if !nodes.insert(found.node.id) {
                return Err(violation(
                    LayoutRule::DistinctNodes,
                    at(format!("two bricks on node {}", found.node.hostname)),
                ));
            }
            if !zones.insert(found.node.zone.as_str()) && layout.strict_zones {
                return Err(violation(
                    LayoutRule::DistinctZones,
                    at(format!("two bricks in zone '{}'", found.node.zone)),
                ));
            }
            if brick.bytes == 0 {
                return Err(violation(
                    LayoutRule::BrickSizes,
                    at(format!("brick {position} has size 0")),
                ));
            }
            clusters.insert(found.cluster);
            let used = consumed.entry(found.device.id).or_default();
            *used = used.saturating_add(consumed_bytes(brick.bytes, request.snapshot_reserve));
            summary.bricks += 1;
        }
        let data: Vec<u64> = set
            .bricks
            .iter()
            .filter(|b| b.role == BrickRole::Data)
            .map(|b| b.bytes)
            .collect();
        let size = data[0];
        if data.iter().any(|&b| b != size) {
            return Err(violation(
                LayoutRule::BrickSizes,
                at(format!("data bricks differ in size: {data:?}")),
            ));
        }
        if size < MIN_DATA_BRICK_BYTES {
            return Err(violation(
                LayoutRule::BrickMinimum,
                at(format!(
                    "data bricks of {} are below the {} a brick filesystem needs",
                    format_size(size),
                    format_size(MIN_DATA_BRICK_BYTES)
                )),
            ));
        }
        if let Some(a) = set.bricks.iter().find(|b| b.role == BrickRole::Arbiter)
            && a.bytes > size
        {
            return Err(violation(
                LayoutRule::BrickSizes,
                at(format!(
                    "arbiter brick ({}) is larger than its data bricks ({})",
                    a.bytes, size
                )),
            ));
        }
        summary.usable_bytes = summary
            .usable_bytes
            .saturating_add(size.saturating_mul(scheme.data_multiplier()));
    }
    if clusters.len() > 1 {
        return Err(violation(
            LayoutRule::OneCluster,
            format!("bricks span clusters {clusters:?}"),
        ));
    }
    for (id, used) in &consumed {
        let device = devices[id].device;
        if *used > device.free_bytes {
            return Err(violation(
                LayoutRule::DeviceSpace,
                format!(
                    "device {id} on node {} would need {} but has {} free",
                    devices[id].node.hostname,
                    format_size(*used),
                    format_size(device.free_bytes)
                ),
            ));
        }
        summary.consumed_bytes = summary.consumed_bytes.saturating_add(*used);
    }
    if summary.usable_bytes < request.bytes {
        return Err(violation(
            LayoutRule::UsableSize,
            format!(
                "usable size {} is less than the {} requested",
                summary.usable_bytes, request.bytes
            ),
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{request, topology};
    use crate::model::{Brick, BrickSet, GIB, Scheme};

    const R3: Scheme = Scheme::Replicate {
        count: 3,
        arbiter: false,
    };

    fn brick(device: &Id, bytes: u64) -> Brick {
        Brick {
            device: *device,
            bytes,
            role: BrickRole::Data,
        }
    }

    /// One replica-3 set on the first device of the first node of three zones.
    fn honest(t: &Topology, bytes: u64) -> Layout {
        let mut zones = std::collections::BTreeSet::new();
        let bricks = t.clusters[0]
            .nodes
            .iter()
            .filter(|n| zones.insert(n.zone.clone()))
            .take(3)
            .map(|n| brick(&n.devices[0].id, bytes))
            .collect();
        Layout {
            sets: vec![BrickSet { bricks }],
            strict_zones: true,
        }
    }

    fn rule(result: Result<LayoutSummary, LayoutViolation>) -> LayoutRule {
        result.expect_err("the layout should be refused").rule
    }

    #[test]
    fn an_honest_layout_passes_and_is_summarised() {
        let t = topology().zones(3).build();
        let summary = validate_layout(&request(10 * GIB, R3), &t, &honest(&t, 10 * GIB)).unwrap();
        assert_eq!(
            summary,
            LayoutSummary {
                usable_bytes: 10 * GIB,
                consumed_bytes: 30 * GIB,
                bricks: 3
            }
        );
    }

    #[test]
    fn each_rule_is_named_when_broken() {
        let t = topology()
            .zones(3)
            .nodes_per_zone(2)
            .devices_per_node(2)
            .free(100 * GIB)
            .build();
        let req = request(10 * GIB, R3);
        let nodes = &t.clusters[0].nodes;
        let mut l = honest(&t, 10 * GIB);
        l.sets.clear();
        assert_eq!(rule(validate_layout(&req, &t, &l)), LayoutRule::SetCount);

        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks[0].device = Id(u128::MAX);
        assert_eq!(
            rule(validate_layout(&req, &t, &l)),
            LayoutRule::UnknownDevice
        );

        let mut offline = t.clone();
        offline.clusters[0].nodes[0].state = State::Offline;
        let mut failed = t.clone();
        failed.clusters[0].nodes[0].devices[0].state = State::Failed;
        assert_eq!(
            rule(validate_layout(&req, &failed, &honest(&t, 10 * GIB))),
            LayoutRule::DeviceOnline
        );
        assert_eq!(
            rule(validate_layout(&req, &offline, &honest(&t, 10 * GIB))),
            LayoutRule::DeviceOnline
        );

        assert_eq!(
            rule(validate_layout(&req, &t, &honest(&t, 101 * GIB))),
            LayoutRule::DeviceSpace
        );

        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks[1].device = nodes[0].devices[1].id;
        assert_eq!(
            rule(validate_layout(&req, &t, &l)),
            LayoutRule::DistinctNodes
        );

        // Nodes 0 and 1 are both in zone-0 (two nodes per zone).
        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks[1].device = nodes[1].devices[0].id;
        assert_eq!(nodes[0].zone, nodes[1].zone);
        assert_eq!(
            rule(validate_layout(&req, &t, &l)),
            LayoutRule::DistinctZones
        );
        l.strict_zones = false;
        assert!(
            validate_layout(&req, &t, &l).is_ok(),
            "best-effort zones allow sharing a zone"
        );

        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks.pop();
        assert_eq!(rule(validate_layout(&req, &t, &l)), LayoutRule::SetShape);

        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks[2].role = BrickRole::Arbiter;
        assert_eq!(rule(validate_layout(&req, &t, &l)), LayoutRule::SetShape);

        let mut l = honest(&t, 10 * GIB);
        l.sets[0].bricks[0].bytes += 1;
        assert_eq!(rule(validate_layout(&req, &t, &l)), LayoutRule::BrickSizes);

        assert_eq!(
            rule(validate_layout(
                &request(11 * GIB, R3),
                &t,
                &honest(&t, 10 * GIB)
            )),
            LayoutRule::UsableSize
        );
    }

    #[test]
    fn space_counts_every_brick_on_a_device_and_the_reserve() {
        let t = topology().zones(3).free(30 * GIB).build();
        let two_sets = |bytes| {
            let mut l = honest(&t, bytes);
            l.sets.push(l.sets[0].clone());
            l
        };
        assert!(validate_layout(&request(30 * GIB, R3), &t, &two_sets(15 * GIB)).is_ok());
        assert_eq!(
            rule(validate_layout(
                &request(32 * GIB, R3),
                &t,
                &two_sets(16 * GIB)
            )),
            LayoutRule::DeviceSpace
        );
        let mut reserved = request(10 * GIB, R3);
        reserved.snapshot_reserve = 3.5;
        assert_eq!(
            rule(validate_layout(&reserved, &t, &honest(&t, 10 * GIB))),
            LayoutRule::DeviceSpace
        );
    }

    #[test]
    fn bricks_may_not_span_clusters() {
        let t = topology().zones(3).clusters(2).build();
        let mut l = honest(&t, GIB);
        l.sets[0].bricks[0].device = t.clusters[1].nodes[0].devices[0].id;
        assert_eq!(
            rule(validate_layout(&request(GIB, R3), &t, &l)),
            LayoutRule::OneCluster
        );
    }

    #[test]
    fn arbiter_and_disperse_shapes() {
        let t = topology().zones(6).build();
        let ids: Vec<Id> = t.clusters[0]
            .nodes
            .iter()
            .map(|n| n.devices[0].id)
            .collect();
        let arbiter = Scheme::Replicate {
            count: 3,
            arbiter: true,
        };
        let mut l = Layout {
            sets: vec![BrickSet {
                bricks: vec![
                    brick(&ids[0], 8 * GIB),
                    brick(&ids[1], 8 * GIB),
                    Brick {
                        device: ids[2],
                        bytes: GIB,
                        role: BrickRole::Arbiter,
                    },
                ],
            }],
            strict_zones: false,
        };
        assert_eq!(
            validate_layout(&request(8 * GIB, arbiter), &t, &l)
                .unwrap()
                .usable_bytes,
            8 * GIB
        );
        l.sets[0].bricks[2].bytes = 9 * GIB;
        assert_eq!(
            rule(validate_layout(&request(8 * GIB, arbiter), &t, &l)),
            LayoutRule::BrickSizes
        );

        let disperse = Scheme::Disperse {
            data: 4,
            redundancy: 2,
        };
        let l = Layout {
            sets: vec![BrickSet {
                bricks: ids.iter().map(|id| brick(id, 5 * GIB)).collect(),
            }],
            strict_zones: true,
        };
        assert_eq!(
            validate_layout(&request(20 * GIB, disperse), &t, &l)
                .unwrap()
                .usable_bytes,
            20 * GIB
        );
        assert_eq!(
            rule(validate_layout(&request(21 * GIB, disperse), &t, &l)),
            LayoutRule::UsableSize
        );
    }

    #[test]
    fn data_bricks_below_a_brick_filesystem_are_refused_but_small_arbiters_pass() {
        let t = topology().zones(3).build();
        let devices: Vec<Id> = t.clusters[0]
            .nodes
            .iter()
            .map(|n| n.devices[0].id)
            .collect();
        let layout = |data: u64, arbiter: Option<u64>| Layout {
            sets: vec![BrickSet {
                bricks: devices
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match arbiter {
                        Some(a) if i == 2 => Brick {
                            device: *d,
                            bytes: a,
                            role: BrickRole::Arbiter,
                        },
                        _ => brick(d, data),
                    })
                    .collect(),
            }],
            strict_zones: false,
        };
        // A 1 MiB claim still needs full-size bricks.
        let small = request(1 << 20, R3);
        let err = validate_layout(&small, &t, &layout(1 << 20, None)).unwrap_err();
        assert_eq!(err.rule, LayoutRule::BrickMinimum);
        assert!(err.to_string().contains("brick-minimum"), "{err}");
        assert!(validate_layout(&small, &t, &layout(MIN_DATA_BRICK_BYTES, None)).is_ok());
        // An arbiter brick of 1 MiB beside full-size data bricks is fine.
        let arbiter = request(
            GIB,
            Scheme::Replicate {
                count: 3,
                arbiter: true,
            },
        );
        assert!(validate_layout(&arbiter, &t, &layout(GIB, Some(1 << 20))).is_ok());
    }
}
