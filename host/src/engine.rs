//! The storage engine: the typed async API the CLI, the Kubernetes
//! controller and the HTTP API drive. It asks the policies, plans with
//! [`crate::plan`], journals every operation in the store before its first
//! side effect, and has a [`Driver`] apply the effects.
//!
//! Crash safety: each operation is a list of named, idempotent steps. The
//! journal entry records which are done; after a crash, [`Engine::recover`]
//! rolls each unfinished operation forward or back, so that a volume exists
//! whole or not at all.

mod check;
mod class;
mod delete;
pub mod driver;
mod error;
mod expand;
mod faults;
mod health;
mod recover;
mod replace;
mod reserve;
mod simulate;
mod topology;
mod volume;

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use self::check::{CheckReport, Drift, RepairReport};
pub use self::class::{Blame, Class, Kind};
pub use self::error::{EngineError, Phase};
pub use self::faults::{FaultPoint, Faults, UnknownFaultPoint};
pub use self::recover::RecoveryReport;
pub use self::replace::Evacuation;
pub use self::topology::{LoadOptions, LoadReport};
pub use self::volume::{CreateRequest, OWNER_GID};

use self::driver::Driver;
use self::driver::DriverError;
use self::error::StepError;
use crate::model::Id;
use crate::model::journal::{OperationRecord, Step};
use crate::model::paths::BrickRoot;
use crate::model::storage::{AdminMode, Snapshot};
use crate::plan::effect::Effect;
use crate::policy::Registry;
use crate::store::{Change, Store};

/// The largest volume aplo accepts (1 EiB): anything larger is a mistake.
pub const MAX_VOLUME_BYTES: u64 = 1 << 60;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where `lvm-thin` bricks are mounted on each node.
    pub lvm_root: BrickRoot,
    /// Where the test build stops to be killed.
    pub faults: Faults,
    /// How long what the pool said about node health is trusted before a
    /// placement asks again.
    pub health_ttl: std::time::Duration,
    /// Make ids a fixed sequence from this seed (simulations, so that a
    /// run can be repeated exactly); random when `None`.
    pub id_seed: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lvm_root: BrickRoot::new("/var/lib/aplo/bricks").expect("an absolute root"),
            faults: Faults::default(),
            health_ttl: std::time::Duration::from_secs(5),
            id_seed: None,
        }
    }
}

/// The storage engine.
pub struct Engine {
    store: Arc<dyn Store>,
    /// The store's contents: read once, then kept in step by every write
    /// (the engine is the store's only writer).
    state: Mutex<Snapshot>,
    driver: Arc<dyn Driver>,
    registry: Arc<Registry>,
    config: EngineConfig,
    /// Held while an operation checks its decisions against the current
    /// state and journals them, so that each reservation sees the space
    /// earlier ones took. Never held while a policy decides or a command
    /// runs (see `reserve`).
    planning: tokio::sync::Mutex<()>,
    /// Nodes the trusted pool reports disconnected.
    unhealthy: Mutex<BTreeSet<Id>>,
    /// When the pool was last asked.
    health_checked: Mutex<Option<std::time::Instant>>,
    /// Volumes and devices with an operation running in this process.
    busy: Mutex<BTreeSet<Id>>,
    ids: IdSource,
}

/// Fresh ids: random, or a fixed sequence from a seed.
struct IdSource {
    seed: std::collections::hash_map::RandomState,
    counter: AtomicU64,
    fixed: Option<u64>,
}

