//! Counters and latency histograms of policy decisions, for `/metrics`.
//!
//! One process-wide set, because every registry in the process runs the
//! same kind of decisions and a scrape wants them all.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::PolicyError;
use crate::model::{Decision, Verdict};

/// Labels of a decision counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Outcome {
    decision: &'static str,
    policy: String,
    /// `granted`, `refused`, or the error's label (`timeout`, `trap`, ...).
    outcome: String,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Which {
    decision: &'static str,
    policy: String,
}

struct PolicyMetrics {
    decisions: Family<Outcome, Counter>,
    latency: Family<Which, Histogram>,
    running: Gauge,
}

static METRICS: LazyLock<PolicyMetrics> = LazyLock::new(|| PolicyMetrics {
    decisions: Family::default(),
    // 50 µs to ~1.6 s.
    latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(5e-5, 2.0, 16))),
    running: Gauge::default(),
});

/// Add the policy metrics to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "aplo_policy_decisions",
        "Policy decisions by decision, policy and outcome",
        METRICS.decisions.clone(),
    );
    registry.register(
        "aplo_policy_decision_duration_seconds",
        "Time a policy decision took, validation included",
        METRICS.latency.clone(),
    );
    registry.register(
        "aplo_policy_instances_running",
        "Policy instances running now, each in a slot of the instance pool",
        METRICS.running.clone(),
    );
}

/// A policy instance took a pool slot.
pub(super) fn instance_started() {
    METRICS.running.inc();
}

/// A policy instance gave its pool slot back.
pub(super) fn instance_ended() {
    METRICS.running.dec();
}

/// Run one decision and record its outcome and latency.
pub(super) fn measured<T>(
    decision: Decision,
    policy: &str,
    run: impl FnOnce() -> Result<Verdict<T>, PolicyError>,
) -> Result<Verdict<T>, PolicyError> {
    let started = Instant::now();
    let result = run();
    let outcome = match &result {
        Ok(Verdict::Granted(_)) => "granted",
        Ok(Verdict::Refused(_)) => "refused",
        Err(e) => e.label(),
    };
    let decision = decision.as_str();
    METRICS
        .latency
        .get_or_create(&Which {
            decision,
            policy: policy.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    METRICS
        .decisions
        .get_or_create(&Outcome {
            decision,
            policy: policy.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
    result
}
