//! Execution: the only layer that runs commands, and the parsers for what
//! the tools print. The `Executor` and its transports (local, ssh, command
//! prefix) arrive with the storage engine (issue #3); the parsers are pure
//! and tested against real output under `tests/data/`.

pub mod gluster;
pub mod lvm;
