//! Building layouts set by set.
//!
//! [`fill`] does the bookkeeping every placement policy needs: brick sizes
//! from the request and [`Sizing`], the space each device has left after the
//! sets already chosen (and above the free-space floor, if any), arbiter
//! brick sizes, and the final [`Layout`]. The policy supplies only the choice
//! of devices for the next set, usually with the help of
//! [`spread`](crate::spread). [`first_fitting`] tries one cluster after
//! another.

use std::collections::BTreeMap;

use crate::size::{GIB, MIB, TIB, format_size, round_up};
use crate::topology::Candidate;
use crate::{Brick, BrickRole, BrickSet, Id, Layout, PlacementRequest, Settings};

/// Brick sizing rules, read from settings ([`Sizing::from_settings`]) or
/// taken as they are ([`Sizing::default`]).
///
/// The free-space floor is not a setting [`Sizing::from_settings`] reads: a
/// policy that offers one reads its own key and applies it with
/// [`Sizing::with_free_floor`].
///
/// ```
/// use aplo_policy_sdk::layout::Sizing;
/// use aplo_policy_sdk::prelude::*;
///
/// let sizing = Sizing::default().with_free_floor(50 * GIB);
/// assert_eq!(sizing.min_brick, GIB);
/// assert_eq!(sizing.free_floor, 50 * GIB);
///
/// // The same rules with a smaller unit, written out:
/// let fine = Sizing { unit: MIB, ..Sizing::default() };
/// assert_eq!(fine.max_brick, 4 * TIB);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The smallest brick worth creating (arbiter bricks included).
    pub min_brick: u64,
    /// The largest brick; larger volumes get more sets.
    pub max_brick: u64,
    /// Brick sizes are multiples of this (LVM extents are 4 MiB).
    pub unit: u64,
    /// Arbiter bricks hold metadata only: one arbiter byte per this many data
    /// bytes (the data brick size divided by the average file size over 4 KiB).
    pub arbiter_ratio: u64,
    /// Bytes [`fill`] keeps free on every device: no brick (with its
    /// snapshot reserve) takes a device's free space below this. 0, the
    /// default, lets bricks use a device to the last unit.
    pub free_floor: u64,
}

/// The defaults of every sizing setting: bricks from 1 GiB to 4 TiB, in
/// multiples of 4 MiB (an LVM extent), arbiters sized for 64 KiB files, and
/// no free-space floor. The same as [`Sizing::from_settings`] of empty
/// settings.
impl Default for Sizing {
    fn default() -> Sizing {
        Sizing {
            min_brick: GIB,
            max_brick: 4 * TIB,
            unit: 4 * MIB,
            arbiter_ratio: Sizing::DEFAULT_AVG_FILE / 4096,
            free_floor: 0,
        }
    }
}

impl Sizing {
    const DEFAULT_AVG_FILE: u64 = 64 * 1024;

    /// The settings keys [`Sizing::from_settings`] reads.
    pub const KEYS: [&'static str; 4] = [
        "min-brick-size",
        "max-brick-size",
        "brick-unit",
        "arbiter-avg-file-size",
    ];

