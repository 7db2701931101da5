//! Checking a node request's fields before anything runs, and the gRPC
//! statuses of the errors below.

use std::collections::HashMap;

use tonic::Status;

use super::super::proto::VolumeCapability;
use super::super::proto::volume_capability::AccessType;
use crate::exec::command::ExecError;
use crate::exec::mount::MountError;

pub(super) fn invalid(e: MountError) -> Status {
    Status::invalid_argument(e.to_string())
}

pub(super) fn internal(e: ExecError) -> Status {
    Status::internal(e.to_string())
}

pub(super) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is missing")))
    } else {
        Ok(value)
    }
}

/// The capability's mount flags; a block capability is refused.
pub(super) fn mount_flags(capability: Option<&VolumeCapability>) -> Result<Vec<String>, Status> {
    let capability =
        capability.ok_or_else(|| Status::invalid_argument("volume_capability is missing"))?;
    match &capability.access_type {
        Some(AccessType::Mount(m)) => {
            if !(m.fs_type.is_empty() || m.fs_type == "glusterfs") {
                return Err(Status::invalid_argument(format!(
                    "fs_type '{}': aplo volumes are glusterfs",
                    m.fs_type.escape_default()
                )));
            }
            Ok(m.mount_flags.clone())
        }
        Some(AccessType::Block(_)) => Err(Status::invalid_argument(
            "block access is not offered: aplo volumes are glusterfs filesystems",
        )),
        None => Err(Status::invalid_argument(
            "volume_capability has no access type",
        )),
    }
}

/// The servers and volume from a PV's volume context (`hosts`, `volume`),
/// as aplo's PVs carry them.
pub(super) fn volume_source(
    context: &HashMap<String, String>,
) -> Result<(Vec<String>, String), Status> {
    let get = |key: &str| {
        context
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Status::invalid_argument(format!("volume_context has no '{key}'")))
    };
    let hosts: Vec<String> = get("hosts")?
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    Ok((hosts, get("volume")?.clone()))
}
