//! HTTP routing: Kubernetes REST paths to verbs, JSON bodies, the audit
//! log, and `Status` error bodies.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::events::to_view;
use crate::ops::{self, Addr, ApplyOpts, Deleted, WriteOpts};
use crate::patch::PatchType;
use crate::resources::{self, ResourceDef};
use crate::{App, Request, discovery, list, watch};

/// Parsed query string.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> ApiResult<Query> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key=true` or `key=1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// A request for a resource path, after routing.
pub(crate) struct Target {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name from the URL.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
}

/// A JSON response.
pub(crate) fn json_response(code: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("valid response")
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code(), e.status().to_string().into_bytes())
}

/// `obj` in its served shape with apiVersion and kind first.
pub(crate) fn write_typed(out: &mut Vec<u8>, def: &ResourceDef, stored: &Value) {
    let view = to_view(def, stored);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut *out, def.kind).expect("string");
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut *out, def.api_version).expect("string");
    if let Some(map) = view.as_object() {
        for (k, v) in map
            .iter()
            .filter(|(k, _)| *k != "kind" && *k != "apiVersion")
        {
            out.push(b',');
            serde_json::to_writer(&mut *out, k).expect("string");
            out.push(b':');
            serde_json::to_writer(&mut *out, v).expect("json value");
        }
    }
    out.push(b'}');
}

fn typed(def: &ResourceDef, stored: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_typed(&mut out, def, stored);
    out
}

/// Raw pieces of a resource path, before looking the resource up.
#[derive(Default)]
struct Parsed {
    group: String,
    version: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// Split `rest` (after `/api/v1` or `/apis/g/v`) into resource parts.
fn parse_resource_path(group: &str, version: &str, rest: &[&str]) -> Option<Parsed> {
    let mut p = Parsed {
        group: group.into(),
        version: version.into(),
        ..Parsed::default()
    };
    let rest = match rest {
        ["namespaces", ns, res, tail @ ..] if *res != "status" && *res != "finalize" => {
            p.namespace = Some((*ns).to_string());
            let mut v = vec![*res];
            v.extend_from_slice(tail);
            v
        }
        other => other.to_vec(),
    };
    match rest.as_slice() {
        [res] => p.resource = (*res).into(),
        [res, name] => {
            p.resource = (*res).into();
            p.name = Some((*name).into());
        }
        [res, name, sub] => {
            p.resource = (*res).into();
            p.name = Some((*name).into());
            p.subresource = Some((*sub).into());
        }
        _ => return None,
    }
    Some(p)
}

fn verb(method: &Method, has_name: bool, watch: bool) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// The single entry point: every request lands here.
pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let non_resource = |v: Option<Value>| match v {
        Some(v) => json_response(200, v.to_string().into_bytes()),
        None => error_response(&ApiError::NoRoute),
    };
    let parsed = match segs.as_slice() {
        ["healthz" | "readyz" | "livez"] => return (StatusCode::OK, "ok").into_response(),
        ["version"] => return non_resource(Some(discovery::version())),
        ["api"] => return non_resource(Some(discovery::core_versions(&app.addr.to_string()))),
        ["apis"] => return non_resource(Some(discovery::group_list())),
        ["api", v] => return non_resource(discovery::resource_list("", v)),
        ["apis", g] => return non_resource(discovery::api_group(g)),
        ["apis", g, v] => return non_resource(discovery::resource_list(g, v)),
        ["api", v, rest @ ..] => parse_resource_path("", v, rest),
        ["apis", g, v, rest @ ..] => parse_resource_path(g, v, rest),
        _ => None,
    };
    let Some(parsed) = parsed else {
        return error_response(&ApiError::NoRoute);
    };
    let query = match Query::parse(&uri) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    let verb = verb(&method, parsed.name.is_some(), query.flag("watch"));
    let response = match route(&parsed) {
        Ok(target) => serve(&app, verb, target, &query, &headers, &body).await,
        Err(e) => error_response(&e),
    };
    app.record(Request {
        verb: verb.to_string(),
        group: parsed.group,
        version: parsed.version,
        resource: parsed.resource,
        subresource: parsed.subresource,
        namespace: parsed.namespace,
        name: parsed.name,
        status: response.status().as_u16(),
        user: headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
    });
    response
}

fn route(p: &Parsed) -> ApiResult<Target> {
    let def = resources::find(&p.group, &p.version, &p.resource).ok_or(ApiError::NoRoute)?;
    if p.namespace.is_some() && !def.namespaced {
        return Err(ApiError::NoRoute);
    }
    if p.namespace.is_none() && def.namespaced && p.name.is_some() {
        return Err(ApiError::NoRoute);
    }
    match p.subresource.as_deref() {
        None => {}
        Some("status") if def.status => {}
        Some(_) => return Err(ApiError::NoRoute),
    }
    Ok(Target {
        def,
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        subresource: p.subresource.clone(),
    })
}

/// The field manager: `fieldManager`, else the user agent's product.
fn manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_string();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))
}

async fn serve(
    app: &Arc<App>,
    verb: &str,
    t: Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if verb == "watch" {
        return watch::serve(app, &t, query).await;
    }
    match serve_sync(app, verb, &t, query, headers, body) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn serve_sync(
    app: &Arc<App>,
    verb: &str,
    t: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let def = t.def;
    let ns = t.namespace.as_deref();
    let status = t.subresource.is_some();
    let dry_run = query.get("dryRun") == Some("All");
    let opts = WriteOpts {
        manager: manager(query, headers),
        dry_run,
    };
    let name = t.name.as_deref().unwrap_or("");
    let at = Addr {
        def,
        ns,
        name,
        status,
    };
    match verb {
        "get" => {
            let s = app.store.lock();
            let obj = s
                .get(def.storage, &ops::key(def, ns, name))
                .cloned()
                .ok_or_else(|| ApiError::NotFound(crate::error::Target::of(def, name)))?;
            drop(s);
            Ok(json_response(200, typed(def, &obj)))
        }
        "list" => list::serve(app, t, query),
        "create" if t.name.is_none() => {
            let body = parse_body(body)?;
            let obj = ops::create(&mut app.store.lock(), def, ns, body, &opts)?;
            Ok(json_response(201, typed(def, &obj)))
        }
        "update" => {
            let body = parse_body(body)?;
            let obj = ops::update(&mut app.store.lock(), at, body, &opts)?;
            Ok(json_response(200, typed(def, &obj)))
        }
        "patch" => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchType::from_content_type(ct)?;
            if kind == PatchType::Apply {
                let aopts = ApplyOpts {
                    manager: query.get("fieldManager"),
                    force: query.flag("force"),
                    dry_run,
                };
                let (obj, created) = ops::apply(&mut app.store.lock(), at, body, &aopts)?;
                return Ok(json_response(
                    if created { 201 } else { 200 },
                    typed(def, &obj),
                ));
            }
            let obj = ops::patch(&mut app.store.lock(), at, kind, body, &opts)?;
            Ok(json_response(200, typed(def, &obj)))
        }
        "delete" if !status => {
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            let outcome = ops::delete(&mut app.store.lock(), at, &options, dry_run)?;
            Ok(match outcome {
                Deleted::Pending(obj) => json_response(200, typed(def, &obj)),
                Deleted::Gone(obj) => {
                    json_response(200, success(def, &obj).to_string().into_bytes())
                }
            })
        }
        "deletecollection" => list::delete_collection(app, t, query, dry_run),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// The `Status` a delete answers when the object is gone.
fn success(def: &ResourceDef, obj: &Value) -> Value {
    let m = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut details = json!({"name": m("name"), "kind": def.plural, "uid": m("uid")});
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
