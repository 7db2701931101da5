//! Names beside ids: what a case's input topology calls the clusters,
//! nodes and devices an answer names by id, and a readable rendering of
//! answers for `aplo policy test --show`.
//!
//! A case's topology gives nodes their hostnames but devices no names (the
//! policy contract has none), so a device is called by its node and its
//! place on that node, as the input lists it: `r1-a.example.com device 2`.
//! `aplo policy case` keeps the topology file's order, so that is also the
//! second device of that node in the file.

use std::collections::HashMap;
use std::fmt::Write as _;

use aplo_policy_types::golden::{CaseInput, Outcome};

use crate::model::validate::describe;
use crate::model::{Allowance, BrickRole, DurabilityDecision, Id, Layout, Pairs, format_size};

/// What a device is, as far as a case's topology says.
#[derive(Debug, Clone)]
struct DeviceName {
    node: String,
    position: usize,
    zone: String,
    /// The node's tags with the device's over them (as `Candidate::tag`
    /// reads them).
    tags: Pairs,
}

impl DeviceName {
    fn label(&self) -> String {
        format!("{} device {}", self.node, self.position)
    }
}

/// The names of a case's ids.
#[derive(Debug, Default)]
pub struct Names {
    labels: HashMap<Id, String>,
    devices: HashMap<Id, DeviceName>,
}

impl Names {
    /// The names in a case's input: its topology's, for a placement case;
    /// none for the other decisions.
    pub fn of(input: &CaseInput) -> Names {
        let mut names = Names::default();
        let CaseInput::Placement { topology, .. } = input else {
            return names;
        };
        for (c, cluster) in topology.clusters.iter().enumerate() {
            names
                .labels
                .insert(cluster.id, format!("cluster {}", c + 1));
            for node in &cluster.nodes {
                names.labels.insert(node.id, node.hostname.clone());
                for (d, device) in node.devices.iter().enumerate() {
                    let mut tags = node.tags.clone();
                    tags.extend(device.tags.clone());
                    let name = DeviceName {
                        node: node.hostname.clone(),
                        position: d + 1,
                        zone: node.zone.clone(),
                        tags,
                    };
                    names.labels.insert(device.id, name.label());
                    names.devices.insert(device.id, name);
                }
            }
        }
        names
    }

    /// `text` with each line that holds a known id (in quotes, as JSON
    /// writes it) followed by `  // <names>`.
    pub fn annotate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let found: Vec<&str> = quoted_ids(body)
                .filter_map(|id| self.labels.get(&id).map(String::as_str))
                .collect();
            out.push_str(body);
            if !found.is_empty() {
                let _ = write!(out, "  // {}", found.join(", "));
            }
            out.push_str(end);
        }
        out
    }

    /// A device's name, or its id when the topology does not have it.
    fn device(&self, id: Id) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// An outcome in words, one line per item: a layout's sets and bricks
    /// with node and device names, zones, tags and sizes; a durability's
    /// scheme; a quota's limit; a refusal's reason.
    pub fn render(&self, input: &CaseInput, outcome: &Outcome) -> Vec<String> {
        let value = match outcome {
            Outcome::Refused(reason) => return vec![format!("refused: {reason}")],
            Outcome::Fault(fault) => return vec![format!("fault: {fault}")],
            Outcome::Ok(value) => value,
        };
        let rendered =
            match input {
                CaseInput::Validate { .. } => Some(vec!["settings accepted".to_owned()]),
                CaseInput::Placement { .. } => serde_json::from_value::<Layout>(value.clone())
                    .ok()
                    .map(|layout| self.layout(&layout)),
                CaseInput::Durability { .. } => {
                    serde_json::from_value::<DurabilityDecision>(value.clone())
                        .ok()
                        .map(|d| vec![durability(&d)])
                }
                CaseInput::Quota { .. } => serde_json::from_value::<Allowance>(value.clone())
                    .ok()
                    .map(|a| {
                        vec![match a.hard_limit {
                            Some(limit) => format!("allowed, hard limit {}", format_size(limit)),
                            None => "allowed, no hard limit".to_owned(),
                        }]
                    }),
            };
        rendered.unwrap_or_else(|| {
            serde_json::to_string_pretty(value)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        })
    }

    fn layout(&self, layout: &Layout) -> Vec<String> {
        let mut lines = vec![format!(
            "{} set{}{}",
            layout.sets.len(),
            if layout.sets.len() == 1 { "" } else { "s" },
            if layout.strict_zones {
                ", strict zones"
            } else {
                ""
            }
        )];
        for (s, set) in layout.sets.iter().enumerate() {
            lines.push(format!("set {}:", s + 1));
            for brick in &set.bricks {
                let role = match brick.role {
                    BrickRole::Data => "data",
                    BrickRole::Arbiter => "arbiter",
                };
                let mut line = format!(
                    "  {role:<7} {:>9}  {}",
                    format_size(brick.bytes),
                    self.device(brick.device)
                );
                if let Some(device) = self.devices.get(&brick.device) {
                    let _ = write!(line, "  zone {}", device.zone);
                    for (key, value) in &device.tags {
                        let _ = write!(line, " {key}={value}");
                    }
                }
                lines.push(line);
            }
        }
        lines
    }
}

fn durability(d: &DurabilityDecision) -> String {
    let mut text = describe(&d.scheme);
    if d.snapshot_reserve != 1.0 {
        let _ = write!(text, ", snapshot reserve {}", d.snapshot_reserve);
    }
    if !d.volume_options.is_empty() {
        let options: Vec<String> = d
            .volume_options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = write!(text, ", options {}", options.join(" "));
    }
    text
}

