//! The PersistentVolumeClaim admission webhook: `POST /admission/pvc`.
//!
//! The API server sends an `admission.k8s.io/v1` AdmissionReview for every
//! claim CREATE and UPDATE; the webhook answers with the same review kind,
//! `response.uid` copied from the request. For aplo's claims it asks the
//! claim's StorageClass policies up front, so that a claim the policies
//! would refuse is refused at `kubectl apply` time, not left Pending with an
//! event:
//!
//! - **CREATE**: the durability policy, then the quota policy (if the class
//!   has one) with the namespace's and cluster's usage, as provisioning
//!   would.
//! - **UPDATE** that grows `spec.resources.requests.storage`: the quota
//!   policy, with the current size, as the engine's expansion does. An
//!   UPDATE that leaves the request alone is allowed; one that shrinks it is
//!   left to the API server's own validation (allowed here).
//! - DELETE and CONNECT are allowed (the webhook configuration does not send
//!   them).
//!
//! Which claims are aplo's: the class named by `spec.storageClassName`, or
//! the default class when the claim names none, must have aplo's
//! provisioner. Claims of other provisioners, with no class (`""`), with no
//! default class, or pre-bound to a PV (`spec.volumeName`) are allowed
//! untouched. A claim whose class does not exist is allowed with a warning:
//! the PV controller leaves it Pending until the class appears, and refusing
//! it would only make the order of `kubectl apply` matter.
//!
//! Answers:
//!
//! - a policy's refusal is always a denial, code 403 `Forbidden`, with the
//!   policy's message; a claim aplo cannot provision at all (a selector,
//!   `volumeMode: Block`, a data source, no size) is denied with 422
//!   `Invalid`;
//! - when the webhook cannot decide (a policy fault such as a timeout, trap
//!   or memory limit, a full instance pool, a misconfigured class, usage
//!   not yet known on this replica, or no answer from the policies within
//!   [`AdmissionOptions::answer_within`]), the [`FailurePolicy`] says what
//!   happens: `Fail` denies with code 500 and a message naming the class,
//!   policy and fault; `Ignore` allows with that message as a warning. So
//!   every review is answered, and in time;
//! - a malformed review (not JSON, not an `admission.k8s.io/v1`
//!   AdmissionReview, no request, not a PersistentVolumeClaim) gets HTTP 400
//!   with a plain-text reason; a body over [`MAX_BODY_BYTES`] gets 413,
//!   before any of it is read when its `Content-Length` says so.
//!
//! Policy work runs on the blocking pool, one task per review, in fresh
//! instances; resolved policy sets are cached per class parameters and
//! dropped when the registry's policies change.

mod decide;
mod error;
pub mod review;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::Store;

use super::api::text;
use crate::front::claim::DEFAULT_PROVISIONER;
use crate::model::Usage;
use crate::policy::Registry;

pub use error::AdmissionError;

/// The webhook's path.
pub const PATH: &str = "/admission/pvc";
/// The largest review body accepted: kube-apiserver's own request limit.
pub const MAX_BODY_BYTES: usize = 3 << 20;
/// The annotation that marks the default StorageClass.
pub const ANN_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The older spelling of [`ANN_DEFAULT_CLASS`].
pub const ANN_BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// What to answer when the webhook cannot decide (a policy fault, a
/// misconfigured class, usage not available). A policy's refusal is not
/// such a case: it is always a denial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Deny, with the reason as the message (the default).
    #[default]
    Fail,
    /// Allow, with the reason as a warning.
    Ignore,
}

impl FromStr for FailurePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "fail" => Ok(FailurePolicy::Fail),
            "ignore" => Ok(FailurePolicy::Ignore),
            _ => Err(format!(
                "unknown failure policy '{text}' (use Fail or Ignore)"
            )),
        }
    }
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        })
    }
}

/// StorageClasses by name.
pub trait Classes: Send + Sync {
    /// The class named `name`.
    fn get(&self, name: &str) -> Option<Arc<StorageClass>>;
    /// The default class: the one annotated [`ANN_DEFAULT_CLASS`] (or its
    /// beta spelling) `"true"`; the newest if several are.
    fn default_class(&self) -> Option<Arc<StorageClass>>;
}

/// Whether a class is marked default.
pub fn is_default_class(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        [ANN_DEFAULT_CLASS, ANN_BETA_DEFAULT_CLASS]
            .iter()
            .any(|k| a.get(*k).is_some_and(|v| v == "true"))
    })
}

/// The newest of several default classes, as Kubernetes picks it (then by
/// name, for a stable answer).
fn newest(classes: impl Iterator<Item = Arc<StorageClass>>) -> Option<Arc<StorageClass>> {
    classes.max_by(|a, b| {
        (&a.metadata.creation_timestamp, &b.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &a.metadata.name))
    })
}

impl Classes for Store<StorageClass> {
    fn get(&self, name: &str) -> Option<Arc<StorageClass>> {
        Store::get(self, &kube::runtime::reflector::ObjectRef::new(name))
    }

    fn default_class(&self) -> Option<Arc<StorageClass>> {
        newest(self.state_filter(is_default_class).into_iter())
    }
}

/// A fixed set of classes (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct StaticClasses(BTreeMap<String, Arc<StorageClass>>);

impl StaticClasses {
    /// The classes, by their names.
    pub fn new(classes: impl IntoIterator<Item = StorageClass>) -> StaticClasses {
        StaticClasses(
            classes
                .into_iter()
                .map(|c| (c.metadata.name.clone().unwrap_or_default(), Arc::new(c)))
                .collect(),
        )
    }
}

