//! Planning: pure functions from the store's records and the policies'
//! validated answers to what must happen. Nothing here does I/O.
//!
//! - [`effect`]: what an operation does to the world, as data;
//! - [`volume`]: the records and effects of volume operations;
//! - [`simulate`]: workloads and reports of `aplo simulate`;
//! - [`heketi`]: an emulation of heketi's allocator, for comparisons.

pub mod effect;
pub mod heketi;
pub mod simulate;
pub mod volume;
