//! What an engine error means to whoever asked, whatever the front end:
//! one classification, which the REST API, the provisioner and the CSI
//! controller each turn into their own answer (a status code, a retry
//! pace, a gRPC code), and the message a caller may see. Details a caller
//! should not see (a command's stderr, host names, store paths) stay in
//! aplo's log.

use super::EngineError;
use crate::model::Decision;
use crate::policy::PolicyError;

/// What kind of failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or impossible, or the StorageClass asks
    /// for a policy or settings that cannot be: nothing was done.
    Invalid,
    /// Something the request names does not exist.
    NotFound,
    /// The request conflicts with the current state (a taken name, an
    /// operation in progress): nothing was done.
    Conflict,
    /// A policy refused; its reason is for the user.
    Refused(Decision),
    /// aplo is overloaded (every policy instance stayed busy): ask again
    /// in a moment.
    Overloaded,
    /// Something broke while doing it: a step, the store, a policy that
    /// misbehaved.
    Fault,
}

/// Whose move it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The caller: its request or its StorageClass.
    Caller,
    /// A policy: its refusal, or its misbehaviour.
    Policy,
    /// aplo itself (its store, its capacity).
    Aplo,
    /// The storage: a gluster or LVM command, a node.
    Storage,
}

/// An engine error, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// What kind of failure.
    pub kind: Kind,
    /// Whose move it is.
    pub blame: Blame,
    /// Whether asking again, unchanged, may succeed (an operation in
    /// progress ends, a busy pool frees, a node comes back). A refusal
    /// that is not retryable needs something changed first.
    pub retryable: bool,
}

impl Class {
    /// Whether the request was refused (nothing was done, and the message
    /// says why), rather than failing midway.
    pub fn is_refusal(&self) -> bool {
        !matches!(self.kind, Kind::Overloaded | Kind::Fault)
    }
}

impl EngineError {
    /// Its classification: the one table every front end answers from.
    pub fn class(&self) -> Class {
        let (kind, blame, retryable) = match self {
            EngineError::Invalid(_) => (Kind::Invalid, Blame::Caller, false),
            EngineError::NotFound { .. } => (Kind::NotFound, Blame::Caller, false),
            EngineError::Conflict(_) => (Kind::Conflict, Blame::Caller, true),
            EngineError::Refused { decision, .. } => {
                (Kind::Refused(*decision), Blame::Policy, false)
            }
            EngineError::Policy(p) => match p {
                PolicyError::Unknown { .. }
                | PolicyError::NotExported { .. }
                | PolicyError::Settings { .. }
                | PolicyError::Params(_) => (Kind::Invalid, Blame::Caller, false),
                PolicyError::Fault { .. } if p.is_busy() => (Kind::Overloaded, Blame::Aplo, true),
                PolicyError::Load { .. } | PolicyError::Fault { .. } => {
                    (Kind::Fault, Blame::Policy, false)
                }
                PolicyError::Io { .. } => (Kind::Fault, Blame::Aplo, false),
            },
            EngineError::Store(_) => (Kind::Fault, Blame::Aplo, true),
            EngineError::Failed { .. } => (Kind::Fault, Blame::Storage, true),
        };
        Class {
            kind,
            blame,
            retryable,
        }
    }

    /// What a caller may be told. A refusal says everything; a fault says
    /// what failed and what state it left, but not the command's output,
    /// the hosts it ran on or the store's paths: those are logged.
    pub fn public_message(&self) -> String {
        match self {
            EngineError::Failed {
                operation,
                subject,
                step,
                outcome,
                ..
            } => format!("{operation} '{subject}' failed at step '{step}'; {outcome}"),
            EngineError::Store(_) => "the store failed".into(),
            EngineError::Policy(PolicyError::Io { .. }) => "reading the policies failed".into(),
            // Its origin is a file path and its detail the loader's words.
            EngineError::Policy(PolicyError::Load { policy, .. }) => {
                format!("policy '{policy}' cannot be loaded")
            }
            e => e.to_string(),
        }
    }

