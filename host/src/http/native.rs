//! aplo's own endpoints, beside heketi's, under `/aplo/v1/` (admin only):
//!
//! - `GET /aplo/v1/policies`: the active policies (as `aplo policy list
//!   --json`);
//! - `GET /aplo/v1/policies/{name}`: one policy: origin, sha256, decisions,
//!   exported WIT interfaces, description, version and settings;
//! - `POST /aplo/v1/simulate`: play a workload of claims through the real
//!   policies and engine on a copy of the current topology, with nothing
//!   run and nothing stored (as `aplo simulate`, without the heketi
//!   comparison);
//! - `GET /aplo/v1/check`: compare the store with gluster and the nodes
//!   (as `aplo check`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::api::{ApiState, body, engine_error, engine_error_about, json, text};
use crate::engine::{Engine, EngineError};
use crate::model::storage::Snapshot;
use crate::model::{Pairs, State as Health};
use crate::plan::simulate::{self, SimClaim};
use crate::policy::{INTERFACES, PolicyError};

/// The routes, to merge into [`super::api::router`] (its authentication
/// applies; none of them is open to the user role).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/aplo/v1/policies", get(policies))
        .route("/aplo/v1/policies/{name}", get(policy))
        .route("/aplo/v1/simulate", post(simulate_run))
        .route("/aplo/v1/check", get(check))
}

async fn policies(State(state): State<ApiState>) -> Response {
    json(StatusCode::OK, &state.engine.registry().list())
}

async fn policy(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let policy = match state.engine.registry().get(&name) {
        Ok(p) => p,
        // The name is in the path: an unknown one is a 404 (elsewhere it
        // is a bad setting, a 400).
        Err(e @ PolicyError::Unknown { .. }) => {
            return text(StatusCode::NOT_FOUND, e.to_string());
        }
        Err(e) => return engine_error(EngineError::Policy(e)),
    };
    let exports: Vec<&str> = INTERFACES
        .iter()
        .filter(|(_, d)| d.is_none_or(|d| policy.makes(d)))
        .map(|(name, _)| *name)
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "name": policy.name(),
            "origin": policy.origin(),
            "sha256": policy.sha256(),
            "wit_package": "aplo:policy@0.1.0",
            "exports": exports,
            "decisions": policy.decisions(),
            "info": policy.info(),
        }),
    )
}

/// The most claims one simulation request may play.
pub const MAX_SIMULATED_CLAIMS: usize = 10_000;

/// `POST /aplo/v1/simulate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    /// The workload, as in `aplo simulate --workload`:
    /// `{"claims": [{"name", "namespace", "size", "count", "parameters", ...}]}`.
    workload: serde_json::Value,
    /// StorageClass parameters for every claim (under each claim's own).
    #[serde(default)]
    parameters: Pairs,
    /// The placement policy (parameter `placement`).
    #[serde(default)]
    placement: Option<String>,
    /// The durability policy (parameter `durability`).
    #[serde(default)]
    durability: Option<String>,
    /// The quota policy (parameter `quota`).
    #[serde(default)]
    quota: Option<String>,
    /// The seed of the simulation's ids.
    #[serde(default = "one")]
    seed: u64,
}

fn one() -> u64 {
    1
}

/// Why a simulation request is refused (a `400` naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SimulateError {
    /// The workload does not parse, or its claims do not expand (why).
    #[error("workload: {0}")]
    Workload(String),
    /// The workload has more claims (how many) than one request may play.
    #[error(
        "workload: {0} claims; a request may simulate at most {MAX_SIMULATED_CLAIMS} (use `aplo simulate` for more)"
    )]
    TooMany(u64),
}

/// The claims of a request, or a 400 naming the field.
fn claims_of(request: &SimulateRequest) -> Result<Vec<SimClaim>, SimulateError> {
    let workload = simulate::parse_workload(&request.workload.to_string())
        .map_err(|e| SimulateError::Workload(e.to_string()))?;
    let mut parameters = request.parameters.clone();
    simulate::choose_policies(
        &mut parameters,
        &request.placement,
        &request.durability,
        &request.quota,
    );
    let total: u64 = workload.claims.iter().map(|c| u64::from(c.count)).sum();
    if total > MAX_SIMULATED_CLAIMS as u64 {
        return Err(SimulateError::TooMany(total));
    }
    simulate::expand(&workload, &parameters).map_err(|e| SimulateError::Workload(e.to_string()))
}

