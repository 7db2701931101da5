//! `aplo simulate`: play a workload of claims through the real policies
//! and the real engine, with the simulation driver (nothing runs, only the
//! model changes), and report what it amounts to. With
//! `--compare-heketi`, the same claims also go through an emulation of
//! heketi's allocator, with the same durability decisions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Config;
use super::engine::runtime;
use super::storage::parse_params;
use crate::engine::{Engine, LoadOptions};
use crate::model::storage::{Backend, Snapshot};
use crate::model::topology::parse_topology;
use crate::model::{PlacementRequest, Verdict, format_size, parse_size};
use crate::plan::heketi::{self, HeketiOptions};
use crate::plan::simulate::{self, Report};

/// Arguments of `aplo simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A heketi topology file (JSON or YAML). A device's `capacity` tag
    /// gives its size; others get `--device-size`.
    #[arg(long)]
    topology: PathBuf,
    /// The workload: `claims: [{name, namespace, size, count, parameters}]`.
    #[arg(long)]
    workload: PathBuf,
    /// The placement policy (StorageClass parameter `placement`).
    #[arg(long)]
    placement: Option<String>,
    /// The durability policy (parameter `durability`).
    #[arg(long)]
    durability: Option<String>,
    /// The quota policy (parameter `quota`).
    #[arg(long)]
    quota: Option<String>,
    /// More StorageClass parameters, `key=value`.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// The size of devices without a `capacity` tag.
    #[arg(long, default_value = "1Ti")]
    device_size: String,
    /// Also play the claims through an emulation of heketi's allocator.
    #[arg(long)]
    compare_heketi: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Seed of the ids (and of the heketi emulation's ring starts).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Run the simulation.
pub fn run(config: &Config, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.topology)
        .with_context(|| format!("reading {}", args.topology.display()))?;
    let spec = parse_topology(&text).with_context(|| args.topology.display().to_string())?;
    let text = std::fs::read_to_string(&args.workload)
        .with_context(|| format!("reading {}", args.workload.display()))?;
    let workload = simulate::parse_workload(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.workload.display()))?;
    let mut parameters = parse_params(&args.params)?;
    simulate::choose_policies(
        &mut parameters,
        &args.placement,
        &args.durability,
        &args.quota,
    );
    let claims = simulate::expand(&workload, &parameters)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.workload.display()))?;
    let device_size = parse_size(&args.device_size)
        .map_err(|e| anyhow::anyhow!("--device-size {}: {e}", args.device_size))?;
    let registry = config.open_registry()?;
    // Resolve once up front, so that an unknown policy is a clear error
    // rather than one refusal per claim.
    for claim in &claims {
        registry
            .resolve(&claim.parameters)
            .with_context(|| format!("claim {}", claim.name))?;
    }
    let engine = Engine::simulation(
        Snapshot::default(),
        device_size,
        registry.clone(),
        args.seed,
    )?;
    let rt = runtime()?;
    let (aplo, heketi) = rt.block_on(async {
        let load = engine
            .load_topology(
                &spec,
                LoadOptions {
                    backend: Backend::LvmThin,
                },
            )
            .await?;
        anyhow::ensure!(
            load.failures.is_empty(),
            "the topology could not be loaded: {}",
            load.failures.join("; ")
        );
        let initial = engine.policy_topology();
        let snapshot = engine.snapshot();
        let aplo = engine.play(&claims).await;

        let heketi = if args.compare_heketi {
            let options = HeketiOptions {
                seed: args.seed,
                ..HeketiOptions::default()
            };
            let mut topology = initial.clone();
            let mut report = Report::of(claims.len());
            for claim in &claims {
                let set = registry.resolve(&claim.parameters)?;
                let outcome = match set.durability(&claim.claim())? {
                    Verdict::Refused(reason) => Err(format!("durability refused: {reason}")),
                    Verdict::Granted(decision) => {
                        let request = PlacementRequest {
                            volume_name: claim.name.clone(),
                            bytes: claim.bytes,
                            scheme: decision.scheme,
                            snapshot_reserve: decision.snapshot_reserve,
                            preferred_zone: None,
                            preferred_node: None,
                        };
                        heketi::place(&request, &topology, &options).map(|layout| {
                            simulate::apply_layout(&mut topology, &layout, &|b| {
                                heketi::space_needed(b, decision.snapshot_reserve, &options)
                            });
                            simulate::layout_usable(&decision.scheme, &layout)
                        })
                    }
                };
                report.record(&claim.name, outcome);
            }
            report.measure(&topology, &|id| simulate::device_label(&snapshot, id));
            Some(report)
        } else {
            None
        };
        Ok((aplo, heketi))
    })?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "aplo": aplo,
                "aplo_usable_share": aplo.usable_share(),
                "heketi": heketi,
                "heketi_usable_share": heketi.as_ref().map(Report::usable_share),
            }))?
        );
    } else {
        print_report("aplo (the chosen policies)", &aplo);
        if let Some(heketi) = &heketi {
            if parameters.contains_key("quota") {
                println!("note: the heketi emulation has no quota; only aplo applied it");
            }
            print_report("heketi's allocator (emulated, same durability)", heketi);
            println!(
                "usable share: aplo {:.1} %, heketi {:.1} %",
                aplo.usable_share() * 100.0,
                heketi.usable_share() * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(title: &str, report: &Report) {
    println!("== {title}");
    println!(
        "claims: {} succeeded of {}",
        report.succeeded, report.claims
    );
    match &report.first_failure {
        Some((claim, reason)) => println!("first failure: {claim}: {reason}"),
        None => println!("first failure: none"),
    }
    println!(
        "usable: {} of {} raw ({:.1} %)",
        format_size(report.usable_bytes),
        format_size(report.raw_bytes),
        report.usable_share() * 100.0
    );
    let show = |what: &str, rows: &std::collections::BTreeMap<String, simulate::Used>| {
        println!("{what}:");
        if rows.len() > 40 {
            let shares: Vec<f64> = rows.values().map(simulate::Used::share).collect();
            let min = shares.iter().copied().fold(f64::INFINITY, f64::min);
            let max = shares.iter().copied().fold(0.0, f64::max);
            let mean = shares.iter().sum::<f64>() / shares.len() as f64;
            println!(
                "  {} of them: used {:.1} % min, {:.1} % mean, {:.1} % max",
                rows.len(),
                min * 100.0,
                mean * 100.0,
                max * 100.0
            );
            return;
        }
        for (name, used) in rows {
            println!(
                "  {name}: {} of {} ({:.1} %)",
                format_size(used.used),
                format_size(used.total),
                used.share() * 100.0
            );
        }
    };
    show("per zone", &report.zones);
    show("per node", &report.nodes);
    show("per device", &report.devices);
}
