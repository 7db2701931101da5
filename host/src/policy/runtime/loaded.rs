//! A compiled, linked policy and the calls into it: describe, validate,
//! decide, place and check, each in a fresh bounded store, with a trap, a
//! timeout or a limit told apart from the guest's own answer.

use std::sync::Arc;

use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap};

use super::exports::{Exports, INTERFACES, signatures};
use super::limits::Limits;
use super::{GuestState, Runtime};
use crate::model::{self, Decision};
use crate::policy::bindings;
use crate::policy::error::{Fault, LoadError, PolicyError, Refusal};
use crate::policy::metrics::PolicyMetrics;

/// A topology encoded for the sandbox once, for any number of placement
/// decisions. The storage engine keeps one per topology version; encoding a
/// thousand devices takes about as long as a small decision.
pub struct PreparedTopology {
    topology: Arc<model::Topology>,
    encoded: bindings::WitTopology,
}

impl PreparedTopology {
    /// Encode a topology.
    pub fn new(topology: Arc<model::Topology>) -> PreparedTopology {
        let encoded = bindings::topology(&topology);
        PreparedTopology { topology, encoded }
    }

    /// The topology.
    pub fn topology(&self) -> &model::Topology {
        &self.topology
    }

    pub(crate) fn encoded(&self) -> &bindings::WitTopology {
        &self.encoded
    }
}

