//! `aplo policy case`: a placement case's `input.json` from a heketi
//! topology file, with ids derived from the names, so that authors edit
//! JSON instead of inventing ids.

use std::path::PathBuf;

use anyhow::{Context, bail};
use aplo_policy_types::golden::CaseInput;
use sha2::{Digest, Sha256};

use crate::engine::driver::CAPACITY_TAG;
use crate::model::topology::{TopologySpec, parse_topology};
use crate::model::validate::validate_scheme;
use crate::model::{
    Cluster, Device, Id, Node, Pairs, PlacementRequest, Scheme, State, Topology, parse_size,
};

/// Arguments of `aplo policy case`.
#[derive(Debug, clap::Args)]
pub struct CaseArgs {
    /// A heketi topology file (JSON or YAML), as `aplo simulate` and
    /// `aplo topology load` take. A device's `capacity` tag gives its size;
    /// others get `--device-size`.
    #[arg(long)]
    pub topology: PathBuf,
    /// The usable size the volume asks for, e.g. `10Gi`.
    #[arg(long)]
    pub size: String,
    /// The durability: `replica N`, `arbiter` (replica 3 with an arbiter),
    /// `disperse D+R` or `none`.
    #[arg(long, default_value = "replica 3")]
    pub durability: String,
    /// The preferred zone for the first brick of each set.
    #[arg(long)]
    pub zone: Option<String>,
    /// The preferred node (a manage hostname) for the first brick of each set.
    #[arg(long)]
    pub node: Option<String>,
    /// The volume's name, for the policy's messages.
    #[arg(long, default_value = "vol1")]
    pub volume_name: String,
    /// The policy's settings, `key=value` (without the `<policy>.` prefix).
    #[arg(long = "settings", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// The size of devices without a `capacity` tag.
    #[arg(long, default_value = "1Ti")]
    pub device_size: String,
    /// Write `DIR/input.json` (the case's folder, created if missing)
    /// instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Write or print the case.
pub fn run(args: &CaseArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.topology)
        .with_context(|| format!("reading {}", args.topology.display()))?;
    let spec = parse_topology(&text).with_context(|| args.topology.display().to_string())?;
    let case = build(&spec, args)?;
    let mut json = serde_json::to_string_pretty(&case)?;
    json.push('\n');
    match &args.out {
        None => print!("{json}"),
        Some(dir) => {
            let path = dir.join("input.json");
            if path.exists() {
                bail!(
                    "{} exists already; remove it first to write a new one",
                    path.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The case: the request the flags describe, on the file's topology.
pub fn build(spec: &TopologySpec, args: &CaseArgs) -> anyhow::Result<CaseInput> {
    let bytes = parse_size(&args.size).map_err(|e| anyhow::anyhow!("--size {}: {e}", args.size))?;
    if bytes == 0 {
        bail!("--size {}: a volume needs more than 0 bytes", args.size);
    }
    let device_size = parse_size(&args.device_size)
        .map_err(|e| anyhow::anyhow!("--device-size {}: {e}", args.device_size))?;
    let scheme = parse_durability(&args.durability)?;
    let topology = topology(spec, device_size)?;
    let nodes = || topology.clusters.iter().flat_map(|c| &c.nodes);
    if let Some(zone) = &args.zone
        && !nodes().any(|n| &n.zone == zone)
    {
        bail!(
            "--zone {zone}: no node of the topology is in that zone (zones: {})",
            list(nodes().map(|n| n.zone.as_str()))
        );
    }
    if let Some(node) = &args.node
        && !nodes().any(|n| &n.hostname == node)
    {
        bail!(
            "--node {node}: no node of the topology has that manage hostname (nodes: {})",
            list(nodes().map(|n| n.hostname.as_str()))
        );
    }
    let mut settings = Pairs::new();
    for pair in &args.settings {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--settings '{pair}' is not key=value"))?;
        settings.insert(key.into(), value.into());
    }
    Ok(CaseInput::Placement {
        settings,
        request: PlacementRequest {
            volume_name: args.volume_name.clone(),
            bytes,
            scheme,
            snapshot_reserve: 1.0,
            preferred_zone: args.zone.clone(),
            preferred_node: args.node.clone(),
        },
        topology,
    })
}

/// Distinct values, sorted, comma-separated.
fn list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let set: std::collections::BTreeSet<&str> = values.collect();
    set.into_iter().collect::<Vec<_>>().join(", ")
}

/// The policy topology of a file: every node and device online and empty,
/// with ids derived from the names (see [`id_of`]).
fn topology(spec: &TopologySpec, device_size: u64) -> anyhow::Result<Topology> {
    let mut clusters = Vec::new();
    for (c, cluster) in spec.clusters.iter().enumerate() {
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let mut devices = Vec::new();
            for device in &node.devices {
                let total = match device.tags.get(CAPACITY_TAG) {
                    Some(text) => parse_size(text).map_err(|e| {
                        anyhow::anyhow!(
                            "{}:{}: tag {CAPACITY_TAG}={text}: {e}",
                            node.manage,
                            device.name
                        )
                    })?,
                    None => device_size,
                };
                devices.push(Device {
                    id: id_of(&["device", &node.manage, &device.name]),
                    state: State::Online,
                    total_bytes: total,
                    free_bytes: total,
                    brick_count: 0,
                    tags: device.tags.clone(),
                });
            }
            nodes.push(Node {
                id: id_of(&["node", &node.manage]),
                hostname: node.manage.clone(),
                zone: node.zone.clone(),
                state: State::Online,
                tags: node.tags.clone(),
                devices,
            });
        }
        clusters.push(Cluster {
            // A topology file's clusters have no names: the position is it.
            id: id_of(&["cluster", &(c + 1).to_string()]),
            nodes,
        });
    }
    Ok(Topology { clusters })
}

/// A stable id from names: the first 128 bits of the SHA-256 of the kind
/// and names, each followed by a NUL (so that `a`+`bc` and `ab`+`c`
/// differ). The same file always gives the same ids, and a node keeps its
/// id when others are added or removed.
pub fn id_of(parts: &[&str]) -> Id {
    let mut hash = Sha256::new();
    hash.update(b"aplo policy case\0");
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut half = [0u8; 16];
    half.copy_from_slice(&digest[..16]);
    Id(u128::from_be_bytes(half))
}

/// A durability as people write it: `replica 3` (or `replicate 3`),
/// `arbiter` or `replica 3 arbiter 1` (how gluster and aplo's messages
/// say it), `disperse 4+2`, `none` (or `no redundancy`). Checked against gluster's limits, as a
/// durability policy's answer is.
pub fn parse_durability(text: &str) -> anyhow::Result<Scheme> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == '=')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let count = |n: &str| n.parse::<u8>().ok();
    let scheme = match words.as_slice() {
        ["none"] | ["distribute"] | ["no", "redundancy"] | ["replica", "1"] => Some(Scheme::None),
        ["arbiter"] | ["replica" | "replicate", "3", "arbiter", "1"] => Some(Scheme::Replicate {
            count: 3,
            arbiter: true,
        }),
        ["replica" | "replicate", n] => count(n).map(|count| Scheme::Replicate {
            count,
            arbiter: false,
        }),
        ["disperse", shape] => shape.split_once('+').and_then(|(d, r)| {
            Some(Scheme::Disperse {
                data: count(d)?,
                redundancy: count(r)?,
            })
        }),
        _ => None,
    };
    let Some(scheme) = scheme else {
        bail!(
            "--durability '{text}': use 'replica N', 'arbiter', 'disperse D+R' or 'none', e.g. 'replica 3' or 'disperse 4+2'"
        );
    };
    validate_scheme(&scheme).map_err(|e| anyhow::anyhow!("--durability '{text}': {}", e.detail))?;
    Ok(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::describe;
    use crate::model::{GIB, TIB};
    use crate::policy::{Runtime, RuntimeConfig, bundled, golden};
    use aplo_policy_types::golden::Outcome;

    fn read_case(path: &std::path::Path) -> CaseInput {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    const TOPOLOGY: &str = r#"
clusters:
  - nodes:
      - node: {hostnames: {manage: [a.example.com], storage: [10.0.0.1]}, zone: 1}
        devices: [{name: /dev/vdb, tags: {capacity: 100Gi}}, /dev/vdc]
      - node: {hostnames: {manage: [b.example.com], storage: [10.0.0.2]}, zone: 2}
        devices: [/dev/vdb]
      - node: {hostnames: {manage: [c.example.com], storage: [10.0.0.3]}, zone: 3}
        devices: [/dev/vdb]
"#;

    fn args(size: &str, durability: &str) -> CaseArgs {
        CaseArgs {
            topology: PathBuf::from("topology.yaml"),
            size: size.into(),
            durability: durability.into(),
            zone: None,
            node: None,
            volume_name: "vol1".into(),
            settings: Vec::new(),
            device_size: "1Ti".into(),
            out: None,
        }
    }

    fn spec() -> TopologySpec {
        parse_topology(TOPOLOGY).unwrap()
    }

    fn placement(case: &CaseInput) -> (&PlacementRequest, &Topology) {
        match case {
            CaseInput::Placement {
                request, topology, ..
            } => (request, topology),
            other => panic!("not a placement case: {other:?}"),
        }
    }

    #[test]
    fn ids_are_derived_from_the_names_and_stable() {
        let one = build(&spec(), &args("10Gi", "replica 3")).unwrap();
        let two = build(&spec(), &args("10Gi", "replica 3")).unwrap();
        assert_eq!(one, two);
        let (_, topology) = placement(&one);
        let a = &topology.clusters[0].nodes[0];
        assert_eq!(a.id, id_of(&["node", "a.example.com"]));
        assert_eq!(
            a.devices[1].id,
            id_of(&["device", "a.example.com", "/dev/vdc"])
        );
        // 32 lowercase hex characters, as heketi writes ids.
        let text = a.devices[0].id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<Id>().unwrap(), a.devices[0].id);
        // Pinned, so that a change of the derivation is seen: it would
        // change the ids of every case generated before.
        assert_eq!(
            topology.clusters[0].id.to_string(),
            "568cf76d4e7d1c5c6c92c769eb11b23f"
        );
        assert_eq!(a.id.to_string(), "c7c2fa4edd25081920387afa40ac0038");
        let mut ids: Vec<Id> = topology.clusters[0]
            .nodes
            .iter()
            .flat_map(|n| std::iter::once(n.id).chain(n.devices.iter().map(|d| d.id)))
            .collect();
        ids.push(topology.clusters[0].id);
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "ids are distinct");
        // Removing a node keeps the others' ids.
        let fewer = TOPOLOGY.replace(
            "      - node: {hostnames: {manage: [b.example.com], storage: [10.0.0.2]}, zone: 2}\n        devices: [/dev/vdb]\n",
            "",
        );
        let fewer = build(&parse_topology(&fewer).unwrap(), &args("1Gi", "none")).unwrap();
        assert_eq!(
            placement(&fewer).1.clusters[0].nodes[1].id,
            id_of(&["node", "c.example.com"])
        );
    }

    #[test]
    fn sizes_states_and_the_request_come_from_the_file_and_flags() {
        let mut a = args("10Gi", "disperse 4+2");
        a.zone = Some("2".into());
        a.settings = vec!["strict=false".into()];
        let case = build(&spec(), &a).unwrap();
        let (request, topology) = placement(&case);
        assert_eq!(request.bytes, 10 * GIB);
        assert_eq!(
            request.scheme,
            Scheme::Disperse {
                data: 4,
                redundancy: 2
            }
        );
        assert_eq!(request.preferred_zone.as_deref(), Some("2"));
        let a = &topology.clusters[0].nodes[0];
        assert_eq!(
            (a.hostname.as_str(), a.zone.as_str()),
            ("a.example.com", "1")
        );
        assert_eq!(a.devices[0].total_bytes, 100 * GIB);
        assert_eq!(a.devices[0].free_bytes, 100 * GIB);
        assert_eq!(a.devices[1].total_bytes, TIB);
        assert_eq!(a.state, State::Online);
        let CaseInput::Placement { settings, .. } = &case else {
            unreachable!()
        };
        assert_eq!(settings.get("strict").map(String::as_str), Some("false"));
    }

    #[test]
    fn durabilities_read_as_people_write_them() {
        let r = |count, arbiter| Scheme::Replicate { count, arbiter };
        for (text, want) in [
            ("replica 3", r(3, false)),
            ("replicate 2", r(2, false)),
            ("replica:3", r(3, false)),
            ("arbiter", r(3, true)),
            ("replica 3 arbiter 1", r(3, true)),
            ("none", Scheme::None),
            (
                "disperse 8+3",
                Scheme::Disperse {
                    data: 8,
                    redundancy: 3,
                },
            ),
        ] {
            assert_eq!(parse_durability(text).unwrap(), want, "{text}");
            // What aplo's messages say reads back.
            assert_eq!(parse_durability(&describe(&want)).unwrap(), want);
        }
        for (text, says) in [
            (
                "raid5",
                "use 'replica N', 'arbiter', 'disperse D+R' or 'none'",
            ),
            ("disperse 4", "use 'replica N'"),
            ("replica 99", "outside 2..="),
            ("disperse 2+2", "needs data >= 2 and 1 <= redundancy < data"),
        ] {
            let err = parse_durability(text).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn bad_sizes_flags_and_files_are_refused_clearly() {
        let err = |a: &CaseArgs| build(&spec(), a).unwrap_err().to_string();
        assert!(err(&args("ten", "replica 3")).starts_with("--size ten: "));
        assert!(err(&args("0", "replica 3")).contains("more than 0 bytes"));
        let mut a = args("1Gi", "replica 3");
        a.zone = Some("9".into());
        assert_eq!(
            err(&a),
            "--zone 9: no node of the topology is in that zone (zones: 1, 2, 3)"
        );
        let mut a = args("1Gi", "replica 3");
        a.node = Some("d.example.com".into());
        assert!(err(&a).contains("(nodes: a.example.com, b.example.com, c.example.com)"));
        let bad = parse_topology(&TOPOLOGY.replace("capacity: 100Gi", "capacity: lots")).unwrap();
        let e = build(&bad, &args("1Gi", "replica 3"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.example.com:/dev/vdb: tag capacity=lots: "),
            "{e}"
        );

        // A file that is not a topology names the file and the field.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("topology.json");
        std::fs::write(
            &file,
            r#"{"clusters": [{"nodes": [{"node": {"zone": 1}}]}]}"#,
        )
        .unwrap();
        let mut a = args("1Gi", "replica 3");
        a.topology = file.clone();
        let e = format!("{:#}", run(&a).unwrap_err());
        assert!(
            e.contains("topology.json") && e.contains("clusters[0].nodes[0].node"),
            "{e}"
        );
        a.topology = dir.path().join("missing.yaml");
        let e = format!("{:#}", run(&a).unwrap_err());
        assert!(
            e.starts_with("reading ") && e.contains("missing.yaml"),
            "{e}"
        );
    }

    /// A generated case is one `aplo policy test` runs: written with
    /// `--out`, read back as a case, and placed by a bundled policy.
    #[test]
    fn a_generated_case_runs_through_a_bundled_placement_policy() {
        let dir = tempfile::tempdir().unwrap();
        let topology = dir.path().join("topology.yaml");
        std::fs::write(&topology, TOPOLOGY).unwrap();
        let case_dir = dir.path().join("tests/three-zones");
        let mut a = args("10Gi", "replica 3");
        a.topology = topology;
        a.out = Some(case_dir.clone());
        run(&a).unwrap();
        let again = run(&a).unwrap_err().to_string();
        assert!(again.contains("exists already"), "{again}");
        let input = read_case(&case_dir.join("input.json"));
        assert_eq!(input, build(&spec(), &a).unwrap());

        let runtime = std::sync::Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
        let (name, wasm) = bundled::BUNDLED
            .iter()
            .find(|(name, _)| *name == "zone-spread")
            .unwrap();
        let policy = std::sync::Arc::new(
            runtime
                .load(name, "bundled", wasm, Default::default())
                .unwrap(),
        );
        let results = golden::run_dir(&policy, &dir.path().join("tests"), true).unwrap();
        assert_eq!(results.len(), 1);
        let Outcome::Ok(layout) = &results[0].actual else {
            panic!("{:?}", results[0].actual);
        };
        let layout: crate::model::Layout = serde_json::from_value(layout.clone()).unwrap();
        let (_, topology) = placement(&input);
        let devices: Vec<Id> = topology.clusters[0]
            .nodes
            .iter()
            .flat_map(|n| n.devices.iter().map(|d| d.id))
            .collect();
        assert_eq!(layout.sets.len(), 1);
        assert!(
            layout.sets[0]
                .bricks
                .iter()
                .all(|b| devices.contains(&b.device))
        );
        // Blessed, it passes as it is.
        let results = golden::run_dir(&policy, &dir.path().join("tests"), false).unwrap();
        assert!(results[0].passed(), "{:?}", results[0].diff);
    }
}
