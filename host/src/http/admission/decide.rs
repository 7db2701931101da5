//! Deciding one review: which claims are aplo's, which policies to ask, and
//! how their answers (or failures) become an admission response.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;

use super::review::{Request, Response};
use super::{AdmissionError, AdmissionOptions, Classes, FailurePolicy, UsageSource};
use crate::front::claim::{class_options, parse_quantity, provision_request, requested_bytes};
use crate::model::{Claim, Decision, QuotaRequest, Verdict};
use crate::policy::{PolicySet, Registry};

/// Policy sets kept at most; the cache is emptied when it is full (there
/// are rarely more than a handful of classes).
const MAX_CACHED: usize = 256;

/// What the policies said.
enum Outcome {
    /// Admitted, with warnings.
    Allowed(Vec<String>),
    /// A policy refused.
    Refused {
        decision: Decision,
        policy: String,
        reason: String,
    },
    /// aplo cannot provision such a claim at all.
    Invalid(String),
    /// The webhook could not decide.
    Failed(AdmissionError),
}

/// What to ask the policies, off the reactor.
struct Job {
    class: Arc<StorageClass>,
    claim: Claim,
    /// 0 for a new claim; the current size for an expansion (then only the
    /// quota policy is asked, as the engine's expansion does).
    current_bytes: u64,
}

/// Policy sets by class parameters, for one registry generation.
#[derive(Default)]
struct Cache {
    generation: u64,
    sets: HashMap<BTreeMap<String, String>, Arc<PolicySet>>,
}

static NO_PARAMETERS: BTreeMap<String, String> = BTreeMap::new();

/// The webhook's logic and what it reads.
pub(super) struct Reviewer {
    registry: Arc<Registry>,
    classes: Arc<dyn Classes>,
    usage: Arc<dyn UsageSource>,
    options: AdmissionOptions,
    cache: RwLock<Cache>,
}

fn class_name(class: &StorageClass) -> &str {
    class.metadata.name.as_deref().unwrap_or_default()
}

impl Reviewer {
    pub(super) fn new(
        registry: Arc<Registry>,
        classes: Arc<dyn Classes>,
        usage: Arc<dyn UsageSource>,
        options: AdmissionOptions,
    ) -> Reviewer {
        Reviewer {
            registry,
            classes,
            usage,
            options,
            cache: RwLock::new(Cache::default()),
        }
    }

