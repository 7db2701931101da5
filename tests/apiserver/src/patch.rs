//! JSON patch, JSON merge patch and a schema-less strategic merge patch.
//!
//! Strategic merge patch without the Go type schemas: merge-patch semantics,
//! plus
//! - lists of objects whose patch elements all carry a merge key (`name`;
//!   `type` for `conditions`; `uid` for `ownerReferences`) merge element by
//!   element on that key, and `{"$patch": "delete", "name": ...}` removes one;
//! - `metadata.finalizers` merges as a set (its real patch strategy);
//! - `$deleteFromPrimitiveList/<field>: [...]` removes values from a list;
//! - `{"$patch": "replace"}` in an object replaces it, `{"$patch": "delete"}`
//!   removes it;
//! - `$setElementOrder/...` and `$retainKeys` are ignored.
//!
//! Every other list is replaced, which is what the real server does for
//! lists without a patch strategy (e.g. `accessModes`).

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// The patch flavours, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> ApiResult<PatchType> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            _ => Err(ApiError::UnsupportedMediaType),
        }
    }
}

/// Apply a JSON, merge or strategic patch `body` to `doc`.
pub(crate) fn apply_patch(kind: PatchType, doc: &mut Value, body: &[u8]) -> ApiResult<()> {
    let bad = |e: serde_json::Error| ApiError::BadRequest(format!("error decoding patch: {e}"));
    match kind {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body).map_err(bad)?;
            json_patch::patch(doc, &p).map_err(|e| {
                ApiError::invalid(
                    crate::error::Target::default(),
                    "",
                    "FieldValueInvalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(body).map_err(bad)?;
            json_patch::merge(doc, &p);
            Ok(())
        }
        PatchType::Strategic => {
            let p: Value = serde_json::from_slice(body).map_err(bad)?;
            if !p.is_object() {
                return Err(ApiError::BadRequest(
                    "strategic merge patch must be an object".into(),
                ));
            }
            strategic_merge(doc, &p, &[]);
            Ok(())
        }
        PatchType::Apply => unreachable!("apply is handled by the apply module"),
    }
}

/// The merge key for list `field`, if its elements should merge by key.
fn merge_key(field: &str, patch: &[Value]) -> Option<&'static str> {
    let key = match field {
        "conditions" => "type",
        "ownerReferences" => "uid",
        _ => "name",
    };
    let all_keyed = !patch.is_empty()
        && patch
            .iter()
            .all(|e| e.as_object().is_some_and(|o| o.contains_key(key)));
    all_keyed.then_some(key)
}

fn without_directives(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn strategic_merge(target: &mut Value, patch: &Value, path: &[&str]) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = without_directives(&Value::Object(patch.clone()));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            Value::Object(_) => {
                let mut sub = path.to_vec();
                sub.push(k);
                strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v, &sub);
            }
            Value::Array(items) => {
                let is_finalizers = path == ["metadata"] && k == "finalizers";
                match (t.get_mut(k), merge_key(k, items)) {
                    (Some(Value::Array(existing)), _) if is_finalizers => {
                        for item in items {
                            if !existing.contains(item) {
                                existing.push(item.clone());
                            }
                        }
                    }
                    (Some(Value::Array(existing)), Some(key)) => merge_by_key(existing, items, key),
                    _ => {
                        let items = items
                            .iter()
                            .filter(|e| e.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .map(without_directives)
                            .collect();
                        t.insert(k.clone(), Value::Array(items));
                    }
                }
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(list)), Some(remove)) = (t.get_mut(field), v.as_array())
        {
            list.retain(|x| !remove.contains(x));
        }
    }
}

fn merge_by_key(existing: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        let id = item.get(key);
        let pos = existing.iter().position(|e| e.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item, &[]),
            (None, false) => existing.push(without_directives(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(doc: Value, patch: Value) -> Value {
        let mut doc = doc;
        apply_patch(PatchType::Strategic, &mut doc, patch.to_string().as_bytes()).unwrap();
        doc
    }

    #[test]
    fn strategic_merges_named_lists_by_key() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}, {"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}})
        );
    }

    #[test]
    fn strategic_unions_finalizers_and_deletes_from_primitive_lists() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"accessModes": ["ReadWriteOnce"]}});
        let out = smp(
            doc.clone(),
            json!({"metadata": {"finalizers": ["c"]}, "spec": {"accessModes": ["ReadWriteMany"]}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["a", "b", "c"]}, "spec": {"accessModes": ["ReadWriteMany"]}})
        );
        let out = smp(
            doc,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn strategic_replace_and_null_remove() {
        let doc = json!({"spec": {"a": {"x": 1, "y": 2}, "b": 1}});
        let out = smp(
            doc,
            json!({"spec": {"a": {"$patch": "replace", "z": 3}, "b": null}}),
        );
        assert_eq!(out, json!({"spec": {"a": {"z": 3}}}));
    }

    #[test]
    fn json_patch_test_failure_is_invalid() {
        let mut doc = json!({"a": 1});
        let p = json!([{"op": "test", "path": "/a", "value": 2}]).to_string();
        let err = apply_patch(PatchType::Json, &mut doc, p.as_bytes()).unwrap_err();
        assert_eq!(err.code(), 422);
    }
}
