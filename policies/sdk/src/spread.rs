//! Spreading the bricks of a set over failure domains: zones, or the values
//! of any tag (`rack`, `row`, `power-feed`, ...).
//!
//! A placement policy's `pick` (see [`fill`](crate::layout::fill)) usually
//! does three things: keep one device per node ([`roomiest_per_node`]),
//! order the nodes as it prefers, and take the first nodes whose domains
//! differ ([`Spread::pick`]).
//!
//! ```
//! use aplo_policy_sdk::layout::{SetChoice, SetRequest, Slot};
//! use aplo_policy_sdk::spread::{Spread, roomiest_per_node};
//!
//! fn pick<'a>(slots: &[Slot<'a>], set: &SetRequest) -> Result<SetChoice<'a>, String> {
//!     let mut nodes = roomiest_per_node(slots, |c| c.tag("retired") != Some("true"));
//!     nodes.sort_by(|a, b| b.room.cmp(&a.room));
//!     let chosen = Spread::tag("rack").strict(true).pick(&nodes, set.data_bricks)?;
//!     Ok(SetChoice { data: chosen.iter().map(|s| s.candidate).collect(), arbiter: None })
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::layout::Slot;
use crate::topology::{ArbiterUse, Candidate};

/// What the bricks of a set are kept apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadBy<'k> {
    /// The node's failure zone.
    Zone,
    /// The effective value of a tag (the device's, else its node's, as
    /// [`Candidate::tag`] reads it). Devices without the tag count as one
    /// domain of their own, so two untagged devices never count as apart.
    Tag(&'k str),
}

impl<'k> SpreadBy<'k> {
    /// The domain `candidate` is in: its zone, or its tag's value (`None`
    /// when the tag is absent).
    ///
    /// ```
    /// use aplo_policy_sdk::spread::SpreadBy;
    /// # use aplo_policy_sdk::prelude::*;
    /// # let node = Node { id: Id(1), hostname: "n1".into(), zone: "z1".into(), state: State::Online,
    /// #     tags: [("rack".to_string(), "r7".to_string())].into(), devices: vec![] };
    /// # let cluster = Cluster { id: Id(2), nodes: vec![] };
    /// # let device = Device { id: Id(3), state: State::Online, total_bytes: GIB, free_bytes: GIB,
    /// #     brick_count: 0, tags: Pairs::new() };
    /// # let c = aplo_policy_sdk::topology::Candidate { cluster: &cluster, node: &node, device: &device };
    /// // `c` is a device on node n1, in zone z1, whose node is tagged rack=r7.
    /// assert_eq!(SpreadBy::Zone.value(&c), Some("z1"));
    /// assert_eq!(SpreadBy::Tag("rack").value(&c), Some("r7"));
    /// assert_eq!(SpreadBy::Tag("row").value(&c), None);
    /// ```
    pub fn value<'a>(&self, candidate: &Candidate<'a>) -> Option<&'a str> {
        match self {
            SpreadBy::Zone => Some(candidate.zone()),
            SpreadBy::Tag(key) => candidate.tag(key),
        }
    }

    /// The distinct domains of `slots`, sorted (`None`, untagged, first).
    pub fn values<'a>(&self, slots: &[Slot<'a>]) -> BTreeSet<Option<&'a str>> {
        slots.iter().map(|s| self.value(&s.candidate)).collect()
    }

    fn plural(&self) -> String {
        match self {
            SpreadBy::Zone => "zones".to_owned(),
            SpreadBy::Tag(key) => format!("'{key}' values"),
        }
    }

    fn name(&self, value: Option<&str>) -> String {
        match (self, value) {
            (_, Some(value)) => value.to_owned(),
            (SpreadBy::Zone, None) => "no zone".to_owned(),
            (SpreadBy::Tag(key), None) => format!("no '{key}' tag"),
        }
    }
}

/// Where the bricks of a set are, as `zones` or `'rack' tag`.
impl fmt::Display for SpreadBy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpreadBy::Zone => f.write_str("zones"),
            SpreadBy::Tag(key) => write!(f, "'{key}' tag"),
        }
    }
}

/// How to spread the bricks of a set: over which domains, and whether
/// sharing one is refused (`strict`) or allowed when there are too few
/// (best effort, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread<'k> {
    by: SpreadBy<'k>,
    strict: bool,
}

impl Spread<'static> {
    /// Spread over the nodes' zones, best effort.
    pub fn zones() -> Spread<'static> {
        Spread {
            by: SpreadBy::Zone,
            strict: false,
        }
    }
}

