//! The cluster, node and device commands against a REST API: each sends
//! heketi's request, follows a queued operation to its end, and prints the
//! answer (the API's JSON with `--json`, heketi-cli's layout otherwise).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use hyper::Method;

use super::http::{Api, Outcome, Reply};
use super::lookup::{device_id, node_id};
use super::render;
use crate::cli::verbs::{
    BrickCommand, ClusterCommand, DeviceCommand, NodeCommand, device_and_state,
};
use crate::http::heketi::{
    BrickEvictOptions, ClusterFlags, ClusterInfoResponse, ClusterList, DeviceAddRequest,
    DeviceInfoResponse, HostAddresses, NodeAddRequest, NodeInfoResponse, StateRequest,
    TagsChangeRequest,
};

/// The tag that names a device's brick backend.
pub const BACKEND_TAG: &str = "backend";

/// An empty body, for requests without one.
pub const NO_BODY: Option<&()> = None;

/// Print a body as the server sent it.
pub fn print_body(reply: &Reply) {
    let text = String::from_utf8_lossy(&reply.body);
    println!("{}", text.trim_end());
}

/// The body of a finished operation that must have one.
pub fn body(outcome: Outcome, what: &str) -> anyhow::Result<Reply> {
    match outcome {
        Outcome::Body(reply) => Ok(reply),
        Outcome::Done => bail!("{what}: the server answered without the result"),
    }
}

/// Why a tag change cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// A tag to set that is not `name:value`.
    #[error("'{0}' is not name:value")]
    NotNameValue(String),
    /// `rmtags` with no tag named and without `--all`.
    #[error("name the tags to remove, or give --all")]
    NoneNamed,
}

/// `name:value` words as tags.
fn tags_of(words: &[String]) -> Result<BTreeMap<String, String>, TagError> {
    words
        .iter()
        .map(|w| {
            w.split_once(':')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| TagError::NotNameValue(w.clone()))
        })
        .collect()
}

/// The tag change of `settags` (`exact`: replace) or `rmtags` (`all`:
/// every tag).
fn tags_change(
    set: Option<(&[String], bool)>,
    rm: Option<(&[String], bool)>,
) -> Result<TagsChangeRequest, TagError> {
    Ok(match (set, rm) {
        (Some((words, exact)), _) => TagsChangeRequest {
            tags: tags_of(words)?,
            change_type: if exact { "set" } else { "update" }.to_owned(),
        },
        (None, Some((_, true))) => TagsChangeRequest {
            tags: BTreeMap::new(),
            change_type: "set".to_owned(),
        },
        (None, Some((words, false))) => {
            if words.is_empty() {
                return Err(TagError::NoneNamed);
            }
            TagsChangeRequest {
                tags: words
                    .iter()
                    .map(|w| {
                        let name = w.split_once(':').map_or(w.as_str(), |(k, _)| k);
                        (name.to_owned(), String::new())
                    })
                    .collect(),
                change_type: "delete".to_owned(),
            }
        }
        (None, None) => unreachable!("one of set or rm"),
    })
}

/// Send a tag change to a node or device (`kind`: `nodes` or `devices`);
/// `doing` says what it does.
async fn send_tags(
    api: &Api,
    kind: &str,
    id: &str,
    change: &TagsChangeRequest,
    doing: &str,
) -> anyhow::Result<()> {
    api.call(
        Method::POST,
        &format!("/{kind}/{id}/tags"),
        Some(change),
        doing,
    )
    .await?;
    Ok(())
}

/// `aplo cluster …`.
pub async fn cluster(api: &Api, json: bool, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Create { block, file } => {
            let outcome = api
                .call(
                    Method::POST,
                    "/clusters",
                    Some(&ClusterFlags { block, file }),
                    "creating the cluster",
                )
                .await?;
            let reply = body(outcome, "cluster create")?;
            if json {
                print_body(&reply);
            } else {
                let info: ClusterInfoResponse = reply.json()?;
                println!("Cluster id: {}", info.id);
            }
        }
        ClusterCommand::Delete { id } => {
            api.call(
                Method::DELETE,
                &format!("/clusters/{id}"),
                NO_BODY,
                "deleting the cluster",
            )
            .await?;
            println!("Cluster {id} deleted");
        }
        ClusterCommand::Info { id } => {
            let reply = api.get(&format!("/clusters/{id}")).await?;
            if json {
                print_body(&reply);
            } else {
                print!("{}", render::cluster(&reply.json()?));
            }
        }
        ClusterCommand::List => {
            let reply = api.get("/clusters").await?;
            if json {
                print_body(&reply);
            } else {
                let list: ClusterList = reply.json()?;
                println!("Clusters:");
                for id in list.clusters {
                    let info: ClusterInfoResponse =
                        api.get_json(&format!("/clusters/{id}")).await?;
                    println!("{}", render::cluster_line(&info));
                }
            }
        }
        ClusterCommand::Setflags { id, block, file } => {
            if block.is_none() && file.is_none() {
                bail!("give --block=true|false, --file=true|false or both");
            }
            let info: ClusterInfoResponse = api.get_json(&format!("/clusters/{id}")).await?;
            let flags = ClusterFlags {
                block: block.unwrap_or(info.block),
                file: file.unwrap_or(info.file),
            };
            api.call(
                Method::POST,
                &format!("/clusters/{id}/flags"),
                Some(&flags),
                "setting the cluster's flags",
            )
            .await?;
            println!(
                "Cluster {id}: file volumes {}, block volumes {}",
                if flags.file { "allowed" } else { "not allowed" },
                if flags.block {
                    "allowed"
                } else {
                    "not allowed"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

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

/// `aplo brick …`.
pub async fn brick(api: &Api, command: BrickCommand) -> anyhow::Result<ExitCode> {
    match command {
        BrickCommand::Evict { brick } => {
            api.call(
                Method::POST,
                &format!("/bricks/to-evict/{brick}"),
                Some(&BrickEvictOptions::default()),
                &format!("evicting brick {brick}"),
            )
            .await?;
            println!("Brick {brick} evicted");
        }
    }
    Ok(ExitCode::SUCCESS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_changes_follow_heketi() {
        let words = vec!["rack:r1".to_owned(), "ssd:yes".to_owned()];
        let set = tags_change(Some((&words, false)), None).unwrap();
        assert_eq!(set.change_type, "update");
        assert_eq!(set.tags["rack"], "r1");
        assert_eq!(
            tags_change(Some((&words, true)), None).unwrap().change_type,
            "set"
        );
        let rm = tags_change(None, Some((&words, false))).unwrap();
        assert_eq!(rm.change_type, "delete");
        assert!(rm.tags.contains_key("ssd"));
        let all = tags_change(None, Some((&[], true))).unwrap();
        assert_eq!((all.change_type.as_str(), all.tags.len()), ("set", 0));
        let bad = tags_change(Some((&["bad".to_owned()], false)), None).unwrap_err();
        assert_eq!(bad.to_string(), "'bad' is not name:value");
        let none = tags_change(None, Some((&[], false))).unwrap_err();
        assert_eq!(none.to_string(), "name the tags to remove, or give --all");
    }
}
