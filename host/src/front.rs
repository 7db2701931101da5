//! What the front ends share, so that none imports another: the reading
//! of Kubernetes claims and StorageClasses into aplo's model and the PV that
//! answers a claim ([`claim`], used by the provisioner, the admission
//! webhook and the CSI controller), the Prometheus metrics ([`metrics`])
//! and the serving status ([`status`]).

pub mod claim;
pub mod metrics;
pub mod status;

pub use metrics::Metrics;
pub use status::{Phase, Status};