impl<'k> Spread<'k> {
    /// Spread over the values of the tag `key`, best effort.
    pub fn tag(key: &'k str) -> Spread<'k> {
        Spread {
            by: SpreadBy::Tag(key),
            strict: false,
        }
    }

    /// With `strict`, never put two bricks of a set in one domain: refuse
    /// instead.
    pub fn strict(self, strict: bool) -> Spread<'k> {
        Spread { strict, ..self }
    }

    /// What it spreads over.
    pub fn by(&self) -> SpreadBy<'k> {
        self.by
    }

    /// Whether sharing a domain is refused.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Choose up to `count` slots on distinct nodes from `ordered`, taken
    /// best first: first the best slot of each domain not yet used, then
    /// (unless strict) the next best on other nodes, sharing domains. Fewer
    /// than `count` means the set cannot be made; [`Spread::shortfall`] says
    /// why, and [`Spread::pick`] does both.
    ///
    /// The order is the policy's: sort `ordered` by preference first.
    pub fn choose<'a>(&self, ordered: &[Slot<'a>], count: usize) -> Vec<Slot<'a>> {
        let mut chosen: Vec<Slot<'a>> = Vec::with_capacity(count);
        let mut nodes = BTreeSet::new();
        let mut domains = BTreeSet::new();
        for slot in ordered {
            if chosen.len() == count {
                break;
            }
            let node = slot.candidate.node.id;
            if !nodes.contains(&node) && domains.insert(self.by.value(&slot.candidate)) {
                nodes.insert(node);
                chosen.push(*slot);
            }
        }
        if !self.strict {
            for slot in ordered {
                if chosen.len() == count {
                    break;
                }
                if nodes.insert(slot.candidate.node.id) {
                    chosen.push(*slot);
                }
            }
        }
        chosen
    }

    /// Why a set of `bricks` bricks could not be spread over `slots` (call
    /// it when [`Spread::choose`] came short): a sentence for a refusal,
    /// such as `strict zones: a set of 3 bricks needs 3 zones with room,
    /// and only 2 have any (zone-a, zone-b)`.
    pub fn shortfall(&self, bricks: usize, slots: &[Slot<'_>]) -> String {
        if self.strict {
            let domains = self.by.values(slots);
            let prefix = match self.by {
                SpreadBy::Zone => "strict zones".to_owned(),
                SpreadBy::Tag(key) => format!("strict '{key}' spread"),
            };
            return format!(
                "{prefix}: a set of {bricks} bricks needs {bricks} {} with room, and only {} have any ({})",
                self.by.plural(),
                domains.len(),
                domains
                    .iter()
                    .map(|d| self.by.name(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let nodes: BTreeSet<_> = slots.iter().map(|s| s.candidate.node.id).collect();
        match nodes.len() {
            0 => "no device has room left".to_owned(),
            n => format!(
                "a set needs {bricks} bricks on distinct nodes, and only {n} nodes have a device with room"
            ),
        }
    }

    /// [`Spread::choose`] exactly `count` slots, or refuse: with "no device
    /// has room left" when `ordered` is empty, else with
    /// [`Spread::shortfall`].
    ///
    /// ```
    /// # use aplo_policy_sdk::prelude::*;
    /// # use aplo_policy_sdk::layout::Slot;
    /// # use aplo_policy_sdk::topology::candidates;
    /// use aplo_policy_sdk::spread::Spread;
    /// # let node = |n: u128, rack: &str| Node {
    /// #     id: Id(n), hostname: format!("n{n}"), zone: "z1".into(), state: State::Online,
    /// #     tags: [("rack".to_string(), rack.to_string())].into(),
    /// #     devices: vec![Device { id: Id(100 + n), state: State::Online, total_bytes: 100 * GIB,
    /// #         free_bytes: 100 * GIB, brick_count: 0, tags: Pairs::new() }],
    /// # };
    /// # let topology = Topology { clusters: vec![Cluster { id: Id(1),
    /// #     nodes: vec![node(1, "r1"), node(2, "r1"), node(3, "r2")] }] };
    /// # let slots: Vec<Slot<'_>> = candidates(&topology)
    /// #     .map(|candidate| Slot { candidate, room: candidate.device.free_bytes }).collect();
    /// // Nodes n1 and n2 are in rack r1, n3 in rack r2.
    /// let best_effort = Spread::tag("rack").pick(&slots, 3)?;
    /// let hosts: Vec<&str> = best_effort.iter().map(|s| s.candidate.node.hostname.as_str()).collect();
    /// assert_eq!(hosts, ["n1", "n3", "n2"]); // one per rack first, then shared
    ///
    /// let strict = Spread::tag("rack").strict(true).pick(&slots, 3).unwrap_err();
    /// assert_eq!(strict, "strict 'rack' spread: a set of 3 bricks needs 3 'rack' values \
    ///                     with room, and only 2 have any (r1, r2)");
    /// # Ok::<(), String>(())
    /// ```
    pub fn pick<'a>(&self, ordered: &[Slot<'a>], count: usize) -> Result<Vec<Slot<'a>>, String> {
        if ordered.is_empty() && count > 0 {
            return Err("no device has room left".to_owned());
        }
        let chosen = self.choose(ordered, count);
        if chosen.len() < count {
            return Err(self.shortfall(count, ordered));
        }
        Ok(chosen)
    }

    /// The device for a set's arbiter brick, once its `data` slots are
    /// chosen: among `slots`, one that `keep` accepts, that may hold an
    /// arbiter brick (its [`ArbiterUse`] is not `Disabled`), has `needed`
    /// bytes of room and is on a node none of `data` uses. When strict, its
    /// domain must differ from every data brick's; best effort, such a
    /// domain is preferred. Then devices tagged `arbiter=required` are
    /// preferred, then the most room, then the lower device id. `None` when
    /// no device qualifies: the refusal's words are the policy's.
    ///
    /// `needed` is the arbiter brick's size: [`fill`](crate::layout::fill)
    /// makes it [`Sizing::arbiter_bytes`](crate::layout::Sizing::arbiter_bytes)
    /// of the set's data brick size, which is `set.want` or the least room
    /// among `data`, whichever is smaller.
    ///
    /// ```
    /// # use aplo_policy_sdk::prelude::*;
    /// # use aplo_policy_sdk::layout::Slot;
    /// # use aplo_policy_sdk::topology::candidates;
    /// use aplo_policy_sdk::spread::Spread;
    /// # let node = |n: u128, rack: &str| Node {
    /// #     id: Id(n), hostname: format!("n{n}"), zone: "z1".into(), state: State::Online,
    /// #     tags: [("rack".to_string(), rack.to_string())].into(),
    /// #     devices: vec![Device { id: Id(100 + n), state: State::Online, total_bytes: 100 * GIB,
    /// #         free_bytes: 100 * GIB, brick_count: 0, tags: Pairs::new() }],
    /// # };
    /// # let topology = Topology { clusters: vec![Cluster { id: Id(1),
    /// #     nodes: vec![node(1, "r1"), node(2, "r2"), node(3, "r1"), node(4, "r3")] }] };
    /// # let slots: Vec<Slot<'_>> = candidates(&topology)
    /// #     .map(|candidate| Slot { candidate, room: candidate.device.free_bytes }).collect();
    /// // Nodes n1 and n3 are in rack r1, n2 in r2, n4 in r3.
    /// let racks = Spread::tag("rack").strict(true);
    /// let data = racks.pick(&slots, 2)?; // n1 (r1) and n2 (r2)
    /// let arbiter = racks.pick_arbiter(&slots, &data, GIB, |_| true);
    /// assert_eq!(arbiter.map(|c| c.node.hostname.as_str()), Some("n4")); // r3, not n3 in r1
    /// # Ok::<(), String>(())
    /// ```
    pub fn pick_arbiter<'a>(
        &self,
        slots: &[Slot<'a>],
        data: &[Slot<'a>],
        needed: u64,
        keep: impl Fn(&Candidate<'a>) -> bool,
    ) -> Option<Candidate<'a>> {
        let used = self.by.values(data);
        let fresh = |c: &Candidate<'a>| !used.contains(&self.by.value(c));
        slots
            .iter()
            .filter(|s| {
                let c = &s.candidate;
                c.arbiter_use() != ArbiterUse::Disabled
                    && keep(c)
                    && s.room >= needed
                    && !data.iter().any(|d| d.candidate.node.id == c.node.id)
                    && (!self.strict || fresh(c))
            })
            .max_by(|a, b| {
                let key = |s: &Slot<'a>| {
                    (
                        fresh(&s.candidate),
                        s.candidate.arbiter_use() == ArbiterUse::Required,
                        s.room,
                    )
                };
                key(a)
                    .cmp(&key(b))
                    .then_with(|| b.candidate.device.id.cmp(&a.candidate.device.id))
            })
            .map(|s| s.candidate)
    }
}

/// The roomiest slot of each node among those `keep` accepts (ties go to
/// the lower device id), in the order the nodes first appear in `slots`.
/// A set takes one brick per node, so this is where most `pick`s start.
///
/// Slots in [`candidates`](crate::topology::candidates) order come node by
/// node, so a slot is first compared with the last node seen; the index of
/// nodes is only asked when a node comes back (it costs a lookup per node,
/// not per device, which the placement benchmark measures).
pub fn roomiest_per_node<'a>(
    slots: &[Slot<'a>],
    keep: impl Fn(&Candidate<'a>) -> bool,
) -> Vec<Slot<'a>> {
    let mut best: Vec<Slot<'a>> = Vec::new();
    let mut index = BTreeMap::new();
    for slot in slots.iter().filter(|s| keep(&s.candidate)) {
        let c = &slot.candidate;
        let seen = match best.last() {
            Some(last) if last.candidate.node.id == c.node.id => Some(best.len() - 1),
            _ => index.get(&c.node.id).copied(),
        };
        match seen {
            Some(i) => {
                let current: &mut Slot<'a> = &mut best[i];
                if slot.room > current.room
                    || (slot.room == current.room && c.device.id < current.candidate.device.id)
                {
                    *current = *slot;
                }
            }
            None => {
                index.insert(c.node.id, best.len());
                best.push(*slot);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::TopologyBuilder;
    use crate::size::GIB;
    use crate::topology::candidates;

    fn slots(topology: &crate::Topology) -> Vec<Slot<'_>> {
        candidates(topology)
            .map(|candidate| Slot {
                candidate,
                room: candidate.device.free_bytes,
            })
            .collect()
    }

    fn hosts(chosen: &[Slot<'_>]) -> Vec<String> {
        chosen
            .iter()
            .map(|s| s.candidate.node.hostname.clone())
            .collect()
    }

    fn racks() -> crate::Topology {
        TopologyBuilder::new()
            .node("a1", "z1")
            .tag("rack", "r1")
            .device(100 * GIB)
            .node("a2", "z1")
            .tag("rack", "r1")
            .device(90 * GIB)
            .node("b1", "z1")
            .tag("rack", "r2")
            .device(80 * GIB)
            .node("c1", "z2")
            .device(70 * GIB)
            .node("c2", "z2")
            .device(60 * GIB)
            .build()
    }

    #[test]
    fn one_per_tag_value_first_then_shared_nodes() {
        let topology = racks();
        let slots = slots(&topology);
        // Untagged nodes c1 and c2 share the "no rack" domain.
        assert_eq!(
            hosts(&Spread::tag("rack").choose(&slots, 3)),
            ["a1", "b1", "c1"]
        );
        assert_eq!(
            hosts(&Spread::tag("rack").choose(&slots, 5)),
            ["a1", "b1", "c1", "a2", "c2"]
        );
        assert_eq!(
            hosts(&Spread::tag("rack").strict(true).choose(&slots, 5)),
            ["a1", "b1", "c1"]
        );
        assert_eq!(hosts(&Spread::zones().choose(&slots, 2)), ["a1", "c1"]);
    }

    #[test]
    fn never_two_bricks_on_one_node() {
        // Two devices of one node tagged with different racks.
        let topology = TopologyBuilder::new()
            .node("a1", "z1")
            .device(100 * GIB)
            .device_tag("rack", "r1")
            .device(100 * GIB)
            .device_tag("rack", "r2")
            .node("b1", "z1")
            .device(10 * GIB)
            .device_tag("rack", "r3")
            .build();
        let slots = slots(&topology);
        assert_eq!(hosts(&Spread::tag("rack").choose(&slots, 3)), ["a1", "b1"]);
    }

    #[test]
    fn refusals_say_what_is_missing() {
        let topology = racks();
        let slots = slots(&topology);
        assert_eq!(
            Spread::tag("rack")
                .strict(true)
                .pick(&slots, 4)
                .unwrap_err(),
            "strict 'rack' spread: a set of 4 bricks needs 4 'rack' values with room, and only 3 have any (no 'rack' tag, r1, r2)"
        );
        assert_eq!(
            Spread::zones().strict(true).pick(&slots, 3).unwrap_err(),
            "strict zones: a set of 3 bricks needs 3 zones with room, and only 2 have any (z1, z2)"
        );
        assert_eq!(
            Spread::zones().pick(&slots, 6).unwrap_err(),
            "a set needs 6 bricks on distinct nodes, and only 5 nodes have a device with room"
        );
        assert_eq!(
            Spread::zones().pick(&[], 1).unwrap_err(),
            "no device has room left"
        );
        assert_eq!(
            Spread::tag("rack").strict(true).pick(&[], 3).unwrap_err(),
            "no device has room left"
        );
        assert_eq!(Spread::zones().pick(&slots, 5).unwrap().len(), 5);
    }

    /// Data on a1 (r1) and b1 (r2); arbiter candidates: a2 in r1 (the
    /// roomiest), c1 in r3, and c2 in r3 (the smallest, tagged `tag`).
    fn arbiter_racks(tag: (&str, &str)) -> crate::Topology {
        TopologyBuilder::new()
            .node("a1", "z1")
            .tag("rack", "r1")
            .device(100 * GIB)
            .node("b1", "z1")
            .tag("rack", "r2")
            .device(100 * GIB)
            .node("a2", "z1")
            .tag("rack", "r1")
            .device(90 * GIB)
            .node("c1", "z1")
            .tag("rack", "r3")
            .device(20 * GIB)
            .node("c2", "z1")
            .tag("rack", "r3")
            .device(10 * GIB)
            .device_tag(tag.0, tag.1)
            .build()
    }

    fn arbiter_host(chosen: Option<Candidate<'_>>) -> Option<String> {
        chosen.map(|c| c.node.hostname.clone())
    }

    #[test]
    fn arbiter_in_a_fresh_domain_first() {
        let topology = arbiter_racks(("disk", "hdd"));
        let slots = slots(&topology);
        let data = &slots[..2];
        let not_c1 = |c: &Candidate<'_>| c.node.hostname != "c1";
        for strict in [true, false] {
            let racks = Spread::tag("rack").strict(strict);
            // r3 before the roomier a2 in r1, and the roomier of r3.
            assert_eq!(
                arbiter_host(racks.pick_arbiter(&slots, data, GIB, |_| true)),
                Some("c1".to_owned())
            );
            // `keep` and `needed` narrow the choice.
            assert_eq!(
                arbiter_host(racks.pick_arbiter(&slots, data, GIB, not_c1)),
                Some("c2".to_owned())
            );
            let in_r1 = racks.pick_arbiter(&slots, data, 50 * GIB, |_| true);
            // Best effort shares a rack rather than refuse; strict refuses.
            let expected = (!strict).then(|| "a2".to_owned());
            assert_eq!(arbiter_host(in_r1), expected, "strict={strict}");
        }
        // Never on a data brick's node, whatever its room.
        assert_eq!(
            arbiter_host(Spread::zones().pick_arbiter(&slots, data, 95 * GIB, |_| true)),
            None
        );
    }

    #[test]
    fn arbiter_devices_by_their_arbiter_tag() {
        let racks = Spread::tag("rack").strict(true);
        // c2 holds only arbiter bricks: taken before the roomier c1.
        let topology = arbiter_racks(("arbiter", "required"));
        let required = slots(&topology);
        assert_eq!(
            arbiter_host(racks.pick_arbiter(&required, &required[..2], GIB, |_| true)),
            Some("c2".to_owned())
        );
        // c2 never holds one: without c1, r3 has nothing left.
        let topology = arbiter_racks(("arbiter", "disabled"));
        let disabled = slots(&topology);
        let not_c1 = |c: &Candidate<'_>| c.node.hostname != "c1";
        assert_eq!(
            arbiter_host(racks.pick_arbiter(&disabled, &disabled[..2], GIB, not_c1)),
            None
        );
    }

    #[test]
    fn arbiter_ties_go_to_the_lower_device_id() {
        let topology = TopologyBuilder::new()
            .node("a1", "z1")
            .device(100 * GIB)
            .node("b1", "z2")
            .device(100 * GIB)
            .node("c1", "z3")
            .device(10 * GIB)
            .device(10 * GIB)
            .build();
        let slots = slots(&topology);
        let chosen = Spread::zones()
            .strict(true)
            .pick_arbiter(&slots, &slots[..2], GIB, |_| true)
            .map(|c| c.device.id);
        assert_eq!(chosen, Some(slots[2].candidate.device.id));
    }

    #[test]
    fn roomiest_device_of_each_node_in_node_order() {
        let topology = TopologyBuilder::new()
            .node("a1", "z1")
            .device(10 * GIB)
            .device(30 * GIB)
            .device(30 * GIB)
            .device_tag("retired", "true")
            .node("b1", "z1")
            .device(5 * GIB)
            .build();
        let slots = slots(&topology);
        let best = roomiest_per_node(&slots, |c| c.tag("retired").is_none());
        let picked: Vec<(String, u64)> = best
            .iter()
            .map(|s| (s.candidate.node.hostname.clone(), s.room))
            .collect();
        assert_eq!(
            picked,
            [("a1".to_owned(), 30 * GIB), ("b1".to_owned(), 5 * GIB)]
        );
        // Of equal devices, the lower id.
        let all = roomiest_per_node(&slots, |_| true);
        assert_eq!(all[0].candidate.device.id, slots[1].candidate.device.id);
    }
}
