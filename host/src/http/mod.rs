//! aplo's HTTP surface, on one listener: the heketi-compatible REST API
//! ([`api`]), the PVC admission webhook ([`admission`]), Prometheus
//! metrics and health.
//!
//! - `GET /metrics`: the Prometheus text format (provisioner, policy,
//!   HTTP request and heketi storage metrics);
//! - `GET /healthz`: 200 while the process runs;
//! - `GET /readyz`: 200 when this instance serves: the store is open, the
//!   policies are loaded and, in controller mode, the watches have synced.
//!   A standby answers 503, or 200 with `?standby=ok` (the pod readiness
//!   probe: a healthy standby is ready to take over, while the Service
//!   routes to the leader by its pod label);
//! - everything else goes to the REST API while this instance has the
//!   store open, and is answered 503 (naming the phase) while it does not.

pub mod admission;
pub mod api;
pub mod auth;
pub mod control;
pub mod heketi;
pub mod heketi_metrics;
pub mod native;
pub mod queue;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

use crate::engine::Engine;
use crate::front::metrics::{HttpRequest, HttpRoute};
use crate::front::{Metrics, Phase, Status};

/// How the REST API is served.
#[derive(Clone)]
pub struct ApiConfig {
    /// The JWT keys; `None` disables authentication (development only).
    pub keys: Option<auth::Keys>,
    /// Queued operations; kept across leadership changes of this process.
    pub queue: Arc<queue::Queue>,
    /// heketi's admin mode (attach the store when it opens) and the log
    /// filter.
    pub control: control::ServerControl,
}

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The phase and, while this instance has the store open, the engine.
    pub status: Arc<Status>,
    /// The REST API; `None` serves only metrics, health and `extra`.
    pub api: Option<ApiConfig>,
    /// Routes served whatever the phase (the admission webhook).
    pub extra: Router,
    /// Whether the Kubernetes controllers run (readiness then waits for
    /// their watches to sync).
    pub controller: bool,
    built: Arc<Mutex<Option<BuiltApi>>>,
}

/// The REST API router and the engine it was built over.
type BuiltApi = (Arc<Engine>, Router);

impl HttpState {
    /// Metrics and health only; add the API with [`HttpState::with_api`].
    pub fn new(metrics: Arc<Metrics>, status: Arc<Status>) -> HttpState {
        HttpState {
            metrics,
            status,
            api: None,
            extra: Router::new(),
            controller: true,
            built: Arc::default(),
        }
    }

    /// Serve the REST API too.
    pub fn with_api(mut self, config: ApiConfig) -> HttpState {
        self.api = Some(config);
        self
    }

    /// Serve these routes too, whatever the phase.
    pub fn with_routes(mut self, routes: Router) -> HttpState {
        self.extra = self.extra.merge(routes);
        self
    }

    /// Without Kubernetes controllers (`aplo serve --api-only`).
    pub fn without_controller(mut self) -> HttpState {
        self.controller = false;
        self
    }

    /// The REST API router over the current engine, built once per engine.
    fn api_router(&self, config: &ApiConfig, engine: Arc<Engine>) -> Router {
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*built {
            Some((current, router)) if Arc::ptr_eq(current, &engine) => router.clone(),
            _ => {
                let router = api::router_with(
                    api::ApiState {
                        engine: engine.clone(),
                        keys: config.keys.clone(),
                        queue: config.queue.clone(),
                    },
                    config.control.clone(),
                )
                .layer(middleware::from_fn(label_route));
                *built = Some((engine, router.clone()));
                router
            }
        }
    }
}

/// The route template an inner router matched, passed out to [`track`].
#[derive(Clone)]
struct RouteLabel(String);

