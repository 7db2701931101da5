//! heketi's server-wide wire types: the admin mode, the log level, the
//! pending operations and the database check, and their construction
//! from aplo's journal and reconcile report. Pure functions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::Drift;
use crate::model::Id;
use crate::model::journal::{Operation, OperationRecord};
use crate::model::storage::Snapshot;

/// `GET /admin`, and the body of `POST /admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminStatus {
    /// `normal`, `read-only` or `local-client`.
    #[serde(default)]
    pub state: String,
}

/// The logger whose level `/internal/logging` reads and sets: heketi's
/// name, which its clients send; it is aplo's log.
pub const LOGGER: &str = "glusterfs";

/// `GET /internal/logging`, and the body of `POST /internal/logging`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLevelInfo {
    /// Level by logger: [`LOGGER`] only.
    #[serde(default)]
    pub loglevel: BTreeMap<String, String>,
}

/// One journaled operation, as `GET /operations/pending` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOperationInfo {
    /// Id.
    pub id: String,
    /// What it does (aplo's names: `create-volume`, `replace-brick`, …).
    pub type_name: String,
    /// Empty while it runs (heketi's "new"), `stale` when nothing runs it
    /// (left by a crash), `failed` when its undo failed.
    pub status: String,
    /// `in-flight` while it runs in this process.
    pub sub_status: String,
}

/// One record an operation changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChangeInfo {
    /// The record's id.
    pub id: String,
    /// What happens to it, e.g. `Add brick`.
    pub description: String,
}

/// `GET /operations/pending/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOperationDetails {
    /// As listed.
    #[serde(flatten)]
    pub info: PendingOperationInfo,
    /// The records it changes.
    pub changes: Vec<PendingChangeInfo>,
    /// aplo's extension: the steps done so far, in order.
    #[serde(default)]
    pub done: Vec<String>,
}

/// `GET /operations/pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOperationList {
    /// Every journaled operation.
    pub pendingoperations: Vec<PendingOperationInfo>,
}

/// One kind of record in `GET /db/check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbBucketCheck {
    /// Records of this kind in the store.
    pub total: usize,
    /// Records an unfinished operation is changing.
    pub pending: usize,
    /// Records without a difference.
    pub ok: usize,
    /// Records (or things found on the nodes) with a difference.
    pub notok: usize,
    /// Each difference, as `aplo check` words it.
    pub inconsistencies: Vec<String>,
}

/// `GET /db/check`: aplo's reconcile report (`aplo check`), sorted into
/// heketi's buckets by what each difference concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCheckResponse {
    /// Clusters (their trusted pools, their gluster).
    pub clusters: DbBucketCheck,
    /// Volumes.
    pub volumes: DbBucketCheck,
    /// Bricks.
    pub bricks: DbBucketCheck,
    /// Nodes.
    pub nodes: DbBucketCheck,
    /// Devices.
    pub devices: DbBucketCheck,
    /// Block volumes (aplo has none).
    pub blockvolumes: DbBucketCheck,
    /// heketi's database attributes (aplo has none).
    pub dbattributes: DbBucketCheck,
    /// The journal's unfinished operations.
    pub pendingoperations: DbBucketCheck,
    /// Every difference, in a bucket or not.
    pub totalinconsistencies: usize,
}

/// heketi's status and sub-status of a journaled operation; `running`:
/// it runs in this process.
pub fn operation_status(
    operation: &OperationRecord,
    running: bool,
) -> (&'static str, &'static str) {
    match (running, operation.rolling_back) {
        (true, _) => ("", "in-flight"),
        (false, true) => ("failed", ""),
        (false, false) => ("stale", ""),
    }
}

/// An operation as listed.
pub fn pending_info(operation: &OperationRecord, running: bool) -> PendingOperationInfo {
    let (status, sub_status) = operation_status(operation, running);
    PendingOperationInfo {
        id: operation.id.to_string(),
        type_name: operation.operation.name().to_owned(),
        status: status.to_owned(),
        sub_status: sub_status.to_owned(),
    }
}

/// Every journaled operation, by id.
pub fn pending_list(
    snapshot: &Snapshot,
    running: impl Fn(&OperationRecord) -> bool,
) -> PendingOperationList {
    PendingOperationList {
        pendingoperations: snapshot
            .operations
            .values()
            .map(|o| pending_info(o, running(o)))
            .collect(),
    }
}

