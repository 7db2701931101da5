//! The sandbox: one wasmtime engine with a pooling allocator and an epoch
//! ticker, policies compiled once into an `InstancePre`, and a fresh,
//! bounded instance for every decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{self, durability, placement, quota, settings};
use super::cache::ModuleCache;
use super::error::{Fault, PolicyError};
use super::metrics::PolicyMetrics;
use super::wasi::{self, Budget, Charged, Virtual};
use crate::model::{self, Decision};

/// Bounds on one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline for one call, enforced by epoch interruption.
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Linear memory cap in bytes.
    pub memory_bytes: usize,
    /// Table elements cap.
    pub table_elements: usize,
    /// Bytes the guest may pass to the host in one host call, and bytes the
    /// host may make or take for it in one decision (random data, stdout
    /// and stderr).
    pub hostcall_fuel: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            table_elements: 10_000,
            hostcall_fuel: 1 << 20,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled modules are cached; `None` compiles on every load.
    pub cache_dir: Option<std::path::PathBuf>,
    /// How often the epoch advances; deadlines are rounded up to it.
    pub epoch_tick: Duration,
    /// Instances that may run at once (the pool's size). Callers beyond
    /// it wait for a free slot, at most their call's deadline, and then
    /// fail with [`Fault::Busy`].
    pub pool_slots: u32,
    /// The largest memory cap any policy may be given.
    pub max_memory_bytes: usize,
    /// Write `/tmp/perf-<pid>.map` so that `perf` names the guests'
    /// functions (for profiling policies: `--policy-perf-map` in the CLI,
    /// `APLO_POLICY_PERF_MAP=1` in the placement benchmark).
    pub perf_map: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            epoch_tick: Duration::from_millis(1),
            pool_slots: 64,
            max_memory_bytes: 256 << 20,
            perf_map: false,
        }
    }
}

/// What a guest's store holds: WASI with nothing granted, the virtual clock
/// and random sources, the byte budget, and the limiter.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    virt: Virtual,
    budget: Arc<Budget>,
    limiter: Limiter,
    stderr: MemoryOutputPipe,
}

impl GuestState {
    /// The virtual clock and random state, beside the resource table.
    pub(crate) fn virtual_parts(&mut self) -> (&mut Virtual, &mut ResourceTable) {
        (&mut self.virt, &mut self.table)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps memory and tables and remembers a refused growth, so that the trap
/// that follows (an allocation failure) is reported as a memory limit.
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    memory_refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.memory_refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }
}

const MAX_CORE_INSTANCES: u32 = 16;
const MAX_TABLES: u32 = 8;
const MAX_MEMORIES: u32 = 2;
const STDERR_CAPACITY: usize = 16 << 10;
/// Bytes of each memory slot kept resident between instances: a Rust
/// policy's stack and working set for a topology of about 1,000 devices.
const KEEP_RESIDENT: usize = 512 << 10;

/// A fixed wall clock: 2026-01-01T00:00:00Z. Policies must not depend on time.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(1_767_225_600)
    }
}

/// Advances the engine's epoch every tick until the runtime is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("aplo-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A counting semaphore over the pool's slots. Waiting for one is bounded:
/// a pool held by slow calls makes later callers fail fast with
/// [`Fault::Busy`] instead of queueing behind them for ever.
struct Slots {
    total: u32,
    free: Mutex<u32>,
    freed: Condvar,
    metrics: PolicyMetrics,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(total: u32, metrics: PolicyMetrics) -> Slots {
        Slots {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
            metrics,
        }
    }

    /// A free slot, waiting at most `wait` for one; `None` when none came
    /// free in time.
    fn acquire(&self, wait: Duration) -> Option<SlotGuard<'_>> {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut free, _) = self
            .freed
            .wait_timeout_while(free, wait, |free| *free == 0)
            .unwrap_or_else(|e| e.into_inner());
        if *free == 0 {
            return None;
        }
        *free -= 1;
        self.metrics.instance_started();
        Some(SlotGuard(self))
    }

    fn in_use(&self) -> u32 {
        self.total - *self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
        self.0.metrics.instance_ended();
    }
}

/// The sandbox shared by every policy.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    cache: Option<ModuleCache>,
    config: RuntimeConfig,
    slots: Slots,
    _ticker: Ticker,
}

