//! Deciding without a lock, reserving under one.
//!
//! The policies decide on a copy of the state with no engine lock held, so
//! a slow policy delays only its own request, never the others. Then, under
//! the planning lock and without awaiting anything slow, the answers are
//! checked against the state as it is now: the layout against the current
//! topology (every rule again: devices and nodes still online, the space
//! still free after what other operations reserved meanwhile), the quota
//! answer against the usage the policy was shown. Only answers that still
//! hold are reserved and journaled, in the same store write as before, so
//! crash recovery sees exactly what it saw when the lock covered the
//! decisions. Answers that no longer hold are decided again, at most
//! [`DECIDE_ATTEMPTS`] times.

use super::volume::refused;
use super::{Engine, EngineError};
use crate::model::validate::{LayoutViolation, validate_layout};
use crate::model::{Claim, Decision, Id, Layout, PlacementRequest, QuotaRequest, Topology, Usage};
use crate::plan::volume as plan;
use crate::policy::PolicySet;

/// How many times an operation decides when what its policies decided on
/// changed before it could reserve (then it gives up with a conflict).
pub(super) const DECIDE_ATTEMPTS: u32 = 5;

/// Why an answer decided with no lock held no longer holds under the
/// planning lock.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stale {
    /// The usage the quota policy was shown moved.
    #[error(
        "the usage the quota policy was shown changed meanwhile (namespace {} -> {} bytes, cluster {} -> {} bytes)",
        .seen.0.bytes, .now.0.bytes, .seen.1.bytes, .now.1.bytes
    )]
    Usage {
        /// The namespace's and the cluster's usage the policy was shown.
        seen: (Usage, Usage),
        /// The same usage now.
        now: (Usage, Usage),
    },
    /// The layout breaks a rule on the current topology.
    #[error("the layout no longer fits: {0}")]
    Layout(LayoutViolation),
    /// The devices lost the room a growth in place needed.
    #[error("the devices no longer have the room to grow in place")]
    NoRoomToGrow,
}

/// What the quota policy allowed, and what it was shown.
pub(super) struct QuotaAnswer {
    /// The hard limit to set, if the policy gave one.
    pub(super) hard_limit: Option<u64>,
    /// The namespace's and the cluster's usage the policy was asked with;
    /// `None` when the class has no quota policy.
    seen: Option<(Usage, Usage)>,
}

impl Engine {
    /// Ask the quota policy (no lock held); `growing` is the volume an
    /// expansion grows, left out of the usage as the contract says (its
    /// size is `current_bytes`).
    pub(super) async fn quota(
        &self,
        set: &PolicySet,
        claim: &Claim,
        current_bytes: u64,
        growing: Option<Id>,
    ) -> Result<QuotaAnswer, EngineError> {
        let Some(bound) = &set.quota else {
            return Ok(QuotaAnswer {
                hard_limit: None,
                seen: None,
            });
        };
        let ((namespace_usage, cluster_usage), raw_capacity) = self.with_state(|s| {
            let usage = plan::usage_except_volume(s, &claim.namespace, growing);
            let raw: u64 = s.devices.values().map(|d| d.total_bytes).sum();
            (usage, raw)
        });
        let verdict = set
            .quota_async(
                QuotaRequest {
                    claim: claim.clone(),
                    current_bytes,
                    namespace_usage,
                    cluster_usage,
                },
                Some(raw_capacity),
            )
            .await?;
        Ok(QuotaAnswer {
            hard_limit: refused(verdict, Decision::Quota, bound)?.hard_limit,
            seen: Some((namespace_usage, cluster_usage)),
        })
    }

    /// Under the planning lock: whether the quota answer still holds, that
    /// is, the usage now is what the policy was shown. `Err` says what
    /// moved.
    pub(super) fn quota_holds(
        &self,
        answer: &QuotaAnswer,
        namespace: &str,
        growing: Option<Id>,
    ) -> Result<(), Stale> {
        let Some(seen) = answer.seen else {
            return Ok(());
        };
        let now = self.with_state(|s| plan::usage_except_volume(s, namespace, growing));
        if now == seen {
            Ok(())
        } else {
            Err(Stale::Usage { seen, now })
        }
    }

    /// Under the planning lock: whether a layout decided on an earlier
    /// topology obeys every rule on `topology`, the one placement would be
    /// shown now. `Err` names the broken rule.
    pub(super) fn layout_holds(
        request: &PlacementRequest,
        topology: &Topology,
        layout: &Layout,
    ) -> Result<(), Stale> {
        validate_layout(request, topology, layout)
            .map(|_| ())
            .map_err(Stale::Layout)
    }

    /// The error when answers went stale [`DECIDE_ATTEMPTS`] times in a
    /// row: nothing was reserved, and asking again may work.
    pub(super) fn stale(what: &str, why: &Stale) -> EngineError {
        EngineError::Conflict(format!(
            "{what}: other operations changed the state while the policies decided, \
             {DECIDE_ATTEMPTS} times in a row (last: {why}); nothing was reserved, try again"
        ))
    }
}
