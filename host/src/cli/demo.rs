//! `aplo demo`: the default policies decide a volume on an example topology.

use std::process::ExitCode;

use anyhow::Context;

use super::Config;
use crate::model::{self, Claim, PlacementRequest, Topology, Verdict, format_size, parse_size};

/// The example topology embedded in the binary: three zones, six nodes.
const EXAMPLE_TOPOLOGY: &str = include_str!("../../../examples/topology.json");

/// Arguments of `aplo demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// A topology file (policy JSON format) instead of the embedded example.
    #[arg(long)]
    topology: Option<std::path::PathBuf>,
    /// The claim's size.
    #[arg(long, default_value = "10Gi")]
    size: String,
    /// StorageClass parameters, `key=value` (e.g. `classes.class=arbiter`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

/// Run the demo.
pub fn run(config: &Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let topology_text = match &args.topology {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => EXAMPLE_TOPOLOGY.to_owned(),
    };
    let topology: Topology =
        serde_json::from_str(&topology_text).context("the topology is not valid")?;
    let bytes = parse_size(&args.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    anyhow::ensure!(bytes > 0, "--size must be greater than zero");
    let mut params = model::Pairs::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param '{p}' is not key=value"))?;
        params.insert(k.to_owned(), v.to_owned());
    }
    let registry = config.open_registry()?;
    let policies = registry.resolve(&params)?;
    println!(
        "policies: durability={} placement={} quota={}",
        policies.durability.policy.name(),
        policies.placement.policy.name(),
        policies.quota.as_ref().map_or("none", |q| q.policy.name())
    );
    let claim = Claim {
        namespace: "default".into(),
        name: "gluster-claim".into(),
        labels: Default::default(),
        annotations: Default::default(),
        requested_bytes: bytes,
        access_modes: vec![model::AccessMode::ReadWriteMany],
    };
    println!(
        "claim:    default/gluster-claim, {} ReadWriteMany",
        format_size(bytes)
    );
    let durability = match policies.durability(&claim)? {
        Verdict::Granted(d) => d,
        Verdict::Refused(reason) => {
            println!("refused by durability policy: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "durability: {}",
        model::validate::describe(&durability.scheme)
    );
    let request = PlacementRequest {
        volume_name: "vol_demo".into(),
        bytes,
        scheme: durability.scheme,
        snapshot_reserve: durability.snapshot_reserve,
        preferred_zone: None,
        preferred_node: None,
    };
    let placed = match policies.place(&request, &topology)? {
        Verdict::Granted(p) => p,
        Verdict::Refused(reason) => {
            println!("refused by placement policy: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "layout:   {} brick set(s), usable {}, consuming {} of raw space",
        placed.layout.sets.len(),
        format_size(placed.summary.usable_bytes),
        format_size(placed.summary.consumed_bytes)
    );
    let locate = |id: &model::Id| {
        topology
            .clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .find_map(|n| {
                n.devices.iter().find(|d| d.id == *id).map(|d| {
                    (
                        n.hostname.as_str(),
                        n.zone.as_str(),
                        d.tags.get("disktype").map_or("-", String::as_str),
                    )
                })
            })
    };
    for (i, set) in placed.layout.sets.iter().enumerate() {
        println!("  set {i}:");
        for brick in &set.bricks {
            let (host, zone, disk) = locate(&brick.device).unwrap_or(("?", "?", "?"));
            println!(
                "    {:<8} {:>9}  {host}  device {}  disktype={disk}  (zone {zone})",
                format!("{:?}", brick.role).to_lowercase(),
                format_size(brick.bytes),
                &brick.device.to_string()[..8],
            );
        }
    }
    println!("every brick set is on distinct nodes; the layout passed all host validation rules.");
    Ok(ExitCode::SUCCESS)
}