impl Runtime {
    /// The decision metrics of every policy this runtime runs.
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.slots.metrics
    }

    /// Set up the engine, the WASI linker (nothing granted) and the ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, PolicyError> {
        let host = |detail: String| PolicyError::Load {
            policy: "-".into(),
            origin: "runtime".into(),
            detail,
        };
        let mut pool = PoolingAllocationConfig::default();
        let slots = config.pool_slots.max(1);
        pool.total_component_instances(slots)
            .total_core_instances(slots * MAX_CORE_INSTANCES)
            .total_memories(slots * MAX_MEMORIES)
            .total_tables(slots * MAX_TABLES)
            .total_stacks(slots)
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .max_memories_per_component(MAX_MEMORIES)
            .max_tables_per_component(MAX_TABLES)
            .max_memory_size(config.max_memory_bytes)
            // A fresh instance per decision: keep the first pages of each
            // slot resident and zero them on reuse, instead of returning
            // them to the kernel and taking a page fault per touched page.
            // Where Linux has PAGEMAP_SCAN (6.7+), only the pages the last
            // decision wrote are reset; elsewhere all of KEEP_RESIDENT is.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if config.perf_map {
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(|e| host(format!("engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| host(format!("linking WASI: {e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(ModuleCache::open(dir, &engine)?),
            None => None,
        };
        let ticker = Ticker::start(engine.clone(), config.epoch_tick);
        Ok(Runtime {
            engine,
            linker,
            cache,
            slots: Slots::new(slots, PolicyMetrics::default()),
            config,
            _ticker: ticker,
        })
    }

    /// Compile (or load from the cache), link and inspect a module. The
    /// module must export `settings` and at least one decision.
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        origin: &str,
        wasm: &[u8],
        limits: Limits,
    ) -> Result<LoadedPolicy, PolicyError> {
        let fail = |detail: String| PolicyError::Load {
            policy: name.to_owned(),
            origin: origin.to_owned(),
            detail,
        };
        let sha256: [u8; 32] = Sha256::digest(wasm).into();
        if limits.memory_bytes > self.config.max_memory_bytes {
            return Err(fail(format!(
                "its memory cap of {} MiB exceeds the runtime's maximum of {} MiB",
                limits.memory_bytes >> 20,
                self.config.max_memory_bytes >> 20
            )));
        }
        let component = self.compile(wasm, &sha256).map_err(&fail)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("{e:#}")))?;
        let exports = Exports::find(&component, &pre).map_err(&fail)?;
        let mut policy = LoadedPolicy {
            name: name.to_owned(),
            origin: origin.to_owned(),
            sha256,
            limits,
            exports,
            info: model::Info {
                description: String::new(),
                version: String::new(),
                settings: Vec::new(),
            },
            pre,
            runtime: self.clone(),
        };
        policy.typecheck().map_err(&fail)?;
        policy.info = policy
            .describe()
            .map_err(|e| fail(format!("describe() failed: {e}")))?;
        Ok(policy)
    }

    fn compile(&self, wasm: &[u8], sha256: &[u8; 32]) -> Result<Component, String> {
        if !wasm.starts_with(b"\0asm") {
            return Err("not a WebAssembly file (bad magic number)".into());
        }
        if let Some(cache) = &self.cache
            && let Some(component) = cache.get(&self.engine, sha256)
        {
            return Ok(component);
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| format!("{e:#}"))?;
        if let Some(cache) = &self.cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    fn store(&self, limits: &Limits) -> Store<GuestState> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let budget = Budget::new(limits.hostcall_fuel);
        // The monotonic clock and the random sources are the virtual ones
        // linked by `wasi::add_to_linker`; the context's are never called.
        let wasi = WasiCtxBuilder::new()
            .stdout(Charged {
                inner: std::io::empty(),
                budget: budget.clone(),
            })
            .stderr(Charged {
                inner: stderr.clone(),
                budget: budget.clone(),
            })
            .wall_clock(FixedWallClock)
            .build();
        let limiter = Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            memory_refused: false,
        };
        let mut store = Store::new(
            &self.engine,
            GuestState {
                wasi,
                table: ResourceTable::new(),
                virt: Virtual::new(limits.deadline, budget.clone()),
                budget,
                limiter,
                stderr,
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(limits.hostcall_fuel);
        store
    }

    /// Instances running now, out of [`RuntimeConfig::pool_slots`]: how
    /// full the pool is.
    pub fn slots_in_use(&self) -> u32 {
        self.slots.in_use()
    }

    fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.config.epoch_tick.as_nanos().max(1);
        (deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }
}

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

