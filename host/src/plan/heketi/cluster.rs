//! One cluster as heketi's allocator sees it: its eligible devices grouped
//! into rings (by the arbiter placer's tags when asked), the size generator's
//! attempts, and each brick set placed along the ring.

use super::ring::{balance, group, rotated};
use super::seed::Rng;
use super::{
    DEFAULT_AVERAGE_FILE, Failure, HeketiOptions, MAX_SETS_TRIED, MIN_ARBITER_BYTES, space_needed,
};
use crate::model::{
    Brick, BrickRole, BrickSet, Device, KIB, Node, PlacementRequest, State, format_size, round_up,
};

/// An online device on an online node: a possible brick location.
pub(super) struct Slot<'a> {
    pub(super) node: &'a Node,
    pub(super) device: &'a Device,
}

/// Devices grouped zone → node → device (device indexes into the slots,
/// sorted by device id), in topology order of first appearance.
pub(super) type Groups = Vec<Vec<Vec<usize>>>;

/// How a cluster's devices are grouped into rings.
pub(super) enum Rings {
    /// One ring of every eligible device.
    Standard(Groups),
    /// Heketi's arbiter placer: devices by their `arbiter` tag.
    Arbiter {
        /// Tagged `required`: arbiter bricks only.
        arbiter_only: Groups,
        /// Tagged `disabled`: data bricks only.
        data_only: Groups,
        /// Tagged `supported` or untagged: either.
        any: Groups,
    },
}

/// One cluster as heketi's allocator sees it.
pub(super) struct ClusterView<'a> {
    pub(super) node_count: usize,
    pub(super) slots: Vec<Slot<'a>>,
    pub(super) rings: Rings,
}

