//! Test topologies that read like sentences (unit tests only):
//! `TopologyBuilder::new().node("a1", "z1").tag("rack", "r1").device(100 * GIB).build()`.

use crate::{Cluster, Device, Id, Node, Pairs, PlacementRequest, Scheme, State, Topology};

/// One cluster, built node by node; ids count up from 1 in the order given.
pub struct TopologyBuilder {
    cluster: Cluster,
    next_id: u128,
}

#[allow(clippy::new_without_default)]
impl TopologyBuilder {
    pub fn new() -> TopologyBuilder {
        TopologyBuilder {
            cluster: Cluster {
                id: Id(0xc1),
                nodes: Vec::new(),
            },
            next_id: 1,
        }
    }

    fn id(&mut self) -> Id {
        self.next_id += 1;
        Id(self.next_id)
    }

    /// An online node.
    pub fn node(mut self, hostname: &str, zone: &str) -> TopologyBuilder {
        let id = self.id();
        self.cluster.nodes.push(Node {
            id,
            hostname: hostname.into(),
            zone: zone.into(),
            state: State::Online,
            tags: Pairs::new(),
            devices: Vec::new(),
        });
        self
    }

    /// A tag on the last node.
    pub fn tag(mut self, key: &str, value: &str) -> TopologyBuilder {
        let node = self.cluster.nodes.last_mut().expect("a node first");
        node.tags.insert(key.into(), value.into());
        self
    }

    /// An online, empty device of `bytes` on the last node.
    pub fn device(mut self, bytes: u64) -> TopologyBuilder {
        let id = self.id();
        let node = self.cluster.nodes.last_mut().expect("a node first");
        node.devices.push(Device {
            id,
            state: State::Online,
            total_bytes: bytes,
            free_bytes: bytes,
            brick_count: 0,
            tags: Pairs::new(),
        });
        self
    }

    /// A tag on the last device.
    pub fn device_tag(mut self, key: &str, value: &str) -> TopologyBuilder {
        let device = self
            .cluster
            .nodes
            .last_mut()
            .and_then(|n| n.devices.last_mut())
            .expect("a device first");
        device.tags.insert(key.into(), value.into());
        self
    }

    pub fn build(self) -> Topology {
        Topology {
            clusters: vec![self.cluster],
        }
    }
}

/// A request for `bytes` of replica 3 named `vol1`.
pub fn replica3(bytes: u64) -> PlacementRequest {
    PlacementRequest {
        volume_name: "vol1".into(),
        bytes,
        scheme: Scheme::Replicate {
            count: 3,
            arbiter: false,
        },
        snapshot_reserve: 1.0,
        preferred_zone: None,
        preferred_node: None,
    }
}
