//! `/clusters`, `/nodes` and `/devices`: heketi's topology management.
//!
//! Where aplo differs from heketi, it says so instead of pretending:
//! setting a node or device `failed` is heketi's "remove", which moves
//! bricks elsewhere; aplo moves no bricks, so it is refused while bricks
//! remain (delete those volumes first). `forceforget` on device delete is
//! refused: aplo always releases what it prepared.
//!
//! Clusters and nodes are here, devices in `topology/devices.rs`.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::{ApiState, Caller, body, engine_error, finished, found, json, not_found, queued, text};
use crate::engine::EngineError;
use crate::http::heketi::{
    self, ClusterFlags, NodeAddRequest, RequestError, StateRequest, TagChange, TagsChangeRequest,
    parse_id,
};
use crate::http::queue::Finished;
use crate::model::{Id, Pairs, State as Health};

mod devices;

pub(super) use self::devices::{
    add_device, delete_device, device, resync_device, set_device_state, set_device_tags,
};

/// Read a JSON body and check it: 422 when it does not parse, then 400
/// naming the field.
fn checked<R: DeserializeOwned, T>(
    bytes: &Bytes,
    check: impl FnOnce(R) -> Result<T, RequestError>,
) -> Result<T, Box<Response>> {
    check(body(bytes)?).map_err(|e| Box::new(text(StatusCode::BAD_REQUEST, e.to_string())))
}

pub(super) async fn clusters(State(state): State<ApiState>) -> Response {
    let clusters = state
        .engine
        .with_state(|s| s.clusters.keys().map(ToString::to_string).collect());
    json(StatusCode::OK, &heketi::ClusterList { clusters })
}

pub(super) async fn cluster(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    found(state.engine.with_state(|s| {
        parse_id(&id)
            .and_then(|id| s.clusters.get(&id))
            .map(|c| heketi::cluster_info(s, c))
    }))
}

/// `POST /clusters`: `201` with the new cluster. An empty body (which
/// heketi itself refuses) allows file volumes only: heketi-cli asks for
/// file and block by default, but aplo makes no block volumes.
pub(super) async fn create_cluster(State(state): State<ApiState>, bytes: Bytes) -> Response {
    let flags: ClusterFlags = if bytes.iter().all(u8::is_ascii_whitespace) {
        ClusterFlags {
            file: true,
            block: false,
        }
    } else {
        match body(&bytes) {
            Ok(f) => f,
            Err(e) => return *e,
        }
    };
    match state.engine.create_cluster(flags.file, flags.block) {
        Ok(c) => json(
            StatusCode::CREATED,
            &state.engine.with_state(|s| heketi::cluster_info(s, &c)),
        ),
        Err(e) => engine_error(e),
    }
}

/// `DELETE /clusters/{id}`: `200`; `409` while it has nodes or volumes.
pub(super) async fn delete_cluster(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match state.engine.delete_cluster(id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => engine_error(e),
    }
}

/// `POST /clusters/{id}/flags`: `200`.
pub(super) async fn set_cluster_flags(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let flags: ClusterFlags = match body(&bytes) {
        Ok(f) => f,
        Err(e) => return *e,
    };
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match state.engine.set_cluster_flags(id, flags.file, flags.block) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => engine_error(e),
    }
}

pub(super) async fn node(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    found(state.engine.with_state(|s| {
        parse_id(&id)
            .and_then(|id| s.nodes.get(&id))
            .map(|n| heketi::node_info(s, n))
    }))
}

/// `POST /nodes`: `202`, then `303` to the node once it is probed into
/// its cluster's pool.
pub(super) async fn add_node(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    bytes: Bytes,
) -> Response {
    let new = match checked(&bytes, |r: NodeAddRequest| heketi::check_node_add(&r)) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let s = state.engine.snapshot();
    if !s.clusters.contains_key(&new.cluster) {
        return text(StatusCode::NOT_FOUND, "Cluster id does not exist");
    }
    if let Some(taken) = s.nodes.values().find_map(|n| {
        [&new.spec.manage, &new.spec.storage]
            .into_iter()
            .find(|h| **h == n.manage || **h == n.storage)
    }) {
        return text(
            StatusCode::CONFLICT,
            format!("Hostname {taken} already used by another node"),
        );
    }
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        finished(engine.add_node(new.cluster, &new.spec).await, |n| {
            Finished::SeeOther(format!("/nodes/{}", n.id))
        })
    })
}

