//! Why the webhook could not decide a review, with a label for metrics.

use std::time::Duration;

use crate::policy::PolicyError;

/// Why the webhook could not decide. What happens then is the
/// [`FailurePolicy`](super::FailurePolicy)'s call.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The class's parameters are not ones aplo accepts.
    #[error("StorageClass '{class}' is misconfigured: {detail}")]
    Class {
        /// The class.
        class: String,
        /// What is wrong.
        detail: String,
    },
    /// The class's policies could not be resolved, or one failed (a
    /// timeout, trap, memory limit, invalid answer, ...).
    #[error("StorageClass '{class}': {source}")]
    Policy {
        /// The class.
        class: String,
        /// The policy layer's error, naming the policy and the fault.
        #[source]
        source: PolicyError,
    },
    /// The quota policy needs usage this replica does not have.
    #[error(
        "StorageClass '{class}': the quota policy '{policy}' needs the namespace's usage, which \
         this aplo replica does not know yet"
    )]
    NoUsage {
        /// The class.
        class: String,
        /// The quota policy.
        policy: String,
    },
    /// The policy task could not be run.
    #[error("the policy task failed: {detail}")]
    Task {
        /// What failed.
        detail: String,
    },
    /// The policies gave no answer within the webhook's bound, so that the
    /// API server gets one before its own timeout.
    #[error("StorageClass '{class}': the policies gave no answer within {} ms", within.as_millis())]
    NoAnswer {
        /// The class.
        class: String,
        /// The bound.
        within: Duration,
    },
}

impl AdmissionError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            AdmissionError::Class { .. } => "class",
            AdmissionError::Policy { source, .. } => source.label(),
            AdmissionError::NoUsage { .. } => "no_usage",
            AdmissionError::Task { .. } => "task",
            AdmissionError::NoAnswer { .. } => "no_answer",
        }
    }
}
