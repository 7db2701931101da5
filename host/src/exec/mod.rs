//! Execution: the only layer that runs commands, and the parsers for what
//! the tools print.
//!
//! - [`command`]: the `Executor` trait and its transports (local, ssh, a
//!   command prefix such as `nsenter`), with timeouts, `LC_ALL=C`, captured
//!   stderr, per-node serialization and a trace of every command;
//! - [`gluster`], [`lvm`]: command lines, pure parsers for `gluster
//!   --xml` and LVM JSON reports, and the one classification of each
//!   tool's failures ([`gluster::Failure`], [`lvm::LvmFailure`]), all
//!   tested against real output under `tests/data/`;
//! - [`session`]: a long-lived gluster CLI per node, which saves the
//!   CLI's ~50 ms start on every gluster command;
//! - [`brick`]: the brick backends (`lvm-thin`, `loop`, `dir`);
//! - [`mount`]: glusterfs FUSE and bind mounts for the CSI node service.
//!
//! It imports only [`crate::model`]: it knows nothing of plans, policies,
//! the store or the engine that calls it.

pub mod brick;
pub mod command;
pub mod gluster;
pub mod lvm;
pub mod mount;
pub mod session;
