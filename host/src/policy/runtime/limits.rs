//! Bounds on one decision: the limits a policy runs under, the limiter that
//! enforces memory and tables, the epoch ticker behind deadlines, and the
//! fixed wall clock a guest sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::HostWallClock;

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

/// Caps memory and tables and remembers a refused growth, so that the trap
/// that follows (an allocation failure) is reported as a memory limit.
pub(super) struct Limiter {
    pub(super) memory_bytes: usize,
    pub(super) table_elements: usize,
    pub(super) memory_refused: bool,
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

pub(super) const MAX_CORE_INSTANCES: u32 = 16;
pub(super) const MAX_TABLES: u32 = 8;
pub(super) const MAX_MEMORIES: u32 = 2;
pub(super) const STDERR_CAPACITY: usize = 16 << 10;
/// Bytes of each memory slot kept resident between instances: a Rust
/// policy's stack and working set for a topology of about 1,000 devices.
pub(super) const KEEP_RESIDENT: usize = 512 << 10;

/// A fixed wall clock: 2026-01-01T00:00:00Z. Policies must not depend on time.
pub(super) struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(1_767_225_600)
    }
}

/// Advances the engine's epoch every tick until the runtime is dropped.
pub(super) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(super) fn start(engine: Engine, tick: Duration) -> Ticker {
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
