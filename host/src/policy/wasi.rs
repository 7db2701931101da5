//! The WASI a policy sees: nothing granted, time that only moves when the
//! guest waits, and a byte budget for what the host makes or takes on the
//! guest's behalf.
//!
//! wasmtime's epoch deadline interrupts guest code, never a host call. So no
//! host call a guest can make may block or run long:
//!
//! - **Waiting is virtual.** The monotonic clock starts at 0 for every
//!   decision and moves only when the guest waits on a clock. A pollable
//!   from `subscribe-duration` or `subscribe-instant` is ready at once and
//!   advances the clock to its instant when polled. Asking to wait past the
//!   decision's deadline traps at once as a timeout: the guest could not
//!   have finished in time. A loop of short sleeps therefore reaches the
//!   deadline in virtual time, and a loop that never looks at the clock is
//!   stopped by the epoch deadline as before.
//! - **Every other pollable is ready at once.** The only streams are stdin
//!   (closed), stdout (a sink) and stderr (a small in-memory pipe); sockets
//!   are not linked, and with no preopened directory there are no files.
//! - **Bytes are budgeted.** Random bytes and stdout or stderr writes are
//!   charged to one budget per decision, the policy's hostcall fuel. A call
//!   that would overdraw it traps as a hostcall-limit fault before the host
//!   allocates anything.
//!
//! The wall clock and the random seeds are fixed, so a decision depends only
//! on its inputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError, subscribe};

use super::runtime::GuestState;

/// What one decision may draw from the host, and what it overdrew.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Bytes the host may make or take for the guest in one decision.
    limit: usize,
    used: AtomicUsize,
    /// Set when a call was refused for overdrawing the budget.
    overdrawn: AtomicBool,
    /// Set when the guest asked to wait past its deadline.
    waited_too_long: AtomicBool,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            overdrawn: AtomicBool::new(false),
            waited_too_long: AtomicBool::new(false),
        })
    }

    /// Charge `bytes`, or refuse them (and remember the refusal).
    fn charge(&self, bytes: u64, what: &'static str) -> wasmtime::Result<()> {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        let fits = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if fits {
            Ok(())
        } else {
            self.overdrawn.store(true, Ordering::Relaxed);
            Err(wasmtime::format_err!(
                "the policy asked for {bytes} bytes of {what}, beyond its {} byte budget per decision",
                self.limit
            ))
        }
    }

    /// The budget in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether a call was refused for overdrawing the budget.
    pub(crate) fn overdrawn(&self) -> bool {
        self.overdrawn.load(Ordering::Relaxed)
    }

    /// Whether the guest asked to wait past its deadline.
    pub(crate) fn waited_too_long(&self) -> bool {
        self.waited_too_long.load(Ordering::Relaxed)
    }
}

/// The per-decision state behind the virtual clock and the random sources.
pub(crate) struct Virtual {
    /// Virtual nanoseconds since the decision started.
    now: Arc<AtomicU64>,
    /// The decision's deadline, in virtual nanoseconds.
    deadline: u64,
    budget: Arc<Budget>,
    random: StdRng,
    insecure: StdRng,
}

impl Virtual {
    pub(crate) fn new(deadline: Duration, budget: Arc<Budget>) -> Virtual {
        Virtual {
            now: Arc::new(AtomicU64::new(0)),
            deadline: u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
            budget,
            random: StdRng::seed_from_u64(0),
            insecure: StdRng::seed_from_u64(1),
        }
    }

    fn bytes(&mut self, len: u64, secure: bool) -> wasmtime::Result<Vec<u8>> {
        self.budget.charge(len, "random data")?;
        let mut bytes = vec![0; len as usize];
        let rng = if secure {
            &mut self.random
        } else {
            &mut self.insecure
        };
        rand::Rng::fill_bytes(rng, &mut bytes);
        Ok(bytes)
    }
}

/// The view host calls get: the virtual state and the resource table.
pub(crate) struct VirtualView<'a> {
    state: &'a mut Virtual,
    table: &'a mut ResourceTable,
}

struct HasVirtual;

impl HasData for HasVirtual {
    type Data<'a> = VirtualView<'a>;
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

fn view(state: &mut GuestState) -> VirtualView<'_> {
    let (state, table) = state.virtual_parts();
    VirtualView { state, table }
}

/// A wait on the virtual clock: ready at once, and polling it moves the
/// clock to its instant.
struct VirtualWait {
    until: u64,
    now: Arc<AtomicU64>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for VirtualWait {
    async fn ready(&mut self) {
        self.now.fetch_max(self.until, Ordering::Relaxed);
    }
}

impl VirtualView<'_> {
    fn wait_until(&mut self, until: u64) -> wasmtime::Result<Resource<DynPollable>> {
        if until > self.state.deadline {
            self.state
                .budget
                .waited_too_long
                .store(true, Ordering::Relaxed);
            return Err(wasmtime::format_err!(
                "the policy asked to wait until {until} ns, past its deadline of {} ns",
                self.state.deadline
            ));
        }
        let wait = self.table.push(VirtualWait {
            until,
            now: self.state.now.clone(),
        })?;
        subscribe(self.table, wait)
    }
}

impl clocks::monotonic_clock::Host for VirtualView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.state.now.load(Ordering::Relaxed))
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.wait_until(when)
    }

    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let until = self
            .state
            .now
            .load(Ordering::Relaxed)
            .saturating_add(duration);
        self.wait_until(until)
    }
}

impl random::random::Host for VirtualView<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.state.bytes(len, true)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(rand::Rng::next_u64(&mut self.state.random))
    }
}

impl random::insecure::Host for VirtualView<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.state.bytes(len, false)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(rand::Rng::next_u64(&mut self.state.insecure))
    }
}

impl random::insecure_seed::Host for VirtualView<'_> {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        Ok((0, 0))
    }
}

/// Link the WASI interfaces a Rust guest imports, with the clock and the
/// random sources replaced by the virtual ones. Sockets are not linked: a
/// module that imports them is refused at load, naming the import.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    type T = GuestState;
    let l = linker;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, HasVirtual>(l, view)?;
    random::random::add_to_linker::<T, HasVirtual>(l, view)?;
    random::insecure::add_to_linker::<T, HasVirtual>(l, view)?;
    random::insecure_seed::add_to_linker::<T, HasVirtual>(l, view)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    Ok(())
}

/// stdout or stderr: writes are charged to the decision's budget, then go
/// to `inner` (a sink, or the pipe that keeps a panic message).
pub(crate) struct Charged<S> {
    pub(crate) inner: S,
    pub(crate) budget: Arc<Budget>,
}

impl<S> IsTerminal for Charged<S> {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl<S: StdoutStream + 'static> StdoutStream for Charged<S> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(ChargedStream {
            inner: self.inner.p2_stream(),
            budget: self.budget.clone(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this, and the linker offers them nothing.
        Box::new(tokio::io::sink())
    }
}

struct ChargedStream {
    inner: Box<dyn OutputStream>,
    budget: Arc<Budget>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChargedStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

impl OutputStream for ChargedStream {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.budget
            .charge(bytes.len() as u64, "output")
            .map_err(StreamError::Trap)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.inner.check_write()
    }
}