    /// Answer a parsed review, always within [`AdmissionOptions::answer_within`]:
    /// policies that have not answered by then are left to finish on their
    /// own (each call ends at its deadline), and the failure policy answers.
    pub(super) async fn review(self: &Arc<Self>, request: Request) -> Response {
        let uid = request.uid.clone();
        let outcome = match self.job(request) {
            Ok(job) => {
                let class = class_name(&job.class).to_owned();
                let reviewer = self.clone();
                let within = self.options.answer_within;
                let task = tokio::task::spawn_blocking(move || reviewer.run(&job));
                match tokio::time::timeout(within, task).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(join)) => Outcome::Failed(AdmissionError::Task {
                        detail: join.to_string(),
                    }),
                    Err(_) => Outcome::Failed(AdmissionError::NoAnswer { class, within }),
                }
            }
            Err(outcome) => outcome,
        };
        self.respond(uid, outcome)
    }

    /// What to ask, or the answer when there is nothing to ask.
    fn job(&self, request: Request) -> Result<Job, Outcome> {
        let allowed = || Outcome::Allowed(Vec::new());
        let (Some(object), create) = (&request.object, request.operation == "CREATE") else {
            return Err(allowed());
        };
        if !create && request.operation != "UPDATE" {
            return Err(allowed());
        }
        let spec = object.spec.as_ref();
        if create
            && spec
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty())
        {
            // Pre-bound to an existing PV: nothing is provisioned.
            return Err(allowed());
        }
        let class = match spec.and_then(|s| s.storage_class_name.as_deref()) {
            Some("") => return Err(allowed()),
            Some(name) => match self.classes.get(name) {
                Some(class) => class,
                None => {
                    return Err(Outcome::Allowed(vec![format!(
                        "StorageClass '{name}' does not exist; aplo did not check the claim, \
                         which stays Pending until the class exists"
                    )]));
                }
            },
            None => match self.classes.default_class() {
                Some(class) => class,
                None => return Err(allowed()),
            },
        };
        if class.provisioner != self.options.provisioner {
            return Err(allowed());
        }
        let namespace = request
            .namespace
            .clone()
            .or_else(|| object.metadata.namespace.clone())
            .unwrap_or_default();
        if create {
            let mut claim = match provision_request(object) {
                Ok(request) => request.claim,
                Err(reason) => {
                    return Err(Outcome::Invalid(format!(
                        "aplo cannot provision this claim of StorageClass '{}': {reason}",
                        class_name(&class)
                    )));
                }
            };
            claim.namespace = namespace;
            if claim.name.is_empty() {
                claim.name = request.name;
            }
            return Ok(Job {
                class,
                claim,
                current_bytes: 0,
            });
        }
        let old = request.old_object.as_ref().ok_or_else(allowed)?;
        // Requests that cannot be read are the API server's validation's
        // business; only a readable growth is checked.
        let (Ok(wanted), Ok(before)) = (requested_bytes(object), requested_bytes(old)) else {
            return Err(allowed());
        };
        if wanted <= before {
            return Err(allowed());
        }
        let mut claim = growth_claim(object, wanted);
        claim.namespace = namespace;
        if claim.name.is_empty() {
            claim.name = request.name;
        }
        Ok(Job {
            class,
            claim,
            current_bytes: capacity(old).unwrap_or(before),
        })
    }

    /// Ask the policies (blocking: runs Wasm).
    fn run(&self, job: &Job) -> Outcome {
        let class = class_name(&job.class);
        let failed = |source| {
            Outcome::Failed(AdmissionError::Policy {
                class: class.to_owned(),
                source,
            })
        };
        let set = match self.policies(&job.class) {
            Ok(set) => set,
            Err(error) => return Outcome::Failed(error),
        };
        if job.current_bytes == 0 {
            match set.durability(&job.claim) {
                Ok(Verdict::Granted(_)) => {}
                Ok(Verdict::Refused(reason)) => {
                    return Outcome::Refused {
                        decision: Decision::Durability,
                        policy: set.durability.policy.name().to_owned(),
                        reason,
                    };
                }
                Err(error) => return failed(error),
            }
        }
        let Some(quota) = &set.quota else {
            return Outcome::Allowed(Vec::new());
        };
        let Some((namespace_usage, cluster_usage)) =
            self.usage.usage(&job.claim.namespace, &job.claim.name)
        else {
            return Outcome::Failed(AdmissionError::NoUsage {
                class: class.to_owned(),
                policy: quota.policy.name().to_owned(),
            });
        };
        let request = QuotaRequest {
            claim: job.claim.clone(),
            current_bytes: job.current_bytes,
            namespace_usage,
            cluster_usage,
        };
        match set.quota(&request) {
            Ok(Verdict::Granted(_)) => Outcome::Allowed(Vec::new()),
            Ok(Verdict::Refused(reason)) => Outcome::Refused {
                decision: Decision::Quota,
                policy: quota.policy.name().to_owned(),
                reason,
            },
            Err(error) => failed(error),
        }
    }

    /// The class's policies, from the cache while the registry's policies
    /// are unchanged. Only resolved sets are cached; errors are retried.
    fn policies(&self, class: &StorageClass) -> Result<Arc<PolicySet>, AdmissionError> {
        let parameters = class.parameters.as_ref().unwrap_or(&NO_PARAMETERS);
        let generation = self.registry.generation();
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if cache.generation == generation
                && let Some(set) = cache.sets.get(parameters)
            {
                return Ok(set.clone());
            }
        }
        let name = class_name(class);
        let options = class_options(class).map_err(|detail| AdmissionError::Class {
            class: name.to_owned(),
            detail: detail.to_string(),
        })?;
        let set = self
            .registry
            .resolve(&options.policy_parameters)
            .map_err(|source| AdmissionError::Policy {
                class: name.to_owned(),
                source,
            })?;
        let set = Arc::new(set);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation != generation || cache.sets.len() >= MAX_CACHED {
            cache.sets.clear();
            cache.generation = generation;
        }
        cache.sets.insert(parameters.clone(), set.clone());
        Ok(set)
    }

    fn respond(&self, uid: String, outcome: Outcome) -> Response {
        match outcome {
            Outcome::Allowed(warnings) => Response::allow(uid, warnings),
            Outcome::Refused {
                decision,
                policy,
                reason,
            } => {
                let message =
                    format!("the {decision} policy '{policy}' refused the claim: {reason}");
                tracing::info!(%message, "claim refused");
                Response::deny(uid, 403, "Forbidden", message)
            }
            Outcome::Invalid(message) => {
                tracing::info!(%message, "claim refused");
                Response::deny(uid, 422, "Invalid", message)
            }
            Outcome::Failed(error) => {
                let policy = self.options.failure_policy;
                tracing::warn!(%error, label = error.label(), failure_policy = %policy, "aplo could not check a claim");
                match policy {
                    FailurePolicy::Fail => Response::deny(
                        uid,
                        500,
                        "InternalError",
                        format!("aplo could not check the claim: {error}"),
                    ),
                    FailurePolicy::Ignore => Response::allow(
                        uid,
                        vec![format!(
                            "aplo could not check the claim and admitted it (failure policy \
                             Ignore): {error}"
                        )],
                    ),
                }
            }
        }
    }
}

/// The claim as the quota policy sees an expansion to `bytes`.
fn growth_claim(object: &PersistentVolumeClaim, bytes: u64) -> Claim {
    let mut claim = match provision_request(object) {
        Ok(request) => request.claim,
        // A bound claim may carry what a new one may not (a selector, a
        // data source): the policy sees its names and size all the same.
        Err(_) => {
            let meta = &object.metadata;
            Claim {
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                labels: meta.labels.clone().unwrap_or_default(),
                annotations: meta.annotations.clone().unwrap_or_default(),
                requested_bytes: bytes,
                access_modes: Vec::new(),
            }
        }
    };
    claim.requested_bytes = bytes;
    claim
}

/// The size a bound claim has now, from its status.
fn capacity(claim: &PersistentVolumeClaim) -> Option<u64> {
    let storage = claim.status.as_ref()?.capacity.as_ref()?.get("storage")?;
    parse_quantity(&storage.0).ok()
}
