//! `aplo volume …` on the local store: create, expand, delete, list and
//! show volumes. heketi-cli's flags that only a server takes are refused
//! with the local spelling to use instead.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::super::Config;
use super::super::engine::runtime;
use super::super::verbs::VolumeCommand;
use super::{parse_params, size, started};
use crate::engine::CreateRequest;
use crate::model::format_size;

/// `aplo volume …`; `json`: print the store's records.
pub fn volume(config: &Config, json: bool, command: VolumeCommand) -> anyhow::Result<ExitCode> {
    match command {
        VolumeCommand::List => list(config, json),
        VolumeCommand::Info { volume } => info(config, &volume, json),
        VolumeCommand::Create {
            size,
            name,
            heketi,
            params,
        } => {
            if let Some(flag) = heketi.first_given() {
                bail!(
                    "{flag} needs a server (--server or APLO_SERVER); with the local store, \
                     choose with --param (e.g. --param classes.class=replica2)"
                );
            }
            create(config, size, name, params)
        }
        VolumeCommand::Expand(expand) => {
            if expand.expand_size.is_some() {
                bail!(
                    "--expand-size needs a server; with the local store give the new total with --size"
                );
            }
            let volume = expand.volume()?;
            expand_to(config, volume, expand.size.context("give --size")?)
        }
        VolumeCommand::Delete { volume } => delete(config, volume),
    }
}

/// List volumes.
fn list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let engine = config.open_engine()?;
    let volumes = engine.volumes();
    if json {
        println!("{}", serde_json::to_string_pretty(&volumes)?);
    } else {
        for v in volumes {
            println!(
                "{}  {}  {}  {:?}  {}",
                v.id,
                v.name,
                format_size(v.bytes),
                v.state,
                crate::model::validate::describe(&v.scheme)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Show a volume and its bricks.
fn info(config: &Config, volume: &str, json: bool) -> anyhow::Result<ExitCode> {
    let engine = config.open_engine()?;
    let (volume, bricks) = engine.volume(volume)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "volume": volume,
                "bricks": bricks,
            }))?
        );
    } else {
        let snapshot = engine.snapshot();
        println!(
            "volume {} ({}): {} usable, {}, {:?}",
            volume.name,
            volume.id,
            format_size(volume.bytes),
            crate::model::validate::describe(&volume.scheme),
            volume.state
        );
        for b in bricks {
            let host = snapshot
                .nodes
                .get(&b.node)
                .map_or("?", |n| n.storage.as_str());
            println!(
                "  set {} brick {} {:?} {} on {host}:{}",
                b.set,
                b.id,
                b.role,
                format_size(b.bytes),
                b.path
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Create a volume through the class's policies.
fn create(
    config: &Config,
    text: String,
    name: Option<String>,
    params: Vec<String>,
) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        let volume = engine
            .create_volume(CreateRequest {
                name,
                bytes: size(&text)?,
                parameters: parse_params(&params)?,
                ..CreateRequest::default()
            })
            .await?;
        println!(
            "volume {} created: {} usable, {}",
            volume.name,
            format_size(volume.bytes),
            crate::model::validate::describe(&volume.scheme)
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Grow a volume to a new usable size.
fn expand_to(config: &Config, volume: String, text: String) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        let volume = engine.expand_volume(&volume, size(&text)?).await?;
        println!(
            "volume {} now has {} usable",
            volume.name,
            format_size(volume.bytes)
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Delete a volume and its bricks.
fn delete(config: &Config, volume: String) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = started(config).await?;
        engine.delete_volume(&volume).await?;
        println!("volume {volume} deleted");
        Ok(ExitCode::SUCCESS)
    })
}