/// An operation with the records it changes.
pub fn pending_details(
    snapshot: &Snapshot,
    operation: &OperationRecord,
    running: bool,
) -> PendingOperationDetails {
    let mut changes = Vec::new();
    let mut change = |id: Id, description: &str| {
        changes.push(PendingChangeInfo {
            id: id.to_string(),
            description: description.to_owned(),
        });
    };
    let bricks_of = |volume: Id| -> Vec<Id> {
        snapshot
            .bricks_of(volume)
            .into_iter()
            .map(|b| b.id)
            .collect()
    };
    match &operation.operation {
        Operation::AddDevice { device, .. } => change(*device, "Add device"),
        Operation::RemoveDevice { device } => change(*device, "Remove device"),
        Operation::AddNode { node } => change(*node, "Add node"),
        Operation::RemoveNode { node } => change(*node, "Remove node"),
        Operation::CreateVolume { volume } => {
            change(*volume, "Add volume");
            bricks_of(*volume)
                .into_iter()
                .for_each(|b| change(b, "Add brick"));
        }
        Operation::DeleteVolume { volume } => {
            change(*volume, "Delete volume");
            bricks_of(*volume)
                .into_iter()
                .for_each(|b| change(b, "Delete brick"));
        }
        Operation::ExpandVolume {
            volume,
            grown,
            added,
            ..
        } => {
            change(*volume, "Expand volume");
            grown.iter().for_each(|(b, ..)| change(*b, "Expand brick"));
            added.iter().for_each(|b| change(*b, "Add brick"));
        }
        Operation::ReplaceBrick { old, new, .. } => {
            change(*old, "Delete brick");
            change(*new, "Add brick");
        }
    }
    PendingOperationDetails {
        info: pending_info(operation, running),
        changes,
        done: operation.done.iter().map(ToString::to_string).collect(),
    }
}

/// The report of `aplo check` in heketi's shape: each difference goes to
/// the bucket its subject names (`volume …`, `brick …`, `device …`,
/// `cluster …`, `operation …`); `notok` counts the distinct subjects.
pub fn db_check(snapshot: &Snapshot, drift: &[Drift]) -> DbCheckResponse {
    let mut check = DbCheckResponse {
        totalinconsistencies: drift.len(),
        ..DbCheckResponse::default()
    };
    let mut subjects: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in drift {
        let kind = d.subject.split(' ').next().unwrap_or_default();
        let Some(bucket) = bucket(&mut check, kind) else {
            continue;
        };
        bucket.inconsistencies.push(d.to_string());
        subjects.entry(kind).or_default().insert(&d.subject);
    }
    // What unfinished operations are changing.
    let pending: BTreeSet<Id> = snapshot
        .operations
        .values()
        .map(|o| o.operation.subject())
        .collect();
    let counts = [
        ("cluster", snapshot.clusters.len(), 0),
        (
            "volume",
            snapshot.volumes.len(),
            snapshot
                .volumes
                .keys()
                .filter(|v| pending.contains(v))
                .count(),
        ),
        (
            "brick",
            snapshot.bricks.len(),
            snapshot
                .bricks
                .values()
                .filter(|b| pending.contains(&b.volume))
                .count(),
        ),
        (
            "node",
            snapshot.nodes.len(),
            snapshot
                .nodes
                .keys()
                .filter(|n| pending.contains(n))
                .count(),
        ),
        (
            "device",
            snapshot.devices.len(),
            snapshot
                .devices
                .keys()
                .filter(|d| pending.contains(d))
                .count(),
        ),
        ("operation", snapshot.operations.len(), 0),
    ];
    for (kind, total, pending) in counts {
        let notok = subjects.get(kind).map_or(0, BTreeSet::len);
        let bucket = bucket(&mut check, kind).expect("every kind has a bucket");
        bucket.total = total;
        bucket.pending = pending;
        bucket.notok = notok;
        bucket.ok = total.saturating_sub(notok);
    }
    check
}

