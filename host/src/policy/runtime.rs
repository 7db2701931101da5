//! The sandbox: one wasmtime engine with a pooling allocator and an epoch
//! ticker, policies compiled once into an `InstancePre`, and a fresh,
//! bounded instance for every decision.

mod exports;
mod limits;
mod loaded;
mod pool;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use self::exports::Exports;
pub use self::exports::INTERFACES;
pub use self::limits::Limits;
use self::limits::{
    FixedWallClock, KEEP_RESIDENT, Limiter, MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES,
    STDERR_CAPACITY, Ticker,
};
pub use self::loaded::{LoadedPolicy, PreparedTopology};
use self::pool::Slots;
use crate::model;
use crate::policy::cache::ModuleCache;
use crate::policy::error::{LoadError, PolicyError};
use crate::policy::metrics::PolicyMetrics;
use crate::policy::wasi::{self, Budget, Charged, Virtual};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled modules are cached; `None` compiles on every load.
    pub cache_dir: Option<std::path::PathBuf>,
    /// How often the epoch advances; deadlines are rounded up to it.
    pub epoch_tick: Duration,
    /// Instances that may run at once (the pool's size). Callers beyond
    /// it wait for a free slot, at most their call's deadline, and then
    /// fail with [`Fault::Busy`](crate::policy::Fault::Busy).
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
        let component = self
            .compile(wasm, &sha256)
            .map_err(|e| fail(e.to_string()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("{e:#}")))?;
        let exports = Exports::find(&component, &pre).map_err(|e| fail(e.to_string()))?;
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
        policy.typecheck().map_err(|e| fail(e.to_string()))?;
        policy.info = policy
            .describe()
            .map_err(|e| fail(format!("describe() failed: {e}")))?;
        Ok(policy)
    }

    fn compile(&self, wasm: &[u8], sha256: &[u8; 32]) -> Result<Component, LoadError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        if let Some(cache) = &self.cache
            && let Some(component) = cache.get(&self.engine, sha256)
        {
            return Ok(component);
        }
        let component = Component::new(&self.engine, wasm).map_err(LoadError::Compile)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
