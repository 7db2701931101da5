//! aplo's HTTP surface: Prometheus metrics and health endpoints (the REST
//! API joins them here).
//!
//! - `GET /metrics`: the Prometheus text format;
//! - `GET /healthz`: 200 while the process runs;
//! - `GET /readyz`: 200 once the instance is a ready standby or leads.

pub mod api;
pub mod auth;
pub mod heketi;
pub mod queue;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::kube::{Metrics, Phase, Status};

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The provisioner's phase.
    pub status: Arc<Status>,
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<HttpState>) -> (StatusCode, String) {
    match state.status.phase() {
        phase @ (Phase::Standby | Phase::Leading) => (StatusCode::OK, format!("{phase:?}\n")),
        phase => (StatusCode::SERVICE_UNAVAILABLE, format!("{phase:?}\n")),
    }
}

/// Bind `addr` and serve until the future is dropped; returns the bound
/// address (useful with port 0) and the serving future.
pub async fn bind(
    addr: SocketAddr,
    state: HttpState,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((
        local,
        async move { axum::serve(listener, router(state)).await },
    ))
}
