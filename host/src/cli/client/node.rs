//! The node and device commands against a REST API: add, show, list,
//! change the state of, delete and tag them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use hyper::Method;

use super::commands::{BACKEND_TAG, NO_BODY, body, print_body};
use super::http::Api;
use super::lookup::{device_id, node_id};
use super::render;
use super::tags::{send_tags, tags_change};
use crate::cli::verbs::{DeviceCommand, NodeCommand, device_and_state};
use crate::http::heketi::{
    ClusterInfoResponse, ClusterList, DeviceAddRequest, DeviceInfoResponse, HostAddresses,
    NodeAddRequest, NodeInfoResponse, StateRequest,
};

/// Set a node's or device's state; `kind` is `nodes` or `devices`.
async fn set_state(api: &Api, kind: &str, id: &str, state: &str) -> anyhow::Result<()> {
    api.call(
        Method::POST,
        &format!("/{kind}/{id}/state"),
        Some(&StateRequest {
            state: state.to_owned(),
            ..StateRequest::default()
        }),
        &format!("setting the state to {state}"),
    )
    .await?;
    Ok(())
}

/// Tell the state change as heketi-cli does.
fn state_done(state: &str) -> &'static str {
    match state {
        "online" => "now online",
        "offline" => "now offline",
        _ => "now removed (failed; its bricks moved away)",
    }
}