/// The ids written as `"<32 lowercase hex>"` in a line.
fn quoted_ids(line: &str) -> impl Iterator<Item = Id> + '_ {
    line.split('"')
        .skip(1)
        .step_by(2)
        .filter_map(|token| token.parse::<Id>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Brick, BrickSet, Cluster, Device, GIB, MIB, Node, Scheme, State, Topology};

    fn id(n: u128) -> Id {
        Id(n)
    }

    fn input() -> CaseInput {
        let device = |n: u128, tags: &[(&str, &str)]| Device {
            id: id(n),
            state: State::Online,
            total_bytes: 100 * GIB,
            free_bytes: 100 * GIB,
            brick_count: 0,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let node = |n: u128, host: &str, rack: &str, devices| Node {
            id: id(n),
            hostname: host.into(),
            zone: "dc1".into(),
            state: State::Online,
            tags: [("rack".to_owned(), rack.to_owned())].into(),
            devices,
        };
        CaseInput::Placement {
            settings: Pairs::new(),
            request: crate::model::PlacementRequest {
                volume_name: "vol1".into(),
                bytes: 10 * GIB,
                scheme: Scheme::Replicate {
                    count: 3,
                    arbiter: true,
                },
                snapshot_reserve: 1.0,
                preferred_zone: None,
                preferred_node: None,
            },
            topology: Topology {
                clusters: vec![Cluster {
                    id: id(1),
                    nodes: vec![
                        node(
                            0xa1,
                            "r1-a",
                            "r1",
                            vec![device(0xd11, &[]), device(0xd12, &[("retired", "true")])],
                        ),
                        node(0xa2, "r2-a", "r2", vec![device(0xd21, &[])]),
                        node(
                            0xa3,
                            "r3-a",
                            "r3",
                            vec![device(0xd31, &[("arbiter", "required")])],
                        ),
                    ],
                }],
            },
        }
    }

    #[test]
    fn ids_in_json_get_their_names_beside_them() {
        let names = Names::of(&input());
        let text = format!(
            "{{\n  \"device\": \"{}\",\n  \"other\": \"{}\",\n  \"n\": \"{}\"\n}}\n",
            id(0xd12),
            id(0xbad),
            id(0xa2)
        );
        assert_eq!(
            names.annotate(&text),
            format!(
                "{{\n  \"device\": \"{}\",  // r1-a device 2\n  \"other\": \"{}\",\n  \"n\": \"{}\"  // r2-a\n}}\n",
                id(0xd12),
                id(0xbad),
                id(0xa2)
            )
        );
        // Nothing to name: the text as it was.
        let durability = CaseInput::Validate {
            settings: Pairs::new(),
        };
        assert_eq!(Names::of(&durability).annotate(&text), text);
    }

    #[test]
    fn a_layout_reads_as_sets_of_named_bricks() {
        let input = input();
        let brick = |device, bytes, role| Brick {
            device: id(device),
            bytes,
            role,
        };
        let layout = Layout {
            sets: vec![BrickSet {
                bricks: vec![
                    brick(0xd11, 10 * GIB, BrickRole::Data),
                    brick(0xd21, 10 * GIB, BrickRole::Data),
                    brick(0xd31, 64 * MIB, BrickRole::Arbiter),
                ],
            }],
            strict_zones: false,
        };
        let outcome = Outcome::of(Ok::<_, String>(layout));
        assert_eq!(
            Names::of(&input).render(&input, &outcome),
            [
                "1 set",
                "set 1:",
                "  data        10GiB  r1-a device 1  zone dc1 rack=r1",
                "  data        10GiB  r2-a device 1  zone dc1 rack=r2",
                "  arbiter     64MiB  r3-a device 1  zone dc1 arbiter=required rack=r3",
            ]
        );
        assert_eq!(
            Names::of(&input).render(&input, &Outcome::Refused("no room".into())),
            ["refused: no room"]
        );
        let durability = CaseInput::Validate {
            settings: Pairs::new(),
        };
        assert_eq!(
            Names::default().render(&durability, &Outcome::Ok(serde_json::Value::Null)),
            ["settings accepted"]
        );
    }

    #[test]
    fn durability_and_quota_answers_read_as_words() {
        let claim: crate::model::Claim = serde_json::from_value(serde_json::json!({
            "name": "c", "requested_bytes": 1
        }))
        .unwrap();
        let input = CaseInput::Durability {
            settings: Pairs::new(),
            claim: claim.clone(),
        };
        let decision = DurabilityDecision {
            scheme: Scheme::Disperse {
                data: 4,
                redundancy: 2,
            },
            volume_options: [("performance.quick-read".to_owned(), "off".to_owned())].into(),
            snapshot_reserve: 1.5,
        };
        assert_eq!(
            Names::default().render(&input, &Outcome::of(Ok::<_, String>(decision))),
            ["disperse 4+2, snapshot reserve 1.5, options performance.quick-read=off"]
        );
        let quota = CaseInput::Quota {
            settings: Pairs::new(),
            request: crate::model::QuotaRequest {
                claim,
                current_bytes: 0,
                namespace_usage: Default::default(),
                cluster_usage: Default::default(),
            },
        };
        let allowance = Allowance {
            hard_limit: Some(GIB),
        };
        assert_eq!(
            Names::default().render(&quota, &Outcome::of(Ok::<_, String>(allowance))),
            ["allowed, hard limit 1GiB"]
        );
    }
}