/// A compiled, linked policy, ready to decide.
pub struct LoadedPolicy {
    pub(super) name: String,
    pub(super) origin: String,
    pub(super) sha256: [u8; 32],
    pub(super) limits: Limits,
    pub(super) exports: Exports,
    pub(super) info: model::Info,
    pub(super) pre: InstancePre<GuestState>,
    pub(super) runtime: Arc<Runtime>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl LoadedPolicy {
    /// The decision metrics of the runtime that runs it.
    pub(crate) fn metrics(&self) -> &PolicyMetrics {
        self.runtime.metrics()
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it was loaded from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The module's sha256, in hex.
    pub fn sha256(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The module's sha256.
    pub fn sha256_bytes(&self) -> [u8; 32] {
        self.sha256
    }

    /// The decisions it exports.
    pub fn decisions(&self) -> Vec<Decision> {
        self.exports.decisions()
    }

    /// Whether it makes `decision`.
    pub fn makes(&self, decision: Decision) -> bool {
        decision == Decision::Validate || self.exports.decisions().contains(&decision)
    }

    /// What the policy says about itself.
    pub fn info(&self) -> &model::Info {
        &self.info
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Check every exported function's type against the contract, once at
    /// load: a module whose exports have the right names but the wrong
    /// types is refused here, naming the function, instead of faulting at
    /// every decision.
    pub(super) fn typecheck(&self) -> Result<(), LoadError> {
        let mut store = self.runtime.store(&self.limits);
        store.set_epoch_deadline(self.runtime.deadline_ticks(self.limits.deadline));
        let _slot = self
            .runtime
            .slots
            .acquire(self.limits.deadline)
            .ok_or(LoadError::Busy {
                slots: self.runtime.slots.total,
            })?;
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(LoadError::Instantiate)?;
        let [settings, durability, placement, quota] = INTERFACES.map(|(name, _)| name);
        let component = self.pre.component();
        let wrong = |interface: &'static str| {
            move |error: wasmtime::Error| LoadError::NotContract {
                interface,
                error,
                signatures: signatures(component, interface).join(", "),
            }
        };
        let exports = &self.exports;
        exports
            .settings
            .load(&mut store, &instance)
            .map_err(wrong(settings))?;
        if let Some(indices) = &exports.durability {
            indices
                .load(&mut store, &instance)
                .map_err(wrong(durability))?;
        }
        if let Some(indices) = &exports.placement {
            indices
                .load(&mut store, &instance)
                .map_err(wrong(placement))?;
        }
        if let Some(indices) = &exports.quota {
            indices.load(&mut store, &instance).map_err(wrong(quota))?;
        }
        Ok(())
    }

    pub(super) fn describe(&self) -> Result<model::Info, PolicyError> {
        self.call(Decision::Validate, |store, instance, exports| {
            let guest = exports.settings.load(&mut *store, instance)?;
            guest.call_describe(store).map(bindings::info)
        })
    }

    /// Check settings: `Ok(Err(message))` when the policy refuses them.
    pub fn validate(&self, settings: &model::Pairs) -> Result<Result<(), Refusal>, PolicyError> {
        let pairs = bindings::pairs(settings);
        self.call(Decision::Validate, |store, instance, exports| {
            let guest = exports.settings.load(&mut *store, instance)?;
            Ok(guest.call_validate(store, &pairs)?.map_err(Refusal))
        })
    }

    /// The raw durability answer. Callers validate it (see `PolicySet`).
    pub fn decide(
        &self,
        claim: &model::Claim,
        settings: &model::Pairs,
    ) -> Result<Result<model::DurabilityDecision, Refusal>, PolicyError> {
        let (claim, pairs) = (bindings::claim(claim), bindings::pairs(settings));
        let answer = self.call(Decision::Durability, |store, instance, exports| {
            let indices = exports.durability.as_ref().expect("checked by call");
            let guest = indices.load(&mut *store, instance)?;
            guest.call_decide(store, &claim, &pairs)
        })?;
        match answer {
            Ok(decision) => bindings::durability_decision(decision)
                .map(Ok)
                .map_err(|e| PolicyError::Fault {
                    policy: self.name.clone(),
                    decision: Decision::Durability,
                    fault: Fault::Invalid {
                        rule: "volume_options".into(),
                        detail: e.to_string(),
                    },
                }),
            Err(reason) => Ok(Err(Refusal(reason))),
        }
    }

    /// The raw placement answer. Callers validate it (see `PolicySet`).
    pub fn place(
        &self,
        request: &model::PlacementRequest,
        topology: &PreparedTopology,
        settings: &model::Pairs,
    ) -> Result<Result<model::Layout, Refusal>, PolicyError> {
        self.place_encoded(request, &topology.encoded, settings)
    }

    /// [`LoadedPolicy::place`] with the topology already in its WIT form.
    pub(crate) fn place_encoded(
        &self,
        request: &model::PlacementRequest,
        topology: &bindings::WitTopology,
        settings: &model::Pairs,
    ) -> Result<Result<model::Layout, Refusal>, PolicyError> {
        let (request, pairs) = (
            bindings::placement_request(request),
            bindings::pairs(settings),
        );
        self.call(Decision::Placement, |store, instance, exports| {
            let indices = exports.placement.as_ref().expect("checked by call");
            let guest = indices.load(&mut *store, instance)?;
            Ok(guest
                .call_place(store, &request, topology, &pairs)?
                .map(bindings::layout)
                .map_err(Refusal))
        })
    }

    /// The raw quota answer. Callers validate it (see `PolicySet`).
    pub fn check(
        &self,
        request: &model::QuotaRequest,
        settings: &model::Pairs,
    ) -> Result<Result<model::Allowance, Refusal>, PolicyError> {
        let (request, pairs) = (bindings::quota_request(request), bindings::pairs(settings));
        self.call(Decision::Quota, |store, instance, exports| {
            let indices = exports.quota.as_ref().expect("checked by call");
            let guest = indices.load(&mut *store, instance)?;
            Ok(guest
                .call_check(store, &request, &pairs)?
                .map(bindings::allowance)
                .map_err(Refusal))
        })
    }

    /// Run one call in a fresh instance, with every bound in place, and turn
    /// any failure into a [`Fault`] naming the policy and the decision.
    fn call<R>(
        &self,
        decision: Decision,
        f: impl FnOnce(&mut Store<GuestState>, &Instance, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        if !self.makes(decision) {
            return Err(PolicyError::NotExported {
                policy: self.name.clone(),
                decision,
                exports: self
                    .decisions()
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let fault = |fault: Fault| PolicyError::Fault {
            policy: self.name.clone(),
            decision,
            fault,
        };
        let runtime = &self.runtime;
        // Waiting for a slot is bounded by the call's own deadline, so a
        // call ends within about two deadlines even when the pool is full.
        let wait = self.limits.deadline;
        let Some(_slot) = runtime.slots.acquire(wait) else {
            return Err(fault(Fault::Busy {
                slots: runtime.slots.total,
                waited: wait,
            }));
        };
        let mut store = runtime.store(&self.limits);
        let ticks = runtime.deadline_ticks(self.limits.deadline);
        store.set_epoch_deadline(ticks);
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(err) => return Err(fault(self.classify(&store, err, true))),
        };
        // The deadline covers the call itself, set again right before it.
        store.set_epoch_deadline(ticks);
        f(&mut store, &instance, &self.exports)
            .map_err(|err| fault(self.classify(&store, err, false)))
    }

    fn classify(
        &self,
        store: &Store<GuestState>,
        err: wasmtime::Error,
        instantiating: bool,
    ) -> Fault {
        let state = store.data();
        if state.limiter.memory_refused {
            return Fault::MemoryLimit {
                limit: self.limits.memory_bytes,
            };
        }
        if state.budget.waited_too_long() {
            return Fault::Timeout {
                deadline: self.limits.deadline,
            };
        }
        if state.budget.overdrawn() {
            return Fault::HostcallLimit {
                limit: state.budget.limit(),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Fault::Timeout {
                deadline: self.limits.deadline,
            },
            Some(trap) => Fault::Trap {
                trap: trap.to_string(),
                panic: panic_message(&state.stderr.contents()),
            },
            // The pool always has a slot (see `Slots`), so a failure here is
            // the module asking for more than its limits allow.
            None if instantiating => Fault::Instantiate {
                detail: format!("{err:#}"),
            },
            None => Fault::Malformed {
                detail: format!("{err:#}"),
            },
        }
    }
}

/// The message of a Rust panic, from what the guest wrote to stderr
/// (`thread '…' panicked at file:line:col:\n<message>\nnote: …`).
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let after = text.split_once("panicked at ")?.1;
    let message: Vec<&str> = after
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("note: "))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let message = if message.is_empty() {
        after.lines().next().unwrap_or_default().to_owned()
    } else {
        message.join("\n")
    };
    Some(crate::model::validate::clean_reason(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let stderr = b"\nthread '<unnamed>' panicked at src/lib.rs:12:5:\nplacement exploded\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(stderr).as_deref(), Some("placement exploded"));
        assert_eq!(panic_message(b"nothing here"), None);
    }
}
