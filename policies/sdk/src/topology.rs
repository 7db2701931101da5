//! Walking a topology: the devices a brick may go to, their effective tags,
//! and zones.

use std::collections::BTreeSet;

use crate::tags::TagSelector;
use crate::{Cluster, Device, Node, State, Topology};

/// A device together with the node and cluster it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The node.
    pub node: &'a Node,
    /// The device.
    pub device: &'a Device,
}

impl<'a> Candidate<'a> {
    /// A tag's value: the device's own, else the node's (see
    /// [`candidates`] for an example).
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.device
            .tags
            .get(key)
            .or_else(|| self.node.tags.get(key))
            .map(String::as_str)
    }

    /// Whether the effective tags (as [`Candidate::tag`] reads them)
    /// satisfy every selector, e.g. those of a `device-tags` setting read
    /// with [`Settings::selectors`](crate::Settings::selectors).
    pub fn matches(&self, selectors: &[TagSelector]) -> bool {
        selectors.iter().all(|s| s.accepts(self.tag(s.key())))
    }

    /// The node's zone.
    pub fn zone(&self) -> &'a str {
        &self.node.zone
    }
}

/// Every device on which new bricks may go: the device and its node online,
/// cluster by cluster, node by node, in the topology's order.
///
/// ```
/// use aplo_policy_sdk::prelude::*;
/// use aplo_policy_sdk::topology::candidates;
/// # let device = |id: u128, tags: &[(&str, &str)]| Device {
/// #     id: Id(id), state: State::Online, total_bytes: 100 * GIB, free_bytes: 100 * GIB,
/// #     brick_count: 0, tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
/// # let topology = Topology { clusters: vec![Cluster { id: Id(1), nodes: vec![Node {
/// #     id: Id(2), hostname: "n1".into(), zone: "z1".into(), state: State::Online,
/// #     tags: [("rack".to_string(), "r1".to_string())].into(),
/// #     devices: vec![device(3, &[]), device(4, &[("rack", "r9"), ("retired", "true")])] }] }] };
/// // Node n1 is tagged rack=r1; its second device rack=r9 and retired=true.
/// let racks: Vec<(&str, Option<&str>)> = candidates(&topology)
///     .map(|c| (c.node.hostname.as_str(), c.tag("rack")))
///     .collect();
/// assert_eq!(racks, [("n1", Some("r1")), ("n1", Some("r9"))]);
///
/// // Skip devices an admin retired, by device or by node tag:
/// let in_service = candidates(&topology).filter(|c| c.tag("retired") != Some("true"));
/// assert_eq!(in_service.count(), 1);
/// ```
pub fn candidates(topology: &Topology) -> impl Iterator<Item = Candidate<'_>> {
    topology.clusters.iter().flat_map(|cluster| {
        cluster
            .nodes
            .iter()
            .filter(|node| node.state == State::Online)
            .flat_map(move |node| {
                node.devices
                    .iter()
                    .filter(|device| device.state == State::Online)
                    .map(move |device| Candidate {
                        cluster,
                        node,
                        device,
                    })
            })
    })
}

/// The distinct zones of a cluster's online nodes.
pub fn online_zones(cluster: &Cluster) -> BTreeSet<&str> {
    cluster
        .nodes
        .iter()
        .filter(|n| n.state == State::Online)
        .map(|n| n.zone.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pairs;

    fn device(id: u128, state: State, tags: &[(&str, &str)]) -> Device {
        Device {
            id: crate::Id(id),
            state,
            total_bytes: 100,
            free_bytes: 100,
            brick_count: 0,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn candidates_skip_offline_and_inherit_node_tags() {
        let node = |id: &str, state, devices| Node {
            id: crate::Id(id.len() as u128),
            hostname: id.into(),
            zone: "z1".into(),
            state,
            tags: [("rack".to_string(), "r1".to_string())]
                .into_iter()
                .collect::<Pairs>(),
            devices,
        };
        let topology = Topology {
            clusters: vec![Cluster {
                id: crate::Id(9),
                nodes: vec![
                    node(
                        "n1",
                        State::Online,
                        vec![
                            device(1, State::Online, &[("rack", "r9")]),
                            device(2, State::Failed, &[]),
                        ],
                    ),
                    node("n22", State::Offline, vec![device(3, State::Online, &[])]),
                ],
            }],
        };
        let found: Vec<_> = candidates(&topology).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].tag("rack"), Some("r9"));
        assert!(found[0].matches(&TagSelector::parse_list("rack=r9").unwrap()));
        assert_eq!(online_zones(&topology.clusters[0]).len(), 1);
    }
}

/// What a device may hold, from its effective `arbiter` tag (as in heketi):
/// `required` holds only arbiter bricks, `disabled` never holds one,
/// `supported` (or no tag) holds either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArbiterUse {
    /// Only arbiter bricks.
    Required,
    /// Data or arbiter bricks.
    Supported,
    /// Only data bricks.
    Disabled,
}

impl Candidate<'_> {
    /// The device's arbiter use, from its effective `arbiter` tag. Data
    /// bricks go to devices that are not [`ArbiterUse::Required`], arbiter
    /// bricks to devices that are not [`ArbiterUse::Disabled`]:
    ///
    /// ```
    /// use aplo_policy_sdk::layout::Slot;
    /// use aplo_policy_sdk::spread::roomiest_per_node;
    /// use aplo_policy_sdk::topology::ArbiterUse;
    ///
    /// fn data_devices<'a>(slots: &[Slot<'a>]) -> Vec<Slot<'a>> {
    ///     roomiest_per_node(slots, |c| c.arbiter_use() != ArbiterUse::Required)
    /// }
    /// ```
    pub fn arbiter_use(&self) -> ArbiterUse {
        match self.tag("arbiter") {
            Some("required") => ArbiterUse::Required,
            Some("disabled") => ArbiterUse::Disabled,
            _ => ArbiterUse::Supported,
        }
    }
}
