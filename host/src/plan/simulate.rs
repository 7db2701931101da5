//! Simulation inputs and reports: the workload file, what a run amounts
//! to (per device, node, zone and tag value, failures grouped by reason,
//! where each claim's bricks went), and the heketi comparison's model
//! bookkeeping. Pure: `aplo simulate` plays the claims through the real
//! engine with the simulation driver and hands the results here.

mod failures;
mod layouts;
mod workload;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use failures::{FailureGroup, NAMED_PER_FAILURE, reason_pattern};
pub use layouts::{ClaimLayout, PlacedBrick, claim_layouts, layout_places};
pub use workload::{
    ClaimSpec, MAX_CLAIMS, SimClaim, Workload, WorkloadError, choose_policies, expand,
    parse_workload,
};

use crate::model::storage::Snapshot;
use crate::model::{BrickRole, Id, Layout, Scheme, Topology};

/// Used and total bytes of one device, node or zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Used {
    /// Bytes taken by bricks.
    pub used: u64,
    /// Capacity.
    pub total: u64,
}

impl Used {
    /// The share used, 0 to 1.
    pub fn share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 / self.total as f64
        }
    }

    fn add(&mut self, used: u64, total: u64) {
        self.used += used;
        self.total += total;
    }
}

/// Usage of the devices that share one value of a tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TagUsage {
    /// How many devices have the value.
    pub devices: usize,
    /// Bytes taken by bricks.
    pub used: u64,
    /// Capacity.
    pub total: u64,
    /// Capacity not taken.
    pub free: u64,
}

impl TagUsage {
    /// The share used, 0 to 1.
    pub fn share(&self) -> f64 {
        Used {
            used: self.used,
            total: self.total,
        }
        .share()
    }
}

/// Usage grouped by the value of one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ByTag {
    /// The tag, e.g. `rack`.
    pub key: String,
    /// Per value; devices without the tag are under [`NO_TAG`].
    pub values: BTreeMap<String, TagUsage>,
}

/// The group of devices without the tag in [`ByTag`].
pub const NO_TAG: &str = "(none)";

/// What a run amounts to.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Claims played.
    pub claims: usize,
    /// Claims that got a volume.
    pub succeeded: usize,
    /// The first claim refused, with the reason.
    pub first_failure: Option<(String, String)>,
    /// Every refusal, grouped by reason, in the order first seen.
    pub failures: Vec<FailureGroup>,
    /// Index of `failures` by reason.
    #[serde(skip)]
    failure_index: HashMap<String, usize>,
    /// Per device, labelled `<node>:<device>`.
    pub devices: BTreeMap<String, Used>,
    /// Per node.
    pub nodes: BTreeMap<String, Used>,
    /// Per zone.
    pub zones: BTreeMap<String, Used>,
    /// Raw capacity of every device.
    pub raw_bytes: u64,
    /// Usable bytes of the volumes created.
    pub usable_bytes: u64,
    /// Usage per value of a tag, when asked for (`--by-tag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_tag: Option<ByTag>,
    /// Where each claim that got a volume has its bricks, when asked for
    /// (`--layouts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<ClaimLayout>,
}

impl Report {
    /// An empty report of a run of `claims` claims.
    pub fn of(claims: usize) -> Report {
        Report {
            claims,
            ..Report::default()
        }
    }

    /// Count one claim's outcome: the usable bytes it got, or why not
    /// (grouped, by its text, with the refusals for the same reason).
    pub fn record<E: std::fmt::Display>(&mut self, claim: &str, outcome: Result<u64, E>) {
        match outcome {
            Ok(usable) => {
                self.succeeded += 1;
                self.usable_bytes += usable;
            }
            Err(reason) => {
                let reason = reason.to_string();
                let pattern = reason_pattern(claim, &reason);
                let next = self.failures.len();
                let index = *self.failure_index.entry(pattern.clone()).or_insert(next);
                if index == next {
                    self.failures.push(FailureGroup {
                        reason: pattern,
                        example: reason.clone(),
                        ..FailureGroup::default()
                    });
                }
                let group = &mut self.failures[index];
                group.count += 1;
                if group.claims.len() < NAMED_PER_FAILURE {
                    group.claims.push(claim.to_owned());
                }
                self.first_failure
                    .get_or_insert_with(|| (claim.to_owned(), reason));
            }
        }
    }

