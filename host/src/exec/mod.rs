//! Execution: the only layer that runs commands, and the parsers for what
//! the tools print.
//!
//! - [`command`]: the `Executor` trait and its transports (local, ssh, a
//!   command prefix such as `nsenter`), with timeouts, `LC_ALL=C`, captured
//!   stderr, per-node serialization and a trace of every command;
//! - [`gluster`], [`lvm`]: pure parsers for `gluster --xml` and LVM JSON
//!   reports, tested against real output under `tests/data/`.
//!
//! The gluster and LVM command builders, brick backends and the simulate
//! executor arrive with the storage engine (issue #3).

pub mod brick;
pub mod command;
pub mod driver;
pub mod engine;
pub mod gluster;
pub mod lvm;
