//! The policy layer's errors, and who is to blame for each.

use std::fmt;
use std::time::Duration;

use crate::model::Decision;
use crate::model::params::ParamError;
use crate::model::text::{MAX_DETAIL_LEN, inert};

/// Who caused a fault: the policy (guest) or aplo and its machine (host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The policy misbehaved: fix or replace the policy.
    Guest,
    /// aplo or its configuration failed: the policy is not at fault.
    Host,
}

/// How a policy call failed. A refusal is not a fault: it is an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call ran past its deadline and was interrupted.
    Timeout {
        /// The deadline.
        deadline: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    MemoryLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest asked the host for more bytes (random data, output) than
    /// its budget per decision allows.
    HostcallLimit {
        /// The budget in bytes.
        limit: usize,
    },
    /// The guest trapped; `panic` carries a Rust guest's panic message.
    Trap {
        /// The trap, as wasmtime describes it.
        trap: String,
        /// The panic message the guest printed, if any.
        panic: Option<String>,
    },
    /// The guest returned data that breaks the canonical ABI (bad pointers,
    /// invalid UTF-8, out-of-range discriminants, too much data).
    Malformed {
        /// What wasmtime found.
        detail: String,
    },
    /// The guest's answer is well-formed but breaks a contract rule.
    Invalid {
        /// The rule, e.g. `distinct-nodes` or `scheme`.
        rule: String,
        /// Where and how.
        detail: String,
    },
    /// The module could not be instantiated within its limits (tables,
    /// memories or instances beyond the caps).
    Instantiate {
        /// What wasmtime refused.
        detail: String,
    },
    /// The host could not run the call.
    Host {
        /// What failed.
        detail: String,
    },
    /// Every instance slot of the pool stayed taken for as long as the call
    /// may wait: the host is overloaded (or other calls are stuck), not
    /// this policy. Nothing ran; asking again later may work.
    Busy {
        /// The pool's size.
        slots: u32,
        /// How long the call waited for a slot.
        waited: Duration,
    },
}

impl Fault {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            Fault::Host { .. } | Fault::Busy { .. } => Blame::Host,
            _ => Blame::Guest,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Timeout { .. } => "timeout",
            Fault::MemoryLimit { .. } => "memory_limit",
            Fault::HostcallLimit { .. } => "hostcall_limit",
            Fault::Trap { panic: Some(_), .. } => "panic",
            Fault::Trap { .. } => "trap",
            Fault::Malformed { .. } => "malformed",
            Fault::Invalid { .. } => "invalid_answer",
            Fault::Instantiate { .. } => "instantiate",
            Fault::Host { .. } => "host",
            Fault::Busy { .. } => "busy",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Details quote wasmtime and, through it, the guest (names in its
        // module, its panic text, parts of its answer): shown inert, even
        // when the constructor already cleaned them (cleaning is idempotent).
        match self {
            Fault::Timeout { deadline } => write!(
                f,
                "timed out after the {} ms deadline",
                deadline.as_millis()
            ),
            Fault::MemoryLimit { limit } => {
                write!(f, "hit the memory limit of {} MiB", limit >> 20)
            }
            Fault::HostcallLimit { limit } => write!(
                f,
                "asked the host for more than its budget of {limit} bytes per decision"
            ),
            Fault::Trap {
                panic: Some(message),
                ..
            } => write!(f, "panicked: {}", shown(message)),
            Fault::Trap { trap, panic: None } => write!(f, "trapped: {}", shown(trap)),
            Fault::Malformed { detail } => {
                write!(f, "returned malformed data: {}", shown(detail))
            }
            Fault::Invalid { rule, detail } => {
                write!(f, "answer breaks rule {}: {}", shown(rule), shown(detail))
            }
            Fault::Instantiate { detail } => write!(
                f,
                "could not be instantiated within its limits: {}",
                shown(detail)
            ),
            Fault::Host { detail } => {
                write!(f, "could not be run by the host: {}", shown(detail))
            }
            Fault::Busy { slots, waited } => write!(
                f,
                "was not run: all {slots} policy instance slots stayed busy for {} ms; aplo is \
                 overloaded, try again later",
                waited.as_millis()
            ),
        }
    }
}

