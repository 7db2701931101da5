//! The cluster and brick commands against a REST API, and what every
//! command there shares: each sends heketi's request, follows a queued
//! operation to its end, and prints the answer (the API's JSON with
//! `--json`, heketi-cli's layout otherwise).

use std::process::ExitCode;

use anyhow::bail;
use hyper::Method;

use super::http::{Api, Outcome, Reply};
use super::render;
use crate::cli::verbs::{BrickCommand, ClusterCommand};
use crate::http::heketi::{BrickEvictOptions, ClusterFlags, ClusterInfoResponse, ClusterList};

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
