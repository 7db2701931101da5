//! An emulation of heketi's volume allocator, for `aplo simulate` comparisons.
//!
//! `aplo simulate` replays a stream of claims against a topology to compare
//! how much of the raw capacity aplo's placement policies manage to use. This
//! module answers the same question the way heketi (the project aplo
//! succeeds) would, so both can be measured on the same claims. It is pure: it
//! reads a [`Topology`] and returns a [`Layout`]; the caller applies it.
//!
//! # What is emulated
//!
//! The behaviour follows heketi's `apps/glusterfs` package (v10, the last
//! release line), read for facts only:
//!
//! - **Sizes and halving** (`volume_entry_allocate.go`, `allocBricksInCluster`;
//!   `volume_durability_replica.go` / `volume_durability_ec.go`,
//!   `BrickSizeGenerator`): the volume starts as one brick set; each brick
//!   holds `size / sets` (divided again by the data count for disperse). A
//!   brick larger than `BrickMaxSize` (4 TiB) is skipped over without trying;
//!   when no placement is found the set count doubles and the brick size
//!   halves. The generator stops with "minimum brick size reached" once a brick
//!   would drop below `BrickMinSize` (1 GiB); before any attempt the volume's
//!   brick count (`sets * bricks per set`) is checked against `BrickMaxNum`
//!   (32) (`limits.go`). Heketi sizes volumes in whole GiB, so the requested
//!   size is first rounded up to [`HeketiOptions::size_granularity`].
//! - **Clusters** (`volume_entry.go`, `tryAllocateBricks`): clusters are tried
//!   in turn; the first that accommodates the volume wins; "no space", "max
//!   bricks" and "min brick size" on one cluster move on to the next.
//! - **Eligible devices** (`brick_allocate.go`, `ClusterDeviceSource.Devices`):
//!   only online devices on online nodes are in the ring. Devices without
//!   space stay in the ring; they are skipped when walked.
//! - **The ring** (`allocator_simple_ring.go`, `Rebalance` and
//!   `GetDeviceList`): devices are grouped zone → node → device and
//!   interleaved by one counter `i`: zone `i % zones`, node `i % nodes of that
//!   zone`, taking that node's last device (devices are kept sorted by id, so
//!   the highest id comes first); emptied nodes and zones drop out. Heketi
//!   holds zones and nodes in Go maps, whose iteration order is random, so
//!   the zone and node order is shuffled on every ring build
//!   ([`HeketiOptions::random_map_order`]). The ring is rotated to start at
//!   `n % len`, where `n` is the first 7 hex digits (28 bits) of a fresh random
//!   UUID made for each brick set; here those 28 bits come from a seeded
//!   generator.
//! - **Filling a set** (`brick_allocate.go`, `populateBrickSet` and
//!   `tryAllocateBrickOnDevice`): a new ring is built for every set, and one
//!   walk of it serves all bricks of the set: each brick takes the next device
//!   that is on a node not yet in the set, passes the zone filter and has room.
//!   A device is never revisited within a set. If the walk runs out, the whole
//!   attempt fails and the set count doubles. Space taken by earlier sets of
//!   the same attempt counts; a failed attempt leaves nothing behind (heketi
//!   rolls its transaction back).
//! - **Space needed** (`device_entry.go`, `SpaceNeeded` / `StorageCheck`): a
//!   brick of `b` bytes needs a thin pool of `b * snapshot factor` rounded up
//!   to the extent size (4 MiB) plus pool metadata of 0.5 % of the pool
//!   (at most 16 GiB), also rounded up to the extent size; a device qualifies
//!   only when its free space is strictly greater than that. See
//!   [`space_needed`].
//! - **Zone checking** (`placer_settings.go`, `zone_filter.go`): heketi's
//!   default is `none` (bricks of a set only need distinct nodes);
//!   [`HeketiOptions::strict_zones`] enables its `strict` mode (distinct zones
//!   too), and the layout is marked `strict_zones` accordingly.
//! - **Arbiter volumes** (`placer_arbiter.go`, `tags.go`): replica 3 with the
//!   third brick an arbiter. Devices are sorted into three rings by their
//!   `arbiter` tag (a device's tag overrides its node's; missing or unknown
//!   means `supported`): `required` devices only take arbiter bricks,
//!   `disabled` ones only data bricks, `supported` ones either. One UUID per
//!   set rotates all three rings. The arbiter brick is placed first, walking
//!   the arbiter-only ring and then the shared ring; the two data bricks
//!   follow, walking the data-only ring and then the shared ring. The arbiter
//!   brick holds 1 KiB per average file (64 KiB by default) of data brick, at
//!   least 16 MiB.
//!
//! # What is simplified
//!
//! - Sizes are computed in bytes rather than heketi's KiB, and a brick's size
//!   is rounded *up* to a whole KiB (heketi truncates), so that the usable
//!   size never falls short of the request.
//! - The thin-pool overhead only decides whether a brick fits. The layout
//!   carries plain brick sizes, so a caller that charges [`consumed_bytes`]
//!   charges heketi less than it really used; charge [`space_needed`] to
//!   account for it exactly.
//! - Clusters are tried in topology order (heketi uses its database's id
//!   order; sort the topology's clusters to match).
//! - Not emulated: the node health cache, per-volume tag matching rules,
//!   block-hosting flags, the 1000-volume limit per cluster, and aplo's
//!   `preferred_zone` / `preferred_node` (heketi has no such notion).
//! - Heketi's randomness is replaced by a deterministic stream seeded from
//!   [`HeketiOptions::seed`], the request and the topology's free space: the
//!   same inputs always give the same layout, while successive claims of a
//!   simulation still start at different ring positions as heketi's would.

