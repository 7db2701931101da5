//! `aplo volume …` against a REST API.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use hyper::Method;

use super::commands::{NO_BODY, body, print_body};
use super::http::{Api, Reply};
use super::lookup::volume_id;
use super::render;
use crate::cli::storage::parse_params;
use crate::cli::verbs::{DurabilityArg, HeketiVolumeArgs, VolumeCommand};
use crate::http::heketi::{
    Durability, SnapshotSettings, VolumeCreateRequest, VolumeExpandRequest, VolumeInfoResponse,
    VolumeList,
};
use crate::model::GIB;

/// A size in whole GiB: a bare number is GiB (heketi-cli), a size with a
/// unit must come to whole GiB.
fn gib(flag: &str, text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let bytes = crate::cli::storage::volume_size(flag, text)?;
    if !bytes.is_multiple_of(GIB) {
        bail!("{flag} {text}: the REST API takes whole GiB (e.g. 10 or 10Gi)");
    }
    let gib = bytes / GIB;
    if gib == 0 {
        bail!("{flag} {text}: must be at least 1 GiB");
    }
    i64::try_from(gib).map_err(|_| anyhow!("{flag} {text}: too large"))
}

/// A finished volume operation's result, printed.
fn print_volume(reply: &Reply, json: bool) -> anyhow::Result<()> {
    if json {
        print_body(reply);
    } else {
        print!("{}", render::volume(&reply.json()?));
    }
    Ok(())
}

/// `aplo volume create`'s request from heketi-cli's flags.
fn create_request(
    size: &str,
    name: Option<String>,
    heketi: HeketiVolumeArgs,
) -> anyhow::Result<VolumeCreateRequest> {
    let HeketiVolumeArgs {
        durability,
        replica,
        disperse_data,
        redundancy,
        gid,
        snapshot_factor,
        clusters,
        gluster_volume_options: options,
    } = heketi;
    let mut d = Durability::default();
    // heketi-cli sends replicate, replica 3, unless told otherwise (the
    // server reads a missing type as `none`).
    let durability = durability.unwrap_or(DurabilityArg::Replicate);
    d.kind = match durability {
        DurabilityArg::None => "none",
        DurabilityArg::Replicate => "replicate",
        DurabilityArg::Disperse => "disperse",
    }
    .into();
    if (disperse_data.is_some() || redundancy.is_some()) && durability != DurabilityArg::Disperse {
        bail!("--disperse-data and --redundancy go with --durability disperse");
    }
    if replica.is_some() && durability != DurabilityArg::Replicate {
        bail!("--replica goes with --durability replicate");
    }
    if durability == DurabilityArg::Replicate {
        d.replicate.replica = replica.unwrap_or(3);
    }
    if let Some(n) = disperse_data {
        d.disperse.data = n;
    }
    if let Some(n) = redundancy {
        d.disperse.redundancy = n;
    }
    let snapshot = match snapshot_factor {
        Some(f) if f < 1.0 => bail!("--snapshot-factor {f}: must be at least 1"),
        Some(f) if f > 1.0 => SnapshotSettings {
            enable: true,
            factor: f,
        },
        _ => SnapshotSettings::default(),
    };
    let list = |text: Option<String>| -> Vec<String> {
        text.map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    };
    Ok(VolumeCreateRequest {
        size: gib("--size", size)?,
        clusters: list(clusters),
        name: name.unwrap_or_default(),
        durability: d,
        gid: gid.unwrap_or(0),
        glustervolumeoptions: list(options),
        block: false,
        snapshot,
        parameters: Default::default(),
    })
}

