//! heketi's Prometheus metrics, rendered from aplo's store, so that
//! dashboards and alerts written for heketi keep working.
//!
//! The names, help texts, labels and units are heketi's: device sizes in
//! KiB (`heketi_device_size`, `_free`, `_used`) and in bytes (the
//! `_bytes` variants); labels `cluster`, `hostname` (manage),
//! `storage_hostname`, `id`, `device` and `pv_uuid` (always empty: aplo
//! does not record PV UUIDs). aplo has no block volumes, so
//! `heketi_block_volumes_count` is 0 for every cluster.
//!
//! Every family is a gauge, written in the Prometheus text format, one
//! `# HELP` and `# TYPE` per family, without a trailing `# EOF` (the
//! caller appends the text to its own exposition).

use std::fmt::Write as _;

use super::heketi::{self, OperationsInfo};
use crate::model::storage::Snapshot;

/// heketi's metrics for a snapshot, without the operation counts (see
/// [`heketi_metrics_with`]).
pub fn heketi_metrics(snapshot: &Snapshot) -> String {
    heketi_metrics_with(snapshot, None)
}

/// A label value, escaped for the text format.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One gauge family: its samples as (labels, value).
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, u64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: u64) {
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP heketi_{} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE heketi_{} gauge", self.name);
        for (labels, value) in &self.samples {
            let _ = write!(out, "heketi_{}", self.name);
            if !labels.is_empty() {
                let text: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", text.join(","));
            }
            let _ = writeln!(out, " {value}");
        }
    }
}