mod cluster;
mod ring;
mod seed;

use self::cluster::ClusterView;
use self::seed::{Rng, stream_seed};
use crate::model::validate::describe;
use crate::model::{
    GIB, KIB, Layout, MIB, PlacementRequest, TIB, Topology, consumed_bytes, format_size, round_up,
};

/// Largest thin-pool metadata heketi reserves for one brick.
const MAX_POOL_METADATA: u64 = 16 * GIB;
/// Smallest arbiter brick: the smallest XFS file system with 4 KiB blocks.
const MIN_ARBITER_BYTES: u64 = 16 * MIB;
/// Heketi's default average file size, which sizes arbiter bricks.
const DEFAULT_AVERAGE_FILE: u64 = 64 * KIB;
/// Bound on set doubling, in case options make the size generator endless.
const MAX_SETS_TRIED: u64 = 1 << 40;

/// Options of the emulation; the defaults are heketi's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeketiOptions {
    /// Smallest brick heketi makes (`BrickMinSize`, 1 GiB); halving stops
    /// below it.
    pub min_brick_bytes: u64,
    /// Largest brick heketi makes (`BrickMaxSize`, 4 TiB); larger bricks are
    /// halved before any attempt.
    pub max_brick_bytes: u64,
    /// Most bricks in one volume (`BrickMaxNum`, 32), arbiters included.
    pub max_bricks_per_volume: usize,
    /// Unit the requested size is rounded up to (1 GiB: heketi's API takes
    /// whole GiB); 0 or 1 leaves it as it is.
    pub size_granularity: u64,
    /// LVM extent size that thin pools and their metadata are rounded up to
    /// (4 MiB, heketi's default for a device).
    pub extent_bytes: u64,
    /// Whether the thin-pool overhead (extent rounding and 0.5 % metadata)
    /// counts when checking a device's room, as heketi does (default true).
    pub thin_pool_metadata: bool,
    /// Heketi's `strict` zone checking: no two bricks of a set in one zone.
    /// Heketi's default is `none` (false).
    pub strict_zones: bool,
    /// Average file size that arbiter bricks are sized for (64 KiB).
    pub average_file_bytes: u64,
    /// Whether zone and node order in the ring is shuffled on every build, as
    /// Go's random map iteration does in heketi (default true). When false,
    /// zones and nodes keep their topology order.
    pub random_map_order: bool,
    /// Seed of the deterministic stream replacing heketi's random choices.
    pub seed: u64,
}

impl Default for HeketiOptions {
    fn default() -> HeketiOptions {
        HeketiOptions {
            min_brick_bytes: GIB,
            max_brick_bytes: 4 * TIB,
            max_bricks_per_volume: 32,
            size_granularity: GIB,
            extent_bytes: 4 * MIB,
            thin_pool_metadata: true,
            strict_zones: false,
            average_file_bytes: DEFAULT_AVERAGE_FILE,
            random_map_order: true,
            seed: 0,
        }
    }
}

/// Bytes heketi takes from a device for a brick of `brick_bytes` with a
/// snapshot factor of `reserve`: the thin pool rounded up to the extent size
/// plus its metadata (0.5 % of the pool, at most 16 GiB, also rounded up).
/// Without [`HeketiOptions::thin_pool_metadata`] it is just
/// [`consumed_bytes`].
pub fn space_needed(brick_bytes: u64, reserve: f64, options: &HeketiOptions) -> u64 {
    let pool = consumed_bytes(brick_bytes, reserve);
    if !options.thin_pool_metadata {
        return pool;
    }
    let pool = round_up(pool, options.extent_bytes);
    let metadata = ((pool as f64 * 0.005) as u64).min(MAX_POOL_METADATA);
    pool.saturating_add(round_up(metadata, options.extent_bytes))
}

