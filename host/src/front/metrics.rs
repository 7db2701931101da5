//! The provisioner's Prometheus metrics, named as external-provisioner
//! names them so existing dashboards and alerts keep working, plus the
//! policy decision metrics.

use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `class` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Class {
    /// The StorageClass name.
    pub class: String,
}

/// Labels of expansion counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Expansion {
    /// The StorageClass name.
    pub class: String,
    /// `succeeded` or `failed`.
    pub outcome: &'static str,
}

/// Labels of HTTP request counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpRequest {
    /// The route template, e.g. `/volumes/{id}`; `unmatched` for no route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Labels of HTTP latency histograms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpRoute {
    /// The route template.
    pub route: String,
    /// The method.
    pub method: String,
}

/// Every metric `aplo serve` exposes.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Claims provisioned.
    pub provision_total: Family<Class, Counter>,
    /// Provisioning attempts that failed.
    pub provision_failed: Family<Class, Counter>,
    /// Time to provision, per attempt.
    pub provision_duration: Family<Class, Histogram>,
    /// Volumes deleted.
    pub delete_total: Family<Class, Counter>,
    /// Deletion attempts that failed.
    pub delete_failed: Family<Class, Counter>,
    /// Time to delete, per attempt.
    pub delete_duration: Family<Class, Histogram>,
    /// Expansions by outcome.
    pub expansions: Family<Expansion, Counter>,
    /// 1 while this instance holds the leader lease.
    pub leader: Gauge<i64, AtomicI64>,
    /// Backend volumes deleted because no claim or PV wanted them any more.
    pub orphans_removed: Counter,
    /// HTTP requests answered, by route, method and status.
    pub http_requests: Family<HttpRequest, Counter>,
    /// Time to answer HTTP requests, by route and method.
    pub http_duration: Family<HttpRoute, Histogram>,
}

fn http_durations() -> Histogram {
    // 100 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

fn durations() -> Histogram {
    // 10 ms to ~5.5 min.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics, registered.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            provision_total: Family::default(),
            provision_failed: Family::default(),
            provision_duration: Family::new_with_constructor(durations),
            delete_total: Family::default(),
            delete_failed: Family::default(),
            delete_duration: Family::new_with_constructor(durations),
            expansions: Family::default(),
            leader: Gauge::default(),
            orphans_removed: Counter::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_durations),
        };
        {
            let mut r = metrics.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register(
                "controller_persistentvolumeclaim_provision",
                "Claims provisioned, by StorageClass",
                metrics.provision_total.clone(),
            );
            r.register(
                "controller_persistentvolumeclaim_provision_failed",
                "Provisioning attempts that failed, by StorageClass",
                metrics.provision_failed.clone(),
            );
            r.register(
                "controller_persistentvolumeclaim_provision_duration_seconds",
                "Time of each provisioning attempt, by StorageClass",
                metrics.provision_duration.clone(),
            );
            r.register(
                "controller_persistentvolume_delete",
                "Volumes deleted, by StorageClass",
                metrics.delete_total.clone(),
            );
            r.register(
                "controller_persistentvolume_delete_failed",
                "Deletion attempts that failed, by StorageClass",
                metrics.delete_failed.clone(),
            );
            r.register(
                "controller_persistentvolume_delete_duration_seconds",
                "Time of each deletion attempt, by StorageClass",
                metrics.delete_duration.clone(),
            );
            r.register(
                "aplo_volume_expansions",
                "Volume expansions, by StorageClass and outcome",
                metrics.expansions.clone(),
            );
            r.register(
                "aplo_leader",
                "1 while this instance holds the leader lease",
                metrics.leader.clone(),
            );
            r.register(
                "aplo_orphaned_volumes_removed",
                "Backend volumes removed because no claim or PV wanted them",
                metrics.orphans_removed.clone(),
            );
            r.register(
                "aplo_http_requests",
                "HTTP requests answered, by route, method and status",
                metrics.http_requests.clone(),
            );
            r.register(
                "aplo_http_request_duration_seconds",
                "Time to answer HTTP requests, by route and method",
                metrics.http_duration.clone(),
            );
        }
        metrics
    }

    /// Serve the policy runtime's decision metrics with these.
    pub fn add_policies(&self, policies: &crate::policy::metrics::PolicyMetrics) {
        policies.register(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}
