//! Checking heketi requests as heketi does (errors name the field), its
//! state machine for nodes and devices, its tag changes, and the counts of
//! `GET /operations`. Pure functions.

use std::collections::BTreeMap;

use super::{DeviceAddRequest, NodeAddRequest, OperationsInfo, state_name};
use crate::model::journal::OperationRecord;
use crate::model::storage::Snapshot;
use crate::model::topology::{NameError, check_device_name, check_host};
use crate::model::{Pairs, State};

/// Why a heketi request is refused: each names the field it is about, as
/// heketi does, or the state change heketi's rules forbid (in heketi's
/// words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `state` is not a state.
    #[error("state: '{0}' is not one of online, offline, failed")]
    State(String),
    /// `healcheck` is neither `enable` nor `disable`.
    #[error("healcheck: '{0}' is not one of enable, disable")]
    Healcheck(String),
    /// A failed node may not change to this state.
    #[error("Cannot move a failed/removed node to {} state", state_name(*.0))]
    NodeFailed(State),
    /// Only an offline node may fail: this one (its id) is online.
    #[error("Node must be offline before remove operation is performed, node:{0}")]
    NodeOnline(String),
    /// A failed device may not go back online.
    #[error("Cannot move a failed/removed device to online state")]
    DeviceFailed,
    /// Only an offline device may fail: this one (its id) is online.
    #[error("Device must be offline before remove operation is performed, device:{0}")]
    DeviceOnline(String),
    /// More than 32 tags (how many).
    #[error("tags: too many tags specified ({0}), up to 32 supported")]
    TooManyTags(usize),
    /// A tag name outside heketi's rules.
    #[error(
        "tags: '{}' is not a tag name (1 to 32 characters of a-z, A-Z, 0-9, '_', '.', '-')",
        .0.escape_default()
    )]
    TagName(String),
    /// A tag value (its name) longer than 64 characters.
    #[error("tags: the value of {0} is longer than 64 characters")]
    TagValue(String),
    /// `change_type` is missing.
    #[error("change_type: missing (set, update or delete)")]
    NoChangeType,
    /// `change_type` is not a change.
    #[error("change_type: '{0}' is not one of set, update, delete")]
    ChangeType(String),
    /// No manage hostname.
    #[error("hostnames.manage: Manage hostname missing")]
    NoManageHost,
    /// No storage hostname.
    #[error("hostnames.storage: Storage hostname missing")]
    NoStorageHost,
    /// `zone` is zero or missing.
    #[error("zone: Zone cannot be zero or value is missing")]
    NoZone,
    /// `zone` is negative.
    #[error("zone: {0} is less than 1")]
    Zone(i64),
    /// More than one hostname of a kind (`manage` or `storage`).
    #[error("hostnames.{field}: aplo uses one {field} hostname per node, not {count}")]
    Hostnames {
        /// `manage` or `storage`.
        field: &'static str,
        /// How many were given.
        count: usize,
    },
    /// An empty hostname.
    #[error("hostnames.{field}[{index}]: Hostname cannot be an empty string")]
    EmptyHost {
        /// `manage` or `storage`.
        field: &'static str,
        /// Its place in the list.
        index: usize,
    },
    /// A hostname that is not a hostname or address.
    #[error("hostnames.{field}[{index}]: {why}")]
    Host {
        /// `manage` or `storage`.
        field: &'static str,
        /// Its place in the list.
        index: usize,
        /// Why not.
        why: NameError,
    },
    /// A field that should hold an id does not.
    #[error("{field}: '{}' is not a valid id (32 hex characters)", .id.escape_default())]
    Id {
        /// The field.
        field: &'static str,
        /// What it holds.
        id: String,
    },
    /// The device name is empty.
    #[error("name: no devices added (the device name is empty)")]
    NoDeviceName,
    /// The device name is not a device path (why not).
    #[error("name: {0}")]
    DeviceName(NameError),
}

/// Count the journal for `GET /operations`: `running` says whether an
/// operation runs in this process, `in_flight` is the queue's count.
pub fn operations_info(
    snapshot: &Snapshot,
    running: impl Fn(&OperationRecord) -> bool,
    in_flight: usize,
) -> OperationsInfo {
    let mut info = OperationsInfo {
        in_flight: in_flight as u64,
        ..OperationsInfo::default()
    };
    for operation in snapshot.operations.values() {
        info.total += 1;
        if running(operation) {
            if operation.done.is_empty() && !operation.rolling_back {
                info.new += 1;
            }
        } else if operation.rolling_back {
            info.failed += 1;
        } else {
            info.stale += 1;
        }
    }
    info
}

