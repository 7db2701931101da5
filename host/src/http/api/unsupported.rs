//! heketi's routes that aplo does not implement: each answers `501 Not
//! Implemented` saying why and what to use instead (an empty `404` would
//! tell a client that the object does not exist). Paths heketi does not
//! have either get heketi's `404 Invalid path or request`.

use axum::http::StatusCode;
use axum::response::Response;

use super::text;

/// Why there are no block volumes.
pub const NO_BLOCK: &str = "block volumes are not implemented: they need gluster-block \
     (tcmu-runner and targetcli), which is not packaged for the machines aplo runs on; use a file \
     volume (POST /volumes) and mount it with the GlusterFS client instead";

/// Why a volume cannot be cloned.
pub const NO_CLONE: &str = "volume clone is not implemented: a clone is a gluster snapshot, and \
     gluster snapshots need every brick on thin LVM (aplo's loop and dir bricks are not) and \
     snapshot management aplo does not have; create a volume (POST /volumes) and copy the data \
     into it instead";

/// `/blockvolumes`, `/blockvolumes/{id}` and `/blockvolumes/{id}/expand`,
/// every method.
pub(super) async fn block_volumes() -> Response {
    text(StatusCode::NOT_IMPLEMENTED, NO_BLOCK)
}

/// `POST /volumes/{id}/clone`.
pub(super) async fn clone_volume() -> Response {
    text(StatusCode::NOT_IMPLEMENTED, NO_CLONE)
}

/// `POST /volumes/{id}/block-restriction`.
pub(super) async fn block_restriction() -> Response {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "block-hosting volumes are not implemented (aplo makes no block volumes: gluster-block is \
         not packaged for the machines aplo runs on), so there is no restriction to set; file \
         volumes need none",
    )
}

/// `POST /operations/pending/cleanup`.
pub(super) async fn cleanup_operations() -> Response {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "cleaning up pending operations over the API is not implemented: aplo finishes or undoes \
         the journal's unfinished operations when it starts (or takes the lead); restart it, or \
         stop it and run `aplo repair`. GET /operations/pending lists them",
    )
}

/// `GET /internal/state/examine/gluster`.
pub(super) async fn examine_gluster() -> Response {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "examining gluster in heketi's format is not implemented: GET /db/check (heketi's shape) \
         or GET /aplo/v1/check compare the store with gluster and the nodes, as `aplo check` does",
    )
}

/// Any other path: heketi's answer.
pub(super) async fn invalid_path() -> Response {
    text(StatusCode::NOT_FOUND, "Invalid path or request")
}