/// SplitMix64: a well-mixed 64-bit sequence from a counter.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl IdSource {
    fn new(fixed: Option<u64>) -> IdSource {
        IdSource {
            seed: std::collections::hash_map::RandomState::new(),
            counter: AtomicU64::new(0),
            fixed,
        }
    }

    fn next(&self) -> Id {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        if let Some(seed) = self.fixed {
            let hi = splitmix(seed ^ n.wrapping_mul(2));
            let lo = splitmix(seed ^ n.wrapping_mul(2).wrapping_add(1));
            return Id((u128::from(hi) << 64) | u128::from(lo));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut a = self.seed.build_hasher();
        a.write_u64(n);
        a.write_u128(now);
        let mut b = self.seed.build_hasher();
        b.write_u64(!n);
        b.write_u128(now);
        b.write_u32(std::process::id());
        Id((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }
}

/// Marks an id busy until dropped.
struct Busy<'a> {
    engine: &'a Engine,
    id: Id,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.engine
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Engine {
    /// An engine over `store`, applying effects with `driver`. Call
    /// [`Engine::recover`] before serving requests.
    pub fn new(
        store: Arc<dyn Store>,
        driver: Arc<dyn Driver>,
        registry: Arc<Registry>,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let state = store.read()?;
        let ids = IdSource::new(config.id_seed);
        Ok(Engine {
            store,
            state: Mutex::new(state),
            driver,
            registry,
            config,
            planning: tokio::sync::Mutex::new(()),
            unhealthy: Mutex::new(BTreeSet::new()),
            health_checked: Mutex::new(None),
            busy: Mutex::new(BTreeSet::new()),
            ids,
        })
    }

    /// heketi's admin mode, as the store has it now (the REST API sets it).
    /// The front ends that change storage on their own, the provisioner and
    /// the CSI controller, make no change while it is read-only.
    pub fn admin_mode(&self) -> Result<AdminMode, EngineError> {
        Ok(self.store.admin_mode()?)
    }

    /// Everything the engine knows, as of now.
    pub fn snapshot(&self) -> Snapshot {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Read from the current state without copying it. `f` runs under the
    /// engine's state lock: keep it short and do not call the engine from
    /// it.
    pub fn with_state<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What the volumes of `namespace` and of the whole store hold, leaving
    /// out the volume of the claim `except` of that namespace.
    pub fn usage_without(
        &self,
        namespace: &str,
        except: Option<&str>,
    ) -> (crate::model::Usage, crate::model::Usage) {
        self.with_state(|s| crate::plan::volume::usage_without(s, namespace, except))
    }

    /// A fault-injection point outside the engine's own operations (the
    /// provisioner's steps); nothing in builds without `fault-injection`.
    pub fn fault_point(&self, point: FaultPoint) {
        self.config.faults.reached(point);
    }

    /// The policy registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Write changes to the store, then to the in-memory state.
    fn commit(&self, changes: Vec<Change>) -> Result<(), EngineError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.store.write(&changes)?;
        crate::store::apply(&mut state, &changes);
        Ok(())
    }

    fn claim_busy(&self, id: Id, what: &str) -> Result<Busy<'_>, EngineError> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(id) {
            return Err(EngineError::Conflict(format!(
                "{what} has an operation in progress"
            )));
        }
        Ok(Busy { engine: self, id })
    }

    /// Run a journaled step unless the journal has it done already: apply
    /// its effects (concurrently; each node's executor keeps that node's
    /// commands in order), then mark it done. Every operation's steps go
    /// through here.
    async fn step(
        &self,
        operation: OperationRecord,
        step: Step,
        effects: Result<Vec<Effect>, EngineError>,
    ) -> Result<OperationRecord, StepError> {
        if operation.has_done(step) {
            return Ok(operation);
        }
        let failed = |e: EngineError| (Phase::Step(step), DriverError::Refused(e.to_string()));
        let effects = effects.map_err(failed)?;
        volume::apply_all(&self.driver, effects)
            .await
            .map_err(|e| (Phase::Step(step), e))?;
        self.step_done(&operation, step).map_err(failed)
    }

    /// Mark a step done in the journal, then stop if the test build was
    /// told to crash here. A step the operation does not have (in its
    /// current direction) is a bug, refused before the journal says so.
    fn step_done(
        &self,
        operation: &OperationRecord,
        step: Step,
    ) -> Result<OperationRecord, EngineError> {
        let kind = operation.operation.kind();
        if !operation.steps().contains(&step) {
            return Err(EngineError::Invalid(format!(
                "{kind} has no step '{step}'{}",
                if operation.rolling_back {
                    " when undoing"
                } else {
                    ""
                }
            )));
        }
        let mut next = operation.clone();
        next.done.push(step);
        self.commit(vec![Change::PutOperation(next.clone())])?;
        self.config.faults.reached(FaultPoint::Done(kind, step));
        Ok(next)
    }
}
