//! The heketi-compatible REST API (work in progress, issue #5): clusters,
//! nodes, devices and volumes read from the store; volume create, expand
//! and delete as queued operations through the same policies as the
//! Kubernetes path; heketi's JWT authentication.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::auth::{self, Keys, Role};
use super::heketi::{self, VolumeCreateRequest, VolumeExpandRequest};
use super::queue::{Finished, Poll, Queue};
use crate::exec::engine::{CreateRequest, Engine};
use crate::model::{GIB, Pairs};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The JWT keys; `None` disables authentication (development only).
    pub keys: Option<Keys>,
    /// Queued operations.
    pub queue: Arc<Queue>,
}

/// Who made the request, once authenticated.
#[derive(Debug, Clone, Copy)]
struct Caller(Option<Role>);

/// A plain-text error, as heketi answers them.
fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", message.into()),
    )
        .into_response()
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).expect("API types serialize"),
    )
        .into_response()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Routes a user (not only an admin) may call.
fn user_may(method: &Method, path: &str) -> bool {
    path == "/hello"
        || path.starts_with("/queue/")
        || path == "/volumes"
        || (path.starts_with("/volumes/") && !path.contains("/block"))
        || (*method == Method::GET && path == "/clusters")
}

async fn authenticate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let caller = match &state.keys {
        None => Caller(None),
        Some(keys) => {
            let header = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let path = request.uri().path().to_owned();
            match auth::verify(keys, header, request.method().as_str(), &path, now()) {
                Ok(Role::User) if !user_may(request.method(), &path) => {
                    return text(StatusCode::UNAUTHORIZED, "Administrator access required");
                }
                Ok(role) => Caller(Some(role)),
                Err(e) => return text(StatusCode::UNAUTHORIZED, e.to_string()),
            }
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The router.
pub fn router(state: ApiState) -> Router {
    if state.keys.is_none() {
        tracing::warn!(
            "the REST API runs WITHOUT AUTHENTICATION: anyone who can reach it can create and \
             delete volumes; use this for development only"
        );
    }
    Router::new()
        .route(
            "/hello",
            get(|| async { "Hello from aplo (heketi-compatible API)" }),
        )
        .route("/clusters", get(clusters))
        .route("/clusters/{id}", get(cluster))
        .route("/nodes/{id}", get(node))
        .route("/devices/{id}", get(device))
        .route("/volumes", get(volumes).post(create_volume))
        .route("/volumes/{id}", get(volume).delete(delete_volume))
        .route("/volumes/{id}/expand", post(expand_volume))
        .route("/queue/{id}", get(poll))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Id not found")
}

fn parse_id(id: &str) -> Option<crate::model::Id> {
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(id, 16).ok().map(crate::model::Id))
        .flatten()
}

async fn clusters(State(state): State<ApiState>) -> Response {
    let s = state.engine.snapshot();
    json(
        StatusCode::OK,
        &heketi::ClusterList {
            clusters: s.clusters.keys().map(ToString::to_string).collect(),
        },
    )
}

async fn cluster(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let s = state.engine.snapshot();
    match parse_id(&id).and_then(|id| s.clusters.get(&id)) {
        Some(c) => json(StatusCode::OK, &heketi::cluster_info(&s, c)),
        None => not_found(),
    }
}

async fn node(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let s = state.engine.snapshot();
    match parse_id(&id).and_then(|id| s.nodes.get(&id)) {
        Some(n) => json(StatusCode::OK, &heketi::node_info(&s, n)),
        None => not_found(),
    }
}

async fn device(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let s = state.engine.snapshot();
    match parse_id(&id).and_then(|id| s.devices.get(&id)) {
        Some(d) => json(StatusCode::OK, &heketi::device_info(&s, d)),
        None => not_found(),
    }
}

async fn volumes(State(state): State<ApiState>) -> Response {
    json(
        StatusCode::OK,
        &heketi::VolumeList {
            volumes: state
                .engine
                .volumes()
                .iter()
                .map(|v| v.id.to_string())
                .collect(),
        },
    )
}

async fn volume(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Some(vid) = parse_id(&id) else {
        return not_found();
    };
    let s = state.engine.snapshot();
    match s.volumes.get(&vid) {
        Some(v) => json(
            StatusCode::OK,
            &heketi::volume_info(&s, v, state.engine.volume_hosts(vid)),
        ),
        None => not_found(),
    }
}

/// Read a JSON body: 422 when it does not parse, as heketi does.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("request body is not valid JSON for this call: {e}"),
        ))
    })
}