/// `aplo node …`.
pub async fn node(api: &Api, json: bool, command: NodeCommand) -> anyhow::Result<ExitCode> {
    match command {
        NodeCommand::Add {
            zone,
            cluster,
            management_host_name,
            storage_host_name,
        } => {
            let request = NodeAddRequest {
                zone,
                hostnames: HostAddresses {
                    manage: vec![management_host_name.clone()],
                    storage: vec![storage_host_name],
                },
                cluster,
                tags: BTreeMap::new(),
            };
            let outcome = api
                .call(
                    Method::POST,
                    "/nodes",
                    Some(&request),
                    &format!("adding node {management_host_name}"),
                )
                .await?;
            let reply = body(outcome, "node add")?;
            if json {
                print_body(&reply);
            } else {
                println!("Node information:");
                print!("{}", render::node(&reply.json()?));
            }
        }
        NodeCommand::Info { node } => {
            let id = node_id(api, &node).await?;
            let reply = api.get(&format!("/nodes/{id}")).await?;
            if json {
                print_body(&reply);
            } else {
                print!("{}", render::node(&reply.json()?));
            }
        }
        NodeCommand::List => {
            let list: ClusterList = api.get_json("/clusters").await?;
            let mut rows = Vec::new();
            for cluster in list.clusters {
                let info: ClusterInfoResponse =
                    api.get_json(&format!("/clusters/{cluster}")).await?;
                rows.extend(info.nodes.into_iter().map(|n| (n, cluster.clone())));
            }
            if json {
                let nodes: Vec<_> = rows
                    .iter()
                    .map(|(id, cluster)| serde_json::json!({"id": id, "cluster": cluster}))
                    .collect();
                println!("{}", serde_json::json!({ "nodes": nodes }));
            } else {
                for (id, cluster) in rows {
                    println!("Id:{id}\tCluster:{cluster}");
                }
            }
        }
        NodeCommand::Enable { node } => node_state(api, &node, "online").await?,
        NodeCommand::Disable { node } => node_state(api, &node, "offline").await?,
        NodeCommand::Remove { node } => node_state(api, &node, "failed").await?,
        NodeCommand::State { node, state } => node_state(api, &node, state.name()).await?,
        NodeCommand::Delete { node } => {
            let id = node_id(api, &node).await?;
            api.call(
                Method::DELETE,
                &format!("/nodes/{id}"),
                NO_BODY,
                "deleting the node",
            )
            .await?;
            println!("Node {id} deleted");
        }
        NodeCommand::Settags { node, tags } => {
            let id = node_id(api, &node).await?;
            let change = tags_change(Some((&tags.tags, tags.exact)), None)?;
            send_tags(api, "nodes", &id, &change, "setting tags").await?;
            println!("Node {id}: tags set");
        }
        NodeCommand::Rmtags { node, tags, all } => {
            let id = node_id(api, &node).await?;
            let change = tags_change(None, Some((&tags, all)))?;
            send_tags(api, "nodes", &id, &change, "removing tags").await?;
            println!("Node {id}: tags removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn node_state(api: &Api, node: &str, state: &str) -> anyhow::Result<()> {
    let id = node_id(api, node).await?;
    set_state(api, "nodes", &id, state).await?;
    println!("Node {id} is {}", state_done(state));
    Ok(())
}

async fn device_state(api: &Api, device: &[String], state: &str) -> anyhow::Result<()> {
    let id = device_id(api, device).await?;
    set_state(api, "devices", &id, state).await?;
    println!("Device {id} is {}", state_done(state));
    Ok(())
}

/// `aplo device …`.
pub async fn device(api: &Api, json: bool, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Add(mut add) => {
            let (node, name) = add.node_and_name()?;
            let node = node_id(api, &node).await?;
            let mut tags = BTreeMap::new();
            if let Some(backend) = add.backend {
                tags.insert(BACKEND_TAG.to_owned(), backend.as_str().to_owned());
            }
            let request = DeviceAddRequest {
                name: name.clone(),
                tags,
                node: node.clone(),
                destroydata: add.destroy_data,
            };
            api.call(
                Method::POST,
                "/devices",
                Some(&request),
                &format!("adding device {name}"),
            )
            .await?;
            // heketi answers without the device: find it on its node.
            let info: NodeInfoResponse = api.get_json(&format!("/nodes/{node}")).await?;
            let device = info.devices.iter().find(|d| d.name == name);
            match (json, device) {
                (true, Some(d)) => println!("{}", serde_json::to_string(d)?),
                (false, Some(d)) => println!("Device added successfully: {} (id {})", d.name, d.id),
                (_, None) => println!("Device added successfully"),
            }
        }
        DeviceCommand::Info { device } => {
            let id = device_id(api, &device).await?;
            let reply = api.get(&format!("/devices/{id}")).await?;
            if json {
                print_body(&reply);
            } else {
                print!("{}", render::device(&reply.json::<DeviceInfoResponse>()?));
            }
        }
        DeviceCommand::Enable { device } => device_state(api, &device, "online").await?,
        DeviceCommand::Disable { device } => device_state(api, &device, "offline").await?,
        DeviceCommand::Remove { device } => device_state(api, &device, "failed").await?,
        DeviceCommand::State { args } => {
            let (device, state) = device_and_state(args)?;
            device_state(api, &device, state.name()).await?;
        }
        DeviceCommand::Delete { device } => {
            let id = device_id(api, &device).await?;
            api.call(
                Method::DELETE,
                &format!("/devices/{id}"),
                NO_BODY,
                "deleting the device",
            )
            .await?;
            println!("Device {id} deleted");
        }
        DeviceCommand::Resync { device } => {
            let id = device_id(api, &device).await?;
            api.call(
                Method::GET,
                &format!("/devices/{id}/resync"),
                NO_BODY,
                "resyncing the device",
            )
            .await?;
            println!("Device {id} updated");
        }
        DeviceCommand::Settags { device, tags } => {
            let id = device_id(api, &[device]).await?;
            let change = tags_change(Some((&tags.tags, tags.exact)), None)?;
            send_tags(api, "devices", &id, &change, "setting tags").await?;
            println!("Device {id}: tags set");
        }
        DeviceCommand::Rmtags { device, tags, all } => {
            let id = device_id(api, &[device]).await?;
            let change = tags_change(None, Some((&tags, all)))?;
            send_tags(api, "devices", &id, &change, "removing tags").await?;
            println!("Device {id}: tags removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