/// Why heketi would not place a volume: the answer heketi gives, as
/// `aplo simulate --compare-heketi` reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeketiError {
    /// A scheme with no bricks per set; the scheme.
    #[error("heketi: {0} has no bricks per set")]
    NoBricksPerSet(String),
    /// An arbiter scheme other than replica 3; the scheme.
    #[error("heketi: arbiter volumes are replica 3, not {0}")]
    ArbiterNotReplica3(String),
    /// A volume of zero bytes; its name.
    #[error("heketi: volume '{0}' has no size")]
    NoSize(String),
    /// A topology without clusters.
    #[error("heketi: no clusters configured")]
    NoClusters,
    /// An error that makes heketi give up on every cluster.
    #[error("heketi: {0}")]
    Fatal(String),
    /// No cluster has room.
    #[error(
        "heketi: no space for volume '{volume}' ({}, {scheme}) on any cluster: {}",
        format_size(*.size),
        .refusals.join("; ")
    )]
    NoSpace {
        /// The volume's name.
        volume: String,
        /// Its size, rounded up to heketi's granularity.
        size: u64,
        /// Its scheme, described.
        scheme: String,
        /// Why each cluster could not take it, `cluster <id>: <why>`.
        refusals: Vec<String>,
    },
}

/// Lay out one volume the way heketi would: on one cluster at a time in
/// topology order, halving the bricks until they fit or hit heketi's limits.
/// Returns the layout, or why heketi would answer "no space". The topology is
/// only read: the caller applies the layout before asking for the next one.
pub fn place(
    request: &PlacementRequest,
    topology: &Topology,
    options: &HeketiOptions,
) -> Result<Layout, HeketiError> {
    let scheme = request.scheme;
    if scheme.set_size() == 0 {
        return Err(HeketiError::NoBricksPerSet(describe(&scheme)));
    }
    if scheme.has_arbiter() && scheme.set_size() != 3 {
        return Err(HeketiError::ArbiterNotReplica3(describe(&scheme)));
    }
    let size = round_up(request.bytes, options.size_granularity);
    if size == 0 {
        return Err(HeketiError::NoSize(request.volume_name.clone()));
    }
    if topology.clusters.is_empty() {
        return Err(HeketiError::NoClusters);
    }
    let mut rng = Rng(stream_seed(request, topology, options));
    let mut refusals = Vec::new();
    for cluster in &topology.clusters {
        let cluster_view = ClusterView::new(&cluster.nodes, scheme.has_arbiter());
        match cluster_view.place(request, size, options, &mut rng) {
            Ok(sets) => {
                return Ok(Layout {
                    sets,
                    strict_zones: options.strict_zones,
                });
            }
            Err(Failure::Fatal(reason)) => return Err(HeketiError::Fatal(reason)),
            Err(failure) => refusals.push(format!("cluster {}: {failure}", cluster.id)),
        }
    }
    Err(HeketiError::NoSpace {
        volume: request.volume_name.clone(),
        size,
        scheme: describe(&scheme),
        refusals,
    })
}

