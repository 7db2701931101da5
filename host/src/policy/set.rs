//! A StorageClass's policies, bound to their settings, with every answer
//! validated before it is returned.

use std::sync::Arc;

use super::error::{Fault, PolicyError, Refusal};
use super::runtime::{LoadedPolicy, PreparedTopology};
use crate::model::options::OptionNames;
use crate::model::text::{MAX_DETAIL_LEN, inert};
use crate::model::validate::{
    LayoutSummary, clean_reason, validate_allowance, validate_durability, validate_layout,
    validate_scheme,
};
use crate::model::{
    Allowance, Claim, Decision, DurabilityDecision, Layout, Pairs, PlacementRequest, QuotaRequest,
    Topology, Verdict,
};

/// A policy with the settings a class gives it.
#[derive(Clone)]
pub struct Bound {
    /// The policy.
    pub policy: Arc<LoadedPolicy>,
    /// Its settings (prefix removed).
    pub settings: Pairs,
}

/// The policies that decide for one StorageClass.
#[derive(Clone)]
pub struct PolicySet {
    /// Durability.
    pub durability: Bound,
    /// Placement.
    pub placement: Bound,
    /// Quota, if the class has one.
    pub quota: Option<Bound>,
    /// Parameters that are not about policies.
    pub host: Pairs,
}

/// A validated layout and what it amounts to.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The layout.
    pub layout: Layout,
    /// Its usable and consumed sizes.
    pub summary: LayoutSummary,
}

/// A broken answer. The detail may quote the answer (an option key, say),
/// which is the guest's text: it is made inert.
fn invalid(bound: &Bound, decision: Decision, rule: &str, detail: String) -> PolicyError {
    PolicyError::Fault {
        policy: bound.policy.name().to_owned(),
        decision,
        fault: Fault::Invalid {
            rule: rule.to_owned(),
            detail: inert(&detail, MAX_DETAIL_LEN),
        },
    }
}

fn verdict<T>(answer: Result<T, Refusal>) -> Verdict<T> {
    match answer {
        Ok(value) => Verdict::Granted(value),
        Err(Refusal(reason)) => Verdict::Refused(clean_reason(&reason)),
    }
}

impl PolicySet {
    /// Decide the durability for a claim. The answer's volume options are
    /// checked for anything gluster would not take as an option (a flag, a
    /// repeated key, a reserved name, a malformed name or value);
    /// [`PolicySet::durability_for`] also checks their names against the
    /// options of the gluster that will be given them.
    pub fn durability(&self, claim: &Claim) -> Result<Verdict<DurabilityDecision>, PolicyError> {
        self.decide_durability(claim, None)
    }

    /// [`PolicySet::durability`], with every option name one of `known`
    /// (or a custom `user.` option).
    pub fn durability_for(
        &self,
        claim: &Claim,
        known: &OptionNames,
    ) -> Result<Verdict<DurabilityDecision>, PolicyError> {
        self.decide_durability(claim, Some(known))
    }

    fn decide_durability(
        &self,
        claim: &Claim,
        known: Option<&OptionNames>,
    ) -> Result<Verdict<DurabilityDecision>, PolicyError> {
        let bound = &self.durability;
        bound
            .policy
            .metrics()
            .measured(Decision::Durability, bound.policy.name(), || {
                let answer = bound.policy.decide(claim, &bound.settings)?;
                if let Ok(decision) = &answer {
                    validate_durability(decision, known)
                        .map_err(|v| invalid(bound, Decision::Durability, v.field, v.detail))?;
                }
                Ok(verdict(answer))
            })
    }

    /// Lay a volume out; the layout is checked against every rule.
    pub fn place(
        &self,
        request: &PlacementRequest,
        topology: &Topology,
    ) -> Result<Verdict<Placed>, PolicyError> {
        self.place_encoded(request, topology, &super::bindings::topology(topology))
    }

