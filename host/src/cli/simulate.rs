//! `aplo simulate`: play a workload of claims through the real policies
//! and the real engine, with the simulation driver (nothing runs, only the
//! model changes), and report what it amounts to. With
//! `--compare-heketi`, the same claims also go through an emulation of
//! heketi's allocator, with the same durability decisions. `--layouts`
//! shows where each claim's bricks went, `--by-tag KEY` usage per value of
//! a tag, and `--plot FILE` draws utilisation as an SVG bar chart.

mod plot;
mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Config;
use super::engine::runtime;
use super::storage::parse_params;
use crate::engine::{Engine, LoadOptions};
use crate::model::storage::{Backend, Snapshot};
use crate::model::topology::parse_topology;
use crate::model::{PlacementRequest, Verdict, parse_size};
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
    /// Also show where each claim's bricks went: per claim, its sets with
    /// node, device, role and size.
    #[arg(long)]
    layouts: bool,
    /// Also report usage grouped by the value of this tag (e.g. `rack`):
    /// a device's own tag, else its node's; devices without it are
    /// `(none)`.
    #[arg(long, value_name = "KEY")]
    by_tag: Option<String>,
    /// Write utilisation per zone, node and device (and tag value) as an
    /// SVG bar chart to FILE, heketi's beside aplo's with
    /// `--compare-heketi`.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
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
        let tag = args.by_tag.as_deref();
        let mut aplo = engine.play(&claims).await;
        if let Some(key) = tag {
            aplo.measure_tag(&engine.policy_topology(), key);
        }
        if args.layouts {
            aplo.layouts = simulate::claim_layouts(&engine.snapshot(), &claims, tag);
        }

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
                        heketi::place(&request, &topology, &options)
                            .map(|layout| {
                                simulate::apply_layout(&mut topology, &layout, &|b| {
                                    heketi::space_needed(b, decision.snapshot_reserve, &options)
                                });
                                if args.layouts {
                                    report.layouts.push(simulate::layout_places(
                                        &snapshot,
                                        &claim.name,
                                        &layout,
                                        tag,
                                    ));
                                }
                                simulate::layout_usable(&decision.scheme, &layout)
                            })
                            .map_err(|e| e.to_string())
                    }
                };
                report.record(&claim.name, outcome);
            }
            report.measure(&topology, &|id| simulate::device_label(&snapshot, id));
            if let Some(key) = tag {
                report.measure_tag(&topology, key);
            }
            Some(report)
        } else {
            None
        };
        Ok((aplo, heketi))
    })?;

    if let Some(path) = &args.plot {
        let mut sides = vec![("aplo", &aplo)];
        if let Some(heketi) = &heketi {
            sides.push(("heketi (emulated)", heketi));
        }
        std::fs::write(path, plot::svg(&sides))
            .with_context(|| format!("writing {}", path.display()))?;
    }
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
        let tag = args.by_tag.as_deref();
        if args.layouts {
            print::layouts("aplo (the chosen policies)", &aplo.layouts, tag);
            if let Some(heketi) = &heketi {
                print::layouts("heketi's allocator (emulated)", &heketi.layouts, tag);
            }
        }
        print::report("aplo (the chosen policies)", &aplo);
        if let Some(heketi) = &heketi {
            if parameters.contains_key("quota") {
                println!("note: the heketi emulation has no quota; only aplo applied it");
            }
            print::report("heketi's allocator (emulated, same durability)", heketi);
            println!(
                "usable share: aplo {:.1} %, heketi {:.1} %",
                aplo.usable_share() * 100.0,
                heketi.usable_share() * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
