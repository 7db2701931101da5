//! `binpack`: a placement policy for density.
//!
//! Each set goes to the fullest devices (least room) that can still take
//! the whole brick, on distinct nodes, so that empty devices stay empty for
//! large volumes. When no devices can take the whole remaining size, the
//! set takes the roomiest devices and the volume gets another set. Zones are
//! ignored unless `strict=true`. It exists for density, and as a contrast to
//! `zone-spread` when comparing policies with `aplo simulate`.

use std::collections::BTreeSet;

use aplo_policy_sdk::layout::{SetChoice, SetRequest, Sizing, Slot, fill, first_fitting};
use aplo_policy_sdk::prelude::*;
use aplo_policy_sdk::topology::{ArbiterUse, Candidate, candidates};

/// The binpack policy.
pub struct Binpack;

struct Config {
    strict: bool,
    device_tags: Vec<TagSelector>,
    sizing: Sizing,
}

impl Config {
    fn read(settings: &Settings) -> Result<Config, String> {
        let known: Vec<&str> = ["strict", "device-tags"]
            .iter()
            .chain(Sizing::KEYS.iter())
            .copied()
            .collect();
        settings.only(&known)?;
        Ok(Config {
            strict: settings.flag("strict", false)?,
            device_tags: settings.selectors("device-tags")?,
            sizing: Sizing::from_settings(settings)?,
        })
    }
}

impl Policy for Binpack {
    fn describe() -> Info {
        let info = Info::new(
            "Fills the fullest devices that still fit, for density",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "strict",
            "Also keep the bricks of a set in distinct zones.",
            Some("false"),
        )
        .setting("device-tags", "Tag selectors devices must match.", None);
        Sizing::document(info)
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        Config::read(settings).map(|_| ())
    }
}

impl Placement for Binpack {
    fn place(
        request: &PlacementRequest,
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Layout, String> {
        let config = Config::read(settings)?;
        let groups = topology.clusters.iter().map(|cluster| {
            candidates(topology)
                .filter(|c| c.cluster.id == cluster.id && c.matches(&config.device_tags))
                .collect::<Vec<Candidate<'_>>>()
        });
        first_fitting(groups, |devices| {
            fill(
                request,
                devices,
                &config.sizing,
                config.strict,
                |slots, set| pick(&config, slots, set),
            )
        })
    }
}

fn pick<'a>(
    config: &Config,
    slots: &[Slot<'a>],
    set: &SetRequest,
) -> Result<SetChoice<'a>, String> {
    let data: Vec<Slot<'a>> = slots
        .iter()
        .filter(|s| s.candidate.arbiter_use() != ArbiterUse::Required)
        .copied()
        .collect();
    // Fullest first among the devices that take the whole brick; if too few
    // do, roomiest first so the set is as large as it can be.
    let mut fitting: Vec<Slot<'a>> = data
        .iter()
        .filter(|s| s.room >= set.want)
        .copied()
        .collect();
    fitting.sort_by(|a, b| {
        a.room
            .cmp(&b.room)
            .then_with(|| a.candidate.device.id.cmp(&b.candidate.device.id))
    });
    let mut chosen = distinct(config, &fitting, set.data_bricks, &[]);
    if chosen.len() < set.data_bricks {
        let mut roomy = data;
        roomy.sort_by(|a, b| {
            b.room
                .cmp(&a.room)
                .then_with(|| a.candidate.device.id.cmp(&b.candidate.device.id))
        });
        chosen = distinct(config, &roomy, set.data_bricks, &[]);
    }
    if chosen.len() < set.data_bricks {
        return Err(format!(
            "fewer than {} nodes have a device with room",
            set.data_bricks
        ));
    }
    let arbiter = if set.arbiter {
        let mut candidates: Vec<Slot<'a>> = slots
            .iter()
            .filter(|s| {
                s.candidate.arbiter_use() != ArbiterUse::Disabled
                    && s.room >= set.arbiter_want.min(set.want)
            })
            .copied()
            .collect();
        candidates.sort_by(|a, b| {
            a.room
                .cmp(&b.room)
                .then_with(|| a.candidate.device.id.cmp(&b.candidate.device.id))
        });
        let picked = distinct(config, &candidates, 1, &chosen);
        Some(
            picked
                .first()
                .copied()
                .ok_or("no device on another node can take the arbiter brick")?,
        )
    } else {
        None
    };
    Ok(SetChoice {
        data: chosen,
        arbiter,
    })
}

/// Take up to `count` slots in order, on nodes (and with `strict`, zones)
/// not already taken by `taken` or each other.
fn distinct<'a>(
    config: &Config,
    ordered: &[Slot<'a>],
    count: usize,
    taken: &[Candidate<'a>],
) -> Vec<Candidate<'a>> {
    let mut nodes: BTreeSet<Id> = taken.iter().map(|c| c.node.id).collect();
    let mut zones: BTreeSet<&str> = taken.iter().map(|c| c.zone()).collect();
    let mut out = Vec::new();
    for slot in ordered {
        if out.len() == count {
            break;
        }
        let c = slot.candidate;
        if nodes.contains(&c.node.id) || (config.strict && zones.contains(c.zone())) {
            continue;
        }
        nodes.insert(c.node.id);
        zones.insert(c.zone());
        out.push(c);
    }
    out
}

aplo_policy_sdk::export!(Binpack: placement);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<Binpack>()
            .placement::<Binpack>()
            .run();
    }
}
