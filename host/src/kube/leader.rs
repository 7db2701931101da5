//! Leader election on a coordination.k8s.io Lease.
//!
//! Only the lease holder acts. A candidate takes the lease when it is free
//! or when its holder has not renewed it for a whole lease duration, timed
//! by the candidate's own clock from when it last saw the record change
//! (so clock skew between nodes does not matter). The holder renews every
//! retry period and gives up when it could not renew within the renew
//! deadline, which is shorter than the lease duration: it stops acting
//! before anyone else may start.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
// tokio's clock, so that tests can drive the election with a paused clock;
// outside tests it is the monotonic clock `std::time::Instant` reads.
use tokio::time::Instant;

/// Settings of the election.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates try and the holder renews.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The Kubernetes defaults (15 s, 10 s, 2 s) for `identity`.
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Check that the timings make sense together.
    pub fn check(&self) -> Result<(), LeaseConfigError> {
        if self.identity.is_empty() {
            return Err(LeaseConfigError::NoIdentity);
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(LeaseConfigError::Timings {
                retry_period: self.retry_period,
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        Ok(())
    }
}

/// Why a [`LeaseConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    /// The identity is empty.
    #[error("the leader-election identity is empty")]
    NoIdentity,
    /// The timings are not in the order leader election needs.
    #[error(
        "leader election needs retry period < renew deadline < lease duration, not \
         {retry_period:?} / {renew_deadline:?} / {lease_duration:?}"
    )]
    Timings {
        /// How often candidates try.
        retry_period: Duration,
        /// How long the holder tries to renew.
        renew_deadline: Duration,
        /// How long a lease lasts.
        lease_duration: Duration,
    },
}

/// What a candidate last saw of the lease, and when.
struct Observed {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Instant,
}

/// A held lease; it is renewed in the background until dropped or lost.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
    config: LeaseConfig,
}

impl Leadership {
    /// Resolves when the lease is lost (renewal failed past the deadline,
    /// or someone else holds it).
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the renewer ended, which only happens on loss.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Stop renewing and hand the lease back, so a standby can take over at
    /// once instead of after a lease duration.
    pub async fn release(self) {
        self.renewer.abort();
        if *self.lost.borrow() {
            return;
        }
        let Ok(mut lease) = self.api.get(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "leader lease released"),
            Err(e) => {
                tracing::warn!(lease = %self.config.name, error = %e, "could not release the leader lease")
            }
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One attempt to take or renew the lease. `Ok(true)` when we hold it now.
async fn try_hold(
    api: &Api<Lease>,
    config: &LeaseConfig,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds(config.lease_duration)),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let changed = observed
        .as_ref()
        .is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renew: spec.renew_time.clone(),
            at: Instant::now(),
        });
    }
    let ours = holder.as_deref() == Some(config.identity.as_str());
    if let (Some(_), false) = (&holder, ours) {
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(15).max(1)).unwrap_or(15),
        );
        let seen = observed.as_ref().map_or_else(Instant::now, |o| o.at);
        if seen.elapsed() < duration {
            return Ok(false);
        }
    }
    if !ours {
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.holder_identity = Some(config.identity.clone());
    }
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(seconds(config.lease_duration));
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Wait until this instance holds the lease, then keep renewing it.
pub async fn acquire(api: Api<Lease>, config: LeaseConfig) -> Leadership {
    let mut observed = None;
    let mut logged_holder = None;
    loop {
        match try_hold(&api, &config, &mut observed).await {
            Ok(true) => break,
            Ok(false) => {
                let holder = observed.as_ref().and_then(|o| o.holder.clone());
                if holder != logged_holder {
                    tracing::info!(lease = %config.name, holder = ?holder, "standing by: another instance leads");
                    logged_holder = holder;
                }
            }
            Err(e) => {
                tracing::warn!(lease = %config.name, error = %e, "leader election attempt failed")
            }
        }
        tokio::time::sleep(jittered(config.retry_period)).await;
    }
    tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
    let (tell, lost) = watch::channel(false);
    let renewer = {
        let (api, config) = (api.clone(), config.clone());
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(config.retry_period).await;
                let attempt =
                    tokio::time::timeout(config.renew_deadline, try_hold(&api, &config, &mut None))
                        .await;
                match attempt {
                    Ok(Ok(true)) => last = Instant::now(),
                    Ok(Ok(false)) => {
                        tracing::error!(lease = %config.name, "another instance took the leader lease");
                        break;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(lease = %config.name, error = %e, "renewing the leader lease failed")
                    }
                    Err(_) => {
                        tracing::warn!(lease = %config.name, "renewing the leader lease timed out")
                    }
                }
                if last.elapsed() >= config.renew_deadline {
                    tracing::error!(lease = %config.name, "could not renew the leader lease within the renew deadline");
                    break;
                }
            }
            let _ = tell.send(true);
        })
    };
    Leadership {
        lost,
        renewer,
        api,
        config,
    }
}