    /// [`EngineError::public_message`] for an answer: a fault is logged
    /// whole here, under an error id the answer gives, so that an admin
    /// can find the details.
    pub fn answer(&self) -> String {
        if self.class().kind != Kind::Fault {
            return self.public_message();
        }
        let id = format!("{:016x}", rand::random::<u64>());
        tracing::error!(error_id = %id, error = %self, "a request failed");
        format!(
            "{} (details in aplo's log, error id {id})",
            self.public_message()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::Phase;
    use crate::engine::driver::DriverError;
    use crate::model::journal::Step;
    use crate::policy::Fault;
    use crate::store::StoreError;

    fn policy_fault(fault: Fault) -> EngineError {
        EngineError::Policy(PolicyError::Fault {
            policy: "zone-spread".into(),
            decision: Decision::Placement,
            fault,
        })
    }

    fn failed() -> EngineError {
        EngineError::Failed {
            operation: "create volume",
            subject: "v".into(),
            step: Phase::Step(Step::Bricks),
            source: Box::new(DriverError::Refused(
                "lvcreate on gluster-11.example.com: /dev/vg_aplo_1: insufficient free space"
                    .into(),
            )),
            outcome: "rolled back".into(),
        }
    }

    #[test]
    fn every_error_has_one_class() {
        let rows: Vec<(&str, EngineError, Kind, Blame, bool)> = vec![
            (
                "invalid",
                EngineError::Invalid("size 0".into()),
                Kind::Invalid,
                Blame::Caller,
                false,
            ),
            (
                "not found",
                EngineError::NotFound {
                    kind: "volume",
                    name: "v".into(),
                },
                Kind::NotFound,
                Blame::Caller,
                false,
            ),
            (
                "conflict",
                EngineError::Conflict("busy".into()),
                Kind::Conflict,
                Blame::Caller,
                true,
            ),
            (
                "refused",
                EngineError::Refused {
                    decision: Decision::Quota,
                    policy: "namespace-quota".into(),
                    reason: "over".into(),
                },
                Kind::Refused(Decision::Quota),
                Blame::Policy,
                false,
            ),
            (
                "unknown policy",
                EngineError::Policy(PolicyError::Unknown {
                    name: "nope".into(),
                    available: "zone-spread".into(),
                }),
                Kind::Invalid,
                Blame::Caller,
                false,
            ),
            (
                "busy pool",
                policy_fault(Fault::Busy {
                    slots: 64,
                    waited: Duration::from_millis(100),
                }),
                Kind::Overloaded,
                Blame::Aplo,
                true,
            ),
            (
                "policy timeout",
                policy_fault(Fault::Timeout {
                    deadline: Duration::from_millis(100),
                }),
                Kind::Fault,
                Blame::Policy,
                false,
            ),
            (
                "store",
                EngineError::Store(StoreError::Backend {
                    path: "/var/lib/aplo/aplo.redb".into(),
                    message: "disk full".into(),
                }),
                Kind::Fault,
                Blame::Aplo,
                true,
            ),
            ("step", failed(), Kind::Fault, Blame::Storage, true),
        ];
        for (name, e, kind, blame, retryable) in rows {
            assert_eq!(
                e.class(),
                Class {
                    kind,
                    blame,
                    retryable
                },
                "{name}"
            );
        }
    }

    #[test]
    fn a_fault_tells_what_and_where_but_not_the_command_output() {
        let message = failed().public_message();
        assert_eq!(
            message,
            "create volume 'v' failed at step 'bricks'; rolled back"
        );
        let answer = failed().answer();
        assert!(answer.starts_with(&message), "{answer}");
        assert!(answer.contains("error id "), "{answer}");
        for secret in ["gluster-11", "lvcreate", "/dev/vg_aplo_1", "insufficient"] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        let store = EngineError::Store(StoreError::Backend {
            path: "/var/lib/aplo/aplo.redb".into(),
            message: "disk full".into(),
        });
        assert!(!store.answer().contains("/var/lib"), "{}", store.answer());
        let load = EngineError::Policy(PolicyError::Load {
            policy: "rack-aware".into(),
            origin: "/etc/aplo/policies/rack-aware.wasm".into(),
            detail: "export `placement` has the wrong type".into(),
        });
        let answer = load.answer();
        assert!(
            answer.starts_with("policy 'rack-aware' cannot be loaded (details in aplo's log"),
            "{answer}"
        );
        for secret in ["/etc/aplo", "export"] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
    }

    #[test]
    fn a_refusal_says_everything_and_has_no_error_id() {
        let refused = EngineError::Refused {
            decision: Decision::Quota,
            policy: "namespace-quota".into(),
            reason: "namespace team-a may have 10GiB; it has 8GiB".into(),
        };
        assert_eq!(refused.answer(), refused.to_string());
    }
}
