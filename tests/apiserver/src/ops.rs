//! The write verbs (create, update, patch, apply, delete) over the locked
//! [`State`], with the real API server's metadata rules, defaults,
//! optimistic concurrency, status-subresource split and finalizers.
//!
//! Bodies come in and objects go out in the *served* shape of the resource
//! (`events` views are converted here); the store holds the stored shape.

mod commit;
mod modify;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Target};
use crate::events::from_view;
use crate::managed::{self, Scope};
use crate::object::{
    annotation, apply_defaults, finalizers, invalid_name, is_deleting, meta_mut, meta_str,
    name_suffix, reset_status_on_create, timestamp, uid,
};
use crate::resources::{ResourceDef, storage};
use crate::store::{Key, State};

use commit::finish;
pub(crate) use modify::{ApplyOpts, apply, patch, update};

/// Request-wide options of a write.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    /// `fieldManager`, or the user-agent's product name.
    pub manager: String,
    /// `dryRun=All`: validate and answer, but do not persist.
    pub dry_run: bool,
}

/// Who owns the fields a write sets.
enum Ownership<'a> {
    /// A non-apply write by this manager.
    Update(&'a str),
    /// Server-side apply already updated `managedFields`.
    Applied,
}

/// The outcome of a delete.
pub(crate) enum Deleted {
    /// The object is gone; this is its last state.
    Gone(Arc<Value>),
    /// Finalizers hold it; this is it with `deletionTimestamp` set.
    Pending(Arc<Value>),
}

/// The object (or its status) a request addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addr<'a> {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace from the URL.
    pub ns: Option<&'a str>,
    /// Object name from the URL.
    pub name: &'a str,
    /// The `status` subresource.
    pub status: bool,
}

/// The scope of a write: the main resource or its status.
pub(crate) fn scope(def: &ResourceDef, status: bool) -> Scope {
    if status {
        Scope::Status
    } else {
        Scope::Main {
            has_status: def.status,
        }
    }
}

/// The table key for `name` in `ns`.
pub(crate) fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> Key {
    let ns = if def.namespaced { ns.unwrap_or("") } else { "" };
    (ns.to_string(), name.to_string())
}

/// Reject a body whose apiVersion or kind names another resource, and
/// drop them (the store keeps objects without type metadata).
fn take_type(def: &ResourceDef, body: &mut Value) -> ApiResult<()> {
    let Some(map) = body.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the body of the request must be a JSON object".into(),
        ));
    };
    if let Some(Value::String(av)) = map.get("apiVersion")
        && av != def.api_version
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version
        )));
    }
    if let Some(Value::String(k)) = map.get("kind")
        && k != def.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    map.remove("apiVersion");
    map.remove("kind");
    Ok(())
}

/// Check (and fill in) `metadata.namespace` against the URL's.
fn take_namespace(def: &ResourceDef, ns: Option<&str>, obj: &mut Value) -> ApiResult<()> {
    let meta = meta_mut(obj);
    if !def.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let url_ns = ns.unwrap_or("");
    match meta.get("namespace").and_then(Value::as_str) {
        Some(body_ns) if !body_ns.is_empty() && body_ns != url_ns => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        )),
        _ => {
            meta.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
    }
}

fn check_name(url_name: &str, obj: &mut Value) -> ApiResult<()> {
    let meta = meta_mut(obj);
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if n != url_name => Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
        Some(_) => Ok(()),
        None => {
            meta.insert("name".into(), json!(url_name));
            Ok(())
        }
    }
}

/// The object (or an error naming it) for `key`.
fn current(s: &State, def: &ResourceDef, key: &Key) -> ApiResult<Arc<Value>> {
    s.get(def.storage, key)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(Target::of(def, &key.1)))
}

/// Create `body` (served shape) in `ns`.
pub(crate) fn create(
    s: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    mut body: Value,
    opts: &WriteOpts,
) -> ApiResult<Arc<Value>> {
    take_type(def, &mut body)?;
    let obj = from_view(def, body);
    insert(
        s,
        def,
        ns,
        obj,
        Ownership::Update(&opts.manager),
        opts.dry_run,
    )
}

