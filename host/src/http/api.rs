//! The heketi-compatible REST API (issue #5): clusters, nodes, devices and
//! volumes as heketi's clients know them, heketi's JWT authentication, and
//! its asynchronous operations (`202` + `/queue/{id}`). Volumes are made
//! through the same policies and engine as on the Kubernetes path; aplo's
//! own endpoints live under `/aplo/v1/` ([`super::native`]).
//!
//! Conventions, as heketi's: errors are plain text; a body that is not
//! JSON of the right shape is `422`; a bad value is `400` naming the field;
//! an unknown id is `404 Id not found`; a conflict with the current state
//! is `409`; long operations answer `202` with `Location: /queue/{id}`,
//! and `429` with `Retry-After` when too many run. Every route but volume
//! operations, `/queue/{id}`, `/hello` and `GET /clusters` needs the admin
//! role. A malformed `Authorization` header is `400`, every other
//! authentication failure `401`. heketi's admin mode (`/admin`) gates
//! every request after authentication; heketi's routes that aplo does not
//! implement answer `501` saying why, and unknown paths `404 Invalid path
//! or request`.
//!
//! Routes, by file: clusters and nodes in `api/topology.rs`, devices in
//! `api/topology/devices.rs`; volumes in `api/volumes.rs`; `/operations`,
//! `/operations/pending`, `/db/dump`, `/backup/db` and `/db/check` in
//! `api/admin.rs`; `/admin` and `/internal/logging` in `api/server.rs`;
//! the `501`s in `api/unsupported.rs`.

mod admin;
mod server;
mod topology;
mod unsupported;
mod volumes;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Serialize;

use super::auth::{self, AuthError, Keys, Role};
use super::control::ServerControl;
use super::queue::{Finished, Poll, Queue};
use crate::engine::{Engine, EngineError, Kind};

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
pub(super) struct Caller(Option<Role>);

/// A plain-text error, as heketi answers them.
pub(super) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", message.into()),
    )
        .into_response()
}

/// A JSON answer.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
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

/// The status of an authentication failure: heketi answers a malformed
/// header `400`, everything else `401`.
fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::BadHeader => StatusCode::BAD_REQUEST,
        AuthError::Missing
        | AuthError::Malformed(_)
        | AuthError::Algorithm(_)
        | AuthError::Issuer(_)
        | AuthError::Signature
        | AuthError::Expired(_)
        | AuthError::IssuedInFuture
        | AuthError::NotYetValid
        | AuthError::Qsh => StatusCode::UNAUTHORIZED,
    }
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
                Err(e) => return text(auth_status(&e), e.to_string()),
            }
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The router: heketi's API and aplo's own under `/aplo/v1/`, with the
/// admin mode kept in memory only and no log level control (an embedded
/// API; `aplo serve` uses [`router_with`]).
pub fn router(state: ApiState) -> Router {
    router_with(state, ServerControl::default())
}