/// Text that may come from a guest, as it is shown.
fn shown(text: &str) -> String {
    inert(text, MAX_DETAIL_LEN)
}

/// Why a module could not be loaded: the detail of [`PolicyError::Load`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes do not start with the WebAssembly magic number.
    #[error("not a WebAssembly file (bad magic number)")]
    NotWasm,
    /// wasmtime could not compile the component.
    #[error("{0:#}")]
    Compile(wasmtime::Error),
    /// The component does not export the settings interface.
    #[error(
        "it does not export {interface} (exports: {exported}); is it built against aplo:policy@0.1.0?"
    )]
    NoSettings {
        /// The settings interface's name.
        interface: &'static str,
        /// What it exports instead, or `none`.
        exported: String,
    },
    /// An interface is exported with the wrong types.
    #[error("it exports {interface} with the wrong types: {error:#}")]
    WrongTypes {
        /// The interface.
        interface: &'static str,
        /// What wasmtime found.
        error: wasmtime::Error,
    },
    /// The component exports no decision interface.
    #[error("it exports no decision (durability, placement or quota)")]
    NoDecision,
    /// No instance slot was free to check the types in.
    #[error("its types could not be checked: all {slots} policy instance slots stayed busy")]
    Busy {
        /// The pool's size.
        slots: u32,
    },
    /// The component could not be instantiated to check its types.
    #[error("instantiating it failed: {0:#}")]
    Instantiate(wasmtime::Error),
    /// An exported function's types are not the contract's.
    #[error(
        "it exports {interface} with types other than the contract's ({error:#}); it has {signatures}"
    )]
    NotContract {
        /// The interface.
        interface: &'static str,
        /// What wasmtime found.
        error: wasmtime::Error,
        /// The functions it has, with their types.
        signatures: String,
    },
}

/// A policy's refusal: its answer, not a fault. The text is the guest's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// An error of the policy layer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A module could not be read, compiled or linked, or does not follow
    /// the contract (no `settings` export, no decision exported).
    #[error("policy '{policy}' from {origin} cannot be loaded: {}", shown(detail))]
    Load {
        /// The policy's name.
        policy: String,
        /// Where it came from: a file path or `bundled`.
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// No policy has this name.
    #[error("no policy named '{name}' (available: {available})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist.
        available: String,
    },
    /// The policy does not export the decision it was chosen for.
    #[error("policy '{policy}' does not make {decision} decisions (it makes: {exports})")]
    NotExported {
        /// The policy.
        policy: String,
        /// The decision asked for.
        decision: Decision,
        /// The decisions it does make.
        exports: String,
    },
    /// The policy refused its settings.
    #[error("policy '{policy}' refused its settings: {}", shown(message))]
    Settings {
        /// The policy.
        policy: String,
        /// Its message.
        message: String,
    },
    /// The StorageClass parameters are malformed.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// A call failed.
    #[error("policy '{policy}' failed its {decision} decision: {fault}")]
    Fault {
        /// The policy.
        policy: String,
        /// The decision.
        decision: Decision,
        /// What went wrong.
        fault: Fault,
    },
    /// Reading a policy directory or file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl PolicyError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            PolicyError::Load { .. } => "load",
            PolicyError::Unknown { .. } => "unknown_policy",
            PolicyError::NotExported { .. } => "not_exported",
            PolicyError::Settings { .. } => "settings",
            PolicyError::Params(_) => "parameters",
            PolicyError::Fault { fault, .. } => fault.label(),
            PolicyError::Io { .. } => "io",
        }
    }

    /// Who is to blame. Configuration mistakes (unknown names, parameters,
    /// settings) are the host side's: the admin's, not the policy's.
    pub fn blame(&self) -> Blame {
        match self {
            PolicyError::Load { .. } => Blame::Guest,
            PolicyError::Fault { fault, .. } => fault.blame(),
            _ => Blame::Host,
        }
    }

    /// Whether the call never ran because the pool had no free slot
    /// ([`Fault::Busy`]): worth retrying soon, unlike other faults.
    pub fn is_busy(&self) -> bool {
        matches!(self.fault(), Some(Fault::Busy { .. }))
    }

    /// The fault, for a failed call.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            PolicyError::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }
}