/// A device's effective `arbiter` tag: the device's overrides the node's,
/// and anything but the three known values means `supported`.
fn arbiter_tag(slot: &Slot<'_>) -> &'static str {
    let value = slot
        .device
        .tags
        .get("arbiter")
        .or_else(|| slot.node.tags.get("arbiter"))
        .map(String::as_str);
    match value {
        Some("required") => "required",
        Some("disabled") => "disabled",
        _ => "supported",
    }
}

impl<'a> ClusterView<'a> {
    pub(super) fn new(nodes: &'a [Node], arbiter: bool) -> ClusterView<'a> {
        let slots: Vec<Slot<'a>> = nodes
            .iter()
            .filter(|node| node.state == State::Online)
            .flat_map(|node| {
                node.devices
                    .iter()
                    .filter(|device| device.state == State::Online)
                    .map(move |device| Slot { node, device })
            })
            .collect();
        let all: Vec<usize> = (0..slots.len()).collect();
        let rings = if arbiter {
            let with_tag = |tag: &str| -> Vec<usize> {
                all.iter()
                    .copied()
                    .filter(|&i| arbiter_tag(&slots[i]) == tag)
                    .collect()
            };
            Rings::Arbiter {
                arbiter_only: group(&slots, &with_tag("required")),
                data_only: group(&slots, &with_tag("disabled")),
                any: group(&slots, &with_tag("supported")),
            }
        } else {
            Rings::Standard(group(&slots, &all))
        };
        ClusterView {
            node_count: nodes.len(),
            slots,
            rings,
        }
    }

    /// Heketi's `allocBricksInCluster`: try decreasing brick sizes.
    pub(super) fn place(
        &self,
        request: &PlacementRequest,
        size: u64,
        options: &HeketiOptions,
        rng: &mut Rng,
    ) -> Result<Vec<BrickSet>, Failure> {
        if self.node_count == 0 {
            return Err(Failure::EmptyCluster);
        }
        if self.slots.is_empty() {
            return Err(Failure::NoStorage);
        }
        let scheme = request.scheme;
        let per_set = scheme.set_size() as u64;
        let data = scheme.data_multiplier().max(1);
        let mut sets: u64 = 1;
        let mut last: Option<(u64, u64)> = None;
        loop {
            // The size generator: skip bricks above the maximum, stop below
            // the minimum.
            let brick = loop {
                let brick = round_up(size.div_ceil(sets.saturating_mul(data)), KIB);
                if brick < options.min_brick_bytes {
                    return Err(Failure::MinBrickSize {
                        brick,
                        last,
                        min: options.min_brick_bytes,
                    });
                }
                if brick <= options.max_brick_bytes {
                    break brick;
                }
                if sets >= MAX_SETS_TRIED {
                    return Err(Failure::MaxBricks {
                        bricks: sets.saturating_mul(per_set),
                        last,
                        max: options.max_bricks_per_volume,
                    });
                }
                sets *= 2;
            };
            let bricks = sets.saturating_mul(per_set);
            if bricks > options.max_bricks_per_volume as u64 {
                return Err(Failure::MaxBricks {
                    bricks,
                    last,
                    max: options.max_bricks_per_volume,
                });
            }
            let arbiter = if scheme.has_arbiter() {
                Some(arbiter_size(brick, options)?)
            } else {
                None
            };
            if let Some(placed) = self.attempt(request, sets, brick, arbiter, options, rng) {
                return Ok(placed);
            }
            last = Some((sets, brick));
            if sets >= MAX_SETS_TRIED {
                return Err(Failure::MaxBricks {
                    bricks: sets.saturating_mul(per_set),
                    last,
                    max: options.max_bricks_per_volume,
                });
            }
            sets *= 2;
        }
    }

    /// One `PlaceAll`: every set on a fresh ring, against the space left by
    /// the sets before it. `None` is heketi's `ErrNoSpace`.
    pub(super) fn attempt(
        &self,
        request: &PlacementRequest,
        sets: u64,
        brick: u64,
        arbiter: Option<u64>,
        options: &HeketiOptions,
        rng: &mut Rng,
    ) -> Option<Vec<BrickSet>> {
        let reserve = request.snapshot_reserve;
        let data_need = space_needed(brick, reserve, options);
        let mut free: Vec<u64> = self.slots.iter().map(|s| s.device.free_bytes).collect();
        let mut placed = Vec::new();
        for _ in 0..sets {
            let set_id = rng.brick_set_id();
            let bricks = match (&self.rings, arbiter) {
                (Rings::Standard(groups), _) => {
                    let ring = rotated(self.ring(groups, options, rng), set_id);
                    let mut feed = ring.into_iter();
                    let mut chosen: Vec<usize> = Vec::new();
                    for _ in 0..request.scheme.set_size() {
                        let found =
                            feed.find(|&i| self.fits(i, &chosen, &free, data_need, options))?;
                        free[found] -= data_need;
                        chosen.push(found);
                    }
                    chosen
                        .into_iter()
                        .map(|i| self.brick(i, brick, BrickRole::Data))
                        .collect()
                }
                (
                    Rings::Arbiter {
                        arbiter_only,
                        data_only,
                        any,
                    },
                    Some(arbiter_bytes),
                ) => {
                    let arbiter_need = space_needed(arbiter_bytes, reserve, options);
                    // Each ring is balanced once per set; the shared ring
                    // serves both feeds in the same order.
                    let arbiter_ring = rotated(self.ring(arbiter_only, options, rng), set_id);
                    let any_ring = rotated(self.ring(any, options, rng), set_id);
                    let data_ring = rotated(self.ring(data_only, options, rng), set_id);
                    let mut arbiter_feed = arbiter_ring.into_iter().chain(any_ring.clone());
                    let mut data_feed = data_ring.into_iter().chain(any_ring);
                    let mut chosen: Vec<usize> = Vec::new();
                    let arbiter_at = arbiter_feed
                        .find(|&i| self.fits(i, &chosen, &free, arbiter_need, options))?;
                    free[arbiter_at] -= arbiter_need;
                    chosen.push(arbiter_at);
                    // Data bricks go at positions 1 then 0.
                    let mut data_at = Vec::new();
                    for _ in 0..2 {
                        let found = data_feed
                            .find(|&i| self.fits(i, &chosen, &free, data_need, options))?;
                        free[found] -= data_need;
                        chosen.push(found);
                        data_at.push(found);
                    }
                    vec![
                        self.brick(data_at[1], brick, BrickRole::Data),
                        self.brick(data_at[0], brick, BrickRole::Data),
                        self.brick(arbiter_at, arbiter_bytes, BrickRole::Arbiter),
                    ]
                }
                (Rings::Arbiter { .. }, None) => return None,
            };
            placed.push(BrickSet { bricks });
        }
        Some(placed)
    }

    pub(super) fn brick(&self, slot: usize, bytes: u64, role: BrickRole) -> Brick {
        Brick {
            device: self.slots[slot].device.id,
            bytes,
            role,
        }
    }

    /// Heketi's per-device test: a node not yet in the set, the zone filter
    /// in strict mode, then strictly more free space than needed.
    pub(super) fn fits(
        &self,
        slot: usize,
        chosen: &[usize],
        free: &[u64],
        need: u64,
        options: &HeketiOptions,
    ) -> bool {
        let node = self.slots[slot].node;
        chosen.iter().all(|&c| {
            let other = self.slots[c].node;
            other.id != node.id && !(options.strict_zones && other.zone == node.zone)
        }) && free[slot] > need
    }

    /// A balanced ring, with zones and nodes shuffled as Go's maps would be.
    pub(super) fn ring(
        &self,
        groups: &Groups,
        options: &HeketiOptions,
        rng: &mut Rng,
    ) -> Vec<usize> {
        let mut zones = groups.clone();
        if options.random_map_order {
            rng.shuffle(&mut zones);
            for nodes in &mut zones {
                rng.shuffle(nodes);
            }
        }
        balance(zones)
    }
}

/// Heketi's `discountBrickSize`: 1 KiB of arbiter per average file of data,
/// at least 16 MiB (and here never more than the data brick).
pub(super) fn arbiter_size(data_brick: u64, options: &HeketiOptions) -> Result<u64, Failure> {
    let average = if options.average_file_bytes == 0 {
        DEFAULT_AVERAGE_FILE
    } else {
        options.average_file_bytes
    };
    if data_brick < average {
        return Err(Failure::Fatal(format!(
            "average file size ({}) is greater than the brick size ({})",
            format_size(average),
            format_size(data_brick)
        )));
    }
    let bytes = (data_brick / average)
        .saturating_mul(KIB)
        .max(MIN_ARBITER_BYTES);
    Ok(bytes.min(data_brick))
}
