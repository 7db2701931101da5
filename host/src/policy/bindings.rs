//! The one `bindgen!` site, and the conversions between the generated WIT
//! types and the model. Nothing outside this module sees generated types.

#![allow(missing_docs)]

use crate::model;
use crate::model::options::OptionError;

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "policy",
});

pub use exports::aplo::policy::{durability, placement, quota, settings};

use self::aplo::policy::types as w;

/// The WIT form of a topology.
pub type WitTopology = w::Topology;

pub fn pairs(map: &model::Pairs) -> Vec<w::Pair> {
    map.iter()
        .map(|(key, value)| w::Pair {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A policy's volume options as a map. The answer is a list of pairs and
/// the model's a map, which would keep only the last of a repeated key: a
/// key given twice is refused instead, naming it.
fn from_option_pairs(list: Vec<w::Pair>) -> Result<model::Pairs, OptionError> {
    let mut options = model::Pairs::new();
    for w::Pair { key, value } in list {
        if options.contains_key(&key) {
            return Err(OptionError::Duplicate(key));
        }
        options.insert(key, value);
    }
    Ok(options)
}

pub fn claim(c: &model::Claim) -> w::Claim {
    w::Claim {
        namespace: c.namespace.clone(),
        name: c.name.clone(),
        labels: pairs(&c.labels),
        annotations: pairs(&c.annotations),
        requested_bytes: c.requested_bytes,
        access_modes: c
            .access_modes
            .iter()
            .map(|m| match m {
                model::AccessMode::ReadWriteOnce => w::AccessMode::ReadWriteOnce,
                model::AccessMode::ReadOnlyMany => w::AccessMode::ReadOnlyMany,
                model::AccessMode::ReadWriteMany => w::AccessMode::ReadWriteMany,
                model::AccessMode::ReadWriteOncePod => w::AccessMode::ReadWriteOncePod,
            })
            .collect(),
    }
}

pub fn scheme(s: &model::Scheme) -> w::Scheme {
    match *s {
        model::Scheme::None => w::Scheme::None,
        model::Scheme::Replicate { count, arbiter } => {
            w::Scheme::Replicate(w::Replicate { count, arbiter })
        }
        model::Scheme::Disperse { data, redundancy } => {
            w::Scheme::Disperse(w::Disperse { data, redundancy })
        }
    }
}

fn from_scheme(s: w::Scheme) -> model::Scheme {
    match s {
        w::Scheme::None => model::Scheme::None,
        w::Scheme::Replicate(r) => model::Scheme::Replicate {
            count: r.count,
            arbiter: r.arbiter,
        },
        w::Scheme::Disperse(d) => model::Scheme::Disperse {
            data: d.data,
            redundancy: d.redundancy,
        },
    }
}

fn state(s: model::State) -> w::State {
    match s {
        model::State::Online => w::State::Online,
        model::State::Offline => w::State::Offline,
        model::State::Failed => w::State::Failed,
    }
}

fn id(i: model::Id) -> w::Id {
    let (hi, lo) = i.halves();
    w::Id { hi, lo }
}

/// The topology in its WIT form: nodes in one list, devices as parallel
/// lists of numbers, tags interned into `tag-sets`, so that a thousand
/// devices cross the boundary as a few block copies.
pub fn topology(t: &model::Topology) -> w::Topology {
    static EMPTY: model::Pairs = model::Pairs::new();
    fn intern<'a>(sets: &mut Vec<&'a model::Pairs>, tags: &'a model::Pairs) -> u32 {
        if tags.is_empty() {
            return 0;
        }
        let index = sets.iter().position(|s| *s == tags).unwrap_or_else(|| {
            sets.push(tags);
            sets.len() - 1
        });
        index as u32
    }
    let mut sets: Vec<&model::Pairs> = vec![&EMPTY];
    let count = t
        .clusters
        .iter()
        .flat_map(|c| &c.nodes)
        .map(|n| n.devices.len())
        .sum();
    let mut devices = w::Devices {
        node: Vec::with_capacity(count),
        id_hi: Vec::with_capacity(count),
        id_lo: Vec::with_capacity(count),
        state: Vec::with_capacity(count),
        total_bytes: Vec::with_capacity(count),
        free_bytes: Vec::with_capacity(count),
        brick_count: Vec::with_capacity(count),
        tags: Vec::with_capacity(count),
    };
    let mut nodes = Vec::new();
    for (c, cluster) in t.clusters.iter().enumerate() {
        for node in &cluster.nodes {
            for d in &node.devices {
                let (hi, lo) = d.id.halves();
                devices.node.push(nodes.len() as u32);
                devices.id_hi.push(hi);
                devices.id_lo.push(lo);
                devices.state.push(state_code(d.state));
                devices.total_bytes.push(d.total_bytes);
                devices.free_bytes.push(d.free_bytes);
                devices.brick_count.push(d.brick_count);
                devices.tags.push(intern(&mut sets, &d.tags));
            }
            nodes.push(w::Node {
                id: id(node.id),
                cluster: c as u32,
                hostname: node.hostname.clone(),
                zone: node.zone.clone(),
                state: state(node.state),
                tags: intern(&mut sets, &node.tags),
            });
        }
    }
    w::Topology {
        clusters: t.clusters.iter().map(|c| id(c.id)).collect(),
        nodes,
        devices,
        tag_sets: sets.into_iter().map(pairs).collect(),
    }
}

/// A state as the `devices.state` list encodes it.
fn state_code(s: model::State) -> u8 {
    match s {
        model::State::Online => 0,
        model::State::Offline => 1,
        model::State::Failed => 2,
    }
}

pub fn placement_request(r: &model::PlacementRequest) -> w::PlacementRequest {
    w::PlacementRequest {
        volume_name: r.volume_name.clone(),
        bytes: r.bytes,
        scheme: scheme(&r.scheme),
        snapshot_reserve: r.snapshot_reserve,
        preferred_zone: r.preferred_zone.clone(),
        preferred_node: r.preferred_node.clone(),
    }
}

pub fn quota_request(r: &model::QuotaRequest) -> w::QuotaRequest {
    let usage = |u: &model::Usage| w::Usage {
        bytes: u.bytes,
        volumes: u.volumes,
    };
    w::QuotaRequest {
        claim: claim(&r.claim),
        current_bytes: r.current_bytes,
        namespace_usage: usage(&r.namespace_usage),
        cluster_usage: usage(&r.cluster_usage),
    }
}

/// What a policy says about itself. Its text is the guest's, shown in
/// terminals, logs and HTTP bodies: every field is made inert here, where
/// it enters the host.
pub fn info(i: w::Info) -> model::Info {
    model::text::inert_info(model::Info {
        description: i.description,
        version: i.version,
        settings: i
            .settings
            .into_iter()
            .map(|s| model::SettingDoc {
                key: s.key,
                description: s.description,
                default: s.default,
            })
            .collect(),
    })
}

/// A durability answer in the model, or the option key it repeats.
pub fn durability_decision(
    d: w::DurabilityDecision,
) -> Result<model::DurabilityDecision, OptionError> {
    Ok(model::DurabilityDecision {
        scheme: from_scheme(d.scheme),
        volume_options: from_option_pairs(d.volume_options)?,
        snapshot_reserve: d.snapshot_reserve,
    })
}

pub fn layout(l: w::Layout) -> model::Layout {
    model::Layout {
        sets: l
            .sets
            .into_iter()
            .map(|s| model::BrickSet {
                bricks: s
                    .bricks
                    .into_iter()
                    .map(|b| model::Brick {
                        device: model::Id::from_halves(b.device.hi, b.device.lo),
                        bytes: b.bytes,
                        role: match b.role {
                            w::BrickRole::Data => model::BrickRole::Data,
                            w::BrickRole::Arbiter => model::BrickRole::Arbiter,
                        },
                    })
                    .collect(),
            })
            .collect(),
        strict_zones: l.strict_zones,
    }
}

pub fn allowance(a: w::Allowance) -> model::Allowance {
    model::Allowance {
        hard_limit: a.hard_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::validate_durability;

    fn pair(key: &str, value: &str) -> w::Pair {
        w::Pair {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_repeated_volume_option_is_refused_by_the_conversion_naming_it() {
        let answer = w::DurabilityDecision {
            scheme: w::Scheme::None,
            volume_options: vec![
                pair("network.ping-timeout", "5"),
                pair("performance.cache-size", "10MB"),
                pair("performance.cache-size", "20MB"),
            ],
            snapshot_reserve: 1.0,
        };
        let refused = durability_decision(answer).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "'performance.cache-size' is given more than once"
        );
        let once = w::DurabilityDecision {
            scheme: w::Scheme::None,
            volume_options: vec![pair("performance.cache-size", "10MB")],
            snapshot_reserve: 1.0,
        };
        let decision = durability_decision(once).unwrap();
        assert!(validate_durability(&decision, None).is_ok());
        assert_eq!(decision.volume_options.len(), 1);
    }
}
