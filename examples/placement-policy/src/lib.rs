//! `rack-aware`: each brick set across racks, on the roomiest devices, never
//! on a device tagged `retired=true`, and never below a free-space floor.
//! The walk-through in this folder's README builds it step by step.

use aplo_policy_sdk::layout::{SetChoice, SetRequest, Sizing, Slot, fill, first_fitting};
use aplo_policy_sdk::prelude::*;
use aplo_policy_sdk::spread::{Spread, roomiest_per_node};
use aplo_policy_sdk::topology::{ArbiterUse, Candidate, candidates};

/// The policy type. It holds no state: every decision gets a fresh instance.
pub struct RackAware;

/// The settings this policy reads, besides the SDK's brick sizing ones.
const KEYS: [&str; 2] = ["strict", "free-floor"];

/// The settings, read and checked once per decision.
struct Config {
    spread: Spread<'static>,
    sizing: Sizing,
}

impl Config {
    fn read(settings: &Settings) -> Result<Config, String> {
        let known: Vec<&str> = KEYS.iter().chain(Sizing::KEYS.iter()).copied().collect();
        settings.only(&known)?;
        let floor = settings.size("free-floor")?.unwrap_or(10 * GIB);
        Ok(Config {
            spread: Spread::tag("rack").strict(settings.flag("strict", true)?),
            sizing: Sizing::from_settings(settings)?.with_free_floor(floor),
        })
    }
}

impl Policy for RackAware {
    fn describe() -> Info {
        let info = Info::new(
            "Spreads each brick set across racks (the `rack` tag), skipping retired devices",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "strict",
            "Refuse rather than put two bricks of a set in one rack.",
            Some("true"),
        )
        .setting(
            "free-floor",
            "Bytes to keep free on every device.",
            Some("10Gi"),
        );
        Sizing::document(info)
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        Config::read(settings).map(|_| ())
    }
}

/// A device (or its node) tagged `retired=true` takes no new bricks.
fn retired(c: &Candidate<'_>) -> bool {
    c.tag("retired") == Some("true")
}

impl Placement for RackAware {
    fn place(
        request: &PlacementRequest,
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Layout, String> {
        let config = Config::read(settings)?;
        // A volume's bricks all come from one cluster: try each in turn.
        let clusters = topology.clusters.iter().map(|cluster| {
            candidates(topology)
                .filter(|c| c.cluster.id == cluster.id && !retired(c))
                .collect::<Vec<Candidate<'_>>>()
        });
        first_fitting(clusters, |devices| {
            fill(request, devices, &config.sizing, false, |slots, set| {
                pick(&config, slots, set)
            })
        })
    }
}

/// Choose the devices of one set: the roomiest device of each node, nodes
/// with the most room first, one per rack.
fn pick<'a>(
    config: &Config,
    slots: &[Slot<'a>],
    set: &SetRequest,
) -> Result<SetChoice<'a>, String> {
    let mut nodes = roomiest_per_node(slots, |c| c.arbiter_use() != ArbiterUse::Required);
    nodes.sort_by(|a, b| {
        b.room
            .cmp(&a.room)
            .then_with(|| a.candidate.node.hostname.cmp(&b.candidate.node.hostname))
    });
    let data = config.spread.pick(&nodes, set.data_bricks)?;
    let arbiter = if set.arbiter {
        Some(pick_arbiter(config, slots, set, &data)?)
    } else {
        None
    };
    Ok(SetChoice {
        data: data.iter().map(|s| s.candidate).collect(),
        arbiter,
    })
}

/// The arbiter brick: on another node and, when strict, another rack
/// (best effort, another rack if it can), preferring devices tagged
/// `arbiter=required`, then the roomiest.
fn pick_arbiter<'a>(
    config: &Config,
    slots: &[Slot<'a>],
    set: &SetRequest,
    data: &[Slot<'a>],
) -> Result<Candidate<'a>, String> {
    // The size `fill` gives it: as for the data bricks' size.
    let data_room = data.iter().map(|s| s.room).min().unwrap_or(0);
    let needed = config.sizing.arbiter_bytes(set.want.min(data_room));
    config
        .spread
        .pick_arbiter(slots, data, needed, |_| true)
        .ok_or_else(|| {
            let apart = if config.spread.is_strict() {
                "in a rack of its own"
            } else {
                "on a node of its own"
            };
            format!("no device {apart} has room for the arbiter brick")
        })
}

aplo_policy_sdk::export!(RackAware: placement);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<RackAware>()
            .placement::<RackAware>()
            .run();
    }
}
