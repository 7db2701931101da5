//! `aplo topology load|info` on the local store.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::super::Config;
use super::super::engine::runtime;
use super::super::verbs::TopologyCommand;
use super::started;
use crate::engine::LoadOptions;
use crate::model::format_size;
use crate::model::storage::Backend;
use crate::model::topology::parse_topology;

/// `aplo topology …`.
pub fn topology(config: &Config, command: TopologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopologyCommand::Load(load) => {
            let file = load.file()?;
            load_file(config, &file, load.backend.unwrap_or(Backend::LvmThin))
        }
        TopologyCommand::Info { json } => show(config, json),
    }
}

/// Load a topology file, devices without a `backend` tag on `backend`.
fn load_file(config: &Config, file: &Path, backend: Backend) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let spec = parse_topology(&text).with_context(|| format!("{}", file.display()))?;
    runtime()?.block_on(async {
        let engine = started(config).await?;
        let report = engine.load_topology(&spec, LoadOptions { backend }).await?;
        println!(
            "clusters added: {}; nodes added: {}, already present: {}; devices added: {}, already present: {}",
            report.clusters_added,
            report.nodes_added.len(),
            report.nodes_present.len(),
            report.devices_added.len(),
            report.devices_present.len()
        );
        for failure in &report.failures {
            println!("not loaded: {failure}");
        }
        Ok(if report.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Show clusters, nodes and devices with their usage.
fn show(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let engine = config.open_engine()?;
    let snapshot = engine.snapshot();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot.policy_topology())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let usage = snapshot.device_usage();
    for cluster in snapshot.clusters.values() {
        println!("cluster {}", cluster.id);
        for node in snapshot.nodes.values().filter(|n| n.cluster == cluster.id) {
            println!(
                "  node {} (storage {}, zone {}, {:?})",
                node.manage, node.storage, node.zone, node.state
            );
            for d in snapshot.devices.values().filter(|d| d.node == node.id) {
                let (used, bricks) = usage.get(&d.id).copied().unwrap_or_default();
                println!(
                    "    device {} [{}] {:?}: {} used of {}, {bricks} brick(s)",
                    d.name,
                    d.backend,
                    d.state,
                    format_size(used),
                    format_size(d.total_bytes)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
