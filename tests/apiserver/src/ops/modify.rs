//! update (PUT), patch (PATCH) and server-side apply.

use std::sync::Arc;

use serde_json::{Value, json};

use super::commit::finish;
use super::{
    Addr, Ownership, WriteOpts, check_name, current, insert, key, scope, take_namespace, take_type,
};
use crate::error::{ApiError, ApiResult, Target};
use crate::events::{from_view, to_view};
use crate::managed::{self, ApplyRequest};
use crate::object::{meta_mut, meta_str};
use crate::patch::{PatchType, apply_patch};
use crate::store::State;

/// PUT: replace `name` (or its status) with `body` (served shape).
pub(crate) fn update(
    s: &mut State,
    at: Addr<'_>,
    mut body: Value,
    opts: &WriteOpts,
) -> ApiResult<Arc<Value>> {
    let Addr {
        def,
        ns,
        name,
        status,
    } = at;
    take_type(def, &mut body)?;
    check_name(name, &mut body)?;
    take_namespace(def, ns, &mut body)?;
    let cur = current(s, def, &key(def, ns, name))?;
    if meta_str(&body, "resourceVersion").is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            Target::of(def, name),
            "metadata.resourceVersion",
            "FieldValueInvalid",
            "Invalid value: 0x0: must be specified for an update".into(),
        ));
    }
    let candidate = from_view(def, body);
    finish(
        s,
        def,
        &cur,
        candidate,
        scope(def, status),
        Ownership::Update(&opts.manager),
        opts.dry_run,
    )
}

/// PATCH with a JSON, merge or strategic patch. Returns the new object.
pub(crate) fn patch(
    s: &mut State,
    at: Addr<'_>,
    kind: PatchType,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Arc<Value>> {
    let Addr {
        def,
        ns,
        name,
        status,
    } = at;
    let cur = current(s, def, &key(def, ns, name))?;
    let mut doc = to_view(def, &cur).into_owned();
    if let Some(m) = doc.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version));
        m.insert("kind".into(), json!(def.kind));
    }
    apply_patch(kind, &mut doc, body).map_err(|e| match e {
        ApiError::Invalid { causes, .. } => ApiError::Invalid {
            target: Target::of(def, name),
            causes,
        },
        other => other,
    })?;
    take_type(def, &mut doc)?;
    check_name(name, &mut doc)?;
    take_namespace(def, ns, &mut doc)?;
    let candidate = from_view(def, doc);
    finish(
        s,
        def,
        &cur,
        candidate,
        scope(def, status),
        Ownership::Update(&opts.manager),
        opts.dry_run,
    )
}

/// What an apply request carries besides the body.
pub(crate) struct ApplyOpts<'a> {
    /// `fieldManager` (required for apply).
    pub manager: Option<&'a str>,
    /// `force=true`.
    pub force: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Server-side apply. Returns the object and whether it was created.
pub(crate) fn apply(
    s: &mut State,
    at: Addr<'_>,
    body: &[u8],
    opts: &ApplyOpts<'_>,
) -> ApiResult<(Arc<Value>, bool)> {
    let Addr {
        def,
        ns,
        name,
        status,
    } = at;
    let Some(manager) = opts.manager.filter(|m| !m.is_empty()) else {
        return Err(ApiError::Invalid {
            target: Target {
                resource: "patchoptions",
                group: "meta.k8s.io",
                name: String::new(),
                kind: "PatchOptions.meta.k8s.io",
            },
            causes: vec![crate::error::Cause {
                kind: "FieldValueRequired",
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }],
        });
    };
    let mut applied: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?,
    };
    for (field, what) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
        if applied
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::BadRequest(format!(
                "{what} must be set in an apply patch"
            )));
        }
    }
    take_type(def, &mut applied)?;
    check_name(name, &mut applied)?;
    take_namespace(def, ns, &mut applied)?;
    let config = from_view(def, applied);
    let k = key(def, ns, name);
    let req = ApplyRequest {
        manager,
        force: opts.force,
        scope: scope(def, status),
        api_version: def.api_version,
        target: Target::of(def, name),
    };
    match s.get(def.storage, &k).cloned() {
        None if status => Err(ApiError::NotFound(Target::of(def, name))),
        None => {
            let new = managed::apply(None, &config, &req)?;
            Ok((
                insert(s, def, ns, new, Ownership::Applied, opts.dry_run)?,
                true,
            ))
        }
        Some(cur) => {
            let mut new = managed::apply(Some(&cur), &config, &req)?;
            if let Some(rv) = meta_str(&config, "resourceVersion") {
                meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
            }
            Ok((
                finish(
                    s,
                    def,
                    &cur,
                    new,
                    req.scope,
                    Ownership::Applied,
                    opts.dry_run,
                )?,
                false,
            ))
        }
    }
}