/// Why one cluster cannot take the volume.
#[derive(Debug)]
enum Failure {
    /// The cluster has no nodes (heketi's `ErrEmptyCluster`).
    EmptyCluster,
    /// No online device on an online node (`ErrNoStorage`).
    NoStorage,
    /// Halving would go below the minimum brick size (`ErrMinimumBrickSize`).
    MinBrickSize {
        /// The brick size halving arrived at.
        brick: u64,
        /// The last attempt that found no room: sets and brick size.
        last: Option<(u64, u64)>,
        /// The minimum.
        min: u64,
    },
    /// Too many bricks for one volume (`ErrMaxBricks`).
    MaxBricks {
        /// Bricks the next attempt would need.
        bricks: u64,
        /// The last attempt that found no room: sets and brick size.
        last: Option<(u64, u64)>,
        /// The maximum.
        max: usize,
    },
    /// An error that makes heketi give up on every cluster.
    Fatal(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tried = |last: &Option<(u64, u64)>| match last {
            Some((sets, brick)) => format!(
                "no room for {sets} set(s) of {} bricks; ",
                format_size(*brick)
            ),
            None => String::new(),
        };
        match self {
            Failure::EmptyCluster => f.write_str("the cluster has no nodes"),
            Failure::NoStorage => f.write_str("no online device on an online node"),
            Failure::MinBrickSize { brick, last, min } => write!(
                f,
                "{}bricks of {} would be below heketi's minimum brick size of {}",
                tried(last),
                format_size(*brick),
                format_size(*min)
            ),
            Failure::MaxBricks { bricks, last, max } => write!(
                f,
                "{}{bricks} bricks would exceed heketi's maximum of {max} bricks per volume",
                tried(last)
            ),
            Failure::Fatal(reason) => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::cluster::Rings;
    use super::ring::rotated;
    use super::*;
    use crate::model::testing::{request, topology};
    use crate::model::validate::validate_layout;
    use crate::model::{BrickRole, Cluster, Device, Id, Node, Pairs, Scheme, State};

    const R3: Scheme = Scheme::Replicate {
        count: 3,
        arbiter: false,
    };
    const ARBITER: Scheme = Scheme::Replicate {
        count: 3,
        arbiter: true,
    };

    /// Place and check the answer against aplo's layout rules.
    fn place_valid(req: &PlacementRequest, t: &Topology, options: &HeketiOptions) -> Layout {
        let layout = place(req, t, options).expect("heketi should place the volume");
        validate_layout(req, t, &layout).expect("heketi's layout should obey aplo's rules");
        layout
    }

    /// Where each device lives: (node hostname, zone).
    fn locations(t: &Topology) -> BTreeMap<Id, (String, String)> {
        t.clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .flat_map(|n| {
                n.devices
                    .iter()
                    .map(|d| (d.id, (n.hostname.clone(), n.zone.clone())))
            })
            .collect()
    }

    /// What the simulator does: take the consumed bytes off each device.
    fn apply(t: &mut Topology, layout: &Layout, reserve: f64) {
        for brick in layout.sets.iter().flat_map(|s| &s.bricks) {
            for device in t
                .clusters
                .iter_mut()
                .flat_map(|c| &mut c.nodes)
                .flat_map(|n| &mut n.devices)
            {
                if device.id == brick.device {
                    device.free_bytes -= consumed_bytes(brick.bytes, reserve);
                    device.brick_count += 1;
                }
            }
        }
    }

    fn device(id: u128, free: u64) -> Device {
        Device {
            id: Id(id),
            state: State::Online,
            total_bytes: free,
            free_bytes: free,
            brick_count: 0,
            tags: Pairs::new(),
        }
    }

    fn node(id: u128, zone: &str, devices: Vec<Device>) -> Node {
        Node {
            id: Id(id),
            hostname: format!("node-{id}"),
            zone: zone.to_owned(),
            state: State::Online,
            tags: Pairs::new(),
            devices,
        }
    }

    #[test]
    fn one_set_when_the_volume_fits() {
        let t = topology().zones(3).free(100 * GIB).build();
        let layout = place_valid(&request(10 * GIB, R3), &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 1);
        assert!(!layout.strict_zones);
        assert!(layout.sets[0].bricks.iter().all(|b| b.bytes == 10 * GIB));
    }

    #[test]
    fn the_size_is_rounded_up_to_whole_gib() {
        let t = topology().zones(3).build();
        let layout = place_valid(&request(GIB + GIB / 2, R3), &t, &HeketiOptions::default());
        assert_eq!(layout.sets[0].bricks[0].bytes, 2 * GIB);
        let exact = HeketiOptions {
            size_granularity: 0,
            ..HeketiOptions::default()
        };
        let layout = place_valid(&request(GIB + GIB / 2, R3), &t, &exact);
        assert_eq!(layout.sets[0].bricks[0].bytes, GIB + GIB / 2);
    }

    #[test]
    fn halving_kicks_in_when_a_device_is_too_small_for_one_brick() {
        // 50 GiB on 30 GiB devices: one set of 50 GiB bricks cannot be
        // placed; two sets of 25 GiB bricks can.
        let t = topology()
            .zones(3)
            .devices_per_node(2)
            .free(30 * GIB)
            .build();
        let layout = place_valid(&request(50 * GIB, R3), &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 2);
        assert!(
            layout
                .sets
                .iter()
                .flat_map(|s| &s.bricks)
                .all(|b| b.bytes == 25 * GIB)
        );
        // Each device took one brick.
        let devices: BTreeSet<Id> = layout
            .sets
            .iter()
            .flat_map(|s| &s.bricks)
            .map(|b| b.device)
            .collect();
        assert_eq!(devices.len(), 6);
    }

    #[test]
    fn halving_goes_on_until_the_bricks_fit() {
        // 10 GiB free per device, 4 devices per node: 36 GiB needs 4 sets of
        // 9 GiB (1 of 36 and 2 of 18 do not fit).
        let t = topology()
            .zones(3)
            .devices_per_node(4)
            .free(10 * GIB)
            .build();
        let layout = place_valid(&request(36 * GIB, R3), &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 4);
        assert_eq!(layout.sets[0].bricks[0].bytes, 9 * GIB);
    }

    #[test]
    fn bricks_above_the_maximum_are_halved_without_trying() {
        let t = topology()
            .zones(3)
            .devices_per_node(2)
            .free(8 * TIB)
            .build();
        let layout = place_valid(&request(5 * TIB, R3), &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 2);
        assert_eq!(layout.sets[0].bricks[0].bytes, 5 * TIB / 2);
    }

    #[test]
    fn fails_clearly_when_even_the_minimum_brick_does_not_fit() {
        let t = topology().zones(3).free(512 * MIB).build();
        let err = place(&request(GIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("heketi: no space for volume 'vol'"),
            "{err}"
        );
        assert!(err.contains("no room for 1 set(s) of 1GiB bricks"), "{err}");
        assert!(
            err.contains("below heketi's minimum brick size of 1GiB"),
            "{err}"
        );

        // A disperse 4+2 volume of 2 GiB would have 512 MiB bricks at once.
        let t = topology().zones(6).build();
        let ec = Scheme::Disperse {
            data: 4,
            redundancy: 2,
        };
        let err = place(&request(2 * GIB, ec), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bricks of 512MiB would be below"), "{err}");
    }

    #[test]
    fn fails_when_halving_would_exceed_the_brick_limit() {
        // 10 GiB devices, 100 GiB volume: 1, 2 and 4 sets do not fit; 8 sets
        // would be 24 bricks, over a limit of 12.
        let t = topology().zones(3).free(10 * GIB).build();
        let options = HeketiOptions {
            max_bricks_per_volume: 12,
            ..HeketiOptions::default()
        };
        let err = place(&request(100 * GIB, R3), &t, &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("24 bricks would exceed heketi's maximum of 12 bricks per volume"),
            "{err}"
        );
        // Heketi's own limit: a 200 TiB replica 3 volume needs 64 sets of
        // 3.1 TiB, 192 bricks.
        let t = topology().zones(3).free(1000 * TIB).build();
        let err = place(&request(200 * TIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("192 bricks would exceed"), "{err}");
    }

    #[test]
    fn bricks_of_a_set_are_on_distinct_nodes() {
        let t = topology()
            .zones(3)
            .nodes_per_zone(2)
            .devices_per_node(4)
            .free(40 * GIB)
            .build();
        let at = locations(&t);
        for seed in 0..20 {
            let options = HeketiOptions {
                seed,
                ..HeketiOptions::default()
            };
            // 4 sets of 37.5 GiB bricks on 24 devices of 6 nodes.
            let layout = place_valid(&request(150 * GIB, R3), &t, &options);
            assert_eq!(layout.sets.len(), 4);
            for set in &layout.sets {
                let nodes: BTreeSet<&String> =
                    set.bricks.iter().map(|b| &at[&b.device].0).collect();
                assert_eq!(nodes.len(), 3);
            }
        }
        // Two nodes cannot hold a replica 3 set however many devices they
        // have.
        let t = topology().zones(2).devices_per_node(8).free(TIB).build();
        let err = place(&request(GIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("below heketi's minimum brick size"), "{err}");
    }

    #[test]
    fn zones_are_only_distinct_in_strict_mode() {
        // Zone a has four nodes, zones b and c one each. The balanced ring is
        // a, b, a, c, a, a (device ids 1, 5, 4, 6, 2, 3), so some start
        // positions give three bricks in zone a unless zones are strict.
        let nodes = (1..=4)
            .map(|n| node(n, "a", vec![device(n, 100 * GIB)]))
            .chain([node(5, "b", vec![device(5, 100 * GIB)])])
            .chain([node(6, "c", vec![device(6, 100 * GIB)])])
            .collect();
        let t = Topology {
            clusters: vec![Cluster { id: Id(9), nodes }],
        };
        let at = locations(&t);
        let zones_of = |layout: &Layout| -> BTreeSet<String> {
            layout.sets[0]
                .bricks
                .iter()
                .map(|b| at[&b.device].1.clone())
                .collect()
        };
        let mut shared_zone = false;
        for seed in 0..50 {
            let strict = HeketiOptions {
                seed,
                strict_zones: true,
                ..HeketiOptions::default()
            };
            let layout = place_valid(&request(10 * GIB, R3), &t, &strict);
            assert!(layout.strict_zones);
            assert_eq!(zones_of(&layout).len(), 3);

            let none = HeketiOptions {
                seed,
                ..HeketiOptions::default()
            };
            let layout = place_valid(&request(10 * GIB, R3), &t, &none);
            assert!(!layout.strict_zones);
            shared_zone |= zones_of(&layout).len() < 3;
        }
        assert!(shared_zone);

        // Two zones: strict mode refuses replica 3, none mode places it.
        let t = topology().zones(2).nodes_per_zone(2).build();
        let strict = HeketiOptions {
            strict_zones: true,
            ..HeketiOptions::default()
        };
        assert!(place(&request(GIB, R3), &t, &strict).is_err());
        place_valid(&request(GIB, R3), &t, &HeketiOptions::default());
    }

    #[test]
    fn offline_devices_and_nodes_are_skipped() {
        let mut t = topology()
            .zones(4)
            .devices_per_node(2)
            .free(100 * GIB)
            .build();
        let offline_node = t.clusters[0].nodes[0].id;
        t.clusters[0].nodes[0].state = State::Offline;
        let failed_device = t.clusters[0].nodes[1].devices[0].id;
        t.clusters[0].nodes[1].devices[0].state = State::Failed;
        let offline_device = t.clusters[0].nodes[2].devices[1].id;
        t.clusters[0].nodes[2].devices[1].state = State::Offline;
        let on_offline_node: BTreeSet<Id> = t.clusters[0].nodes[0]
            .devices
            .iter()
            .map(|d| d.id)
            .collect();
        for seed in 0..30 {
            let options = HeketiOptions {
                seed,
                ..HeketiOptions::default()
            };
            let layout = place_valid(&request(10 * GIB, R3), &t, &options);
            for brick in layout.sets.iter().flat_map(|s| &s.bricks) {
                assert!(!on_offline_node.contains(&brick.device), "{offline_node}");
                assert_ne!(brick.device, failed_device);
                assert_ne!(brick.device, offline_device);
            }
        }
        // With a second node out, only two remain: no replica 3.
        t.clusters[0].nodes[3].state = State::Failed;
        let err = place(&request(10 * GIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no space"), "{err}");
        // All out: heketi's "no storage".
        for node in &mut t.clusters[0].nodes {
            node.state = State::Offline;
        }
        let err = place(&request(10 * GIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no online device on an online node"), "{err}");
    }

    #[test]
    fn the_same_seed_gives_the_same_layout() {
        let t = topology()
            .zones(3)
            .nodes_per_zone(3)
            .devices_per_node(3)
            .free(50 * GIB)
            .build();
        let req = request(100 * GIB, R3);
        let options = HeketiOptions {
            seed: 42,
            ..HeketiOptions::default()
        };
        let first = place_valid(&req, &t, &options);
        for _ in 0..5 {
            assert_eq!(place_valid(&req, &t, &options), first);
        }
        // Other seeds start elsewhere on the ring.
        let layouts: BTreeSet<Vec<Id>> = (0..10)
            .map(|seed| {
                let layout = place_valid(
                    &req,
                    &t,
                    &HeketiOptions {
                        seed,
                        ..HeketiOptions::default()
                    },
                );
                layout
                    .sets
                    .iter()
                    .flat_map(|s| &s.bricks)
                    .map(|b| b.device)
                    .collect()
            })
            .collect();
        assert!(layouts.len() > 1);
    }

    #[test]
    fn the_ring_follows_heketis_interleaving() {
        // Zone a: node 1 with devices 11 and 12, node 2 with device 21;
        // zone b: node 3 with device 31. Heketi's counter gives: zone a node 1
        // (its last device, 12), zone b node 3 (31), zone a node 1 again (11),
        // then node 2 (21).
        let nodes = vec![
            node(1, "a", vec![device(11, GIB), device(12, GIB)]),
            node(2, "a", vec![device(21, GIB)]),
            node(3, "b", vec![device(31, GIB)]),
        ];
        let view = ClusterView::new(&nodes, false);
        let Rings::Standard(groups) = &view.rings else {
            panic!("a standard ring")
        };
        let fixed = HeketiOptions {
            random_map_order: false,
            ..HeketiOptions::default()
        };
        let ring = view.ring(groups, &fixed, &mut Rng(0));
        let ids: Vec<u128> = ring.iter().map(|&i| view.slots[i].device.id.0).collect();
        assert_eq!(ids, [12, 31, 11, 21]);
        // The start position rotates it.
        let ids: Vec<u128> = rotated(ring, 6)
            .iter()
            .map(|&i| view.slots[i].device.id.0)
            .collect();
        assert_eq!(ids, [11, 21, 12, 31]);
    }

    #[test]
    fn the_ring_interleaves_zones_whatever_the_map_order() {
        let t = topology()
            .zones(3)
            .nodes_per_zone(2)
            .devices_per_node(2)
            .build();
        let view = ClusterView::new(&t.clusters[0].nodes, false);
        let Rings::Standard(groups) = &view.rings else {
            panic!("a standard ring")
        };
        let mut rng = Rng(7);
        let mut orders = BTreeSet::new();
        for _ in 0..20 {
            let ring = view.ring(groups, &HeketiOptions::default(), &mut rng);
            assert_eq!(ring.len(), 12);
            assert_eq!(ring.iter().collect::<BTreeSet<_>>().len(), 12);
            let zones: Vec<&str> = ring
                .iter()
                .map(|&i| view.slots[i].node.zone.as_str())
                .collect();
            // Zones take turns: every window of three covers all three.
            for window in zones.windows(3) {
                let distinct: BTreeSet<&&str> = window.iter().collect();
                assert_eq!(distinct.len(), 3, "{zones:?}");
            }
            // No node twice in a row.
            for pair in ring.windows(2) {
                assert_ne!(view.slots[pair[0]].node.id, view.slots[pair[1]].node.id);
            }
            orders.insert(ring);
        }
        // The map order really is shuffled.
        assert!(orders.len() > 1);
    }

    #[test]
    fn the_thin_pool_overhead_counts() {
        let options = HeketiOptions::default();
        // 10 GiB: a 10 GiB pool and 51.2 MiB of metadata, rounded to 52 MiB.
        assert_eq!(space_needed(10 * GIB, 1.0, &options), 10 * GIB + 52 * MIB);
        // A snapshot factor of 1.5 scales the pool.
        assert_eq!(space_needed(10 * GIB, 1.5, &options), 15 * GIB + 80 * MIB);
        // Metadata stops at 16 GiB.
        assert_eq!(space_needed(4 * TIB, 1.0, &options), 4 * TIB + 16 * GIB);
        let plain = HeketiOptions {
            thin_pool_metadata: false,
            ..HeketiOptions::default()
        };
        assert_eq!(space_needed(10 * GIB, 1.5, &plain), 15 * GIB);

        // A device with 10 GiB and a little more takes a 10 GiB brick only
        // when the overhead is ignored; otherwise bricks are halved.
        let t = topology()
            .zones(3)
            .devices_per_node(2)
            .free(10 * GIB + MIB)
            .build();
        let layout = place_valid(&request(10 * GIB, R3), &t, &plain);
        assert_eq!(layout.sets.len(), 1);
        let layout = place_valid(&request(10 * GIB, R3), &t, &options);
        assert_eq!(layout.sets.len(), 2);
        // Heketi wants strictly more free space than it needs.
        let t = topology()
            .zones(3)
            .devices_per_node(2)
            .free(10 * GIB)
            .build();
        let layout = place_valid(&request(10 * GIB, R3), &t, &plain);
        assert_eq!(layout.sets.len(), 2);
    }

    #[test]
    fn the_snapshot_reserve_is_included() {
        // 20 GiB devices: a 10 GiB brick with a factor of 2.5 needs 25 GiB,
        // so heketi halves to two sets of 5 GiB bricks (12.5 GiB each).
        let t = topology()
            .zones(3)
            .devices_per_node(2)
            .free(20 * GIB)
            .build();
        let mut req = request(10 * GIB, R3);
        req.snapshot_reserve = 2.5;
        let layout = place_valid(&req, &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 2);
        assert_eq!(layout.sets[0].bricks[0].bytes, 5 * GIB);
    }

    #[test]
    fn disperse_bricks_hold_a_share_of_the_data() {
        let t = topology().zones(6).free(100 * GIB).build();
        let ec = Scheme::Disperse {
            data: 4,
            redundancy: 2,
        };
        let layout = place_valid(&request(8 * GIB, ec), &t, &HeketiOptions::default());
        assert_eq!(layout.sets.len(), 1);
        assert_eq!(layout.sets[0].bricks.len(), 6);
        assert!(layout.sets[0].bricks.iter().all(|b| b.bytes == 2 * GIB));
        // 10 GiB over 3 data bricks: rounded up, never short.
        let ec = Scheme::Disperse {
            data: 3,
            redundancy: 1,
        };
        let layout = place_valid(&request(10 * GIB, ec), &t, &HeketiOptions::default());
        assert!(layout.sets[0].bricks[0].bytes * 3 >= 10 * GIB);
    }

    #[test]
    fn arbiter_bricks_are_small_and_last() {
        let t = topology().zones(3).free(100 * GIB).build();
        let layout = place_valid(&request(10 * GIB, ARBITER), &t, &HeketiOptions::default());
        let roles: Vec<BrickRole> = layout.sets[0].bricks.iter().map(|b| b.role).collect();
        assert_eq!(
            roles,
            [BrickRole::Data, BrickRole::Data, BrickRole::Arbiter]
        );
        // 10 GiB / 64 KiB average files = 163840 files, 1 KiB each.
        assert_eq!(layout.sets[0].bricks[2].bytes, 160 * MIB);
        assert_eq!(layout.sets[0].bricks[0].bytes, 10 * GIB);
        // Small volumes get the 16 MiB floor.
        let layout = place_valid(&request(GIB, ARBITER), &t, &HeketiOptions::default());
        assert_eq!(layout.sets[0].bricks[2].bytes, 16 * MIB);
    }

    #[test]
    fn arbiter_tags_steer_the_arbiter_brick() {
        let mut t = topology().zones(4).free(100 * GIB).build();
        // Node 0 takes arbiters only; node 1's device never does.
        t.clusters[0].nodes[0]
            .tags
            .insert("arbiter".into(), "required".into());
        t.clusters[0].nodes[1].devices[0]
            .tags
            .insert("arbiter".into(), "disabled".into());
        let arbiter_node = t.clusters[0].nodes[0].devices[0].id;
        let data_only = t.clusters[0].nodes[1].devices[0].id;
        for seed in 0..20 {
            let options = HeketiOptions {
                seed,
                ..HeketiOptions::default()
            };
            let layout = place_valid(&request(10 * GIB, ARBITER), &t, &options);
            let bricks = &layout.sets[0].bricks;
            assert_eq!(bricks[2].device, arbiter_node);
            assert!(bricks[..2].iter().all(|b| b.device != arbiter_node));
            assert_ne!(bricks[2].device, data_only);
        }
        // A device tag overrides its node's.
        t.clusters[0].nodes[0].devices[0]
            .tags
            .insert("arbiter".into(), "supported".into());
        let mut anywhere = false;
        for seed in 0..20 {
            let options = HeketiOptions {
                seed,
                ..HeketiOptions::default()
            };
            let layout = place_valid(&request(10 * GIB, ARBITER), &t, &options);
            anywhere |= layout.sets[0].bricks[2].device != arbiter_node;
        }
        assert!(anywhere);
    }

    #[test]
    fn arbiter_needs_replica_three() {
        let t = topology().zones(3).build();
        let two = Scheme::Replicate {
            count: 2,
            arbiter: true,
        };
        let err = place(&request(GIB, two), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("arbiter volumes are replica 3"), "{err}");
    }

    #[test]
    fn clusters_are_tried_in_turn() {
        let mut t = topology().zones(3).clusters(2).free(100 * GIB).build();
        for device in t.clusters[0].nodes.iter_mut().flat_map(|n| &mut n.devices) {
            device.free_bytes = 512 * MIB;
        }
        let second: BTreeSet<Id> = t.clusters[1]
            .nodes
            .iter()
            .flat_map(|n| &n.devices)
            .map(|d| d.id)
            .collect();
        let layout = place_valid(&request(10 * GIB, R3), &t, &HeketiOptions::default());
        assert!(
            layout
                .sets
                .iter()
                .flat_map(|s| &s.bricks)
                .all(|b| second.contains(&b.device))
        );
        // Both refusals are named.
        t.clusters[1] = Cluster {
            id: t.clusters[1].id,
            nodes: Vec::new(),
        };
        let err = place(&request(10 * GIB, R3), &t, &HeketiOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("cluster {}", t.clusters[0].id)),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "cluster {}: the cluster has no nodes",
                t.clusters[1].id
            )),
            "{err}"
        );
        let err = place(
            &request(GIB, R3),
            &Topology::default(),
            &HeketiOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no clusters"), "{err}");
    }

    #[test]
    fn a_zero_size_is_refused() {
        let t = topology().zones(3).build();
        assert!(place(&request(0, R3), &t, &HeketiOptions::default()).is_err());
    }

    #[test]
    fn a_simulation_fills_the_cluster_with_valid_layouts() {
        // Claims until heketi refuses: every answer obeys aplo's rules and
        // the topology it was made for is left as it was.
        let mut t = topology()
            .zones(3)
            .nodes_per_zone(2)
            .devices_per_node(2)
            .free(100 * GIB)
            .build();
        let schemes = [
            R3,
            ARBITER,
            Scheme::None,
            Scheme::Disperse {
                data: 2,
                redundancy: 1,
            },
        ];
        let mut placed = 0;
        for claim in 0..1000u64 {
            let mut req = request((claim % 7 + 1) * 5 * GIB, schemes[claim as usize % 4]);
            req.volume_name = format!("vol-{claim}");
            let before = t.clone();
            match place(&req, &t, &HeketiOptions::default()) {
                Ok(layout) => {
                    assert_eq!(t, before);
                    validate_layout(&req, &t, &layout).unwrap();
                    apply(&mut t, &layout, req.snapshot_reserve);
                    placed += 1;
                }
                Err(reason) => {
                    assert!(reason.to_string().contains("no space"), "{reason}");
                    break;
                }
            }
        }
        assert!(placed > 10, "{placed}");
        let free: u64 = t.clusters[0]
            .nodes
            .iter()
            .flat_map(|n| &n.devices)
            .map(|d| d.free_bytes)
            .sum();
        assert!(free < 1200 * GIB);
    }
}