    /// Read sizing from the settings in [`Sizing::KEYS`], with the
    /// defaults of [`Sizing::default`] (1Gi, 4Ti, 4Mi and 64Ki); the
    /// free-space floor stays 0. The error names the bad key.
    ///
    /// ```
    /// use aplo_policy_sdk::layout::Sizing;
    /// use aplo_policy_sdk::prelude::*;
    ///
    /// let settings = Settings::from_pairs([("min-brick-size".to_string(), "2Gi".to_string())]);
    /// assert_eq!(Sizing::from_settings(&settings)?.min_brick, 2 * GIB);
    /// assert_eq!(Sizing::from_settings(&Settings::default())?, Sizing::default());
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_settings(settings: &Settings) -> Result<Sizing, String> {
        let defaults = Sizing::default();
        let unit = settings.size("brick-unit")?.unwrap_or(defaults.unit);
        let min_brick = settings
            .size("min-brick-size")?
            .unwrap_or(defaults.min_brick);
        let max_brick = settings
            .size("max-brick-size")?
            .unwrap_or(defaults.max_brick);
        let avg_file = settings
            .size("arbiter-avg-file-size")?
            .unwrap_or(Sizing::DEFAULT_AVG_FILE);
        if unit == 0 || unit > GIB {
            return Err("setting 'brick-unit' must be between 1 byte and 1Gi".into());
        }
        if min_brick == 0 || min_brick > max_brick {
            return Err(
                "setting 'min-brick-size' must be greater than zero and at most 'max-brick-size'"
                    .into(),
            );
        }
        if avg_file < 4096 {
            return Err("setting 'arbiter-avg-file-size' must be at least 4Ki".into());
        }
        Ok(Sizing {
            min_brick: round_up(min_brick, unit),
            max_brick: max_brick - max_brick % unit,
            unit,
            arbiter_ratio: avg_file / 4096,
            free_floor: defaults.free_floor,
        })
    }

    /// The same rules, keeping `bytes` free on every device (see
    /// [`Sizing::free_floor`]).
    pub fn with_free_floor(self, bytes: u64) -> Sizing {
        Sizing {
            free_floor: bytes,
            ..self
        }
    }

    /// The arbiter brick size for data bricks of `data_bytes`: one byte per
    /// `arbiter_ratio` data bytes, in whole units, at least the smallest
    /// brick and at most the data brick.
    pub fn arbiter_bytes(&self, data_bytes: u64) -> u64 {
        round_up(data_bytes / self.arbiter_ratio, self.unit)
            .clamp(self.min_brick.min(data_bytes), data_bytes)
    }

    /// Document the settings [`Sizing::from_settings`] reads on an
    /// [`Info`](crate::Info), with their defaults, for `aplo policy inspect`.
    pub fn document(info: crate::Info) -> crate::Info {
        info.setting(
            "min-brick-size",
            "Smallest brick created, arbiters included.",
            Some("1Gi"),
        )
        .setting(
            "max-brick-size",
            "Largest brick; bigger volumes get more brick sets.",
            Some("4Ti"),
        )
        .setting(
            "brick-unit",
            "Brick sizes are rounded to multiples of this.",
            Some("4Mi"),
        )
        .setting(
            "arbiter-avg-file-size",
            "Expected average file size; arbiter bricks are sized for it.",
            Some("64Ki"),
        )
    }
}

/// A device and the brick bytes it can still take in this layout.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The device, its node and cluster.
    pub candidate: Candidate<'a>,
    /// The largest brick it can still take, after the sets already chosen,
    /// the free-space floor and the snapshot reserve factor, in multiples of
    /// the sizing unit.
    pub room: u64,
}

/// The devices a policy chose for one set.
#[derive(Debug, Clone)]
pub struct SetChoice<'a> {
    /// Data bricks' devices, in order.
    pub data: Vec<Candidate<'a>>,
    /// The arbiter brick's device, for arbiter volumes.
    pub arbiter: Option<Candidate<'a>>,
}

/// What [`fill`] asks the policy to choose.
#[derive(Debug, Clone, Copy)]
pub struct SetRequest {
    /// Data bricks in the set.
    pub data_bricks: usize,
    /// Whether the set needs an arbiter brick too.
    pub arbiter: bool,
    /// The data brick size that would finish the volume (or the max brick size).
    pub want: u64,
    /// The smallest useful data brick.
    pub min: u64,
    /// The arbiter brick size that goes with `want`.
    pub arbiter_want: u64,
}

