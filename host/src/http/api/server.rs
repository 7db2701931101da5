//! `/admin` (heketi's admin mode), `/internal/logging` (the log level),
//! and [`guard`], which applies the admin mode to every request.
//!
//! The modes, as heketi has them: `normal` runs everything; `read-only`
//! runs reads (`GET`, `HEAD`) and answers every change `503 Service
//! disabled for maintenance`; `local-client` runs reads from anywhere and
//! changes only from a client on aplo's own machine (the loopback
//! address: on the pod, e.g. through `kubectl exec` or `kubectl
//! port-forward`). Unlike heketi's, the mode is kept in the store, so it
//! outlives a restart and passes to the next leader; heketi resets its
//! mode with a signal or a restart on its machine, and aplo's equivalent
//! is `POST /admin` from a local client, which every mode lets through.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{json, text};
use crate::http::control::{LogLevel, ServerControl};
use crate::http::heketi::{AdminStatus, LOGGER, LogLevelInfo};
use crate::model::storage::AdminMode;

/// heketi's answer to a change its admin mode refuses.
pub const DISABLED: &str = "Service disabled for maintenance";

/// Whether an address is this machine's own (IPv4-mapped IPv6 included).
fn is_local(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether `mode` lets a request through. Reads always pass; so do the
/// log level (it changes no storage) and a simulation (it changes
/// nothing). `POST /admin` passes from a local client in every mode, and
/// from elsewhere only where other changes do.
fn admits(mode: AdminMode, method: &Method, path: &str, local: bool) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return true;
    }
    match path {
        "/internal/logging" | "/aplo/v1/simulate" => true,
        "/admin" => local || mode.allows_change(false),
        _ => mode.allows_change(local),
    }
}

/// Refuse what the admin mode does not admit, with heketi's status and
/// message. A request without a peer address (served without connection
/// info) counts as remote.
pub(super) async fn guard(
    State(control): State<ServerControl>,
    request: Request,
    next: Next,
) -> Response {
    let mode = control.mode.mode();
    let local = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| is_local(peer.ip()));
    if !admits(mode, request.method(), request.uri().path(), local) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{DISABLED} (admin mode {mode}: {}; GET /admin shows the mode)",
                match mode {
                    AdminMode::LocalClient => "changes only from aplo's own machine",
                    _ => "no changes",
                }
            ),
        );
    }
    next.run(request).await
}

/// `GET /admin`.
pub(super) async fn admin(Extension(control): Extension<ServerControl>) -> Response {
    json(
        StatusCode::OK,
        &AdminStatus {
            state: control.mode.mode().to_string(),
        },
    )
}

/// `POST /admin`: `{"state": "normal" | "read-only" | "local-client"}`;
/// `204` once the store has it.
pub(super) async fn set_admin(
    Extension(control): Extension<ServerControl>,
    bytes: Bytes,
) -> Response {
    let request: AdminStatus = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("request unable to be parsed: {e}"),
            );
        }
    };
    let mode: AdminMode = match request.state.parse() {
        Ok(m) => m,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("validation failed: state: {e}"),
            );
        }
    };
    if let Err(e) = control.mode.set(mode) {
        tracing::error!(error = %e, "the store failed to keep the admin mode");
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store failed; see aplo's log",
        );
    }
    tracing::info!(%mode, "admin mode set");
    StatusCode::NO_CONTENT.into_response()
}

fn no_log_control() -> Response {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "this server's log level cannot be read or changed at run time (an API embedded without \
         aplo's log setup); restart it with --log LEVEL instead",
    )
}

/// `GET /internal/logging`: `{"loglevel": {"glusterfs": "info"}}`, the
/// most detailed level aplo logs at (heketi's names; `trace` beyond them).
pub(super) async fn logging(Extension(control): Extension<ServerControl>) -> Response {
    let Some(logging) = &control.logging else {
        return no_log_control();
    };
    let level = logging.level().map_or("(unknown)", LogLevel::name);
    json(
        StatusCode::OK,
        &LogLevelInfo {
            loglevel: [(LOGGER.to_owned(), level.to_owned())].into(),
        },
    )
}

/// `POST /internal/logging`: `{"loglevel": {"glusterfs": LEVEL}}` sets
/// aplo's log level (an empty level changes nothing); the answer is the
/// level now, as `GET`.
pub(super) async fn set_logging(
    Extension(control): Extension<ServerControl>,
    bytes: Bytes,
) -> Response {
    let Some(logging) = &control.logging else {
        return no_log_control();
    };
    let request: LogLevelInfo = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("request unable to be parsed: {e}"),
            );
        }
    };
    let Some(wanted) = request.loglevel.get(LOGGER) else {
        return text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Only \"{LOGGER}\" logger may be modified"),
        );
    };
    if !wanted.is_empty() {
        let level: LogLevel = match wanted.parse() {
            Ok(level) => level,
            Err(e) => return text(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        };
        if let Err(e) = logging.set_level(level) {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        tracing::info!(level = level.name(), "log level set");
    }
    self::logging(Extension(control)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_mode_admits_as_heketis_does_and_can_always_be_left_locally() {
        let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
        // (mode, method, path, local, admitted)
        let cases = [
            (AdminMode::Normal, &post, "/volumes", false, true),
            (AdminMode::ReadOnly, &get, "/volumes", false, true),
            (AdminMode::ReadOnly, &Method::HEAD, "/volumes", false, true),
            (AdminMode::ReadOnly, &post, "/volumes", true, false),
            (AdminMode::ReadOnly, &delete, "/volumes/ab", false, false),
            (AdminMode::ReadOnly, &post, "/admin", false, false),
            (AdminMode::ReadOnly, &post, "/admin", true, true),
            (AdminMode::ReadOnly, &post, "/internal/logging", false, true),
            (AdminMode::ReadOnly, &post, "/aplo/v1/simulate", false, true),
            (AdminMode::LocalClient, &post, "/volumes", true, true),
            (AdminMode::LocalClient, &post, "/volumes", false, false),
            (AdminMode::LocalClient, &get, "/volumes", false, true),
            (AdminMode::LocalClient, &post, "/admin", false, false),
            (AdminMode::LocalClient, &post, "/admin", true, true),
            (AdminMode::Normal, &post, "/admin", false, true),
        ];
        for (mode, method, path, local, admitted) in cases {
            assert_eq!(
                admits(mode, method, path, local),
                admitted,
                "{mode} {method} {path} local={local}"
            );
        }
    }

    #[test]
    fn loopback_peers_are_local() {
        for (ip, local) in [
            ("127.0.0.1", true),
            ("127.0.0.2", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.7", false),
            ("::ffff:10.0.0.7", false),
            ("fd00::2", false),
        ] {
            assert_eq!(is_local(ip.parse().unwrap()), local, "{ip}");
        }
    }
}