fn insert(
    s: &mut State,
    def: &ResourceDef,
    ns: Option<&str>,
    mut obj: Value,
    owner: Ownership<'_>,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    take_namespace(def, ns, &mut obj)?;
    let meta = meta_mut(&mut obj);
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty()
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        name = format!("{prefix}{}", name_suffix());
        meta.insert("name".into(), json!(name));
    }
    let target = Target::of(def, &name);
    if name.is_empty() {
        return Err(ApiError::invalid(
            target,
            "metadata.name",
            "FieldValueRequired",
            "Required value: name or generateName is required".into(),
        ));
    }
    if let Some(why) = invalid_name(&name) {
        return Err(ApiError::invalid(
            target,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": {why}"),
        ));
    }
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(ns) = ns.as_deref().filter(|_| def.namespaced)
        && s.get(storage::NAMESPACES, &(String::new(), ns.to_string()))
            .is_none()
    {
        let nsdef = crate::resources::native(storage::NAMESPACES);
        return Err(ApiError::NotFound(Target::of(nsdef, ns)));
    }
    let key = (ns.unwrap_or_default(), name.clone());
    if s.get(def.storage, &key).is_some() {
        return Err(ApiError::AlreadyExists(target));
    }
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(f);
    }
    if matches!(owner, Ownership::Update(_)) {
        meta.remove("managedFields");
    }
    meta.insert("uid".into(), json!(uid()));
    meta.insert("creationTimestamp".into(), json!(timestamp()));
    meta.insert("generation".into(), json!(1));
    reset_status_on_create(def.kind, &mut obj);
    apply_defaults(def.kind, &mut obj);
    admit(s, def, &mut obj);
    if let Ownership::Update(manager) = owner {
        managed::record_update(None, &mut obj, manager, scope(def, false), def.api_version);
    }
    if dry_run {
        return Ok(Arc::new(obj));
    }
    Ok(s.put(def.storage, obj))
}

/// Admission on create: the default StorageClass, and the storage-object
/// in-use protection finalizers when the binder runs.
fn admit(s: &State, def: &ResourceDef, obj: &mut Value) {
    if def.storage == storage::PVCS
        && obj
            .get("spec")
            .and_then(|sp| sp.get("storageClassName"))
            .is_none()
    {
        let default = s.table(storage::STORAGE_CLASSES).and_then(|t| {
            t.values()
                .find(|sc| {
                    annotation(sc, "storageclass.kubernetes.io/is-default-class") == Some("true")
                })
                .and_then(|sc| meta_str(sc, "name").map(String::from))
        });
        if let Some(name) = default {
            crate::object::set_path(obj, &["spec", "storageClassName"], json!(name));
        }
    }
    let finalizer = match def.storage {
        storage::PVCS => "kubernetes.io/pvc-protection",
        storage::PVS => "kubernetes.io/pv-protection",
        _ => return,
    };
    if s.protect && !finalizers(obj).iter().any(|f| f == finalizer) {
        let meta = meta_mut(obj);
        let list = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!(finalizer));
        }
    }
}

/// DELETE with `DeleteOptions` (preconditions honoured).
pub(crate) fn delete(
    s: &mut State,
    at: Addr<'_>,
    options: &Value,
    dry_run: bool,
) -> ApiResult<Deleted> {
    let Addr { def, ns, name, .. } = at;
    let cur = current(s, def, &key(def, ns, name))?;
    let target = Target::of(def, name);
    for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
        {
            let actual = meta_str(&cur, field).unwrap_or("");
            if want != actual {
                return Err(ApiError::precondition(target, what, want, actual));
            }
        }
    }
    if finalizers(&cur).is_empty() {
        if dry_run {
            return Ok(Deleted::Gone(cur));
        }
        return Ok(Deleted::Gone(s.remove(def.storage, (*cur).clone())));
    }
    if is_deleting(&cur) {
        return Ok(Deleted::Pending(cur));
    }
    let mut new = (*cur).clone();
    let g = cur
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let meta = meta_mut(&mut new);
    meta.insert("deletionTimestamp".into(), json!(timestamp()));
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    meta.insert("generation".into(), json!(g + 1));
    if dry_run {
        return Ok(Deleted::Pending(Arc::new(new)));
    }
    Ok(Deleted::Pending(s.put(def.storage, new)))
}

/// Read-modify-write by an in-server controller (the binder), atomically
/// under the lock. Returns the new object, or `None` if it is gone or the
/// change was rejected.
pub(crate) fn mutate(
    s: &mut State,
    def: &ResourceDef,
    key: &Key,
    status: bool,
    manager: &str,
    f: impl FnOnce(&mut Value),
) -> Option<Arc<Value>> {
    let cur = s.get(def.storage, key)?.clone();
    let mut new = (*cur).clone();
    f(&mut new);
    match finish(
        s,
        def,
        &cur,
        new,
        scope(def, status),
        Ownership::Update(manager),
        false,
    ) {
        Ok(obj) => Some(obj),
        Err(e) => {
            tracing::warn!(error = %e, "binder write rejected");
            None
        }
    }
}
