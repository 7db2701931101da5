//! `aplo topology info` and `load` against a REST API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use hyper::Method;

use super::commands::{BACKEND_TAG, NO_BODY, body};
use super::http::Api;
use super::lookup::fetch_topology;
use super::render;
use crate::cli::verbs::TopologyCommand;
use crate::http::heketi::{
    ClusterFlags, ClusterInfoResponse, DeviceAddRequest, HostAddresses, NodeAddRequest,
    NodeInfoResponse,
};
use crate::model::storage::Backend;
use crate::model::topology::parse_topology;

/// `aplo topology …`.
pub async fn topology(api: &Api, command: TopologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopologyCommand::Info { json } => {
            let topology = fetch_topology(api).await?;
            if json {
                println!("{}", serde_json::to_string(&topology)?);
            } else {
                print!("{}", render::topology(&topology));
            }
            Ok(ExitCode::SUCCESS)
        }
        TopologyCommand::Load(load) => {
            let file = load.file()?;
            self::load(api, &file, load.backend).await
        }
    }
}

/// `aplo topology load` against a server: find or create each cluster,
/// add the nodes and devices that are missing.
async fn load(api: &Api, file: &Path, backend: Option<Backend>) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let spec = parse_topology(&text).with_context(|| format!("{}", file.display()))?;
    // heketi's API takes integer zones: check them all before changing
    // anything.
    let mut zones = BTreeMap::new();
    for (c, cluster) in spec.clusters.iter().enumerate() {
        for (n, node) in cluster.nodes.iter().enumerate() {
            let zone: i64 = node.zone.parse().map_err(|_| {
                anyhow!(
                    "{}: clusters[{c}].nodes[{n}].node.zone: '{}' is not a number (the REST API \
                     takes integer zones)",
                    file.display(),
                    node.zone
                )
            })?;
            zones.insert(node.manage.clone(), zone);
        }
    }
    let present = fetch_topology(api).await?;
    let known = |manage: &str| {
        present
            .clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .find(|n| n.hostnames.manage.iter().any(|h| h == manage))
    };
    let mut failures = 0usize;
    let mut created = Vec::new();
    for cluster in &spec.clusters {
        // The cluster of any of its nodes already there.
        let mut cluster_id = cluster
            .nodes
            .iter()
            .find_map(|n| known(&n.manage))
            .map(|n| n.cluster.clone());
        for node in &cluster.nodes {
            let (id, devices): (String, Vec<String>) = match known(&node.manage) {
                Some(found) => {
                    println!("\tFound node {} on cluster {}", node.manage, found.cluster);
                    (
                        found.id.clone(),
                        found.devices.iter().map(|d| d.name.clone()).collect(),
                    )
                }
                None => {
                    let cid = match &cluster_id {
                        Some(id) => id.clone(),
                        None => {
                            let outcome = api
                                .call(
                                    Method::POST,
                                    "/clusters",
                                    Some(&ClusterFlags {
                                        block: false,
                                        file: true,
                                    }),
                                    "creating a cluster",
                                )
                                .await?;
                            let info: ClusterInfoResponse =
                                body(outcome, "cluster create")?.json()?;
                            println!("Creating cluster ... ID: {}", info.id);
                            println!("\tAllowing file volumes on cluster.");
                            created.push(info.id.clone());
                            cluster_id = Some(info.id.clone());
                            info.id
                        }
                    };
                    let request = NodeAddRequest {
                        zone: zones[&node.manage],
                        hostnames: HostAddresses {
                            manage: vec![node.manage.clone()],
                            storage: vec![node.storage.clone()],
                        },
                        cluster: cid,
                        tags: node.tags.clone(),
                    };
                    let added = api
                        .call(
                            Method::POST,
                            "/nodes",
                            Some(&request),
                            &format!("adding node {}", node.manage),
                        )
                        .await
                        .and_then(|o| body(o, "node add")?.json::<NodeInfoResponse>());
                    match added {
                        Ok(info) => {
                            println!("\tCreating node {} ... ID: {}", node.manage, info.id);
                            (info.id, Vec::new())
                        }
                        Err(e) => {
                            println!(
                                "\tCreating node {} ... Unable to create node: {e:#}",
                                node.manage
                            );
                            failures += 1;
                            continue;
                        }
                    }
                }
            };
            for device in &node.devices {
                if devices.contains(&device.name) {
                    println!("\t\tFound device {}", device.name);
                    continue;
                }
                let mut tags = device.tags.clone();
                if let Some(backend) = backend {
                    tags.entry(BACKEND_TAG.to_owned())
                        .or_insert_with(|| backend.as_str().to_owned());
                }
                let request = DeviceAddRequest {
                    name: device.name.clone(),
                    tags,
                    node: id.clone(),
                    destroydata: device.destroy_data,
                };
                let added = api
                    .call(
                        Method::POST,
                        "/devices",
                        Some(&request),
                        &format!("adding device {} on {}", device.name, node.manage),
                    )
                    .await;
                match added {
                    Ok(_) => println!("\t\tAdding device {} ... OK", device.name),
                    Err(e) => {
                        println!(
                            "\t\tAdding device {} ... Unable to add device: {e:#}",
                            device.name
                        );
                        failures += 1;
                    }
                }
            }
        }
    }
    // A cluster created here that ended up empty goes away again.
    for id in created {
        let info: ClusterInfoResponse = api.get_json(&format!("/clusters/{id}")).await?;
        if info.nodes.is_empty() && info.volumes.is_empty() {
            api.call(
                Method::DELETE,
                &format!("/clusters/{id}"),
                NO_BODY,
                "deleting the empty cluster",
            )
            .await?;
            println!("Deleted the empty cluster {id}");
        }
    }
    if failures > 0 {
        eprintln!("aplo: {failures} node(s) or device(s) could not be added");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