/// Read a state name.
pub fn parse_state(name: &str) -> Result<State, RequestError> {
    match name {
        "online" => Ok(State::Online),
        "offline" => Ok(State::Offline),
        "failed" => Ok(State::Failed),
        other => Err(RequestError::State(other.to_owned())),
    }
}

/// Check a `healcheck` value.
pub fn check_healcheck(value: &str) -> Result<(), RequestError> {
    match value {
        "" | "enable" | "disable" => Ok(()),
        other => Err(RequestError::Healcheck(other.to_owned())),
    }
}

/// heketi's node state machine: a failed node stays failed, and only an
/// offline node may fail. `Ok(false)`: nothing to change.
pub fn node_transition(id: &str, from: State, to: State) -> Result<bool, RequestError> {
    match (from, to) {
        (a, b) if a == b => Ok(false),
        (State::Failed, to) => Err(RequestError::NodeFailed(to)),
        (State::Online, State::Failed) => Err(RequestError::NodeOnline(id.to_owned())),
        _ => Ok(true),
    }
}

/// heketi's device state machine: a failed device may go offline but not
/// online, and only an offline device may fail. `Ok(false)`: nothing to
/// change.
pub fn device_transition(id: &str, from: State, to: State) -> Result<bool, RequestError> {
    match (from, to) {
        (a, b) if a == b => Ok(false),
        (State::Failed, State::Online) => Err(RequestError::DeviceFailed),
        (State::Online, State::Failed) => Err(RequestError::DeviceOnline(id.to_owned())),
        _ => Ok(true),
    }
}

/// heketi's tag rules: at most 32 tags; names of 1 to 32 characters of
/// `a-zA-Z0-9_.-`; values of at most 64 characters.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), RequestError> {
    if tags.len() > 32 {
        return Err(RequestError::TooManyTags(tags.len()));
    }
    for (name, value) in tags {
        let good = (1..=32).contains(&name.chars().count())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !good {
            return Err(RequestError::TagName(name.clone()));
        }
        if value.chars().count() > 64 {
            return Err(RequestError::TagValue(name.clone()));
        }
    }
    Ok(())
}

/// How a tags request changes tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagChange {
    /// Replace every tag.
    Set,
    /// Add or overwrite the given tags.
    Update,
    /// Remove the named tags.
    Delete,
}

impl TagChange {
    /// Read heketi's `change_type`.
    pub fn parse(name: &str) -> Result<TagChange, RequestError> {
        match name {
            "set" => Ok(TagChange::Set),
            "update" => Ok(TagChange::Update),
            "delete" => Ok(TagChange::Delete),
            "" => Err(RequestError::NoChangeType),
            other => Err(RequestError::ChangeType(other.to_owned())),
        }
    }

