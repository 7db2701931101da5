//! aplo: Kubernetes storage on GlusterFS and LVM, with every decision made by
//! a sandboxed WebAssembly policy.
//!
//! One concern per module, in layers; each uses only lower layers
//! (`docs/architecture.md`, checked by `tests/layers.rs`):
//!
//! 0. [`model`]: domain types, the rules policy answers must obey, topology
//!    files and storage records (pure: no I/O);
//! 1. [`exec`]: the only layer that runs commands (executor, transports,
//!    gluster and LVM command lines and parsers, brick backends, mounts);
//!    [`plan`]: pure planning of volume operations, reconciliation and
//!    simulation; [`policy`]: the Wasm runtime, the policy registry and
//!    golden tests; [`store`]: where aplo keeps its state;
//! 2. [`engine`]: the storage engine every front end drives (policies,
//!    journal, drivers, recovery);
//! 3. [`front`]: what the front ends share (claims and classes read into
//!    the model, metrics, the serving status);
//! 4. the front ends: [`kube`] (the provisioner), [`http`] (the REST API,
//!    the admission webhook, health and metrics), [`csi`] (the CSI driver);
//! 5. [`cli`]: the `aplo` command line.

pub mod cli;
pub mod csi;
pub mod engine;
pub mod exec;
pub mod front;
pub mod http;
pub mod kube;
pub mod model;
pub mod plan;
pub mod policy;
pub mod store;