/// The router, with the admin mode and the log filter of `control`.
///
/// To see a client's address (the admin mode `local-client` admits
/// changes only from the loopback address), serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`; without it every
/// client counts as remote.
pub fn router_with(state: ApiState, control: ServerControl) -> Router {
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
        .route(
            "/clusters",
            get(topology::clusters).post(topology::create_cluster),
        )
        .route(
            "/clusters/{id}",
            get(topology::cluster).delete(topology::delete_cluster),
        )
        .route("/clusters/{id}/flags", post(topology::set_cluster_flags))
        .route("/nodes", post(topology::add_node))
        .route(
            "/nodes/{id}",
            get(topology::node).delete(topology::delete_node),
        )
        .route("/nodes/{id}/state", post(topology::set_node_state))
        .route("/nodes/{id}/tags", post(topology::set_node_tags))
        .route("/devices", post(topology::add_device))
        .route(
            "/devices/{id}",
            get(topology::device).delete(topology::delete_device),
        )
        .route("/devices/{id}/state", post(topology::set_device_state))
        .route("/devices/{id}/resync", get(topology::resync_device))
        .route("/devices/{id}/tags", post(topology::set_device_tags))
        .route(
            "/volumes",
            get(volumes::volumes).post(volumes::create_volume),
        )
        .route(
            "/volumes/{id}",
            get(volumes::volume).delete(volumes::delete_volume),
        )
        .route("/volumes/{id}/expand", post(volumes::expand_volume))
        .route("/bricks/to-evict/{id}", post(volumes::evict_brick))
        .route("/queue/{id}", get(poll))
        .route("/volumes/{id}/clone", post(unsupported::clone_volume))
        .route(
            "/volumes/{id}/block-restriction",
            post(unsupported::block_restriction),
        )
        .route("/blockvolumes", any(unsupported::block_volumes))
        .route("/blockvolumes/{id}", any(unsupported::block_volumes))
        .route("/blockvolumes/{id}/expand", any(unsupported::block_volumes))
        .route("/operations", get(admin::operations))
        .route("/operations/pending", get(admin::pending))
        .route("/operations/pending/{id}", get(admin::pending_one))
        .route(
            "/operations/pending/cleanup",
            post(unsupported::cleanup_operations),
        )
        .route("/db/dump", get(admin::db_dump))
        .route("/db/check", get(admin::db_check))
        .route("/backup/db", get(admin::backup_db))
        .route("/admin", get(server::admin).post(server::set_admin))
        .route(
            "/internal/logging",
            get(server::logging).post(server::set_logging),
        )
        .route(
            "/internal/state/examine/gluster",
            get(unsupported::examine_gluster),
        )
        .merge(super::native::routes())
        .fallback(unsupported::invalid_path)
        // Outermost first: authenticate, then the admin mode.
        .layer(middleware::from_fn_with_state(
            control.clone(),
            server::guard,
        ))
        .layer(axum::Extension(control))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// heketi's answer for an unknown id.
pub(super) fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Id not found")
}

/// `200` with a record's heketi view, or `404` when there is none.
pub(super) fn found<V: Serialize>(view: Option<V>) -> Response {
    view.map_or_else(not_found, |v| json(StatusCode::OK, &v))
}

/// Read an optional JSON body: its default when empty, else as [`body`].
pub(super) fn optional_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &Bytes,
) -> Result<T, Box<Response>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        body(bytes)
    }
}

/// Read a JSON body: 422 when it does not parse, as heketi does.
pub(super) fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("request body is not valid JSON for this call: {e}"),
        ))
    })
}