    /// The tags after the change.
    pub fn apply(self, current: &Pairs, tags: &BTreeMap<String, String>) -> Pairs {
        match self {
            TagChange::Set => tags.clone(),
            TagChange::Update => {
                let mut next = current.clone();
                next.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                next
            }
            TagChange::Delete => current
                .iter()
                .filter(|(k, _)| !tags.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// A heketi id: 32 hex characters.
pub fn parse_id(id: &str) -> Option<crate::model::Id> {
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(id, 16).ok().map(crate::model::Id))
        .flatten()
}

/// A node to add, from a checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// The cluster.
    pub cluster: crate::model::Id,
    /// What to add.
    pub spec: crate::model::topology::NodeSpec,
}

/// Check a `POST /nodes` request as heketi does; errors name the field.
pub fn check_node_add(request: &NodeAddRequest) -> Result<NewNode, RequestError> {
    let hosts = &request.hostnames;
    if hosts.manage.is_empty() {
        return Err(RequestError::NoManageHost);
    }
    if hosts.storage.is_empty() {
        return Err(RequestError::NoStorageHost);
    }
    if request.zone == 0 {
        return Err(RequestError::NoZone);
    }
    if request.zone < 0 {
        return Err(RequestError::Zone(request.zone));
    }
    for (field, names) in [("manage", &hosts.manage), ("storage", &hosts.storage)] {
        if names.len() > 1 {
            return Err(RequestError::Hostnames {
                field,
                count: names.len(),
            });
        }
        for (index, host) in names.iter().enumerate() {
            if host.is_empty() {
                return Err(RequestError::EmptyHost { field, index });
            }
            check_host(host).map_err(|why| RequestError::Host { field, index, why })?;
        }
    }
    let cluster = parse_id(&request.cluster).ok_or_else(|| RequestError::Id {
        field: "cluster",
        id: request.cluster.clone(),
    })?;
    check_tags(&request.tags)?;
    Ok(NewNode {
        cluster,
        spec: crate::model::topology::NodeSpec {
            manage: hosts.manage[0].clone(),
            storage: hosts.storage[0].clone(),
            zone: request.zone.to_string(),
            tags: request.tags.clone(),
            devices: Vec::new(),
        },
    })
}

/// A device to add, from a checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// The node.
    pub node: crate::model::Id,
    /// What to add.
    pub spec: crate::model::topology::DeviceSpec,
}

/// Check a `POST /devices` request as heketi does; errors name the field.
pub fn check_device_add(request: &DeviceAddRequest) -> Result<NewDevice, RequestError> {
    if request.name.is_empty() {
        return Err(RequestError::NoDeviceName);
    }
    check_device_name(&request.name).map_err(RequestError::DeviceName)?;
    let node = parse_id(&request.node).ok_or_else(|| RequestError::Id {
        field: "node",
        id: request.node.clone(),
    })?;
    check_tags(&request.tags)?;
    Ok(NewDevice {
        node,
        spec: crate::model::topology::DeviceSpec {
            name: request.name.clone(),
            destroy_data: request.destroydata,
            tags: request.tags.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_requests_are_checked_as_heketi_does() {
        let good: NodeAddRequest = serde_json::from_str(&format!(
            r#"{{"zone": 2, "hostnames": {{"manage": ["node-a"], "storage": ["10.0.0.9"]}},
                "cluster": "{}", "tags": {{"rack": "r1"}}}}"#,
            "ab".repeat(16)
        ))
        .unwrap();
        let new = check_node_add(&good).unwrap();
        assert_eq!(new.cluster.to_string(), "ab".repeat(16));
        assert_eq!(new.spec.zone, "2");
        assert_eq!(new.spec.storage, "10.0.0.9");
        assert_eq!(new.spec.tags["rack"], "r1");
        let bad = |edit: &dyn Fn(&mut NodeAddRequest)| {
            let mut r = good.clone();
            edit(&mut r);
            check_node_add(&r).unwrap_err().to_string()
        };
        assert!(bad(&|r| r.hostnames.manage.clear()).starts_with("hostnames.manage"));
        assert!(bad(&|r| r.hostnames.storage.clear()).starts_with("hostnames.storage"));
        assert!(bad(&|r| r.zone = 0).starts_with("zone"));
        assert!(bad(&|r| r.zone = -1).starts_with("zone"));
        assert!(bad(&|r| r.hostnames.manage = vec!["a b".into()]).starts_with("hostnames.manage"));
        assert_eq!(
            bad(&|r| r.hostnames.storage = vec!["--remote-host=evil".into()]),
            "hostnames.storage[0]: '--remote-host=evil' is not a hostname or address: it starts with '-'"
        );
        assert!(
            bad(&|r| r.hostnames.manage = vec!["n;id".into()])
                .starts_with("hostnames.manage[0]: 'n;id'")
        );
        assert!(bad(&|r| r.hostnames.storage = vec![String::new()]).contains("empty"));
        assert!(bad(&|r| r.cluster = "xyz".into()).starts_with("cluster"));
        assert!(
            bad(&|r| {
                r.tags.insert("bad tag".into(), "v".into());
            })
            .starts_with("tags")
        );
    }

    #[test]
    fn device_requests_are_checked_as_heketi_does() {
        let good = DeviceAddRequest {
            name: "/dev/vdb".into(),
            node: "0f".repeat(16),
            destroydata: true,
            ..DeviceAddRequest::default()
        };
        let new = check_device_add(&good).unwrap();
        assert!(new.spec.destroy_data);
        assert_eq!(new.spec.name, "/dev/vdb");
        for (name, node, field) in [
            ("", "0f".repeat(16), "name"),
            ("vdb", "0f".repeat(16), "name"),
            ("/dev/vd b", "0f".repeat(16), "name"),
            ("/dev/vdb;reboot", "0f".repeat(16), "name"),
            ("/dev/vdb\u{1b}[2J", "0f".repeat(16), "name"),
            ("/dev/../etc", "0f".repeat(16), "name"),
            ("/dev/vdb", "nope".into(), "node"),
        ] {
            let r = DeviceAddRequest {
                name: name.into(),
                node,
                ..DeviceAddRequest::default()
            };
            let err = check_device_add(&r).unwrap_err().to_string();
            assert!(err.starts_with(field), "{name}: {err}");
            assert!(!err.chars().any(char::is_control), "{err:?}");
        }
        let r = DeviceAddRequest {
            name: "/dev/vdb;reboot".into(),
            ..good.clone()
        };
        assert_eq!(
            check_device_add(&r).unwrap_err().to_string(),
            "name: '/dev/vdb;reboot' is not a device path such as /dev/vdb: it contains ';'"
        );
    }

    #[test]
    fn tags_follow_heketis_limits_and_change_types() {
        let mut tags = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert_eq!(check_tags(&tags), Ok(()));
        tags.insert("x".repeat(33), "v".into());
        assert!(check_tags(&tags).is_err());
        let many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("t{i}"), String::new())).collect();
        assert!(
            check_tags(&many)
                .unwrap_err()
                .to_string()
                .contains("too many")
        );
        let long = BTreeMap::from([("k".to_owned(), "v".repeat(65))]);
        assert!(check_tags(&long).is_err());

        let current = Pairs::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]);
        let given = BTreeMap::from([
            ("b".to_owned(), "3".to_owned()),
            ("c".to_owned(), "4".to_owned()),
        ]);
        let set = TagChange::parse("set").unwrap().apply(&current, &given);
        assert_eq!(set, given);
        let update = TagChange::parse("update").unwrap().apply(&current, &given);
        assert_eq!(update.len(), 3);
        assert_eq!(update["b"], "3");
        let delete = TagChange::parse("delete").unwrap().apply(&current, &given);
        assert_eq!(delete, Pairs::from([("a".to_owned(), "1".to_owned())]));
        assert!(
            TagChange::parse("")
                .unwrap_err()
                .to_string()
                .starts_with("change_type")
        );
        assert!(
            TagChange::parse("merge")
                .unwrap_err()
                .to_string()
                .starts_with("change_type")
        );
    }

    #[test]
    fn state_changes_follow_heketis_rules() {
        use State::{Failed, Offline, Online};
        assert_eq!(node_transition("n", Online, Online), Ok(false));
        assert_eq!(node_transition("n", Online, Offline), Ok(true));
        assert_eq!(node_transition("n", Offline, Failed), Ok(true));
        assert!(
            node_transition("n", Online, Failed)
                .unwrap_err()
                .to_string()
                .contains("must be offline")
        );
        assert!(
            node_transition("n", Failed, Online)
                .unwrap_err()
                .to_string()
                .contains("failed/removed")
        );
        assert!(node_transition("n", Failed, Offline).is_err());
        assert_eq!(device_transition("d", Failed, Offline), Ok(true));
        assert!(device_transition("d", Failed, Online).is_err());
        assert!(
            device_transition("d", Online, Failed)
                .unwrap_err()
                .to_string()
                .contains("must be offline")
        );
        assert_eq!(device_transition("d", Offline, Failed), Ok(true));
        assert_eq!(parse_state("offline"), Ok(Offline));
        assert!(
            parse_state("gone")
                .unwrap_err()
                .to_string()
                .starts_with("state")
        );
        assert!(check_healcheck("enable").is_ok());
        assert!(
            check_healcheck("sometimes")
                .unwrap_err()
                .to_string()
                .starts_with("healcheck")
        );
    }

    #[test]
    fn operations_are_counted_by_state() {
        use crate::model::Id;
        use crate::model::journal::{Operation, Step};
        let mut s = Snapshot::default();
        let op = |id: u128, done: &[Step], rolling_back: bool| OperationRecord {
            id: Id(id),
            operation: Operation::DeleteVolume {
                volume: Id(id + 100),
            },
            done: done.to_vec(),
            rolling_back,
        };
        for record in [
            op(1, &[], false),
            op(2, &[Step::Stop], false),
            op(3, &[], false),
            op(4, &[Step::Bricks], true),
        ] {
            s.operations.insert(record.id, record);
        }
        // 1 and 2 run here; 3 is left over; 4 is a failed undo.
        let info = operations_info(&s, |o| o.id.0 <= 2, 2);
        assert_eq!(
            info,
            OperationsInfo {
                total: 4,
                in_flight: 2,
                stale: 1,
                failed: 1,
                new: 1,
            }
        );
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            serde_json::json!({"total": 4, "in_flight": 2, "stale": 1, "failed": 1, "new": 1})
        );
    }
}
