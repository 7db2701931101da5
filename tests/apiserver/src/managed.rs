//! `metadata.managedFields` and server-side apply.
//!
//! Field ownership is tracked per manager as a set of leaf paths: a path
//! ends at a scalar or at a list (lists are atomic; empty objects own
//! nothing). The
//! sets are stored in the real `FieldsV1` trie format
//! (`{"f:spec": {"f:x": {}}}`). Of `metadata`, only labels, annotations,
//! finalizers and ownerReferences are tracked, as the real server does.

mod apply;

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::object::{meta_mut, timestamp};

pub(crate) use apply::{ApplyRequest, apply};

/// One leaf path, e.g. `["spec", "capacity", "storage"]`.
type Path = Vec<String>;
/// A manager's owned leaf paths.
type FieldSet = BTreeSet<Path>;

/// Which part of an object a write covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource; `status` is excluded when `has_status`.
    Main {
        /// The resource has a status subresource.
        has_status: bool,
    },
    /// The `status` subresource: only `status`.
    Status,
}

impl Scope {
    fn subresource(self) -> &'static str {
        match self {
            Scope::Main { .. } => "",
            Scope::Status => "status",
        }
    }

    /// Whether top-level field `key` belongs to this scope.
    pub fn covers(self, key: &str) -> bool {
        match self {
            Scope::Main { has_status } => !(has_status && key == "status"),
            Scope::Status => key == "status",
        }
    }
}

const TRACKED_META: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// The leaf paths of `obj` within `scope`.
fn leaves(obj: &Value, scope: Scope) -> FieldSet {
    fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    prefix.push(k.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
            Value::Null => {}
            _ => {
                out.insert(prefix.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" || !scope.covers(k) {
            continue;
        }
        if k == "metadata" {
            for mk in TRACKED_META {
                if let Some(mv) = v.get(mk) {
                    let mut p = vec!["metadata".to_string(), mk.to_string()];
                    walk(mv, &mut p, &mut out);
                }
            }
            continue;
        }
        let mut p = vec![k.clone()];
        walk(v, &mut p, &mut out);
    }
    out
}

fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for k in path {
            cur = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("object");
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        let atomic = v.as_object().is_some_and(|m| {
            m.keys()
                .any(|k| k == "." || k.starts_with("k:") || k.starts_with("v:"))
        });
        if (children.is_empty() || atomic) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (k, child) in children {
            prefix.push(k[2..].to_string());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: String,
    fields: FieldSet,
}

fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                subresource: s("subresource"),
                api_version: s("apiVersion"),
                time: s("time"),
                fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            }
        })
        .collect()
}

fn store_entries(obj: &mut Value, mut list: Vec<Entry>) {
    list.retain(|e| !e.fields.is_empty());
    let meta = meta_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let values = list
        .into_iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(values));
}

/// Drop owned paths that no longer exist in `obj`.
fn prune(list: &mut [Entry], obj: &Value) {
    for e in list {
        e.fields.retain(|p| value_at(obj, p).is_some());
    }
}

fn entry_mut<'a>(
    list: &'a mut Vec<Entry>,
    manager: &str,
    operation: &str,
    scope: Scope,
    api_version: &str,
) -> &'a mut Entry {
    let pos = list.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource == scope.subresource()
    });
    let i = match pos {
        Some(i) => i,
        None => {
            list.push(Entry {
                manager: manager.to_string(),
                operation: operation.to_string(),
                subresource: scope.subresource().to_string(),
                api_version: api_version.to_string(),
                time: String::new(),
                fields: FieldSet::new(),
            });
            list.len() - 1
        }
    };
    &mut list[i]
}

/// Record a non-apply write by `manager`: it takes ownership of every leaf
/// it changed (others lose those), and removed leaves are forgotten.
/// `new.metadata.managedFields` must hold the entries as they were before.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
    api_version: &str,
) {
    let mut list = entries(new);
    let changed: FieldSet = leaves(new, scope)
        .into_iter()
        .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .collect();
    prune(&mut list, new);
    if !changed.is_empty() {
        for e in list.iter_mut() {
            e.fields.retain(|p| !changed.iter().any(|c| overlaps(c, p)));
        }
        let e = entry_mut(&mut list, manager, "Update", scope, api_version);
        e.fields.extend(changed);
        e.time = timestamp();
        e.api_version = api_version.to_string();
    }
    store_entries(new, list);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Target;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            scope: Scope::Main { has_status: true },
            api_version: "v1",
            target: Target::default(),
        }
    }

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"x": 1, "l": [1], "m": {"n": "v"}}, "status": {"phase": "P"}});
        let set = leaves(&obj, Scope::Main { has_status: true });
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:x": {}, "f:l": {}, "f:m": {"f:n": {}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflicts_then_force_moves_ownership() {
        let a = apply(None, &json!({"spec": {"x": 1, "y": 2}}), &req("a", false)).unwrap();
        let err = apply(Some(&a), &json!({"spec": {"x": 5}}), &req("b", false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"a\" using v1: .spec.x"
        );
        // Same value: shared, no conflict.
        let shared = apply(Some(&a), &json!({"spec": {"y": 2}}), &req("b", false)).unwrap();
        // a drops y, but b still owns it: it stays.
        let kept = apply(Some(&shared), &json!({"spec": {"x": 1}}), &req("a", false)).unwrap();
        assert_eq!(kept["spec"]["y"], 2);
        let forced = apply(Some(&a), &json!({"spec": {"x": 5}}), &req("b", true)).unwrap();
        assert_eq!(forced["spec"]["x"], 5);
        // a no longer owns x; dropping y removes it.
        let after = apply(Some(&forced), &json!({"spec": {}}), &req("a", false)).unwrap();
        assert_eq!(after["spec"], json!({"x": 5}));
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let a = apply(None, &json!({"spec": {"x": 1}}), &req("a", false)).unwrap();
        let mut b = a.clone();
        b["spec"]["x"] = json!(2);
        record_update(
            Some(&a),
            &mut b,
            "editor",
            Scope::Main { has_status: true },
            "v1",
        );
        let list = entries(&b);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].manager, "editor");
    }
}