/// The status of an engine error, from its classification (the same the
/// provisioner and the CSI controller answer from): what the caller can
/// act on is a 4xx, an overload a 503, and a fault a 500.
fn engine_status(e: &EngineError) -> StatusCode {
    match e.class().kind {
        Kind::Invalid | Kind::Refused(_) => StatusCode::BAD_REQUEST,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Fault => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Seconds a client is asked to wait before retrying a `503` (the policy
/// pool was full) or a `429` (too many operations).
const RETRY_AFTER_SECONDS: &str = "5";

/// An engine error as an answer; a `503` says when to retry.
pub(super) fn engine_error(e: EngineError) -> Response {
    answer(None, e)
}

/// [`engine_error`] about one part of a request: the message starts with
/// what it is about (`claim db-1: ...`).
pub(super) fn engine_error_about(about: &str, e: EngineError) -> Response {
    answer(Some(about), e)
}

fn answer(about: Option<&str>, e: EngineError) -> Response {
    let status = engine_status(&e);
    let mut response = match (about, e) {
        (None, EngineError::NotFound { .. }) => not_found(),
        // A fault is logged whole; the answer says what failed, not the
        // command's output or the hosts it ran on.
        (None, e) => text(status, e.answer()),
        (Some(about), e) => text(status, format!("{about}: {}", e.answer())),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

fn accepted(id: &str) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/queue/{id}")).expect("ids are ASCII"),
    );
    response
}

/// Run `work` through the queue: `202` with its `Location`, or `429`.
pub(super) fn queued(
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
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            response
        }
    }
}

/// How a queued engine call ends: `Ok` says where its result is.
pub(super) fn finished<T>(
    result: Result<T, EngineError>,
    location: impl FnOnce(T) -> Finished,
) -> Finished {
    match result {
        Ok(value) => location(value),
        Err(e) => Finished::Failed(e.answer()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyError;

    #[test]
    fn engine_errors_map_to_heketis_statuses() {
        let cases = [
            (EngineError::Invalid("x".into()), 400),
            (
                EngineError::NotFound {
                    kind: "node",
                    name: "n".into(),
                },
                404,
            ),
            (EngineError::Conflict("busy".into()), 409),
            (
                EngineError::Policy(PolicyError::Unknown {
                    name: "p".into(),
                    available: String::new(),
                }),
                400,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(engine_status(&error).as_u16(), status, "{error}");
        }
    }

    #[test]
    fn a_full_policy_pool_is_a_503_with_retry_after() {
        let busy = EngineError::Policy(PolicyError::Fault {
            policy: "zone-spread".into(),
            decision: crate::model::Decision::Placement,
            fault: crate::policy::Fault::Busy {
                slots: 64,
                waited: Duration::from_millis(100),
            },
        });
        let response = engine_error(busy);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        // Other faults stay 500, without Retry-After.
        let timeout = engine_error(EngineError::Policy(PolicyError::Fault {
            policy: "p".into(),
            decision: crate::model::Decision::Placement,
            fault: crate::policy::Fault::Timeout {
                deadline: Duration::from_millis(100),
            },
        }));
        assert_eq!(timeout.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(timeout.headers().get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn an_error_about_part_of_a_request_names_it_and_keeps_its_class() {
        let text_of = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        let unknown = engine_error_about(
            "claim db-1",
            EngineError::Policy(PolicyError::Unknown {
                name: "nope".into(),
                available: "zone-spread".into(),
            }),
        );
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            text_of(unknown).await,
            "claim db-1: no policy named 'nope' (available: zone-spread)\n"
        );
        let fault = engine_error_about(
            "claim db-1",
            EngineError::Policy(PolicyError::Fault {
                policy: "p".into(),
                decision: crate::model::Decision::Placement,
                fault: crate::policy::Fault::Timeout {
                    deadline: Duration::from_millis(100),
                },
            }),
        );
        assert_eq!(fault.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = text_of(fault).await;
        assert!(
            body.starts_with("claim db-1: policy 'p' failed its placement decision")
                && body.contains("error id "),
            "{body}"
        );
    }

    #[test]
    fn a_malformed_header_is_400_and_every_other_failure_401() {
        assert_eq!(auth_status(&AuthError::BadHeader), StatusCode::BAD_REQUEST);
        for e in [
            AuthError::Missing,
            AuthError::Signature,
            AuthError::Expired("Token is expired by 1s".into()),
        ] {
            assert_eq!(auth_status(&e), StatusCode::UNAUTHORIZED, "{e}");
        }
    }

    #[test]
    fn only_volume_routes_are_open_to_users() {
        assert!(user_may(&Method::POST, "/volumes"));
        assert!(user_may(&Method::DELETE, "/volumes/abc"));
        assert!(user_may(&Method::GET, "/clusters"));
        for (method, path) in [
            (Method::POST, "/clusters"),
            (Method::POST, "/nodes"),
            (Method::GET, "/operations"),
            (Method::GET, "/db/dump"),
            (Method::GET, "/backup/db"),
            (Method::GET, "/db/check"),
            (Method::POST, "/admin"),
            (Method::GET, "/admin"),
            (Method::POST, "/internal/logging"),
            (Method::GET, "/operations/pending"),
            (Method::POST, "/blockvolumes"),
            (Method::POST, "/volumes/abc/block-restriction"),
            (Method::GET, "/aplo/v1/policies"),
            (Method::POST, "/devices/abc/tags"),
        ] {
            assert!(!user_may(&method, path), "{method} {path}");
        }
    }
}
