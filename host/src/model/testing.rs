//! Test builders that read like sentences:
//! `topology().zones(3).nodes_per_zone(2).devices_per_node(1).free(100 * GIB).build()`.

use super::{Claim, Cluster, Device, Node, Pairs, PlacementRequest, Scheme, State, Topology};

/// Pairs (parameters, settings, tags) from `(key, value)` literals.
pub fn pairs(list: &[(&str, &str)]) -> Pairs {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Start building a topology (one cluster).
pub fn topology() -> TopologyBuilder {
    TopologyBuilder {
        zones: 3,
        nodes_per_zone: 1,
        devices_per_node: 1,
        free: 100 << 30,
        total: None,
        clusters: 1,
    }
}

/// Builds uniform topologies; ids are derived from names, so they are stable.
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    zones: usize,
    nodes_per_zone: usize,
    devices_per_node: usize,
    free: u64,
    total: Option<u64>,
    clusters: usize,
}

impl TopologyBuilder {
    /// Number of zones.
    pub fn zones(mut self, n: usize) -> Self {
        self.zones = n;
        self
    }

    /// Nodes in each zone.
    pub fn nodes_per_zone(mut self, n: usize) -> Self {
        self.nodes_per_zone = n;
        self
    }

    /// Devices on each node.
    pub fn devices_per_node(mut self, n: usize) -> Self {
        self.devices_per_node = n;
        self
    }

    /// Free bytes of each device.
    pub fn free(mut self, bytes: u64) -> Self {
        self.free = bytes;
        self
    }

    /// Total bytes of each device (default: its free bytes).
    pub fn total(mut self, bytes: u64) -> Self {
        self.total = Some(bytes);
        self
    }

    /// Number of clusters, each with the same shape.
    pub fn clusters(mut self, n: usize) -> Self {
        self.clusters = n;
        self
    }

    /// The topology. Node `c{c}z{z}n{n}` is in zone `zone-{z}`; ids are
    /// derived from names, so they are stable.
    pub fn build(self) -> Topology {
        let id = |name: &str| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(name.as_bytes());
            super::Id(u128::from_be_bytes(
                digest[..16].try_into().expect("16 bytes"),
            ))
        };
        let clusters = (0..self.clusters)
            .map(|c| Cluster {
                id: id(&format!("cluster-{c}")),
                nodes: (0..self.zones)
                    .flat_map(|z| (0..self.nodes_per_zone).map(move |n| (z, n)))
                    .map(|(z, n)| {
                        let host = format!("c{c}z{z}n{n}");
                        Node {
                            id: id(&host),
                            hostname: host.clone(),
                            zone: format!("zone-{z}"),
                            state: State::Online,
                            tags: Pairs::new(),
                            devices: (0..self.devices_per_node)
                                .map(|d| Device {
                                    id: id(&format!("{host}/dev/vd{d}")),
                                    state: State::Online,
                                    total_bytes: self.total.unwrap_or(self.free).max(self.free),
                                    free_bytes: self.free,
                                    brick_count: 0,
                                    tags: Pairs::new(),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        Topology { clusters }
    }
}

/// A claim of `bytes` in namespace `default`.
pub fn claim(bytes: u64) -> Claim {
    Claim {
        namespace: "default".into(),
        name: "claim".into(),
        labels: Pairs::new(),
        annotations: Pairs::new(),
        requested_bytes: bytes,
        access_modes: vec![super::AccessMode::ReadWriteMany],
    }
}

/// A placement request for `bytes` with `scheme` and no reserve.
pub fn request(bytes: u64, scheme: Scheme) -> PlacementRequest {
    PlacementRequest {
        volume_name: "vol".into(),
        bytes,
        scheme,
        snapshot_reserve: 1.0,
        preferred_zone: None,
        preferred_node: None,
    }
}