async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Count and time every request by route template (never the raw path,
/// which would make a series per volume id).
async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = matched
        .or_else(|| {
            response
                .extensions()
                .get::<RouteLabel>()
                .map(|r| r.0.clone())
        })
        .unwrap_or_else(|| "unmatched".to_owned());
    metrics
        .http_duration
        .get_or_create(&HttpRoute {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpRequest {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    let metrics = state.metrics.clone();
    let extra = state.extra.clone();
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(dispatch)
        .with_state(state)
        .merge(extra)
        .layer(middleware::from_fn_with_state(metrics, track))
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn dispatch(State(state): State<HttpState>, request: Request) -> Response {
    let Some(config) = &state.api else {
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    };
    let Some(engine) = state.status.engine() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this aplo instance does not have the store open (phase: {:?}); the leader serves the API, retry shortly\n",
                state.status.phase()
            ),
        );
    };
    let router = state.api_router(config, engine);
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn render_metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    if let Some(engine) = state.status.engine() {
        // heketi's storage gauges, before OpenMetrics' end marker.
        let heketi = engine.with_state(heketi_metrics::heketi_metrics);
        let end = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(end, &heketi);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// `/readyz` query parameters.
#[derive(Debug, Default, serde::Deserialize)]
struct ReadyQuery {
    /// `ok`: a healthy standby counts as ready.
    #[serde(default)]
    standby: Option<String>,
}

async fn ready(State(state): State<HttpState>, Query(query): Query<ReadyQuery>) -> Response {
    let phase = state.status.phase();
    let engine = state.status.engine();
    let policies = engine.as_ref().map_or(0, |e| e.registry().list().len());
    let synced = !state.controller || state.status.synced();
    let serving = phase == Phase::Leading && engine.is_some() && policies > 0 && synced;
    let standby_ok = query.standby.as_deref() == Some("ok") && phase == Phase::Standby;
    let report = format!(
        "{phase:?}\nstore: {}\npolicies: {policies} loaded\nwatches: {}\n",
        if engine.is_some() { "open" } else { "closed" },
        match (state.controller, state.status.synced()) {
            (false, _) => "none (API only)",
            (true, true) => "synced",
            (true, false) => "not synced",
        }
    );
    let code = if serving || standby_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(code, report)
}

/// Bind `addr` and serve until the future is dropped; returns the bound
/// address (useful with port 0) and the serving future. Handlers see each
/// client's address (`ConnectInfo<SocketAddr>`).
pub async fn bind(
    addr: SocketAddr,
    state: HttpState,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn standby() -> (Arc<Status>, Router) {
        let status = Arc::new(Status::default());
        status.enter(Phase::Standby);
        let state = HttpState::new(Arc::new(Metrics::new()), status.clone()).with_api(ApiConfig {
            keys: None,
            queue: queue::Queue::new(1, api::KEEP_RESULTS),
            control: control::ServerControl::default(),
        });
        (status, router(state))
    }

    #[tokio::test]
    async fn a_standby_answers_the_api_with_503_naming_its_phase() {
        let (_, router) = standby();
        let (status, body) = get(&router, "/volumes").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("does not have the store open (phase: Standby)"),
            "{body}"
        );
        let (status, _) = get(&router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn readiness_is_strict_unless_a_standby_is_asked_about() {
        let (status, router) = standby();
        let (code, body) = get(&router, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "Standby\nstore: closed\npolicies: 0 loaded\nwatches: not synced\n"
        );
        let (code, _) = get(&router, "/readyz?standby=ok").await;
        assert_eq!(code, StatusCode::OK);
        status.enter(Phase::Stopped);
        let (code, _) = get(&router, "/readyz?standby=ok").await;
        assert_eq!(
            code,
            StatusCode::SERVICE_UNAVAILABLE,
            "a stopped instance is not ready"
        );
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template() {
        let (_, router) = standby();
        get(&router, "/volumes/0123").await;
        get(&router, "/healthz").await;
        let (_, metrics) = get(&router, "/metrics").await;
        for needle in [
            "aplo_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"503\"} 1",
            "aplo_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        ] {
            assert!(metrics.contains(needle), "no {needle} in:\n{metrics}");
        }
        assert!(!metrics.contains("0123"), "raw paths are not labels");
    }
}