/// The bucket of a subject's kind.
fn bucket<'a>(check: &'a mut DbCheckResponse, kind: &str) -> Option<&'a mut DbBucketCheck> {
    Some(match kind {
        "cluster" => &mut check.clusters,
        "volume" => &mut check.volumes,
        "brick" => &mut check.bricks,
        "node" => &mut check.nodes,
        "device" => &mut check.devices,
        "operation" => &mut check.pendingoperations,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::storage::{BrickRecord, ClusterRecord, VolumeRecord, VolumeState};
    use crate::model::{BrickRole, Scheme};

    fn brick(id: u128, volume: u128) -> BrickRecord {
        BrickRecord {
            id: Id(id),
            volume: Id(volume),
            device: Id(0),
            node: Id(0),
            bytes: 1,
            consumed: 1,
            role: BrickRole::Data,
            set: 0,
            position: 0,
            path: "/b".into(),
        }
    }

    fn volume(id: u128) -> VolumeRecord {
        VolumeRecord {
            id: Id(id),
            name: format!("v{id}"),
            cluster: Id(1),
            bytes: 1,
            scheme: Scheme::None,
            options: Default::default(),
            snapshot_reserve: 1.0,
            hard_limit: None,
            claim: None,
            parameters: Default::default(),
            state: VolumeState::Ready,
        }
    }

    fn drift(subject: &str, problem: &str) -> Drift {
        Drift {
            subject: subject.into(),
            problem: problem.into(),
            repair: None,
            advice: None,
        }
    }

    fn operation(id: u128, operation: Operation, rolling_back: bool) -> OperationRecord {
        OperationRecord {
            id: Id(id),
            operation,
            done: vec![crate::model::journal::Step::Bricks],
            rolling_back,
        }
    }

    #[test]
    fn operations_are_new_stale_or_failed_as_heketi_words_them() {
        let op = operation(7, Operation::AddNode { node: Id(1) }, false);
        assert_eq!(operation_status(&op, true), ("", "in-flight"));
        assert_eq!(operation_status(&op, false), ("stale", ""));
        let undoing = operation(8, Operation::AddNode { node: Id(1) }, true);
        assert_eq!(operation_status(&undoing, false), ("failed", ""));
        let info = serde_json::to_value(pending_info(&op, false)).unwrap();
        assert_eq!(
            info,
            serde_json::json!({"id": Id(7).to_string(), "type_name": "add-node",
                "status": "stale", "sub_status": ""})
        );
    }

    #[test]
    fn details_name_the_records_an_operation_changes() {
        let snapshot = Snapshot {
            bricks: [(Id(20), brick(20, 10))].into(),
            ..Snapshot::default()
        };
        let create = operation(1, Operation::CreateVolume { volume: Id(10) }, false);
        let details = pending_details(&snapshot, &create, true);
        let changes: Vec<(String, &str)> = details
            .changes
            .iter()
            .map(|c| (c.id.clone(), c.description.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                (Id(10).to_string(), "Add volume"),
                (Id(20).to_string(), "Add brick")
            ]
        );
        assert_eq!(details.done, ["bricks"]);
        let json = serde_json::to_value(&details).unwrap();
        assert_eq!(json["type_name"], "create-volume");
        assert_eq!(json["sub_status"], "in-flight");
        let evict = operation(
            2,
            Operation::ReplaceBrick {
                volume: Id(10),
                old: Id(20),
                new: Id(21),
            },
            false,
        );
        let descriptions: Vec<String> = pending_details(&snapshot, &evict, false)
            .changes
            .into_iter()
            .map(|c| c.description)
            .collect();
        assert_eq!(descriptions, ["Delete brick", "Add brick"]);
    }

    #[test]
    fn the_check_report_is_sorted_into_heketis_buckets() {
        let snapshot = Snapshot {
            clusters: [(
                Id(1),
                ClusterRecord {
                    id: Id(1),
                    file: true,
                    block: false,
                },
            )]
            .into(),
            volumes: [(Id(10), volume(10)), (Id(11), volume(11))].into(),
            operations: [(
                Id(5),
                operation(5, Operation::DeleteVolume { volume: Id(11) }, false),
            )]
            .into(),
            ..Snapshot::default()
        };
        let report = [
            drift("volume a", "is Stopped in gluster, not started"),
            drift("volume a", "brick processes are down: n1:/b"),
            drift("brick 00ff", "is an orphan on device n1:/dev/vdb"),
            drift("operation 5", "is unfinished"),
            drift("something else", "unsorted"),
        ];
        let check = db_check(&snapshot, &report);
        assert_eq!(check.totalinconsistencies, 5);
        assert_eq!(
            check.volumes,
            DbBucketCheck {
                total: 2,
                pending: 1,
                ok: 1,
                notok: 1,
                inconsistencies: vec![
                    "volume a: is Stopped in gluster, not started".into(),
                    "volume a: brick processes are down: n1:/b".into(),
                ],
            }
        );
        assert_eq!(check.bricks.notok, 1);
        assert_eq!(check.bricks.total, 0);
        assert_eq!(check.pendingoperations.total, 1);
        assert_eq!(check.pendingoperations.inconsistencies.len(), 1);
        assert_eq!(check.clusters.total, 1);
        assert_eq!(check.clusters.ok, 1);
        let json = serde_json::to_value(&check).unwrap();
        for bucket in [
            "clusters",
            "volumes",
            "bricks",
            "nodes",
            "devices",
            "blockvolumes",
            "dbattributes",
            "pendingoperations",
        ] {
            for field in ["total", "pending", "ok", "notok", "inconsistencies"] {
                assert!(!json[bucket][field].is_null(), "{bucket}.{field}");
            }
        }
        assert_eq!(json["totalinconsistencies"], 5);
    }
}