impl Classes for StaticClasses {
    fn get(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.0.get(name).cloned()
    }

    fn default_class(&self) -> Option<Arc<StorageClass>> {
        newest(self.0.values().filter(|c| is_default_class(c)).cloned())
    }
}

/// The usage the quota policy is asked with.
pub trait UsageSource: Send + Sync {
    /// What the volumes of `namespace` and of the whole cluster hold, not
    /// counting the volume of the claim `claim` of `namespace` if it has one
    /// (an expansion is checked as the claim's new total against the rest);
    /// `None` when this replica cannot tell yet. Called on the async
    /// reactor: it must be quick and must not block on I/O.
    fn usage(&self, namespace: &str, claim: &str) -> Option<(Usage, Usage)>;
}

impl<F> UsageSource for F
where
    F: Fn(&str, &str) -> Option<(Usage, Usage)> + Send + Sync,
{
    fn usage(&self, namespace: &str, claim: &str) -> Option<(Usage, Usage)> {
        self(namespace, claim)
    }
}

/// How long the webhook takes at most to answer by default: below the 5 s
/// `timeoutSeconds` of `deploy/base/webhook.yaml`, so that the API server
/// always gets aplo's answer rather than its own timeout.
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// How the webhook is set up.
#[derive(Debug, Clone)]
pub struct AdmissionOptions {
    /// The provisioner name whose classes are aplo's.
    pub provisioner: String,
    /// What to answer when the webhook cannot decide.
    pub failure_policy: FailurePolicy,
    /// How long the policies may take before the failure policy answers
    /// instead; keep it below the webhook configuration's `timeoutSeconds`.
    pub answer_within: Duration,
}

impl Default for AdmissionOptions {
    fn default() -> Self {
        AdmissionOptions {
            provisioner: DEFAULT_PROVISIONER.to_owned(),
            failure_policy: FailurePolicy::Fail,
            answer_within: DEFAULT_ANSWER_WITHIN,
        }
    }
}

/// What the webhook reads; cheap to clone.
#[derive(Clone)]
pub struct AdmissionState {
    inner: Arc<decide::Reviewer>,
}

impl AdmissionState {
    /// A webhook over `registry`'s policies, `classes` and `usage`.
    pub fn new(
        registry: Arc<Registry>,
        classes: Arc<dyn Classes>,
        usage: Arc<dyn UsageSource>,
        options: AdmissionOptions,
    ) -> AdmissionState {
        AdmissionState {
            inner: Arc::new(decide::Reviewer::new(registry, classes, usage, options)),
        }
    }
}

/// The webhook's route: `POST /admission/pvc` ([`PATH`]).
pub fn router(state: AdmissionState) -> Router {
    Router::new()
        .route(PATH, post(review_pvc))
        .with_state(state)
}

#[tracing::instrument(skip_all)]
async fn review_pvc(State(state): State<AdmissionState>, request: Request) -> Response {
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let request = match review::parse(&body) {
        Ok(request) => request,
        Err(message) => {
            tracing::warn!(%message, "malformed admission review");
            return text(StatusCode::BAD_REQUEST, message.to_string());
        }
    };
    drop(body);
    let response = state.inner.review(request).await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        response.to_review_json(),
    )
        .into_response()
}

/// The request's body, or the response refusing it: 413 over
/// [`MAX_BODY_BYTES`] (without reading when `Content-Length` says so), 400
/// when the body cannot be read.
async fn read_body(request: Request) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("an admission review is at most {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("reading the review: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn class(name: &str, default: bool, created: i64) -> StorageClass {
        let annotations =
            default.then(|| BTreeMap::from([(ANN_DEFAULT_CLASS.to_owned(), "true".to_owned())]));
        StorageClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations,
                creation_timestamp: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
                )),
                ..ObjectMeta::default()
            },
            provisioner: DEFAULT_PROVISIONER.into(),
            ..StorageClass::default()
        }
    }

    #[test]
    fn the_newest_default_class_wins() {
        let classes = StaticClasses::new([
            class("old", true, 100),
            class("new", true, 200),
            class("plain", false, 300),
        ]);
        let chosen = classes.default_class().unwrap();
        assert_eq!(chosen.metadata.name.as_deref(), Some("new"));
        assert!(classes.get("plain").is_some() && classes.get("none").is_none());
        assert!(
            StaticClasses::new([class("plain", false, 1)])
                .default_class()
                .is_none()
        );
    }

    #[test]
    fn failure_policies_read_like_kubernetes_spells_them() {
        assert_eq!("Fail".parse(), Ok(FailurePolicy::Fail));
        assert_eq!("ignore".parse(), Ok(FailurePolicy::Ignore));
        assert!(
            "maybe"
                .parse::<FailurePolicy>()
                .unwrap_err()
                .contains("Fail or Ignore")
        );
        assert_eq!(FailurePolicy::Ignore.to_string(), "Ignore");
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit_with_or_without_a_length() {
        let unsized_body = |n: usize| Request::new(axum::body::Body::from(vec![b'x'; n]));
        let at_limit = read_body(unsized_body(MAX_BODY_BYTES)).await.unwrap();
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        let over = read_body(unsized_body(MAX_BODY_BYTES + 1))
            .await
            .unwrap_err();
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // A declared length over the limit is refused with an empty body.
        let mut declared = Request::new(axum::body::Body::empty());
        declared.headers_mut().insert(
            header::CONTENT_LENGTH,
            (MAX_BODY_BYTES + 1).to_string().parse().unwrap(),
        );
        let refused = read_body(declared).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