/// heketi's metrics for a snapshot; with `operations`, also heketi's
/// operation counts (`heketi_operations_*_count`).
pub fn heketi_metrics_with(snapshot: &Snapshot, operations: Option<&OperationsInfo>) -> String {
    let mut out = String::new();
    let mut up = Family::new("up", "Is heketi running?");
    up.add(Vec::new(), 1);
    up.write(&mut out);
    let mut clusters = Family::new("cluster_count", "Number of clusters");
    clusters.add(Vec::new(), snapshot.clusters.len() as u64);
    clusters.write(&mut out);
    if let Some(ops) = operations {
        for (name, help, value) in [
            (
                "operations_stale_count",
                "Number of Stale Operations",
                ops.stale,
            ),
            (
                "operations_failed_count",
                "Number of Failed Operations",
                ops.failed,
            ),
            ("operations_new_count", "Number of New Operations", ops.new),
            (
                "operations_total_count",
                "Total Number of Operations",
                ops.total,
            ),
            (
                "operations_inFlight_count",
                "Number of in flight Operations",
                ops.in_flight,
            ),
        ] {
            let mut family = Family::new(name, help);
            family.add(Vec::new(), value);
            family.write(&mut out);
        }
    }

    let mut volumes = Family::new("volumes_count", "Number of volumes on cluster");
    let mut block_volumes =
        Family::new("block_volumes_count", "Number of block volumes on cluster");
    let mut nodes = Family::new("nodes_count", "Number of nodes on cluster");
    let mut devices = Family::new("device_count", "Number of devices on host");
    let mut size = Family::new("device_size", "Total size of the device");
    let mut free = Family::new(
        "device_free",
        "Amount of Free space available on the device",
    );
    let mut used = Family::new("device_used", "Amount of space used on the device");
    let mut size_bytes = Family::new("device_size_bytes", "Total size of the device in bytes");
    let mut free_bytes = Family::new(
        "device_free_bytes",
        "Amount of Free space available on the device in bytes",
    );
    let mut used_bytes = Family::new(
        "device_used_bytes",
        "Amount of space used on the device in bytes",
    );
    let mut bricks = Family::new("device_brick_count", "Number of bricks on device");

    for cluster in snapshot.clusters.values() {
        let info = heketi::cluster_info(snapshot, cluster);
        let id = info.id.clone();
        volumes.add(vec![("cluster", id.clone())], info.volumes.len() as u64);
        block_volumes.add(vec![("cluster", id.clone())], 0);
        nodes.add(vec![("cluster", id.clone())], info.nodes.len() as u64);
        for node in snapshot.nodes.values().filter(|n| n.cluster == cluster.id) {
            let node = heketi::node_info(snapshot, node);
            let manage = node.hostnames.manage.first().cloned().unwrap_or_default();
            let storage = node.hostnames.storage.first().cloned().unwrap_or_default();
            devices.add(
                vec![
                    ("cluster", id.clone()),
                    ("hostname", manage.clone()),
                    ("storage_hostname", storage.clone()),
                ],
                node.devices.len() as u64,
            );
            for device in &node.devices {
                // Sorted by name, as heketi's exporter writes them.
                let labels = vec![
                    ("cluster", id.clone()),
                    ("device", device.name.clone()),
                    ("hostname", manage.clone()),
                    ("id", device.id.clone()),
                    ("pv_uuid", String::new()),
                    ("storage_hostname", storage.clone()),
                ];
                let s = &device.storage;
                size.add(labels.clone(), s.total);
                free.add(labels.clone(), s.free);
                used.add(labels.clone(), s.used);
                size_bytes.add(labels.clone(), s.total.saturating_mul(1024));
                free_bytes.add(labels.clone(), s.free.saturating_mul(1024));
                used_bytes.add(labels.clone(), s.used.saturating_mul(1024));
                bricks.add(labels, device.bricks.len() as u64);
            }
        }
    }
    for family in [
        volumes,
        block_volumes,
        nodes,
        devices,
        size,
        free,
        used,
        size_bytes,
        free_bytes,
        used_bytes,
        bricks,
    ] {
        family.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::journal::{Operation, OperationRecord};
    use crate::model::storage::{Backend, BrickRecord, ClusterRecord, DeviceRecord, NodeRecord};
    use crate::model::{BrickRole, GIB, Id, Pairs, State};

    /// One cluster, one node with two devices of 10 GiB, one brick of
    /// 3 GiB on the first.
    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.clusters.insert(
            Id(1),
            ClusterRecord {
                id: Id(1),
                file: true,
                block: false,
            },
        );
        s.nodes.insert(
            Id(2),
            NodeRecord {
                id: Id(2),
                cluster: Id(1),
                manage: "node-a".into(),
                storage: "10.0.0.1".into(),
                zone: "1".into(),
                state: State::Online,
                tags: Pairs::new(),
            },
        );
        for (id, name) in [(3, "/dev/vdb"), (4, "/dev/vd\"c")] {
            s.devices.insert(
                Id(id),
                DeviceRecord {
                    id: Id(id),
                    node: Id(2),
                    name: name.into(),
                    backend: Backend::LvmThin,
                    state: State::Online,
                    tags: Pairs::new(),
                    total_bytes: 10 * GIB,
                },
            );
        }
        s.bricks.insert(
            Id(5),
            BrickRecord {
                id: Id(5),
                volume: Id(6),
                device: Id(3),
                node: Id(2),
                bytes: 3 * GIB,
                consumed: 3 * GIB,
                role: BrickRole::Data,
                set: 0,
                position: 0,
                path: "/b".into(),
            },
        );
        s
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix} in\n{text}"))
    }

    #[test]
    fn the_names_labels_and_units_are_heketis() {
        let text = heketi_metrics(&snapshot());
        let c = Id(1).to_string();
        let d = Id(3).to_string();
        assert_eq!(line(&text, "heketi_up "), "heketi_up 1");
        assert_eq!(
            line(&text, "heketi_cluster_count "),
            "heketi_cluster_count 1"
        );
        assert_eq!(
            line(&text, "heketi_nodes_count{"),
            format!("heketi_nodes_count{{cluster=\"{c}\"}} 1")
        );
        assert_eq!(
            line(&text, "heketi_device_count{"),
            format!(
                "heketi_device_count{{cluster=\"{c}\",hostname=\"node-a\",storage_hostname=\"10.0.0.1\"}} 2"
            )
        );
        let labels = format!(
            "{{cluster=\"{c}\",device=\"/dev/vdb\",hostname=\"node-a\",id=\"{d}\",pv_uuid=\"\",storage_hostname=\"10.0.0.1\"}}"
        );
        // KiB, then bytes.
        assert_eq!(
            line(&text, "heketi_device_size{"),
            format!("heketi_device_size{labels} {}", 10 * 1024 * 1024)
        );
        assert_eq!(
            line(&text, "heketi_device_used{"),
            format!("heketi_device_used{labels} {}", 3 * 1024 * 1024)
        );
        assert_eq!(
            line(&text, "heketi_device_free{"),
            format!("heketi_device_free{labels} {}", 7 * 1024 * 1024)
        );
        assert_eq!(
            line(&text, "heketi_device_free_bytes{"),
            format!("heketi_device_free_bytes{labels} {}", 7 * GIB)
        );
        assert_eq!(
            line(&text, "heketi_device_brick_count{"),
            format!("heketi_device_brick_count{labels} 1")
        );
        assert!(text.contains("# TYPE heketi_device_size gauge\n"));
        assert!(
            text.contains("# HELP heketi_device_size Total size of the device\n"),
            "{text}"
        );
        // A quote in a device name is escaped.
        assert!(text.contains("device=\"/dev/vd\\\"c\""), "{text}");
        // Without operation counts, no operation metrics.
        assert!(!text.contains("operations"), "{text}");
    }

    #[test]
    fn each_family_is_declared_once_before_its_samples() {
        let mut s = snapshot();
        s.clusters.insert(
            Id(9),
            ClusterRecord {
                id: Id(9),
                file: true,
                block: false,
            },
        );
        let text = heketi_metrics(&s);
        assert_eq!(text.matches("# TYPE heketi_nodes_count gauge").count(), 1);
        assert_eq!(text.matches("heketi_nodes_count{").count(), 2);
        let mut declared = std::collections::BTreeSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_owned()), "{name} declared twice");
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} has no TYPE line before it");
            }
        }
    }

    #[test]
    fn operation_counts_use_heketis_names() {
        let mut s = snapshot();
        s.operations.insert(
            Id(7),
            OperationRecord {
                id: Id(7),
                operation: Operation::RemoveDevice { device: Id(4) },
                done: Vec::new(),
                rolling_back: false,
            },
        );
        let ops = heketi::operations_info(&s, |_| false, 3);
        let text = heketi_metrics_with(&s, Some(&ops));
        assert_eq!(
            line(&text, "heketi_operations_total_count "),
            "heketi_operations_total_count 1"
        );
        assert_eq!(
            line(&text, "heketi_operations_stale_count "),
            "heketi_operations_stale_count 1"
        );
        assert_eq!(
            line(&text, "heketi_operations_inFlight_count "),
            "heketi_operations_inFlight_count 3"
        );
    }
}
