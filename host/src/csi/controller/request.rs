//! Reading a controller request: the access modes its capabilities ask
//! for, its capacity range, its class parameters and claim, and the zone
//! the scheduler prefers.

use std::collections::{BTreeMap, HashMap};

use tonic::Status;

use super::super::proto::volume_capability::AccessType;
use super::super::proto::volume_capability::access_mode::Mode;
use super::super::proto::{CapacityRange, TopologyRequirement, VolumeCapability};
use super::ZONE_KEY;
use crate::front::claim::{VolumeSource, parameter_options};
use crate::model::{AccessMode, Claim, format_size};

/// The prefix of the parameters external-provisioner adds or consumes
/// itself (secrets, `--extra-create-metadata`).
const SIDECAR_PREFIX: &str = "csi.storage.k8s.io/";
const PVC_NAME: &str = "csi.storage.k8s.io/pvc/name";
const PVC_NAMESPACE: &str = "csi.storage.k8s.io/pvc/namespace";

/// The access modes the capabilities ask for; a block capability or a
/// missing access mode is refused.
pub(super) fn access_modes(capabilities: &[VolumeCapability]) -> Result<Vec<AccessMode>, Status> {
    if capabilities.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities is empty"));
    }
    let mut modes = Vec::new();
    for (i, capability) in capabilities.iter().enumerate() {
        match &capability.access_type {
            Some(AccessType::Mount(m)) if m.fs_type.is_empty() || m.fs_type == "glusterfs" => {}
            Some(AccessType::Mount(m)) => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}]: fs_type '{}': aplo volumes are glusterfs",
                    m.fs_type.escape_default()
                )));
            }
            Some(AccessType::Block(_)) => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}]: block access is not offered: aplo volumes are glusterfs filesystems"
                )));
            }
            None => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}] has no access type"
                )));
            }
        }
        let mode = capability
            .access_mode
            .as_ref()
            .and_then(|m| Mode::try_from(m.mode).ok())
            .unwrap_or(Mode::Unknown);
        let mode = match mode {
            Mode::SingleNodeWriter | Mode::SingleNodeMultiWriter => AccessMode::ReadWriteOnce,
            Mode::SingleNodeSingleWriter => AccessMode::ReadWriteOncePod,
            Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly => AccessMode::ReadOnlyMany,
            Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter => AccessMode::ReadWriteMany,
            Mode::Unknown => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}] has no access mode"
                )));
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    Ok(modes)
}

/// The bytes a capacity range asks for: at least `required_bytes` (1 GiB
/// when nothing is asked), at most `limit_bytes` when set.
pub(super) fn wanted_bytes(range: Option<&CapacityRange>) -> Result<(u64, Option<u64>), Status> {
    let Some(range) = range else {
        return Ok((crate::model::GIB, None));
    };
    let required = u64::try_from(range.required_bytes)
        .map_err(|_| Status::invalid_argument("capacity_range.required_bytes is negative"))?;
    let limit = u64::try_from(range.limit_bytes)
        .map_err(|_| Status::invalid_argument("capacity_range.limit_bytes is negative"))?;
    let limit = (limit > 0).then_some(limit);
    if let Some(limit) = limit
        && required > limit
    {
        return Err(Status::out_of_range(format!(
            "capacity_range asks for at least {} but at most {}",
            format_size(required),
            format_size(limit)
        )));
    }
    let wanted = if required == 0 {
        limit.map_or(crate::model::GIB, |l| l.min(crate::model::GIB))
    } else {
        required
    };
    Ok((wanted, limit))
}

/// Whether a volume of `bytes` satisfies a capacity range.
pub(super) fn fits(bytes: u64, required: u64, limit: Option<u64>) -> bool {
    bytes >= required && limit.is_none_or(|l| bytes <= l)
}

pub(super) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is missing")))
    } else {
        Ok(value)
    }
}

/// The request's policy parameters and the claim its sidecar metadata
/// names.
pub(super) fn policy_request(
    name: &str,
    parameters: &HashMap<String, String>,
    bytes: u64,
    modes: Vec<AccessMode>,
) -> Result<(crate::model::Pairs, Claim, (u32, u32)), Status> {
    let class: BTreeMap<String, String> = parameters
        .iter()
        .filter(|(k, _)| !k.starts_with(SIDECAR_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let options = parameter_options(class).map_err(|e| Status::invalid_argument(e.to_string()))?;
    if options.source != VolumeSource::Csi {
        return Err(Status::invalid_argument(
            "volumeSource 'glusterfs' (the legacy in-tree source) is only made by aplo's own \
             provisioner; the CSI controller makes CSI volumes",
        ));
    }
    let claim = Claim {
        namespace: parameters.get(PVC_NAMESPACE).cloned().unwrap_or_default(),
        name: parameters
            .get(PVC_NAME)
            .cloned()
            .unwrap_or_else(|| name.to_owned()),
        labels: Default::default(),
        annotations: Default::default(),
        requested_bytes: bytes,
        access_modes: modes,
    };
    Ok((options.policy_parameters, claim, options.gid_range))
}

/// The zone the scheduler prefers, from the first preferred (else
/// requisite) topology naming one.
pub(super) fn preferred_zone(requirements: Option<&TopologyRequirement>) -> Option<String> {
    let requirements = requirements?;
    requirements
        .preferred
        .iter()
        .chain(&requirements.requisite)
        .find_map(|t| t.segments.get(ZONE_KEY).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_ranges_are_checked() {
        let range = |required, limit| CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        };
        let gib = crate::model::GIB as i64;
        assert_eq!(
            wanted_bytes(Some(&range(gib, 2 * gib))).unwrap(),
            (crate::model::GIB, Some(2 * crate::model::GIB))
        );
        assert_eq!(wanted_bytes(None).unwrap(), (crate::model::GIB, None));
        assert_eq!(
            wanted_bytes(Some(&range(2 * gib, gib))).unwrap_err().code(),
            tonic::Code::OutOfRange
        );
        assert_eq!(
            wanted_bytes(Some(&range(-1, 0))).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(fits(2 * crate::model::GIB, crate::model::GIB, None));
        assert!(!fits(
            2 * crate::model::GIB,
            crate::model::GIB,
            Some(crate::model::GIB)
        ));
    }
}
