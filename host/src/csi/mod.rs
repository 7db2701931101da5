//! The CSI driver: the identity, node and controller services of the
//! Container Storage Interface (spec v1.12.0, `csi.v1`) over one gRPC
//! server on a unix socket.
//!
//! This folder is gRPC glue only. Mounts run through the exec layer like
//! every other command, and controller calls go to the same engine and
//! policies as aplo's own provisioner.

mod authority;
pub mod controller;
pub mod identity;
pub mod node;
pub mod registration;
pub mod server;

/// The messages and services generated from `host/proto/csi/csi.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("csi.v1");
}

pub use controller::Controller;
pub use identity::{Identity, NotReady, Readiness};
pub use node::{Node, NodeConfig};
pub use registration::Registrar;
pub use server::{Endpoint, EndpointError};