/// The decision interfaces a module exports.
#[derive(Clone)]
pub(crate) struct Exports {
    settings: settings::GuestIndices,
    durability: Option<durability::GuestIndices>,
    placement: Option<placement::GuestIndices>,
    quota: Option<quota::GuestIndices>,
}

/// The interface names of the contract, version 0.1.0.
pub const INTERFACES: [(&str, Option<Decision>); 4] = [
    ("aplo:policy/settings@0.1.0", None),
    ("aplo:policy/durability@0.1.0", Some(Decision::Durability)),
    ("aplo:policy/placement@0.1.0", Some(Decision::Placement)),
    ("aplo:policy/quota@0.1.0", Some(Decision::Quota)),
];

impl Exports {
    fn find(component: &Component, pre: &InstancePre<GuestState>) -> Result<Exports, String> {
        let present = |name: &str| component.get_export_index(None, name).is_some();
        if !present(INTERFACES[0].0) {
            let exported: Vec<String> = component
                .component_type()
                .exports(component.engine())
                .map(|(n, _)| n.to_owned())
                .collect();
            return Err(format!(
                "it does not export {} (exports: {}); is it built against aplo:policy@0.1.0?",
                INTERFACES[0].0,
                if exported.is_empty() {
                    "none".into()
                } else {
                    exported.join(", ")
                }
            ));
        }
        /// The indices of an exported interface; `None` when it is not
        /// exported, an error when it is exported with the wrong types.
        fn indices<I>(
            present: bool,
            name: &str,
            new: impl FnOnce() -> wasmtime::Result<I>,
        ) -> Result<Option<I>, String> {
            if !present {
                return Ok(None);
            }
            new()
                .map(Some)
                .map_err(|e| format!("it exports {name} with the wrong types: {e:#}"))
        }
        let [settings_name, durability_name, placement_name, quota_name] =
            INTERFACES.map(|(name, _)| name);
        let exports = Exports {
            settings: indices(true, settings_name, || settings::GuestIndices::new(pre))?
                .expect("present"),
            durability: indices(present(durability_name), durability_name, || {
                durability::GuestIndices::new(pre)
            })?,
            placement: indices(present(placement_name), placement_name, || {
                placement::GuestIndices::new(pre)
            })?,
            quota: indices(present(quota_name), quota_name, || {
                quota::GuestIndices::new(pre)
            })?,
        };
        if exports.decisions().is_empty() {
            return Err("it exports no decision (durability, placement or quota)".into());
        }
        Ok(exports)
    }

    fn decisions(&self) -> Vec<Decision> {
        let mut out = Vec::new();
        if self.durability.is_some() {
            out.push(Decision::Durability);
        }
        if self.placement.is_some() {
            out.push(Decision::Placement);
        }
        if self.quota.is_some() {
            out.push(Decision::Quota);
        }
        out
    }
}

/// A compiled, linked policy, ready to decide.
pub struct LoadedPolicy {
    name: String,
    origin: String,
    sha256: [u8; 32],
    limits: Limits,
    exports: Exports,
    info: model::Info,
    pre: InstancePre<GuestState>,
    runtime: Arc<Runtime>,
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
    fn typecheck(&self) -> Result<(), String> {
        let mut store = self.runtime.store(&self.limits);
        store.set_epoch_deadline(self.runtime.deadline_ticks(self.limits.deadline));
        let _slot = self
            .runtime
            .slots
            .acquire(self.limits.deadline)
            .ok_or_else(|| {
                format!(
                    "its types could not be checked: all {} policy instance slots stayed busy",
                    self.runtime.slots.total
                )
            })?;
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("instantiating it failed: {e:#}"))?;
        let [settings, durability, placement, quota] = INTERFACES.map(|(name, _)| name);
        let component = self.pre.component();
        let wrong = |name: &'static str| {
            move |e: wasmtime::Error| {
                format!(
                    "it exports {name} with types other than the contract's ({e:#}); it has {}",
                    signatures(component, name).join(", ")
                )
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

    fn describe(&self) -> Result<model::Info, PolicyError> {
        self.call(Decision::Validate, |store, instance, exports| {
            let guest = exports.settings.load(&mut *store, instance)?;
            guest.call_describe(store).map(bindings::info)
        })
    }

    /// Check settings: `Ok(Err(message))` when the policy refuses them.
    pub fn validate(&self, settings: &model::Pairs) -> Result<Result<(), String>, PolicyError> {
        let pairs = bindings::pairs(settings);
        self.call(Decision::Validate, |store, instance, exports| {
            let guest = exports.settings.load(&mut *store, instance)?;
            guest.call_validate(store, &pairs)
        })
    }

    /// The raw durability answer. Callers validate it (see `PolicySet`).
    pub fn decide(
        &self,
        claim: &model::Claim,
        settings: &model::Pairs,
    ) -> Result<Result<model::DurabilityDecision, String>, PolicyError> {
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
            Err(reason) => Ok(Err(reason)),
        }
    }

