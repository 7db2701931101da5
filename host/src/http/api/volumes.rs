//! `/volumes`: list, info, create, expand and delete. A heketi request's
//! durability, options, snapshot reserve and gid become settings of the
//! bundled `requested` durability policy, so the decision still goes
//! through the sandbox and the host's validation
//! (`volumes/parameters.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{
    ApiState, Caller, body, engine_error, finished, found, json, not_found, optional_body, queued,
    text,
};
use crate::engine::{CreateRequest, EngineError};
use crate::http::heketi::{
    self, BrickEvictOptions, VolumeCreateRequest, VolumeExpandRequest, parse_id,
};
use crate::http::queue::Finished;
use crate::model::paths::check_volume_name;
use crate::model::{GIB, Id};

mod parameters;

use self::parameters::{VolumeRequestError, volume_parameters};

pub(super) async fn volumes(State(state): State<ApiState>) -> Response {
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

pub(super) async fn volume(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Some(vid) = parse_id(&id) else {
        return not_found();
    };
    // The hosts first: the engine's own reads take the state lock.
    let hosts = state.engine.volume_hosts(vid);
    found(state.engine.with_state(|s| {
        s.volumes
            .get(&vid)
            .map(|v| heketi::volume_info(s, v, hosts))
    }))
}

/// The clusters a volume may go to: those asked for (all when none),
/// among those whose `file` flag allows file volumes.
fn eligible_clusters(state: &ApiState, asked: &[String]) -> Result<Vec<Id>, VolumeRequestError> {
    let s = state.engine.snapshot();
    if s.clusters.is_empty() {
        return Err(VolumeRequestError::NoClusters);
    }
    let mut ids = Vec::new();
    for text in asked {
        let id = parse_id(text).ok_or_else(|| VolumeRequestError::ClusterId(text.clone()))?;
        if !s.clusters.contains_key(&id) {
            return Err(VolumeRequestError::UnknownCluster(id));
        }
        ids.push(id);
    }
    let candidates: Vec<Id> = if ids.is_empty() {
        s.clusters.keys().copied().collect()
    } else {
        ids
    };
    let eligible: Vec<Id> = candidates
        .into_iter()
        .filter(|id| s.clusters.get(id).is_some_and(|c| c.file))
        .collect();
    if eligible.is_empty() {
        return Err(VolumeRequestError::NoFileCluster);
    }
    Ok(eligible)
}

pub(super) async fn create_volume(
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
    if !request.name.is_empty()
        && let Err(e) = check_volume_name(&request.name)
    {
        return text(StatusCode::BAD_REQUEST, format!("name: {e}"));
    }
    if request.gid < 0 || request.gid >= i64::from(i32::MAX) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("gid: {} is outside 0 to 2^31-2", request.gid),
        );
    }
    let clusters = match eligible_clusters(&state, &request.clusters) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let known = state.engine.option_names().await;
    let parameters = match volume_parameters(&request, &known) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Settings are checked now (by the policies, off the reactor), so that
    // a bad one is a 400 rather than a failed operation.
    let registry = state.engine.registry().clone();
    let checked = parameters.clone();
    match tokio::task::spawn_blocking(move || registry.resolve(&checked)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return engine_error(EngineError::Policy(e)),
        Err(e) => {
            tracing::error!(error = %e, "resolving the policies panicked");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "resolving the policies failed",
            );
        }
    }
    let Some(bytes) = u64::try_from(request.size)
        .ok()
        .and_then(|gib| gib.checked_mul(GIB))
    else {
        return text(StatusCode::BAD_REQUEST, "size: too large");
    };
    let engine = state.engine.clone();
    let name = (!request.name.is_empty()).then(|| request.name.clone());
    queued(&state, caller, async move {
        let request = CreateRequest {
            name,
            bytes,
            parameters,
            ..CreateRequest::default()
        };
        finished(engine.create_volume_in(request, &clusters).await, |v| {
            Finished::SeeOther(format!("/volumes/{}", v.id))
        })
    })
}

pub(super) async fn delete_volume(
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
        finished(engine.delete_volume(&vid.to_string()).await, |()| {
            Finished::NoContent
        })
    })
}

pub(super) async fn expand_volume(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let request: VolumeExpandRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let Some(vid) = parse_id(&id) else {
        return not_found();
    };
    let Some(volume) = state.engine.with_state(|s| s.volumes.get(&vid).cloned()) else {
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
        finished(engine.expand_volume(&vid.to_string(), to).await, |v| {
            Finished::SeeOther(format!("/volumes/{}", v.id))
        })
    })
}

/// `POST /bricks/to-evict/{id}` (heketi's brick evict): `202`, then `204`
/// once a brick the volume's placement policy placed has taken the brick's
/// place (`replace-brick`); `500` with the reason when it cannot move.
pub(super) async fn evict_brick(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    match optional_body::<BrickEvictOptions>(&bytes) {
        Ok(options) => {
            if let Err(e) = heketi::check_healcheck(&options.healcheck) {
                return text(StatusCode::BAD_REQUEST, e.to_string());
            }
        }
        Err(e) => return *e,
    }
    let Some(brick) =
        parse_id(&id).filter(|id| state.engine.with_state(|s| s.bricks.contains_key(id)))
    else {
        return not_found();
    };
    let engine = state.engine.clone();
    queued(&state, caller, async move {
        finished(engine.replace_brick(brick, &[]).await, |_| {
            Finished::NoContent
        })
    })
}
