//! Building layouts set by set.
//!
//! [`fill`] does the bookkeeping every placement policy needs: brick sizes
//! from the request and [`Sizing`], the space each device has left after the
//! sets already chosen, arbiter brick sizes, and the final [`Layout`]. The
//! policy supplies only the choice of devices for the next set.

use std::collections::BTreeMap;

use crate::size::{GIB, MIB, TIB, format_size, round_up};
use crate::topology::Candidate;
use crate::{Brick, BrickRole, BrickSet, Id, Layout, PlacementRequest, Settings};

/// Brick sizing rules, read from settings.
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
}

impl Sizing {
    /// The settings keys [`Sizing::from_settings`] reads.
    pub const KEYS: [&'static str; 4] = [
        "min-brick-size",
        "max-brick-size",
        "brick-unit",
        "arbiter-avg-file-size",
    ];

    /// Read sizing from settings, with defaults 1Gi, 4Ti, 4Mi and 64Ki.
    pub fn from_settings(settings: &Settings) -> Result<Sizing, String> {
        let unit = settings.size("brick-unit")?.unwrap_or(4 * MIB);
        let min_brick = settings.size("min-brick-size")?.unwrap_or(GIB);
        let max_brick = settings.size("max-brick-size")?.unwrap_or(4 * TIB);
        let avg_file = settings.size("arbiter-avg-file-size")?.unwrap_or(64 * 1024);
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
        })
    }

    /// The arbiter brick size for data bricks of `data_bytes`.
    pub fn arbiter_bytes(&self, data_bytes: u64) -> u64 {
        round_up(data_bytes / self.arbiter_ratio, self.unit)
            .clamp(self.min_brick.min(data_bytes), data_bytes)
    }

    /// Document the sizing settings on an [`Info`](crate::Info).
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
    /// The largest brick it can still take, after the reserve factor and
    /// the sets already chosen, in multiples of the sizing unit.
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

/// Lay a volume out set by set. `pick` gets the devices with room left and
/// chooses the devices of the next set (distinct nodes, as the policy sees
/// fit), or returns `Err(reason)`. Each set's data bricks take the size that
/// finishes the volume, limited by the roomiest the chosen devices allow.
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
            .saturating_sub(used.get(&c.device.id).copied().unwrap_or(0));
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
            return Err(format!(
                "cannot place {} for volume '{}'{progress}: no {data_bricks} devices on distinct nodes have {} free",
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
