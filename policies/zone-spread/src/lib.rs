//! `zone-spread`: aplo's default placement policy.
//!
//! Each brick set goes to distinct nodes, and to distinct zones whenever the
//! cluster has enough of them (always, with `strict=true`). Within those
//! rules it takes the devices with the most room, so sets are as large as
//! the free space allows and volumes need few sets. Unlike heketi's
//! allocator, brick sizes are not halved in powers of two: a volume may use
//! any number of sets of any size, so it fails only when the space it can
//! see really does not suffice.
//!
//! Devices are filtered by `device-tags` (data bricks) and `arbiter-tags`
//! (arbiter bricks); a device or node tagged `arbiter=required` takes only
//! arbiter bricks, `arbiter=disabled` never does.

use aplo_policy_sdk::layout::{SetChoice, SetRequest, Sizing, Slot, fill, first_fitting};
use aplo_policy_sdk::prelude::*;
use aplo_policy_sdk::spread::{Spread, roomiest_per_node};
use aplo_policy_sdk::topology::{ArbiterUse, Candidate, candidates};

/// The zone-spread policy.
pub struct ZoneSpread;

const KEYS: [&str; 3] = ["strict", "device-tags", "arbiter-tags"];

struct Config {
    strict: bool,
    device_tags: Vec<TagSelector>,
    arbiter_tags: Vec<TagSelector>,
    sizing: Sizing,
}

impl Config {
    fn read(settings: &Settings) -> Result<Config, String> {
        let known: Vec<&str> = KEYS.iter().chain(Sizing::KEYS.iter()).copied().collect();
        settings.only(&known)?;
        Ok(Config {
            strict: settings.flag("strict", false)?,
            device_tags: settings.selectors("device-tags")?,
            arbiter_tags: settings.selectors("arbiter-tags")?,
            sizing: Sizing::from_settings(settings)?,
        })
    }
}

impl Policy for ZoneSpread {
    fn describe() -> Info {
        let info = Info::new(
            "Spreads each brick set across nodes and zones, on the devices with the most room",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "strict",
            "Refuse rather than put two bricks of a set in one zone.",
            Some("false"),
        )
        .setting(
            "device-tags",
            "Tag selectors data devices must match, e.g. disktype=ssd,rack!=r1.",
            None,
        )
        .setting(
            "arbiter-tags",
            "Tag selectors arbiter devices must match.",
            None,
        );
        Sizing::document(info)
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        Config::read(settings).map(|_| ())
    }
}

impl Placement for ZoneSpread {
    fn place(
        request: &PlacementRequest,
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Layout, String> {
        let config = Config::read(settings)?;
        let mut clusters: Vec<(u64, Vec<Candidate<'_>>)> = topology
            .clusters
            .iter()
            .map(|cluster| {
                let devices: Vec<Candidate<'_>> = candidates(topology)
                    .filter(|c| c.cluster.id == cluster.id)
                    .collect();
                (devices.iter().map(|c| c.device.free_bytes).sum(), devices)
            })
            .collect();
        // Roomiest cluster first; ties by id for reproducible answers.
        clusters.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| cluster_id(&a.1).cmp(&cluster_id(&b.1)))
        });
        first_fitting(
            clusters.into_iter().map(|(_, devices)| devices),
            |devices| {
                fill(
                    request,
                    devices,
                    &config.sizing,
                    config.strict,
                    |slots, want| pick(request, &config, slots, want),
                )
            },
        )
    }
}

fn cluster_id(devices: &[Candidate<'_>]) -> Id {
    devices.first().map_or(Id(0), |c| c.cluster.id)
}

/// Choose the devices of one set.
fn pick<'a>(
    request: &PlacementRequest,
    config: &Config,
    slots: &[Slot<'a>],
    set: &SetRequest,
) -> Result<SetChoice<'a>, String> {
    // The roomiest data device on each node.
    let mut nodes = roomiest_per_node(slots, |c| {
        c.arbiter_use() != ArbiterUse::Required && c.matches(&config.device_tags)
    });
    let preferred = |s: &Slot<'_>| {
        let node = request.preferred_node.as_deref() == Some(s.candidate.node.hostname.as_str());
        let zone = request.preferred_zone.as_deref() == Some(s.candidate.zone());
        (node, zone)
    };
    nodes.sort_by(|a, b| {
        preferred(b)
            .cmp(&preferred(a))
            .then(b.room.cmp(&a.room))
            .then_with(|| a.candidate.node.hostname.cmp(&b.candidate.node.hostname))
    });
    // One node per zone, roomiest zones first; then, unless strict, the
    // roomiest remaining nodes.
    let spread = Spread::zones().strict(config.strict);
    let chosen = spread.choose(&nodes, set.data_bricks);
    if chosen.len() < set.data_bricks {
        if config.strict {
            let total_bricks = set.data_bricks + usize::from(set.arbiter);
            return Err(spread.shortfall(total_bricks, slots));
        }
        return Err(match nodes.len() {
            0 => "no online device that may take data bricks has room left".to_owned(),
            n => format!(
                "a set needs {} data bricks on distinct nodes, and only {n} nodes have a device with room",
                set.data_bricks
            ),
        });
    }
    let arbiter = if set.arbiter {
        // The arbiter brick on a third node, of a fresh zone if it can
        // (always, when strict), of the devices `arbiter-tags` allows.
        let needed = set
            .arbiter_want
            .min(chosen.iter().map(|s| s.room).min().unwrap_or(0));
        let arbiter =
            spread.pick_arbiter(slots, &chosen, needed, |c| c.matches(&config.arbiter_tags));
        Some(arbiter.ok_or("no device on a third node can take the arbiter brick")?)
    } else {
        None
    };
    Ok(SetChoice {
        data: chosen.iter().map(|s| s.candidate).collect(),
        arbiter,
    })
}

aplo_policy_sdk::export!(ZoneSpread: placement);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<ZoneSpread>()
            .placement::<ZoneSpread>()
            .run();
    }
}
