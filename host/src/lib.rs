//! aplo: Kubernetes storage on GlusterFS and LVM, with every decision made by
//! a sandboxed WebAssembly policy.
//!
//! - [`model`]: domain types, the rules policy answers must obey, topology
//!   files and storage records (pure: no I/O);
//! - [`policy`]: the Wasm runtime, the policy registry and golden tests;
//! - [`plan`]: pure planning of volume operations, reconciliation and
//!   simulation;
//! - [`store`]: where aplo keeps its state (the `Store` trait, redb);
//! - [`exec`]: the only layer that runs commands (executor, transports,
//!   gluster and LVM command lines and parsers, brick backends);
//! - [`kube`]: the Kubernetes provisioner (the only layer, with [`http`],
//!   that talks to the network);
//! - [`http`]: metrics, health and (later) the REST API;
//! - [`cli`]: the `aplo` command line.

pub mod cli;
pub mod csi;
pub mod exec;
pub mod http;
pub mod kube;
pub mod model;
pub mod plan;
pub mod policy;
pub mod store;