/// The retry period plus up to 20% more, so that candidates spread out.
fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    period + period.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

/// The pod label that tells the leader from standbys, for a Service that
/// routes the REST API and the admission webhook to the leader only (the
/// same idea as Patroni's role label).
pub const ROLE_LABEL: &str = "aplo.dev/role";

/// This process's pod, to label with its role.
#[derive(Debug, Clone)]
pub struct PodRef {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

/// Set [`ROLE_LABEL`] on our pod to `leader` or `standby`. A failure is
/// logged, not fatal: the pod still works, clients just reach it less well.
pub async fn label_role(client: &kube::Client, pod: &PodRef, role: &str) {
    use k8s_openapi::api::core::v1::Pod;
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let patch = serde_json::json!({ "metadata": { "labels": { ROLE_LABEL: role } } });
    match api
        .patch(
            &pod.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => tracing::info!(pod = %pod.name, role, "pod role label set"),
        Err(e) => {
            tracing::warn!(pod = %pod.name, role, error = %e, "could not label this pod with its role")
        }
    }
}

#[cfg(test)]
mod tests {
    //! The election against a Lease API held in memory, on tokio's paused
    //! clock: the runtime jumps to the next timer whenever every task
    //! waits, so the timings are exact and nothing sleeps for real.

    use std::sync::{Arc, Mutex};

    use axum::http;
    use http_body_util::BodyExt;
    use kube::client::Body;

    use super::*;

    /// The one Lease, and what the fake API server was asked.
    #[derive(Default)]
    struct Server {
        lease: Option<Lease>,
        /// Answer every call with a 500 (an unreachable API server).
        failing: bool,
        /// Whether a GET moves the holder's renew time on (a live holder).
        holder_renews: bool,
        /// GETs answered: a positive sign that a candidate looked.
        gets: u32,
        /// Writes (create or replace) accepted.
        writes: u32,
    }

