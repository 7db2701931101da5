//! The journal and the store: `GET /operations`, `/operations/pending`
//! and `/operations/pending/{id}`; `GET /db/dump`, `/backup/db` and
//! `/db/check`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiState, json, not_found};
use crate::http::control::ServerControl;
use crate::http::heketi::{self, parse_id};
use crate::store::{Export, SCHEMA_VERSION};

/// `GET /operations`: heketi's counts, from the engine's journal and the
/// queue (see [`heketi::OperationsInfo`]).
pub(super) async fn operations(State(state): State<ApiState>) -> Response {
    let snapshot = state.engine.snapshot();
    let info = heketi::operations_info(
        &snapshot,
        |operation| state.engine.operation_running(operation),
        state.queue.in_flight(),
    );
    json(StatusCode::OK, &info)
}

/// `GET /operations/pending`: the journal's unfinished operations.
pub(super) async fn pending(State(state): State<ApiState>) -> Response {
    let snapshot = state.engine.snapshot();
    json(
        StatusCode::OK,
        &heketi::pending_list(&snapshot, |operation| {
            state.engine.operation_running(operation)
        }),
    )
}

/// `GET /operations/pending/{id}`: one of them, with the records it
/// changes.
pub(super) async fn pending_one(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let snapshot = state.engine.snapshot();
    let Some(operation) = parse_id(&id).and_then(|id| snapshot.operations.get(&id)) else {
        return not_found();
    };
    let running = state.engine.operation_running(operation);
    json(
        StatusCode::OK,
        &heketi::pending_details(&snapshot, operation, running),
    )
}

/// The whole store in aplo's export format (`aplo db export`: `{"schema":
/// N, "data": {...}, "admin_mode": ...}`), which `aplo db import` reads.
/// It is not heketi's BoltDB, and heketi's tools do not read it. The
/// records are one consistent copy (the engine's, which it changes only
/// together with the store).
fn export(state: &ApiState, control: &ServerControl) -> Export {
    Export {
        schema: SCHEMA_VERSION,
        data: state.engine.snapshot(),
        admin_mode: control.mode.mode(),
    }
}

/// `GET /db/dump`: the export as JSON.
pub(super) async fn db_dump(
    State(state): State<ApiState>,
    Extension(control): Extension<ServerControl>,
) -> Response {
    json(StatusCode::OK, &export(&state, &control))
}

/// The file name `GET /backup/db` suggests.
pub const BACKUP_FILE: &str = "aplo-db.json";

/// `GET /backup/db`: the export as a file to download (heketi sends its
/// BoltDB file here; aplo sends its export, which `aplo db import` loads
/// into a new store).
pub(super) async fn backup_db(
    State(state): State<ApiState>,
    Extension(control): Extension<ServerControl>,
) -> Response {
    let mut body = serde_json::to_vec_pretty(&export(&state, &control)).expect("exports serialize");
    body.push(b'\n');
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{BACKUP_FILE}\""))
            .expect("the file name is ASCII"),
    );
    response
}

/// `GET /db/check`: the reconcile report of `aplo check` (the store
/// against gluster and the nodes) in heketi's shape.
pub(super) async fn db_check(State(state): State<ApiState>) -> Response {
    let report = state.engine.check().await;
    let snapshot = state.engine.snapshot();
    json(StatusCode::OK, &heketi::db_check(&snapshot, &report.drift))
}
