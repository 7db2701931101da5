//! Counters and latency histograms of policy decisions, for `/metrics`.
//!
//! Each [`Runtime`](super::Runtime) owns one set, shared by every policy it
//! runs; whoever serves `/metrics` registers it ([`PolicyMetrics::register`]).

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

/// The policy metrics of one runtime. Clones share the same series.
#[derive(Clone)]
pub struct PolicyMetrics {
    decisions: Family<Outcome, Counter>,
    latency: Family<Which, Histogram>,
    running: Gauge,
}

impl std::fmt::Debug for PolicyMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyMetrics")
            .field("running", &self.running.get())
            .finish_non_exhaustive()
    }
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        PolicyMetrics {
            decisions: Family::default(),
            // 50 µs to ~1.6 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(5e-5, 2.0, 16))
            }),
            running: Gauge::default(),
        }
    }
}

impl PolicyMetrics {
    /// Add these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aplo_policy_decisions",
            "Policy decisions by decision, policy and outcome",
            self.decisions.clone(),
        );
        registry.register(
            "aplo_policy_decision_duration_seconds",
            "Time a policy decision took, validation included",
            self.latency.clone(),
        );
        registry.register(
            "aplo_policy_instances_running",
            "Policy instances running now, each in a slot of the instance pool",
            self.running.clone(),
        );
    }

    /// A policy instance took a pool slot.
    pub(super) fn instance_started(&self) {
        self.running.inc();
    }

    /// A policy instance gave its pool slot back.
    pub(super) fn instance_ended(&self) {
        self.running.dec();
    }

    /// Run one decision and record its outcome and latency.
    pub(super) fn measured<T>(
        &self,
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
        self.latency
            .get_or_create(&Which {
                decision,
                policy: policy.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.decisions
            .get_or_create(&Outcome {
                decision,
                policy: policy.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &PolicyMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn each_runtime_counts_its_own_decisions() {
        let (one, other) = (PolicyMetrics::default(), PolicyMetrics::default());
        let granted = one.measured(Decision::Placement, "binpack", || {
            Ok::<_, PolicyError>(Verdict::Granted(()))
        });
        assert!(matches!(granted, Ok(Verdict::Granted(()))));
        let _ = one.measured(Decision::Quota, "namespace-quota", || {
            Ok::<Verdict<()>, _>(Verdict::Refused("over".into()))
        });
        one.instance_started();
        let text = render(&one);
        for needle in [
            "aplo_policy_decisions_total{decision=\"placement\",policy=\"binpack\",outcome=\"granted\"} 1",
            "aplo_policy_decisions_total{decision=\"quota\",policy=\"namespace-quota\",outcome=\"refused\"} 1",
            "aplo_policy_decision_duration_seconds_count{decision=\"placement\",policy=\"binpack\"} 1",
            "aplo_policy_instances_running 1",
        ] {
            assert!(text.contains(needle), "no {needle} in:\n{text}");
        }
        // Another runtime's metrics saw none of it.
        let text = render(&other);
        assert!(!text.contains("binpack"), "{text}");
        assert!(text.contains("aplo_policy_instances_running 0"), "{text}");
        // A clone shares the series.
        one.clone().instance_ended();
        assert!(render(&one).contains("aplo_policy_instances_running 0"));
    }
}