    fn status(code: u16, reason: &str) -> http::Response<Body> {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "code": code, "reason": reason, "message": reason,
        });
        http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    }

    fn ok(lease: &Lease) -> http::Response<Body> {
        let mut value = serde_json::to_value(lease).unwrap();
        value["apiVersion"] = "coordination.k8s.io/v1".into();
        value["kind"] = "Lease".into();
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&value).unwrap()))
            .unwrap()
    }

    async fn answer(
        server: Arc<Mutex<Server>>,
        request: http::Request<Body>,
    ) -> http::Response<Body> {
        let method = request.method().clone();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut server = server.lock().unwrap();
        if server.failing {
            return status(500, "InternalError");
        }
        match method {
            http::Method::GET => {
                server.gets += 1;
                let (renews, gets) = (server.holder_renews, server.gets);
                match &mut server.lease {
                    None => status(404, "NotFound"),
                    Some(lease) => {
                        if renews {
                            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                            let n = spec.lease_transitions.unwrap_or(0);
                            // A new renew time each time it is read.
                            spec.renew_time = Some(MicroTime(
                                Timestamp::from_second(1_000_000 + i64::from(gets)).unwrap(),
                            ));
                            spec.lease_transitions = Some(n);
                        }
                        ok(lease)
                    }
                }
            }
            http::Method::POST if server.lease.is_some() => status(409, "AlreadyExists"),
            http::Method::POST | http::Method::PUT => {
                let lease: Lease = serde_json::from_slice(&body).unwrap();
                server.writes += 1;
                server.lease = Some(lease.clone());
                ok(&lease)
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }

    fn api(server: &Arc<Mutex<Server>>) -> Api<Lease> {
        let server = server.clone();
        let service = tower::service_fn(move |request: http::Request<Body>| {
            let server = server.clone();
            async move { Ok::<_, std::convert::Infallible>(answer(server, request).await) }
        });
        Api::namespaced(kube::Client::new(service, "aplo-system"), "aplo-system")
    }

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig::new("aplo-system", "aplo", identity)
    }

    fn held_by(holder: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("aplo".into()),
                namespace: Some("aplo-system".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(Timestamp::from_second(1_000_000).unwrap())),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    fn holder(server: &Arc<Mutex<Server>>) -> Option<String> {
        let server = server.lock().unwrap();
        server
            .lease
            .as_ref()?
            .spec
            .as_ref()?
            .holder_identity
            .clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_lease_is_taken_at_once_and_renewed_every_retry_period() {
        let server = Arc::new(Mutex::new(Server::default()));
        let started = Instant::now();
        let leadership = acquire(api(&server), config("a")).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(holder(&server).as_deref(), Some("a"));
        assert_eq!(server.lock().unwrap().writes, 1);

        // Three retry periods later it has renewed three times.
        tokio::time::sleep(Duration::from_secs(6) + Duration::from_millis(1)).await;
        assert_eq!(server.lock().unwrap().writes, 4);
        drop(leadership);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_is_taken_only_after_a_whole_lease_duration() {
        let server = Arc::new(Mutex::new(Server {
            lease: Some(held_by("a")),
            ..Server::default()
        }));
        let started = Instant::now();
        // Bounded, so that a clock the pause does not drive fails the test
        // instead of hanging it.
        let _leadership =
            tokio::time::timeout(Duration::from_secs(120), acquire(api(&server), config("b")))
                .await
                .expect("the candidate never took the expired lease");
        let waited = started.elapsed();
        // From its first look: 15 s, then at most one jittered retry
        // period (2 s + 20%) until the next attempt.
        assert!(
            waited >= Duration::from_secs(15) && waited <= Duration::from_millis(17_400),
            "took the lease after {waited:?}"
        );
        assert_eq!(holder(&server).as_deref(), Some("b"));
        let spec = server.lock().unwrap().lease.clone().unwrap().spec.unwrap();
        assert_eq!(spec.lease_transitions, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_its_holder_renews_is_never_taken() {
        let server = Arc::new(Mutex::new(Server {
            lease: Some(held_by("a")),
            holder_renews: true,
            ..Server::default()
        }));
        let attempt =
            tokio::time::timeout(Duration::from_secs(60), acquire(api(&server), config("b"))).await;
        assert!(attempt.is_err(), "took a lease its holder renews");
        // It kept looking all along (every retry period, jittered up to
        // 20%), so "not taken" is not "never tried".
        let gets = server.lock().unwrap().gets;
        assert!((25..=31).contains(&gets), "looked {gets} times in 60 s");
        assert_eq!(holder(&server).as_deref(), Some("a"));
        assert_eq!(server.lock().unwrap().writes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_gives_up_when_it_cannot_renew_within_the_renew_deadline() {
        let server = Arc::new(Mutex::new(Server::default()));
        let leadership = acquire(api(&server), config("a")).await;
        let last_renewal = Instant::now();
        server.lock().unwrap().failing = true;
        tokio::time::timeout(Duration::from_secs(120), leadership.lost())
            .await
            .expect("the holder never gave up");
        // The renewal after the deadline (10 s) has passed notices it: the
        // attempts are 2 s apart.
        let after = last_renewal.elapsed();
        assert!(
            after >= Duration::from_secs(10) && after <= Duration::from_secs(12),
            "gave up after {after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_gives_up_at_once_when_another_takes_the_lease() {
        let server = Arc::new(Mutex::new(Server::default()));
        let leadership = acquire(api(&server), config("a")).await;
        let started = Instant::now();
        server.lock().unwrap().lease = Some(held_by("b"));
        leadership.lost().await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