/// `aplo volume …`.
pub async fn volume(api: &Api, json: bool, command: VolumeCommand) -> anyhow::Result<ExitCode> {
    match command {
        VolumeCommand::Create {
            size,
            name,
            heketi,
            params,
        } => {
            let mut request = create_request(&size, name, heketi)?;
            // aplo's extension of heketi's request.
            request.parameters = parse_params(&params)?;
            let outcome = api
                .call(
                    Method::POST,
                    "/volumes",
                    Some(&request),
                    "creating the volume",
                )
                .await?;
            print_volume(&body(outcome, "volume create")?, json)?;
        }
        VolumeCommand::Expand(expand) => {
            let id = volume_id(api, &expand.volume()?).await?;
            let expand_size = match (expand.expand_size, expand.size) {
                (Some(0), _) => bail!("--expand-size: must be at least 1 (GiB)"),
                (Some(n), _) => {
                    i64::try_from(n).map_err(|_| anyhow!("--expand-size: too large"))?
                }
                (None, Some(total)) => {
                    let to = gib("--size", &total)?;
                    let now: VolumeInfoResponse = api.get_json(&format!("/volumes/{id}")).await?;
                    if to <= now.size {
                        bail!(
                            "--size {total}: volume {} already has {} GiB; a volume only grows",
                            now.name,
                            now.size
                        );
                    }
                    to - now.size
                }
                (None, None) => bail!("give --expand-size GIB or --size NEW-TOTAL"),
            };
            let outcome = api
                .call(
                    Method::POST,
                    &format!("/volumes/{id}/expand"),
                    Some(&VolumeExpandRequest { expand_size }),
                    "expanding the volume",
                )
                .await?;
            print_volume(&body(outcome, "volume expand")?, json)?;
        }
        VolumeCommand::Delete { volume } => {
            let id = volume_id(api, &volume).await?;
            api.call(
                Method::DELETE,
                &format!("/volumes/{id}"),
                NO_BODY,
                "deleting the volume",
            )
            .await?;
            println!("Volume {id} deleted");
        }
        VolumeCommand::List => {
            let reply = api.get("/volumes").await?;
            if json {
                print_body(&reply);
            } else {
                let list: VolumeList = reply.json()?;
                for id in list.volumes {
                    let v: VolumeInfoResponse = api.get_json(&format!("/volumes/{id}")).await?;
                    println!("{}", render::volume_line(&v));
                }
            }
        }
        VolumeCommand::Info { volume } => {
            let id = volume_id(api, &volume).await?;
            print_volume(&api.get(&format!("/volumes/{id}")).await?, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_gib_as_heketi_takes_them() {
        assert_eq!(gib("--size", "10").unwrap(), 10);
        assert_eq!(gib("--size", "2Gi").unwrap(), 2);
        assert_eq!(gib("--size", "1Ti").unwrap(), 1024);
        let half = gib("--size", "512Mi").unwrap_err().to_string();
        assert!(half.contains("whole GiB"), "{half}");
        assert!(gib("--size", "0").is_err());
        assert!(gib("--size", "ten").is_err());
    }

    #[test]
    fn create_flags_become_heketis_request() {
        let r = create_request(
            "5",
            Some("db".into()),
            HeketiVolumeArgs {
                durability: Some(DurabilityArg::Disperse),
                disperse_data: Some(8),
                redundancy: Some(3),
                gid: Some(2000),
                snapshot_factor: Some(1.5),
                clusters: Some("a,b".into()),
                gluster_volume_options: Some(
                    "performance.rda-cache-limit 10MB, nfs.disable on".into(),
                ),
                ..HeketiVolumeArgs::default()
            },
        )
        .unwrap();
        let body = serde_json::to_value(&r).unwrap();
        assert_eq!(body["size"], 5);
        assert_eq!(body["durability"]["type"], "disperse");
        assert_eq!(body["durability"]["disperse"]["data"], 8);
        assert_eq!(body["durability"]["disperse"]["redundancy"], 3);
        assert_eq!(body["gid"], 2000);
        assert_eq!(body["snapshot"]["enable"], true);
        assert_eq!(body["clusters"], serde_json::json!(["a", "b"]));
        assert_eq!(body["glustervolumeoptions"][1], "nfs.disable on");
        // The smallest request is heketi-cli's default, replica 3.
        let plain = create_request("1", None, HeketiVolumeArgs::default()).unwrap();
        assert_eq!(plain.durability.kind, "replicate");
        assert_eq!(plain.durability.replicate.replica, 3);
        assert!(!plain.snapshot.enable);
        // `--replica` alone is replicate, as heketi-cli sends it.
        let replica = create_request(
            "1",
            None,
            HeketiVolumeArgs {
                replica: Some(2),
                ..HeketiVolumeArgs::default()
            },
        )
        .unwrap();
        assert_eq!(replica.durability.kind, "replicate");
        assert_eq!(replica.durability.replicate.replica, 2);
        // Flags that do not go together.
        let err = create_request(
            "1",
            None,
            HeketiVolumeArgs {
                disperse_data: Some(4),
                ..HeketiVolumeArgs::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--durability disperse"), "{err}");
    }
}