    /// The failure groups, the most common reason first (ties in the
    /// order first seen).
    pub fn failures_by_count(&self) -> Vec<&FailureGroup> {
        let mut groups: Vec<&FailureGroup> = self.failures.iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        groups
    }

    /// Fill in [`Report::by_tag`]: usage per value of the tag `key`, from a
    /// topology whose devices' free space reflects the run. A device's
    /// value is its own tag, else its node's, as placement policies read it
    /// (`Candidate::tag`); devices with neither are under [`NO_TAG`].
    pub fn measure_tag(&mut self, topology: &Topology, key: &str) {
        let mut by_tag = ByTag {
            key: key.to_owned(),
            values: BTreeMap::new(),
        };
        for node in topology.clusters.iter().flat_map(|c| &c.nodes) {
            for device in &node.devices {
                let value = device
                    .tags
                    .get(key)
                    .or_else(|| node.tags.get(key))
                    .map_or(NO_TAG, String::as_str);
                let used = device.total_bytes.saturating_sub(device.free_bytes);
                let row = by_tag.values.entry(value.to_owned()).or_default();
                row.devices += 1;
                row.used += used;
                row.total += device.total_bytes;
                row.free += device.total_bytes - used;
            }
        }
        self.by_tag = Some(by_tag);
    }

    /// The share of raw capacity that became usable volume.
    pub fn usable_share(&self) -> f64 {
        if self.raw_bytes == 0 {
            0.0
        } else {
            self.usable_bytes as f64 / self.raw_bytes as f64
        }
    }

    /// Fill in utilisation from a topology whose devices' free space
    /// reflects the run; `label` names a device.
    pub fn measure(&mut self, topology: &Topology, label: &dyn Fn(Id) -> String) {
        for node in topology.clusters.iter().flat_map(|c| &c.nodes) {
            for device in &node.devices {
                let used = device.total_bytes.saturating_sub(device.free_bytes);
                self.devices
                    .entry(label(device.id))
                    .or_default()
                    .add(used, device.total_bytes);
                self.nodes
                    .entry(node.hostname.clone())
                    .or_default()
                    .add(used, device.total_bytes);
                self.zones
                    .entry(node.zone.clone())
                    .or_default()
                    .add(used, device.total_bytes);
                self.raw_bytes += device.total_bytes;
            }
        }
    }
}

/// A device's label in a report, `<manage host>:<device name>` (its id
/// when `snapshot` does not know it).
pub fn device_label(snapshot: &Snapshot, id: Id) -> String {
    snapshot
        .devices
        .get(&id)
        .and_then(|d| {
            snapshot
                .nodes
                .get(&d.node)
                .map(|n| format!("{}:{}", n.manage, d.name))
        })
        .unwrap_or_else(|| id.to_string())
}

/// The usable size of a layout: per set, the smallest data brick times the
/// scheme's data multiplier.
pub fn layout_usable(scheme: &Scheme, layout: &Layout) -> u64 {
    layout
        .sets
        .iter()
        .map(|set| {
            set.bricks
                .iter()
                .filter(|b| b.role == BrickRole::Data)
                .map(|b| b.bytes)
                .min()
                .unwrap_or(0)
                .saturating_mul(scheme.data_multiplier())
        })
        .sum()
}

