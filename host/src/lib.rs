//! aplo: Kubernetes storage on GlusterFS and LVM, with every decision made by
//! a sandboxed WebAssembly policy.
//!
//! - [`model`]: domain types and the rules policy answers must obey (pure);
//! - [`policy`]: the Wasm runtime, the policy registry and golden tests;
//! - [`cli`]: the `aplo` command line.

pub mod cli;
pub mod exec;
pub mod model;
pub mod policy;
pub mod store;