/// Lay a volume out set by set.
///
/// `slots` are the devices the volume may use (usually one cluster's
/// [`candidates`](crate::topology::candidates)). For each set, `pick` gets
/// those that still have room for the smallest brick, in the order of
/// `slots`, and chooses the devices of the next set (on distinct nodes, as
/// the policy sees fit), or returns `Err(reason)`. Each set's data bricks
/// take the size that finishes the volume, limited by the room of the
/// chosen devices; [`fill`] adds sets until the volume is covered.
/// `strict_zones` is copied into the [`Layout`] (the host then checks that
/// no set shares a zone).
///
/// Refusals name the volume, its size, how far it got and `pick`'s reason.
///
/// ```
/// use aplo_policy_sdk::layout::{SetChoice, Sizing, fill};
/// use aplo_policy_sdk::prelude::*;
/// use aplo_policy_sdk::topology::candidates;
/// # let node = |n: u128, free: u64| Node {
/// #     id: Id(n), hostname: format!("node{n}"), zone: format!("z{n}"), state: State::Online,
/// #     tags: Pairs::new(),
/// #     devices: vec![Device { id: Id(100 + n), state: State::Online, total_bytes: free,
/// #         free_bytes: free, brick_count: 0, tags: Pairs::new() }],
/// # };
/// # let topology = Topology { clusters: vec![Cluster { id: Id(1),
/// #     nodes: vec![node(1, 100 * GIB), node(2, 100 * GIB), node(3, 100 * GIB)] }] };
/// # let request = PlacementRequest { volume_name: "vol1".into(), bytes: 10 * GIB,
/// #     scheme: Scheme::Replicate { count: 3, arbiter: false }, snapshot_reserve: 1.0,
/// #     preferred_zone: None, preferred_node: None };
/// // Three nodes with one 100 GiB device each; a 10 GiB replica-3 volume.
/// let sizing = Sizing::default().with_free_floor(20 * GIB);
/// let layout = fill(&request, candidates(&topology).collect(), &sizing, false, |slots, set| {
///     // A real policy sorts and spreads here (see `spread`); one device per node suffices.
///     if slots.len() < set.data_bricks {
///         return Err(format!("only {} devices have room", slots.len()));
///     }
///     let data = slots[..set.data_bricks].iter().map(|s| s.candidate).collect();
///     Ok(SetChoice { data, arbiter: None })
/// })?;
/// assert_eq!(layout.sets.len(), 1);
/// assert!(layout.sets[0].bricks.iter().all(|b| b.bytes == 10 * GIB));
/// # Ok::<(), String>(())
/// ```
pub fn fill<'a>(
    request: &PlacementRequest,
    slots: Vec<Candidate<'a>>,
    sizing: &Sizing,
    strict_zones: bool,
    mut pick: impl FnMut(&[Slot<'a>], &SetRequest) -> Result<SetChoice<'a>, String>,
) -> Result<Layout, String> {
    const MAX_SETS: usize = 512;
    let multiplier = request.scheme.data_multiplier();
    let set_size = request.scheme.set_size();
    let arbiter = request.scheme.has_arbiter();
    let data_bricks = if arbiter { set_size - 1 } else { set_size };
    let mut used: BTreeMap<Id, u64> = BTreeMap::new();
    let mut sets = Vec::new();
    let mut covered = 0u64;
    let room = |c: &Candidate<'a>, used: &BTreeMap<Id, u64>| {
        let free = c
            .device
            .free_bytes
            .saturating_sub(used.get(&c.device.id).copied().unwrap_or(0))
            .saturating_sub(sizing.free_floor);
        let bricks = if request.snapshot_reserve > 1.0 {
            (free as f64 / request.snapshot_reserve) as u64
        } else {
            free
        };
        bricks - bricks % sizing.unit
    };
    while covered < request.bytes {
        if sets.len() == MAX_SETS {
            return Err(format!(
                "volume '{}' would need more than {MAX_SETS} brick sets",
                request.volume_name
            ));
        }
        let remaining = request.bytes - covered;
        let want = round_up(remaining.div_ceil(multiplier), sizing.unit)
            .clamp(sizing.min_brick, sizing.max_brick);
        let set_request = SetRequest {
            data_bricks,
            arbiter,
            want,
            min: sizing.min_brick,
            arbiter_want: if arbiter {
                sizing.arbiter_bytes(want)
            } else {
                0
            },
        };
        let available: Vec<Slot<'a>> = slots
            .iter()
            .map(|c| Slot {
                candidate: *c,
                room: room(c, &used),
            })
            .filter(|s| s.room >= sizing.min_brick)
            .collect();
        let progress = if covered == 0 {
            String::new()
        } else {
            format!(
                " after {} brick set(s) holding {}",
                sets.len(),
                format_size(covered)
            )
        };
        let choice = pick(&available, &set_request).map_err(|why| {
            format!(
                "cannot place {} for volume '{}'{progress}: {why}",
                format_size(request.bytes),
                request.volume_name
            )
        })?;
        let data_room = choice
            .data
            .iter()
            .map(|c| room(c, &used))
            .min()
            .unwrap_or(0);
        let brick = want.min(data_room);
        if choice.data.len() != data_bricks || brick < sizing.min_brick {
            let floor = if sizing.free_floor > 0 {
                format!(" above the {} floor", format_size(sizing.free_floor))
            } else {
                String::new()
            };
            return Err(format!(
                "cannot place {} for volume '{}'{progress}: no {data_bricks} devices on distinct nodes have {} free{floor}",
                format_size(request.bytes),
                request.volume_name,
                format_size(sizing.min_brick)
            ));
        }
        let mut bricks: Vec<Brick> = choice
            .data
            .iter()
            .map(|c| Brick {
                device: c.device.id,
                bytes: brick,
                role: BrickRole::Data,
            })
            .collect();
        if arbiter {
            let device = choice.arbiter.ok_or_else(|| {
                format!(
                    "no device can take the arbiter brick of volume '{}'",
                    request.volume_name
                )
            })?;
            let bytes = sizing.arbiter_bytes(brick);
            if room(&device, &used) < bytes {
                return Err(format!(
                    "arbiter device {} has no room for {}",
                    device.device.id,
                    format_size(bytes)
                ));
            }
            bricks.push(Brick {
                device: device.device.id,
                bytes,
                role: BrickRole::Arbiter,
            });
        }
        for b in &bricks {
            *used.entry(b.device).or_default() += request.consumed(b.bytes);
        }
        covered = covered.saturating_add(brick.saturating_mul(multiplier));
        sets.push(BrickSet { bricks });
    }
    Ok(Layout { sets, strict_zones })
}