/// `DELETE /nodes/{id}`: `202`, then `204`; `409` while it has devices.
pub(super) async fn delete_node(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let s = state.engine.snapshot();
    let Some(node) = parse_id(&id).and_then(|id| s.nodes.get(&id)) else {
        return not_found();
    };
    if s.devices.values().any(|d| d.node == node.id) {
        return text(
            StatusCode::CONFLICT,
            format!(
                "Unable to delete node [{}] because it contains devices",
                node.id
            ),
        );
    }
    let engine = state.engine.clone();
    let id = node.id.to_string();
    queued(&state, caller, async move {
        finished(engine.remove_node(&id).await, |()| Finished::NoContent)
    })
}

/// Read a state request: 422, then 400 naming the field.
fn state_request(bytes: &Bytes) -> Result<Health, Box<Response>> {
    checked(bytes, |request: StateRequest| {
        heketi::check_healcheck(&request.healcheck)
            .and_then(|()| heketi::parse_state(&request.state))
    })
}

/// A queued state change of a node or device that was in state `from`
/// (`None`: it is gone): heketi's verdict (`transition`) first, then
/// `fail` to fail it, or `set` for another state.
async fn change_state<A, B>(
    from: Option<Health>,
    to: Health,
    transition: impl FnOnce(Health) -> Result<bool, RequestError>,
    fail: impl Future<Output = Result<A, EngineError>>,
    set: impl FnOnce() -> Result<B, EngineError>,
) -> Finished {
    let Some(from) = from else {
        return Finished::Failed("Id not found".into());
    };
    match transition(from) {
        Err(reason) => Finished::Failed(reason.to_string()),
        Ok(false) => Finished::NoContent,
        Ok(true) if to == Health::Failed => finished(fail.await, |_| Finished::NoContent),
        Ok(true) => finished(set(), |_| Finished::NoContent),
    }
}

/// `POST /nodes/{id}/state`: `202`, then `204` (or `500` with heketi's
/// reason when the change is not allowed).
pub(super) async fn set_node_state(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let to = match state_request(&bytes) {
        Ok(s) => s,
        Err(e) => return *e,
    };
    let Some(id) = parse_id(&id).filter(|id| state.engine.with_state(|s| s.nodes.contains_key(id)))
    else {
        return not_found();
    };
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        change_state(
            engine.with_state(|s| s.nodes.get(&id).map(|n| n.state)),
            to,
            |from| heketi::node_transition(&id.to_string(), from, to),
            engine.fail_node(id),
            || engine.set_node_state(&id.to_string(), to),
        )
        .await
    })
}

/// `POST /{nodes,devices}/{id}/tags`: read the change (422, then 400
/// naming the field), find the id (404), make the change with `update`
/// and answer `200` with all the record's tags.
async fn set_tags<F>(
    bytes: &Bytes,
    id: &str,
    update: impl FnOnce(Id, TagChange, Pairs) -> F,
) -> Response
where
    F: Future<Output = Result<Pairs, EngineError>>,
{
    let (change, tags) = match checked(bytes, |request: TagsChangeRequest| {
        TagChange::parse(&request.change_type)
            .and_then(|change| heketi::check_tags(&request.tags).map(|()| (change, request.tags)))
    }) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    match update(id, change, tags).await {
        Ok(tags) => json(StatusCode::OK, &tags),
        Err(e) => engine_error(e),
    }
}

/// `POST /nodes/{id}/tags`: `200` with all the node's tags.
pub(super) async fn set_node_tags(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    set_tags(&bytes, &id, |id, change, tags| async move {
        let node = state
            .engine
            .update_node_tags(id, |current| change.apply(current, &tags));
        node.await.map(|n| n.tags)
    })
    .await
}