    /// [`PolicySet::place`] on a topology encoded beforehand.
    pub fn place_prepared(
        &self,
        request: &PlacementRequest,
        prepared: &PreparedTopology,
    ) -> Result<Verdict<Placed>, PolicyError> {
        self.place_encoded(request, prepared.topology(), prepared.encoded())
    }

    fn place_encoded(
        &self,
        request: &PlacementRequest,
        topology: &Topology,
        encoded: &super::bindings::WitTopology,
    ) -> Result<Verdict<Placed>, PolicyError> {
        let bound = &self.placement;
        bound
            .policy
            .metrics()
            .measured(Decision::Placement, bound.policy.name(), || {
                self.place_checked(request, topology, encoded)
            })
    }

    fn place_checked(
        &self,
        request: &PlacementRequest,
        topology: &Topology,
        encoded: &super::bindings::WitTopology,
    ) -> Result<Verdict<Placed>, PolicyError> {
        let bound = &self.placement;
        // The request comes from the host (and a validated durability
        // answer): a bad one is the host's fault, not the policy's.
        validate_scheme(&request.scheme).map_err(|v| PolicyError::Fault {
            policy: bound.policy.name().to_owned(),
            decision: Decision::Placement,
            fault: Fault::Host {
                detail: format!("invalid placement request: {v}"),
            },
        })?;
        let answer = bound
            .policy
            .place_encoded(request, encoded, &bound.settings)?;
        Ok(verdict(match answer {
            Ok(layout) => {
                let summary = validate_layout(request, topology, &layout)
                    .map_err(|v| invalid(bound, Decision::Placement, v.rule.name(), v.detail))?;
                Ok(Placed { layout, summary })
            }
            Err(reason) => Err(reason),
        }))
    }

    /// Check a claim against quota; a class without a quota policy allows all.
    pub fn quota(&self, request: &QuotaRequest) -> Result<Verdict<Allowance>, PolicyError> {
        self.quota_within(request, None)
    }

    /// [`PolicySet::quota`], with a hard limit above `raw_capacity` (every
    /// device's size, where the caller knows it) refused as a lie.
    pub fn quota_within(
        &self,
        request: &QuotaRequest,
        raw_capacity: Option<u64>,
    ) -> Result<Verdict<Allowance>, PolicyError> {
        let Some(bound) = &self.quota else {
            return Ok(Verdict::Granted(Allowance::default()));
        };
        bound
            .policy
            .metrics()
            .measured(Decision::Quota, bound.policy.name(), || {
                let answer = bound.policy.check(request, &bound.settings)?;
                if let Ok(allowance) = &answer {
                    validate_allowance(allowance, &request.claim, raw_capacity)
                        .map_err(|v| invalid(bound, Decision::Quota, v.field, v.detail))?;
                }
                Ok(verdict(answer))
            })
    }

    /// [`PolicySet::durability_for`] on the blocking pool, off the async
    /// reactor.
    pub async fn durability_async(
        &self,
        claim: Claim,
        known: Arc<OptionNames>,
    ) -> Result<Verdict<DurabilityDecision>, PolicyError> {
        let set = self.clone();
        blocking(move || set.durability_for(&claim, &known)).await
    }

    /// [`PolicySet::place`] on the blocking pool, off the async reactor.
    pub async fn place_async(
        &self,
        request: PlacementRequest,
        topology: Arc<PreparedTopology>,
    ) -> Result<Verdict<Placed>, PolicyError> {
        let set = self.clone();
        blocking(move || set.place_prepared(&request, &topology)).await
    }

    /// [`PolicySet::quota_within`] on the blocking pool, off the async
    /// reactor.
    pub async fn quota_async(
        &self,
        request: QuotaRequest,
        raw_capacity: Option<u64>,
    ) -> Result<Verdict<Allowance>, PolicyError> {
        let set = self.clone();
        blocking(move || set.quota_within(&request, raw_capacity)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PolicyError> + Send + 'static,
) -> Result<T, PolicyError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(PolicyError::Fault {
                policy: "-".into(),
                decision: Decision::Validate,
                fault: Fault::Host {
                    detail: format!("the policy task failed: {join}"),
                },
            })
        })
}
