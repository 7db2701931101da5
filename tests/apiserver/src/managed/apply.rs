//! Server-side apply: conflicts, ownership moves and removal of fields a
//! manager no longer applies.

use serde_json::{Map, Value};

use super::{
    Entry, FieldSet, Path, Scope, TRACKED_META, entries, entry_mut, leaves, overlaps, prune,
    remove_at, store_entries, value_at,
};
use crate::error::{ApiError, Cause, Target};
use crate::object::timestamp;

/// `applied` restricted to what an apply in `scope` may set.
fn scoped(applied: &Value, scope: Scope) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(map) = applied.as_object() else {
        return out;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" || !scope.covers(k) {
            continue;
        }
        if k == "metadata" {
            let mut m = Map::new();
            for mk in TRACKED_META {
                if let Some(mv) = v.get(mk) {
                    m.insert(mk.to_string(), mv.clone());
                }
            }
            out.insert(k.clone(), Value::Object(m));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Overlay applied values: objects merge, everything else replaces.
fn overlay(target: &mut Value, applied: &Value) {
    match (target.as_object_mut(), applied.as_object()) {
        (Some(t), Some(a)) => {
            for (k, v) in a {
                if v.is_null() {
                    t.remove(k);
                } else {
                    overlay(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = applied.clone(),
    }
}

fn dotted(p: &[String]) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

fn conflict_error(target: Target, conflicts: &[(String, String, Path)]) -> ApiError {
    let n = conflicts.len();
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(m, v, p)| Cause {
            kind: "FieldManagerConflict",
            message: format!("conflict with \"{m}\" using {v}"),
            field: dotted(p),
        })
        .collect();
    let message = if n == 1 {
        format!(
            "Apply failed with 1 conflict: {}: {}",
            causes[0].message, causes[0].field
        )
    } else {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for c in &causes {
            match groups.iter_mut().find(|(m, _)| *m == c.message) {
                Some((_, fields)) => fields.push(c.field.clone()),
                None => groups.push((c.message.clone(), vec![c.field.clone()])),
            }
        }
        let body: Vec<String> = groups
            .into_iter()
            .map(|(m, fields)| {
                let m = m.replacen("conflict with", "conflicts with", 1);
                let list: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
                format!("{m}:\n{}", list.join("\n"))
            })
            .collect();
        format!("Apply failed with {n} conflicts: {}", body.join("\n"))
    };
    ApiError::Conflict {
        target,
        message,
        causes,
    }
}

/// What server-side apply needs to know about the request.
pub(crate) struct ApplyRequest<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// `force=true`.
    pub force: bool,
    /// Main resource or status.
    pub scope: Scope,
    /// The apiVersion recorded in managedFields.
    pub api_version: &'a str,
    /// The object, for errors.
    pub target: Target,
}

/// Server-side apply of `applied` onto `current` (or onto nothing, for a
/// create). Returns the new object with managedFields updated; conflicts
/// with other managers are an error unless `force`.
pub(crate) fn apply(
    current: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let config_obj = Value::Object(scoped(applied, req.scope));
    let config = leaves(&config_obj, req.scope);
    let Some(current) = current else {
        let mut new = applied.clone();
        let mut list = Vec::new();
        let e = entry_mut(&mut list, req.manager, "Apply", req.scope, req.api_version);
        e.fields = config;
        e.time = timestamp();
        store_entries(&mut new, list);
        return Ok(new);
    };
    let mut list = entries(current);
    let is_mine = |e: &Entry| {
        e.manager == req.manager
            && e.operation == "Apply"
            && e.subresource == req.scope.subresource()
    };
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    let mut lost: Vec<(usize, Path)> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        if is_mine(e) {
            continue;
        }
        for p in &config {
            for q in e.fields.iter().filter(|q| overlaps(p, q)) {
                if value_at(current, p) != value_at(&config_obj, p) {
                    conflicts.push((e.manager.clone(), e.api_version.clone(), p.clone()));
                    lost.push((i, q.clone()));
                }
            }
        }
    }
    conflicts.dedup();
    if !conflicts.is_empty() && !req.force {
        return Err(conflict_error(req.target.clone(), &conflicts));
    }
    for (i, q) in lost {
        list[i].fields.remove(&q);
    }
    let previous: FieldSet = list
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.clone())
        .collect();
    let mut new = current.clone();
    for p in previous.difference(&config) {
        let shared = list
            .iter()
            .any(|e| !is_mine(e) && e.fields.iter().any(|q| overlaps(p, q)));
        if !shared {
            remove_at(&mut new, p);
        }
    }
    overlay(&mut new, &config_obj);
    let e = entry_mut(&mut list, req.manager, "Apply", req.scope, req.api_version);
    e.fields = config;
    e.time = timestamp();
    prune(&mut list, &new);
    store_entries(&mut new, list);
    Ok(new)
}