    /// The raw placement answer. Callers validate it (see `PolicySet`).
    pub fn place(
        &self,
        request: &model::PlacementRequest,
        topology: &PreparedTopology,
        settings: &model::Pairs,
    ) -> Result<Result<model::Layout, String>, PolicyError> {
        self.place_encoded(request, &topology.encoded, settings)
    }

    /// [`LoadedPolicy::place`] with the topology already in its WIT form.
    pub(crate) fn place_encoded(
        &self,
        request: &model::PlacementRequest,
        topology: &bindings::WitTopology,
        settings: &model::Pairs,
    ) -> Result<Result<model::Layout, String>, PolicyError> {
        let (request, pairs) = (
            bindings::placement_request(request),
            bindings::pairs(settings),
        );
        self.call(Decision::Placement, |store, instance, exports| {
            let indices = exports.placement.as_ref().expect("checked by call");
            let guest = indices.load(&mut *store, instance)?;
            Ok(guest
                .call_place(store, &request, topology, &pairs)?
                .map(bindings::layout))
        })
    }

    /// The raw quota answer. Callers validate it (see `PolicySet`).
    pub fn check(
        &self,
        request: &model::QuotaRequest,
        settings: &model::Pairs,
    ) -> Result<Result<model::Allowance, String>, PolicyError> {
        let (request, pairs) = (bindings::quota_request(request), bindings::pairs(settings));
        self.call(Decision::Quota, |store, instance, exports| {
            let indices = exports.quota.as_ref().expect("checked by call");
            let guest = indices.load(&mut *store, instance)?;
            Ok(guest
                .call_check(store, &request, &pairs)?
                .map(bindings::allowance))
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

/// The functions an exported interface has, with their types, for an error
/// that names them: `decide: func(requested: u64) -> u32`.
fn signatures(component: &Component, interface: &str) -> Vec<String> {
    use wasmtime::component::types::ComponentItem;
    let engine = component.engine();
    let ty = component.component_type();
    let Some(ComponentItem::ComponentInstance(instance)) =
        ty.get_export(engine, interface).map(|e| e.ty)
    else {
        return vec!["no functions".into()];
    };
    instance
        .exports(engine)
        .filter_map(|(name, item)| match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let params: Vec<String> = func
                    .params()
                    .map(|(param, ty)| format!("{param}: {}", type_name(&ty)))
                    .collect();
                let results: Vec<&str> = func.results().map(|ty| type_name(&ty)).collect();
                Some(format!(
                    "{name}: func({}){}",
                    params.join(", "),
                    if results.is_empty() {
                        String::new()
                    } else {
                        format!(" -> {}", results.join(", "))
                    }
                ))
            }
            _ => None,
        })
        .collect()
}

/// A component type's kind, as WIT spells it.
fn type_name(ty: &wasmtime::component::types::Type) -> &'static str {
    use wasmtime::component::types::Type;
    match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) | Type::FixedLengthList(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) | Type::Borrow(_) => "resource",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
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

    #[test]
    fn a_full_pool_answers_busy_within_the_wait_and_a_freed_slot_is_taken() {
        let slots = Slots::new(2, PolicyMetrics::default());
        let (a, b) = (slots.acquire(Duration::ZERO), slots.acquire(Duration::ZERO));
        assert!(a.is_some() && b.is_some());
        assert_eq!(slots.in_use(), 2);
        let started = std::time::Instant::now();
        assert!(slots.acquire(Duration::from_millis(50)).is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // A slot freed while a caller waits goes to that caller.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| slots.acquire(Duration::from_secs(30)).is_some());
            drop(a);
            assert!(waiter.join().unwrap());
        });
        assert_eq!(slots.in_use(), 1);
        drop(b);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn deadlines_round_up_to_ticks() {
        let runtime = Runtime::new(RuntimeConfig {
            epoch_tick: Duration::from_millis(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(runtime.deadline_ticks(Duration::from_millis(100)), 20);
        assert_eq!(runtime.deadline_ticks(Duration::from_millis(101)), 21);
        assert_eq!(runtime.deadline_ticks(Duration::ZERO), 1);
    }
}
