//! Where a long-running aplo is: its phase, whether its watches synced, and
//! the engine while it leads. The health endpoints and the HTTP API read
//! it; `aplo serve` and the Kubernetes controllers set it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use crate::engine::Engine;

/// Where `serve` is, for the health endpoints and the HTTP API: the phase,
/// the engine while this instance leads, and whether the watches synced.
#[derive(Default)]
pub struct Status {
    phase: AtomicU8,
    synced: AtomicBool,
    engine: RwLock<Option<Arc<Engine>>>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("phase", &self.phase())
            .field("synced", &self.synced())
            .field("engine", &self.engine().is_some())
            .finish()
    }
}

/// The phases of [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting up.
    Starting,
    /// Waiting for the lease.
    Standby,
    /// Recovering the store before acting.
    Recovering,
    /// Leading: the controllers run.
    Leading,
    /// Stopped (shut down or lost the lease).
    Stopped,
}

impl Status {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Standby,
            2 => Phase::Recovering,
            3 => Phase::Leading,
            _ => Phase::Stopped,
        }
    }

    pub(crate) fn set(&self, phase: Phase) {
        let n = match phase {
            Phase::Starting => 0,
            Phase::Standby => 1,
            Phase::Recovering => 2,
            Phase::Leading => 3,
            Phase::Stopped => 4,
        };
        self.phase.store(n, Ordering::Relaxed);
    }

    /// Mark the phase (for `aplo serve --api-only`, which has no lease).
    pub fn enter(&self, phase: Phase) {
        self.set(phase);
    }

    /// Whether the controllers' watches have listed everything once
    /// (always false outside controller mode).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub(crate) fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Relaxed);
    }

    /// The engine, while this instance has the store open.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publish (or withdraw) the engine.
    pub fn set_engine(&self, engine: Option<Arc<Engine>>) {
        *self
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine;
    }
}
