//! Policies: the sandboxed WebAssembly runtime that runs them, the registry
//! that names and reloads them, and the golden-file test runner.
//!
//! Every decision runs in a fresh instance, bounded by a deadline, a memory
//! cap, table and instance caps and hostcall fuel, with WASI linked but
//! nothing granted. Every answer is validated ([`crate::model::validate`])
//! before it is returned.

mod bindings;
pub mod bundled;
mod cache;
mod error;
mod file;
pub mod golden;
pub mod metrics;
mod registry;
mod runtime;
mod set;
mod wasi;

pub use error::{Blame, Fault, LoadError, PolicyError, Refusal};
pub use file::{MAX_MODULE_BYTES, ModuleFile, ModuleFileError, read_at as read_module_file};
pub use registry::{PolicySummary, Progress, Registry, RegistryConfig, ReloadEvent, Watcher};
pub use runtime::{INTERFACES, Limits, LoadedPolicy, PreparedTopology, Runtime, RuntimeConfig};
pub use set::{Bound, Placed, PolicySet};