/// Try each group of devices (usually one group per cluster, in the order
/// the policy prefers) and return the first layout that fits; when none
/// does, the first group's reason. A volume's bricks all come from one
/// cluster.
///
/// ```
/// use aplo_policy_sdk::layout::first_fitting;
/// use aplo_policy_sdk::prelude::*;
/// use aplo_policy_sdk::topology::{Candidate, candidates};
///
/// let topology = Topology::default();
/// // One group of devices per cluster.
/// let groups = topology.clusters.iter().map(|cluster| {
///     candidates(&topology).filter(|c| c.cluster.id == cluster.id).collect::<Vec<Candidate<'_>>>()
/// });
/// let refused = first_fitting(groups, |_devices| Err("too small".to_string()));
/// assert_eq!(refused.unwrap_err(), "the topology has no online devices");
/// ```
pub fn first_fitting<'a>(
    groups: impl IntoIterator<Item = Vec<Candidate<'a>>>,
    mut place: impl FnMut(Vec<Candidate<'a>>) -> Result<Layout, String>,
) -> Result<Layout, String> {
    let mut first_error = None;
    for devices in groups {
        match place(devices) {
            Ok(layout) => return Ok(layout),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "the topology has no online devices".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{TopologyBuilder, replica3};
    use crate::topology::candidates;

    /// Take the first `data_bricks` slots, as they come.
    fn first<'a>(slots: &[Slot<'a>], set: &SetRequest) -> Result<SetChoice<'a>, String> {
        if slots.len() < set.data_bricks {
            return Err(format!("only {} devices have room", slots.len()));
        }
        Ok(SetChoice {
            data: slots[..set.data_bricks]
                .iter()
                .map(|s| s.candidate)
                .collect(),
            arbiter: None,
        })
    }

    fn three_nodes(free: u64) -> crate::Topology {
        TopologyBuilder::new()
            .node("a", "z1")
            .device(free)
            .node("b", "z2")
            .device(free)
            .node("c", "z3")
            .device(free)
            .build()
    }

    #[test]
    fn default_sizing_is_what_empty_settings_give() {
        let sizing = Sizing::default();
        assert_eq!(Sizing::from_settings(&Settings::default()), Ok(sizing));
        assert_eq!(
            (sizing.min_brick, sizing.max_brick, sizing.unit),
            (GIB, 4 * TIB, 4 * MIB)
        );
        assert_eq!(sizing.arbiter_ratio, 16);
        assert_eq!(sizing.free_floor, 0);
        assert_eq!(sizing.with_free_floor(GIB).free_floor, GIB);
    }

    #[test]
    fn free_floor_limits_brick_sizes_and_adds_sets() {
        let topology = three_nodes(100 * GIB);
        let request = replica3(150 * GIB);
        // Without a floor: one 100 GiB set, then 50 GiB more does not fit.
        let plain = fill(
            &request,
            candidates(&topology).collect(),
            &Sizing::default(),
            false,
            first,
        )
        .unwrap_err();
        assert!(
            plain.contains("after 1 brick set(s) holding 100GiB"),
            "{plain}"
        );

        let request = replica3(80 * GIB);
        let layout = fill(
            &request,
            candidates(&topology).collect(),
            &Sizing::default().with_free_floor(30 * GIB),
            false,
            first,
        )
        .unwrap_err();
        assert!(
            layout.contains("after 1 brick set(s) holding 70GiB"),
            "{layout}"
        );

        let request = replica3(70 * GIB);
        let layout = fill(
            &request,
            candidates(&topology).collect(),
            &Sizing::default().with_free_floor(30 * GIB),
            false,
            first,
        )
        .unwrap();
        assert_eq!(layout.sets.len(), 1);
        assert!(layout.sets[0].bricks.iter().all(|b| b.bytes == 70 * GIB));
    }

    #[test]
    fn free_floor_counts_the_snapshot_reserve() {
        let topology = three_nodes(100 * GIB);
        let mut request = replica3(60 * GIB);
        request.snapshot_reserve = 2.0;
        // 100 GiB - 20 GiB floor = 80 GiB for brick and reserve: 40 GiB bricks.
        let refused = fill(
            &request,
            candidates(&topology).collect(),
            &Sizing::default().with_free_floor(20 * GIB),
            false,
            first,
        )
        .unwrap_err();
        assert!(
            refused.contains("after 1 brick set(s) holding 40GiB"),
            "{refused}"
        );
    }

    #[test]
    fn devices_under_the_floor_are_not_offered() {
        let topology = TopologyBuilder::new()
            .node("a", "z1")
            .device(100 * GIB)
            .node("b", "z2")
            .device(100 * GIB)
            .node("c", "z3")
            .device(10 * GIB)
            .build();
        let mut offered = 0;
        let refused = fill(
            &replica3(GIB),
            candidates(&topology).collect(),
            &Sizing::default().with_free_floor(10 * GIB),
            false,
            |slots, set| {
                offered = slots.len();
                first(slots, set)
            },
        )
        .unwrap_err();
        assert_eq!(offered, 2);
        assert_eq!(
            refused,
            "cannot place 1GiB for volume 'vol1': only 2 devices have room"
        );
    }

    #[test]
    fn a_choice_too_small_names_the_floor() {
        let topology = three_nodes(11 * GIB);
        // The policy picks a device that fill did not offer.
        let refused = fill(
            &replica3(GIB),
            candidates(&topology).collect(),
            &Sizing::default().with_free_floor(10 * GIB + 512 * MIB),
            false,
            |_slots, _set| {
                Ok(SetChoice {
                    data: candidates(&topology).collect(),
                    arbiter: None,
                })
            },
        )
        .unwrap_err();
        assert_eq!(
            refused,
            "cannot place 1GiB for volume 'vol1': no 3 devices on distinct nodes have 1GiB free above the 10.5GiB floor"
        );
    }
}
