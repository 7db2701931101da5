//! The commit step shared by every update-like write.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Ownership;
use crate::error::{ApiError, ApiResult, Target};
use crate::managed::{self, Scope};
use crate::object::{apply_defaults, finalizers, is_deleting, meta_mut, meta_str, same_spec};
use crate::resources::ResourceDef;
use crate::store::State;

/// Equal apart from managedFields timestamps (a write that changes nothing
/// else is a no-op, as on the real server).
fn same_object(a: &Value, b: &Value) -> bool {
    fn same_entries(a: &Value, b: &Value) -> bool {
        let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
            return a == b;
        };
        let same_entry = |x: &Value, y: &Value| match (x.as_object(), y.as_object()) {
            (Some(x), Some(y)) => {
                let count =
                    |m: &serde_json::Map<String, Value>| m.keys().filter(|k| *k != "time").count();
                count(x) == count(y) && x.iter().all(|(k, v)| k == "time" || y.get(k) == Some(v))
            }
            _ => x == y,
        };
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_entry(x, y))
    }
    if a == b {
        return true;
    }
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        return false;
    };
    if am.len() != bm.len()
        || am
            .iter()
            .any(|(k, v)| k != "metadata" && bm.get(k) != Some(v))
    {
        return false;
    }
    let (Some(ma), Some(mb)) = (
        a.get("metadata").and_then(Value::as_object),
        b.get("metadata").and_then(Value::as_object),
    ) else {
        return false;
    };
    ma.len() == mb.len()
        && ma.iter().all(|(k, v)| match mb.get(k) {
            Some(w) if k == "managedFields" => same_entries(v, w),
            other => other == Some(v),
        })
}

/// Commit `candidate` as the new state of `cur` under the rules of every
/// update: preconditions, immutable metadata, the status split, finalizer
/// rules, generation, managed fields, no-op detection and deletion once
/// the last finalizer is gone.
pub(super) fn finish(
    s: &mut State,
    def: &ResourceDef,
    cur: &Arc<Value>,
    mut new: Value,
    scope: Scope,
    owner: Ownership<'_>,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    let name = meta_str(cur, "name").unwrap_or("").to_string();
    let target = Target::of(def, &name);
    if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
        && Some(rv) != meta_str(cur, "resourceVersion")
    {
        return Err(ApiError::stale(target));
    }
    if let Some(u) = meta_str(&new, "uid").filter(|u| !u.is_empty())
        && Some(u) != meta_str(cur, "uid")
    {
        return Err(ApiError::precondition(
            target,
            "UID",
            u,
            meta_str(cur, "uid").unwrap_or(""),
        ));
    }
    let managed_fields = new.pointer("/metadata/managedFields").cloned();
    match scope {
        Scope::Main { has_status: true } => match cur.get("status") {
            Some(st) => {
                meta_mut(&mut new);
                // meta_mut made `new` an object.
                new.as_object_mut()
                    .expect("object")
                    .insert("status".into(), st.clone());
            }
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        },
        Scope::Main { has_status: false } => {}
        Scope::Status => {
            let status = new.get("status").cloned();
            new = (**cur).clone();
            match status {
                Some(st) => {
                    new.as_object_mut()
                        .expect("object")
                        .insert("status".into(), st);
                }
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            }
        }
    }
    let cur_meta = cur
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let meta = meta_mut(&mut new);
    for f in [
        "uid",
        "name",
        "namespace",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
        "managedFields",
    ] {
        match cur_meta.get(f) {
            Some(v) => meta.insert(f.into(), v.clone()),
            None => meta.remove(f),
        };
    }
    if let (Ownership::Applied, Some(mf)) = (&owner, managed_fields) {
        meta.insert("managedFields".into(), mf);
    }
    if is_deleting(cur) {
        let old = finalizers(cur);
        if finalizers(&new).iter().any(|f| !old.contains(f)) {
            return Err(ApiError::invalid(
                target,
                "metadata.finalizers",
                "FieldValueForbidden",
                "Forbidden: no new finalizers can be added if the object is being deleted".into(),
            ));
        }
    }
    apply_defaults(def.kind, &mut new);
    if !same_spec(cur, &new) {
        let g = cur
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    if same_object(cur, &new) {
        return Ok(cur.clone());
    }
    if let Ownership::Update(manager) = owner {
        managed::record_update(Some(cur), &mut new, manager, scope, def.api_version);
    }
    if dry_run {
        return Ok(Arc::new(new));
    }
    if is_deleting(&new) && finalizers(&new).is_empty() {
        return Ok(s.remove(def.storage, new));
    }
    Ok(s.put(def.storage, new))
}