/// The StorageClass-style parameters that give a heketi request's
/// durability through the default policies.
fn durability_parameters(request: &VolumeCreateRequest) -> Result<Pairs, String> {
    let d = &request.durability;
    let class = match (
        d.kind.as_str(),
        d.replicate.replica,
        d.disperse.data,
        d.disperse.redundancy,
    ) {
        ("" | "replicate", 0 | 3, _, _) => "replica3",
        ("replicate", 2, _, _) => "replica2",
        ("none", _, _, _) => "none",
        ("disperse", _, 2, 1) => "disperse-2-1",
        ("disperse", _, 0 | 4, 0 | 2) => "disperse-4-2",
        ("disperse", _, 8, 3) => "disperse-8-3",
        ("replicate", n, _, _) => {
            return Err(format!(
                "durability.replicate.replica: {n} copies are not offered (use 2 or 3)"
            ));
        }
        ("disperse", _, data, redundancy) => {
            return Err(format!(
                "durability.disperse: {data}+{redundancy} is not offered (use 2+1, 4+2 or 8+3)"
            ));
        }
        (other, _, _, _) => {
            return Err(format!(
                "durability.type: '{other}' is not one of none, replicate, disperse"
            ));
        }
    };
    let mut parameters = Pairs::new();
    parameters.insert("classes.class".into(), class.into());
    if !request.glustervolumeoptions.is_empty() {
        let options: Vec<String> = request
            .glustervolumeoptions
            .iter()
            .map(|o| o.trim().replacen(' ', "=", 1))
            .collect();
        parameters.insert(format!("classes.{class}.options"), options.join(";"));
    }
    if request.snapshot.enable {
        parameters.insert(
            "classes.snapshot-reserve".into(),
            format!("{}", request.snapshot.factor.max(1.0)),
        );
    }
    Ok(parameters)
}

fn accepted(id: &str) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/queue/{id}")).expect("ids are ASCII"),
    );
    response
}

fn queued(
    state: &ApiState,
    caller: Caller,
    work: impl std::future::Future<Output = Finished> + Send + 'static,
) -> Response {
    let owner = match caller.0 {
        Some(Role::User) => Some("user".to_owned()),
        _ => None,
    };
    match state.queue.start(owner, work) {
        Ok(id) => accepted(&id),
        Err(busy) => {
            let mut response = text(StatusCode::TOO_MANY_REQUESTS, busy.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

async fn create_volume(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    bytes: Bytes,
) -> Response {
    let request: VolumeCreateRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    if request.size < 1 {
        return text(StatusCode::BAD_REQUEST, "size: must be at least 1 (GiB)");
    }
    if request.block {
        return text(
            StatusCode::BAD_REQUEST,
            "block: aplo does not provide block-hosting volumes",
        );
    }
    let parameters = match durability_parameters(&request) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(bytes) = u64::try_from(request.size)
        .ok()
        .and_then(|gib| gib.checked_mul(GIB))
    else {
        return text(StatusCode::BAD_REQUEST, "size: too large");
    };
    let engine = state.engine.clone();
    let name = (!request.name.is_empty()).then(|| request.name.clone());
    queued(&state, caller, async move {
        match engine
            .create_volume(CreateRequest {
                name,
                bytes,
                parameters,
                ..CreateRequest::default()
            })
            .await
        {
            Ok(v) => Finished::SeeOther(format!("/volumes/{}", v.id)),
            Err(e) => Finished::Failed(e.to_string()),
        }
    })
}

async fn delete_volume(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Some(vid) = parse_id(&id) else {
        return not_found();
    };
    if state.engine.volume(&id).is_err() {
        return not_found();
    }
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        match engine.delete_volume(&vid.to_string()).await {
            Ok(()) => Finished::NoContent,
            Err(e) => Finished::Failed(e.to_string()),
        }
    })
}

async fn expand_volume(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let request: VolumeExpandRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let Ok((volume, _)) = state.engine.volume(&id) else {
        return not_found();
    };
    if request.expand_size < 1 {
        return text(
            StatusCode::BAD_REQUEST,
            "expand_size: must be at least 1 (GiB)",
        );
    }
    let Some(to) = u64::try_from(request.expand_size)
        .ok()
        .and_then(|g| g.checked_mul(GIB))
        .and_then(|b| b.checked_add(volume.bytes))
    else {
        return text(StatusCode::BAD_REQUEST, "expand_size: too large");
    };
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        match engine.expand_volume(&volume.id.to_string(), to).await {
            Ok(v) => Finished::SeeOther(format!("/volumes/{}", v.id)),
            Err(e) => Finished::Failed(e.to_string()),
        }
    })
}

async fn poll(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let who = match caller.0 {
        Some(Role::User) => Some("user"),
        _ => None,
    };
    match state.queue.poll(&id, who) {
        Poll::Unknown => not_found(),
        Poll::Pending => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert("X-Pending", HeaderValue::from_static("true"));
            response
        }
        Poll::Done(Finished::SeeOther(location)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&location).expect("locations are ASCII"),
            );
            response
        }
        Poll::Done(Finished::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Poll::Done(Finished::Failed(message)) => text(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// How long finished operations stay pollable.
pub const KEEP_RESULTS: Duration = Duration::from_secs(600);
