//! Why a reconcile did not finish, and how soon it is tried again: pure
//! classification of engine errors and admin modes, and the retry delays.

use std::time::Duration;

use crate::engine::EngineError;
use crate::model::storage::AdminMode;

/// Why a reconcile did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// A policy refused, or the claim or class asks for what aplo cannot
    /// give: retried slowly, in case the cause is fixed.
    #[error("{0}")]
    Refused(String),
    /// Anything that may pass by itself: retried soon.
    #[error("{0}")]
    Transient(String),
    /// aplo is read-only (heketi's admin mode): retried at the refusal
    /// pace, without growing, so that work resumes soon after an admin
    /// sets it back to normal.
    #[error("{0}")]
    Paused(String),
}

impl From<kube::Error> for ReconcileError {
    fn from(e: kube::Error) -> Self {
        ReconcileError::Transient(format!("Kubernetes API: {e}"))
    }
}

/// What an engine error means to a reconcile, from its classification
/// (the same the REST API and the CSI controller answer from): what may
/// pass by itself (an operation in progress, a busy policy pool, a step
/// that failed) is retried soon; the rest waits for something to change,
/// slowly. The message is the whole error: the events it becomes are
/// where an admin looks first.
pub fn engine_error(e: EngineError) -> ReconcileError {
    if e.class().retryable {
        ReconcileError::Transient(e.to_string())
    } else {
        ReconcileError::Refused(e.to_string())
    }
}

/// Whether the controllers may change storage in this admin mode: not
/// while heketi's admin mode is read-only (`POST /admin`, `aplo server mode
/// set`). `local-client` limits remote REST clients only; the controllers
/// are aplo itself.
pub fn writable_in(mode: AdminMode) -> Result<(), ReconcileError> {
    match mode {
        AdminMode::ReadOnly => Err(ReconcileError::Paused(
            "aplo is in read-only mode (heketi's admin mode, set through POST /admin or \
             `aplo server mode set`): no volume is created, grown or deleted until an admin \
             sets it back to normal"
                .into(),
        )),
        AdminMode::Normal | AdminMode::LocalClient => Ok(()),
    }
}

/// The longest wait after refusals.
const REFUSAL_CAP: Duration = Duration::from_secs(600);
/// The longest wait after transient failures.
const RETRY_CAP: Duration = Duration::from_secs(300);

/// The first waits of each kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstWaits {
    /// After a refusal or while paused.
    pub refusal: Duration,
    /// After a transient failure.
    pub retry: Duration,
}

/// An object's failure count after one more `error`, given the count
/// before it, and how long to wait before the next reconcile: the first
/// wait doubles with each failure in a row up to a cap (10 minutes for
/// refusals, 5 for transient failures); a pause always waits the first
/// refusal wait and starts the count over.
pub fn retry_after(before: u32, error: &ReconcileError, first: FirstWaits) -> (u32, Duration) {
    let mut n = before.saturating_add(1);
    let (wait, cap) = match error {
        ReconcileError::Paused(_) => {
            n = 1;
            (first.refusal, first.refusal)
        }
        ReconcileError::Refused(_) => (first.refusal, REFUSAL_CAP),
        ReconcileError::Transient(_) => (first.retry, RETRY_CAP),
    };
    (n, wait.saturating_mul(1u32 << (n - 1).min(16)).min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Fault, PolicyError};

    fn fault(fault: Fault) -> EngineError {
        EngineError::Policy(PolicyError::Fault {
            policy: "zone-spread".into(),
            decision: crate::model::Decision::Placement,
            fault,
        })
    }

    #[test]
    fn a_full_policy_pool_is_retried_soon_and_other_faults_slowly() {
        let busy = fault(Fault::Busy {
            slots: 64,
            waited: Duration::from_millis(100),
        });
        assert!(matches!(engine_error(busy), ReconcileError::Transient(_)));
        let timeout = fault(Fault::Timeout {
            deadline: Duration::from_millis(100),
        });
        assert!(matches!(engine_error(timeout), ReconcileError::Refused(_)));
    }

    #[test]
    fn only_read_only_pauses_the_controllers() {
        let cases = [
            ("normal", AdminMode::Normal, true),
            ("local client", AdminMode::LocalClient, true),
            ("read only", AdminMode::ReadOnly, false),
        ];
        for (name, mode, writable) in cases {
            let result = writable_in(mode);
            assert_eq!(result.is_ok(), writable, "{name}");
            if let Err(e) = result {
                assert!(matches!(e, ReconcileError::Paused(_)), "{name}");
                assert!(e.to_string().contains("read-only mode"), "{name}");
            }
        }
    }

    #[test]
    fn waits_double_up_to_their_cap_and_a_pause_never_grows() {
        let first = FirstWaits {
            refusal: Duration::from_secs(15),
            retry: Duration::from_secs(1),
        };
        let refused = ReconcileError::Refused("quota".into());
        let transient = ReconcileError::Transient("conflict".into());
        let paused = ReconcileError::Paused("read-only".into());
        let secs = Duration::from_secs;
        let cases = [
            ("first refusal", 0, &refused, (1, secs(15))),
            ("second refusal", 1, &refused, (2, secs(30))),
            ("sixth refusal", 5, &refused, (6, secs(480))),
            ("refusals cap at ten minutes", 6, &refused, (7, secs(600))),
            ("first retry", 0, &transient, (1, secs(1))),
            ("fourth retry", 3, &transient, (4, secs(8))),
            (
                "retries cap at five minutes",
                9,
                &transient,
                (10, secs(300)),
            ),
            ("the shift stops at 16", 40, &transient, (41, secs(300))),
            (
                "the count saturates",
                u32::MAX,
                &refused,
                (u32::MAX, secs(600)),
            ),
            ("a pause waits the first wait", 0, &paused, (1, secs(15))),
            ("a pause starts over", 7, &paused, (1, secs(15))),
        ];
        for (name, before, error, expected) in cases {
            assert_eq!(retry_after(before, error, first), expected, "{name}");
        }
    }
}
