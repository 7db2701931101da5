//! `GET /operations` and `GET /db/dump`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiState, json};
use crate::http::heketi;
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

/// `GET /db/dump`: the whole store as JSON. This is aplo's export format
/// (`aplo db export`: `{"schema": N, "data": {...}}`), which `aplo db
/// import` reads; it is not heketi's BoltDB dump, and heketi's tools do
/// not read it.
pub(super) async fn db_dump(State(state): State<ApiState>) -> Response {
    json(
        StatusCode::OK,
        &Export {
            schema: SCHEMA_VERSION,
            data: state.engine.snapshot(),
        },
    )
}
