//! The engine's errors, and where in an operation they happened.

use super::driver::DriverError;
use crate::model::Decision;
use crate::model::journal::Step;
use crate::policy::PolicyError;
use crate::store::StoreError;

/// A step that failed: where, and why.
pub(super) type StepError = (Phase, DriverError);

/// Where an operation failed: one of its journaled steps, or the work
/// around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the operation's plan back from the store.
    Plan,
    /// A journaled step.
    Step(Step),
    /// The last store change, which ends the operation.
    Finish,
    /// Probing a node into its pool.
    Probe,
    /// Detaching a node from its pool.
    Detach,
    /// Preparing a device.
    Prepare,
    /// Releasing a device.
    Release,
    /// Measuring a device.
    Measure,
    /// Applying a repair.
    Apply,
}

impl From<Step> for Phase {
    fn from(step: Step) -> Phase {
        Phase::Step(step)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Plan => "plan",
            Phase::Step(step) => step.as_str(),
            Phase::Finish => "finish",
            Phase::Probe => "probe",
            Phase::Detach => "detach",
            Phase::Prepare => "prepare",
            Phase::Release => "release",
            Phase::Measure => "measure",
            Phase::Apply => "apply",
        })
    }
}

/// An engine request that failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed or impossible (a bad name or size, an
    /// unknown device path): nothing was done.
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist.
    #[error("{kind} '{name}' not found")]
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The request conflicts with the current state (a taken name, a device
    /// that still holds bricks, an operation in progress).
    #[error("{0}")]
    Conflict(String),
    /// A policy refused: its reason is for the user.
    #[error("the {decision} policy '{policy}' refused: {reason}")]
    Refused {
        /// The decision.
        decision: Decision,
        /// The policy.
        policy: String,
        /// Its reason.
        reason: String,
    },
    /// A policy could not be resolved or failed (its answers are validated).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A step failed; `outcome` says what state the operation was left in.
    #[error("{operation} '{subject}' failed at step '{step}': {source}; {outcome}")]
    Failed {
        /// The operation.
        operation: &'static str,
        /// The volume, device or node.
        subject: String,
        /// Where it failed.
        step: Phase,
        /// What failed.
        #[source]
        source: Box<DriverError>,
        /// What was done about it.
        outcome: String,
    },
}

impl EngineError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EngineError::Invalid(_) => "invalid",
            EngineError::NotFound { .. } => "not_found",
            EngineError::Conflict(_) => "conflict",
            EngineError::Refused { .. } => "refused",
            EngineError::Policy(e) => e.label(),
            EngineError::Store(e) => e.label(),
            EngineError::Failed { .. } => "failed",
        }
    }
}