/// The store's contents as the simulation starts from them: nodes the
/// pool reports disconnected are offline, as placement sees them.
fn starting_point(engine: &Engine) -> Snapshot {
    let mut copy = engine.snapshot();
    for node in engine
        .policy_topology()
        .clusters
        .iter()
        .flat_map(|c| &c.nodes)
    {
        if let Some(record) = copy.nodes.get_mut(&node.id) {
            record.state = node.state;
        }
    }
    copy
}

async fn simulate_run(State(state): State<ApiState>, bytes: Bytes) -> Response {
    let request: SimulateRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let claims = match claims_of(&request) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let registry = state.engine.registry().clone();
    // Resolve once up front, off the reactor, so that an unknown policy is
    // one clear 400 rather than one refusal per claim; a policy that
    // fails is answered as every fault is (logged, with an error id).
    let resolving = {
        let registry = registry.clone();
        let claims = claims.clone();
        tokio::task::spawn_blocking(move || {
            claims.iter().try_for_each(|claim| {
                registry
                    .resolve(&claim.parameters)
                    .map(drop)
                    .map_err(|e| (claim.name.clone(), e))
            })
        })
    };
    match resolving.await {
        Ok(Ok(())) => {}
        Ok(Err((claim, e))) => {
            return engine_error_about(&format!("claim {claim}"), EngineError::Policy(e));
        }
        Err(e) => {
            tracing::error!(error = %e, "resolving the policies panicked");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "resolving the policies failed",
            );
        }
    }
    let copy = starting_point(&state.engine);
    let before = copy.volumes.len();
    // The simulation's own engine: a store in memory, a driver that runs
    // nothing. The real store is never written.
    let engine = match Engine::simulation(copy, 0, registry, request.seed) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    let report = engine.play(&claims).await;
    let offline = engine
        .snapshot()
        .nodes
        .values()
        .filter(|n| n.state != Health::Online)
        .count();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "aplo": report,
            "aplo_usable_share": report.usable_share(),
            "volumes_before": before,
            "nodes_not_online": offline,
        }),
    )
}

async fn check(State(state): State<ApiState>) -> Response {
    let report = state.engine.check().await;
    let drift: Vec<serde_json::Value> = report
        .drift
        .iter()
        .map(|d| {
            serde_json::json!({
                "subject": d.subject,
                "problem": d.problem,
                "repairable": d.repair.is_some(),
                "advice": d.advice,
                "text": d.to_string(),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "clean": report.is_clean(),
            "drift": drift,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: serde_json::Value) -> SimulateRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_request_expands_into_claims_with_its_policies() {
        let r = request(serde_json::json!({
            "workload": {"claims": [{"name": "db", "size": "2Gi", "count": 3}]},
            "placement": "binpack",
            "parameters": {"classes.class": "replica2"},
        }));
        let claims = claims_of(&r).unwrap();
        assert_eq!(claims.len(), 3);
        assert_eq!(claims[0].name, "db-1");
        assert_eq!(claims[0].parameters["placement"], "binpack");
        assert_eq!(claims[0].parameters["classes.class"], "replica2");
        assert_eq!(r.seed, 1);
    }

    #[test]
    fn bad_workloads_and_huge_ones_are_refused_by_field() {
        let bad = request(serde_json::json!({"workload": {"claims": [{"size": "lots"}]}}));
        let err = claims_of(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("workload:") && err.contains("size"),
            "{err}"
        );
        let unknown =
            request(serde_json::json!({"workload": {"claims": [{"size": "1Gi", "colour": 1}]}}));
        assert!(
            claims_of(&unknown)
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
        let huge =
            request(serde_json::json!({"workload": {"claims": [{"size": "1Gi", "count": 10001}]}}));
        assert_eq!(claims_of(&huge).unwrap_err(), SimulateError::TooMany(10001));
        assert!(
            claims_of(&huge)
                .unwrap_err()
                .to_string()
                .contains("at most 10000")
        );
        assert!(
            serde_json::from_value::<SimulateRequest>(
                serde_json::json!({"workload": {}, "extra": 1})
            )
            .is_err()
        );
    }
}