/// Take a layout's bricks off the topology's free space; `cost` says what
/// a brick of `bytes` takes from its device.
pub fn apply_layout(topology: &mut Topology, layout: &Layout, cost: &dyn Fn(u64) -> u64) {
    let mut taken: BTreeMap<Id, (u64, u32)> = BTreeMap::new();
    for brick in layout.sets.iter().flat_map(|s| &s.bricks) {
        let entry = taken.entry(brick.device).or_default();
        entry.0 += cost(brick.bytes);
        entry.1 += 1;
    }
    for device in topology
        .clusters
        .iter_mut()
        .flat_map(|c| c.nodes.iter_mut())
        .flat_map(|n| n.devices.iter_mut())
    {
        if let Some((bytes, count)) = taken.get(&device.id) {
            device.free_bytes = device.free_bytes.saturating_sub(*bytes);
            device.brick_count += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::topology;
    use crate::model::{Brick, BrickSet, GIB};

    #[test]
    fn applying_a_layout_takes_space_and_the_report_sums_it() {
        let mut t = topology()
            .zones(3)
            .nodes_per_zone(1)
            .devices_per_node(1)
            .free(10 * GIB)
            .build();
        let devices: Vec<Id> = t.clusters[0]
            .nodes
            .iter()
            .map(|n| n.devices[0].id)
            .collect();
        let layout = Layout {
            sets: vec![BrickSet {
                bricks: devices
                    .iter()
                    .map(|d| Brick {
                        device: *d,
                        bytes: 2 * GIB,
                        role: BrickRole::Data,
                    })
                    .collect(),
            }],
            strict_zones: false,
        };
        let scheme = Scheme::Replicate {
            count: 3,
            arbiter: false,
        };
        assert_eq!(layout_usable(&scheme, &layout), 2 * GIB);
        apply_layout(&mut t, &layout, &|b| b + GIB);
        let mut report = Report {
            usable_bytes: 2 * GIB,
            ..Report::default()
        };
        report.measure(&t, &|id| id.to_string());
        assert_eq!(report.raw_bytes, 30 * GIB);
        assert_eq!(
            report.devices.values().map(|u| u.used).sum::<u64>(),
            9 * GIB
        );
        assert_eq!(report.zones.len(), 3);
        assert!((report.usable_share() - 2.0 / 30.0).abs() < 1e-9);
    }

    #[test]
    fn every_failure_is_counted_in_a_group_by_reason() {
        let mut report = Report::of(6);
        let room = |name: &str, held: &str| {
            Err(format!(
                "cannot place 900GiB for volume '{name}' after 2 brick set(s) holding {held}: no room"
            ))
        };
        report.record("web-1", Ok::<u64, String>(GIB));
        report.record("big-2", room("big-2", "452GiB"));
        report.record("quota-3", Err("quota refused: namespace full"));
        report.record("big-4", room("big-4", "10GiB"));
        report.record("big-5", room("big-5", "1.5TiB"));
        report.record("quota-6", Err("quota refused: namespace full"));
        assert_eq!(report.succeeded, 1);
        assert_eq!(
            report.first_failure.as_ref().map(|(c, _)| c.as_str()),
            Some("big-2")
        );
        let groups = report.failures_by_count();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].claims, ["big-2", "big-4", "big-5"]);
        assert!(groups[0].example.contains("'big-2'"), "{:?}", groups[0]);
        assert!(groups[0].reason.contains("'<claim>'"), "{:?}", groups[0]);
        assert_eq!(groups[1].count, 2);
        assert_eq!(groups[1].reason, "quota refused: namespace full");
        assert_eq!(groups[1].claims, ["quota-3", "quota-6"]);
        // Many claims: all counted, the first few named.
        let mut many = Report::of(100);
        for n in 0..100 {
            many.record(&format!("c-{n}"), Err(format!("volume 'c-{n}' refused")));
        }
        assert_eq!(many.failures.len(), 1);
        assert_eq!(many.failures[0].count, 100);
        assert_eq!(many.failures[0].claims.len(), NAMED_PER_FAILURE);
    }

    #[test]
    fn usage_by_tag_takes_the_device_tag_then_the_node_tag() {
        let mut t = topology()
            .zones(1)
            .nodes_per_zone(3)
            .devices_per_node(2)
            .total(10 * GIB)
            .free(4 * GIB)
            .build();
        let nodes = &mut t.clusters[0].nodes;
        nodes[0].tags.insert("rack".into(), "r1".into());
        nodes[1].tags.insert("rack".into(), "r2".into());
        // A device's own tag wins over its node's.
        nodes[1].devices[1].tags.insert("rack".into(), "r1".into());
        let mut report = Report::default();
        report.measure_tag(&t, "rack");
        let by_tag = report.by_tag.as_ref().unwrap();
        assert_eq!(by_tag.key, "rack");
        let row = |v: &str| by_tag.values[v];
        assert_eq!(by_tag.values.len(), 3);
        assert_eq!(row("r1").devices, 3);
        assert_eq!(row("r1").total, 30 * GIB);
        assert_eq!(row("r1").used, 18 * GIB);
        assert_eq!(row("r1").free, 12 * GIB);
        assert_eq!(row("r2").devices, 1);
        assert_eq!(row(NO_TAG).devices, 2);
        assert!((row(NO_TAG).share() - 0.6).abs() < 1e-9);
    }
}
