//! Conversions between the generated WIT types and the SDK's plain types.
//! Inputs convert WIT -> plain, outputs plain -> WIT.

use crate::wit::types as w;
use crate::{
    AccessMode, Allowance, Brick, BrickRole, BrickSet, Claim, Cluster, Device, DurabilityDecision,
    Id, Info, Layout, Node, Pairs, PlacementRequest, QuotaRequest, Scheme, SettingDoc, State,
    Topology, Usage,
};

fn pairs(list: Vec<w::Pair>) -> Pairs {
    list.into_iter().map(|p| (p.key, p.value)).collect()
}

fn wit_pairs(map: Pairs) -> Vec<w::Pair> {
    map.into_iter()
        .map(|(key, value)| w::Pair { key, value })
        .collect()
}

impl From<w::AccessMode> for AccessMode {
    fn from(mode: w::AccessMode) -> Self {
        match mode {
            w::AccessMode::ReadWriteOnce => AccessMode::ReadWriteOnce,
            w::AccessMode::ReadOnlyMany => AccessMode::ReadOnlyMany,
            w::AccessMode::ReadWriteMany => AccessMode::ReadWriteMany,
            w::AccessMode::ReadWriteOncePod => AccessMode::ReadWriteOncePod,
        }
    }
}

impl From<w::Claim> for Claim {
    fn from(c: w::Claim) -> Self {
        Claim {
            namespace: c.namespace,
            name: c.name,
            labels: pairs(c.labels),
            annotations: pairs(c.annotations),
            requested_bytes: c.requested_bytes,
            access_modes: c.access_modes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<w::Scheme> for Scheme {
    fn from(s: w::Scheme) -> Self {
        match s {
            w::Scheme::None => Scheme::None,
            w::Scheme::Replicate(r) => Scheme::Replicate {
                count: r.count,
                arbiter: r.arbiter,
            },
            w::Scheme::Disperse(d) => Scheme::Disperse {
                data: d.data,
                redundancy: d.redundancy,
            },
        }
    }
}

impl From<Scheme> for w::Scheme {
    fn from(s: Scheme) -> Self {
        match s {
            Scheme::None => w::Scheme::None,
            Scheme::Replicate { count, arbiter } => {
                w::Scheme::Replicate(w::Replicate { count, arbiter })
            }
            Scheme::Disperse { data, redundancy } => {
                w::Scheme::Disperse(w::Disperse { data, redundancy })
            }
        }
    }
}

impl From<w::State> for State {
    fn from(s: w::State) -> Self {
        match s {
            w::State::Online => State::Online,
            w::State::Offline => State::Offline,
            w::State::Failed => State::Failed,
        }
    }
}

fn id(i: w::Id) -> Id {
    Id::from_halves(i.hi, i.lo)
}

fn state_code(code: u8) -> State {
    match code {
        0 => State::Online,
        1 => State::Offline,
        // Unknown codes are treated as the most restrictive state.
        _ => State::Failed,
    }
}

impl From<w::Topology> for Topology {
    fn from(t: w::Topology) -> Self {
        let sets: Vec<Pairs> = t.tag_sets.into_iter().map(pairs).collect();
        // An index out of range is the host's bug; treat it as no tags.
        let tags = |index: u32| sets.get(index as usize).cloned().unwrap_or_default();
        let mut clusters: Vec<Cluster> = t
            .clusters
            .into_iter()
            .map(|c| Cluster {
                id: id(c),
                nodes: Vec::new(),
            })
            .collect();
        // Where each node went: (cluster index, position in its cluster).
        let mut placed: Vec<(usize, usize)> = Vec::with_capacity(t.nodes.len());
        for n in t.nodes {
            let cluster = (n.cluster as usize).min(clusters.len().saturating_sub(1));
            let Some(target) = clusters.get_mut(cluster) else {
                break;
            };
            placed.push((cluster, target.nodes.len()));
            target.nodes.push(Node {
                id: id(n.id),
                hostname: n.hostname,
                zone: n.zone,
                state: n.state.into(),
                tags: tags(n.tags),
                devices: Vec::new(),
            });
        }
        let d = t.devices;
        let mut per_node = vec![0usize; placed.len()];
        for &node in &d.node {
            if let Some(count) = per_node.get_mut(node as usize) {
                *count += 1;
            }
        }
        for (&(c, n), &count) in placed.iter().zip(&per_node) {
            clusters[c].nodes[n].devices.reserve_exact(count);
        }
        for i in 0..d.node.len() {
            let Some(&(c, n)) = placed.get(d.node[i] as usize) else {
                continue;
            };
            let at = |list: &[u64]| list.get(i).copied().unwrap_or(0);
            clusters[c].nodes[n].devices.push(Device {
                id: Id::from_halves(at(&d.id_hi), at(&d.id_lo)),
                state: state_code(d.state.get(i).copied().unwrap_or(2)),
                total_bytes: at(&d.total_bytes),
                free_bytes: at(&d.free_bytes),
                brick_count: d.brick_count.get(i).copied().unwrap_or(0),
                tags: tags(d.tags.get(i).copied().unwrap_or(0)),
            });
        }
        Topology { clusters }
    }
}

impl From<w::Usage> for Usage {
    fn from(u: w::Usage) -> Self {
        Usage {
            bytes: u.bytes,
            volumes: u.volumes,
        }
    }
}

impl From<w::PlacementRequest> for PlacementRequest {
    fn from(r: w::PlacementRequest) -> Self {
        PlacementRequest {
            volume_name: r.volume_name,
            bytes: r.bytes,
            scheme: r.scheme.into(),
            snapshot_reserve: r.snapshot_reserve,
            preferred_zone: r.preferred_zone,
            preferred_node: r.preferred_node,
        }
    }
}

impl From<w::QuotaRequest> for QuotaRequest {
    fn from(r: w::QuotaRequest) -> Self {
        QuotaRequest {
            claim: r.claim.into(),
            current_bytes: r.current_bytes,
            namespace_usage: r.namespace_usage.into(),
            cluster_usage: r.cluster_usage.into(),
        }
    }
}

impl From<Info> for w::Info {
    fn from(i: Info) -> Self {
        w::Info {
            description: i.description,
            version: i.version,
            settings: i.settings.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SettingDoc> for w::SettingDoc {
    fn from(s: SettingDoc) -> Self {
        w::SettingDoc {
            key: s.key,
            description: s.description,
            default: s.default,
        }
    }
}

impl From<DurabilityDecision> for w::DurabilityDecision {
    fn from(d: DurabilityDecision) -> Self {
        w::DurabilityDecision {
            scheme: d.scheme.into(),
            volume_options: wit_pairs(d.volume_options),
            snapshot_reserve: d.snapshot_reserve,
        }
    }
}

impl From<Layout> for w::Layout {
    fn from(l: Layout) -> Self {
        w::Layout {
            sets: l.sets.into_iter().map(Into::into).collect(),
            strict_zones: l.strict_zones,
        }
    }
}

impl From<BrickSet> for w::BrickSet {
    fn from(s: BrickSet) -> Self {
        w::BrickSet {
            bricks: s.bricks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Brick> for w::Brick {
    fn from(b: Brick) -> Self {
        let (hi, lo) = b.device.halves();
        w::Brick {
            device: w::Id { hi, lo },
            bytes: b.bytes,
            role: match b.role {
                BrickRole::Data => w::BrickRole::Data,
                BrickRole::Arbiter => w::BrickRole::Arbiter,
            },
        }
    }
}

impl From<Allowance> for w::Allowance {
    fn from(a: Allowance) -> Self {
        w::Allowance {
            hard_limit: a.hard_limit,
        }
    }
}
