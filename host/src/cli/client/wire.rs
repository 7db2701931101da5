//! The one heketi shape the client has and the server does not: the
//! topology that `topology info` assembles from the read endpoints, as
//! heketi's clients do (heketi's `TopologyInfoResponse`).

use serde::{Deserialize, Serialize};

use crate::http::heketi::{NodeInfoResponse, VolumeInfoResponse};

/// One cluster in heketi's topology: its volumes and nodes in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopologyCluster {
    /// Its volumes.
    pub volumes: Vec<VolumeInfoResponse>,
    /// Its nodes.
    pub nodes: Vec<NodeInfoResponse>,
    /// Id.
    pub id: String,
    /// Serves block volumes.
    pub block: bool,
    /// Serves file volumes.
    pub file: bool,
}

/// heketi's `TopologyInfoResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topology {
    /// The clusters.
    pub clusters: Vec<TopologyCluster>,
}
