//! `/devices`: a device's info, adding, deleting, resyncing it, and its
//! state and tags.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::super::{ApiState, Caller, finished, found, not_found, optional_body, queued, text};
use super::{change_state, checked, set_tags, state_request};
use crate::http::heketi::{self, DeviceAddRequest, DeviceDeleteOptions, parse_id};
use crate::http::queue::Finished;
use crate::model::storage::Backend;
use crate::model::{Id, State as Health};

pub(in super::super) async fn device(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Response {
    found(state.engine.with_state(|s| {
        parse_id(&id)
            .and_then(|id| s.devices.get(&id))
            .map(|d| heketi::device_info(s, d))
    }))
}

/// `POST /devices`: `202`, then `204` once the device is prepared and
/// online (`backend` tag: `lvm-thin` unless it says `loop` or `dir`).
pub(in super::super) async fn add_device(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    bytes: Bytes,
) -> Response {
    let new = match checked(&bytes, |r: DeviceAddRequest| heketi::check_device_add(&r)) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let s = state.engine.snapshot();
    if !s.nodes.contains_key(&new.node) {
        return text(StatusCode::NOT_FOUND, "Node id does not exist");
    }
    if s.devices
        .values()
        .any(|d| d.node == new.node && d.name == new.spec.name)
    {
        return text(
            StatusCode::CONFLICT,
            format!("Device {} is already on node {}", new.spec.name, new.node),
        );
    }
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        finished(
            engine
                .add_device(new.node, &new.spec, Backend::LvmThin)
                .await,
            |_| Finished::NoContent,
        )
    })
}

/// The device and its node's id, or 404.
fn find_device(state: &ApiState, id: &str) -> Result<(Id, Id, Health), Box<Response>> {
    state
        .engine
        .with_state(|s| {
            parse_id(id)
                .and_then(|id| s.devices.get(&id))
                .map(|d| (d.id, d.node, d.state))
        })
        .ok_or_else(|| Box::new(not_found()))
}

/// `DELETE /devices/{id}`: `202`, then `204`. As heketi: only a `failed`
/// device (`400` otherwise), and `409` while it holds bricks.
pub(in super::super) async fn delete_device(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    match optional_body::<DeviceDeleteOptions>(&bytes) {
        Ok(o) if o.forceforget => {
            return text(
                StatusCode::BAD_REQUEST,
                "forceforget: aplo does not forget a device without releasing it; fix the node and delete the device normally",
            );
        }
        Ok(_) => {}
        Err(e) => return *e,
    }
    let (device, node, health) = match find_device(&state, &id) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    if health != Health::Failed {
        return text(
            StatusCode::BAD_REQUEST,
            format!("device: {device} is not in failed state"),
        );
    }
    if state
        .engine
        .snapshot()
        .bricks
        .values()
        .any(|b| b.device == device)
    {
        return text(
            StatusCode::CONFLICT,
            format!("Unable to delete device [{device}] because it contains bricks"),
        );
    }
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        finished(
            engine
                .remove_device(&node.to_string(), &device.to_string())
                .await,
            |()| Finished::NoContent,
        )
    })
}

/// `POST /devices/{id}/state`: `202`, then `204` (or `500` with heketi's
/// reason when the change is not allowed).
pub(in super::super) async fn set_device_state(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let to = match state_request(&bytes) {
        Ok(s) => s,
        Err(e) => return *e,
    };
    let (device, node, _) = match find_device(&state, &id) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        change_state(
            engine.with_state(|s| s.devices.get(&device).map(|d| d.state)),
            to,
            |from| heketi::device_transition(&device.to_string(), from, to),
            engine.fail_device(device),
            || engine.set_device_state(&node.to_string(), &device.to_string(), to),
        )
        .await
    })
}

/// `GET /devices/{id}/resync`: `202`, then `204` once the device's
/// capacity is measured again.
pub(in super::super) async fn resync_device(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let (device, _, _) = match find_device(&state, &id) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        finished(engine.resync_device(device).await, |_| Finished::NoContent)
    })
}

/// `POST /devices/{id}/tags`: `200` with all the device's tags.
pub(in super::super) async fn set_device_tags(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    set_tags(&bytes, &id, |id, change, tags| async move {
        let device = state
            .engine
            .update_device_tags(id, |current| change.apply(current, &tags));
        device.await.map(|d| d.tags)
    })
    .await
}
