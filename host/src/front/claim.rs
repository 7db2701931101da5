//! What a claim asks for and the PersistentVolume that answers it: pure
//! functions over Kubernetes objects, no I/O.

mod class;
mod pv;
mod quantity;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

pub use class::{
    ClassError, ClassOptions, DEFAULT_GID_RANGE, VolumeSource, class_options, parameter_options,
};
pub use pv::{Backend, build_pv, pv_bytes};
pub use quantity::{QuantityError, QuantityProblem, parse_quantity, quantity};

use crate::model::{AccessMode, Claim, Pairs};

/// The provisioner name aplo answers to unless configured otherwise. It is
/// also the CSI driver name in the volumes it provisions.
pub const DEFAULT_PROVISIONER: &str = "glusterfs.aplo.dev";
/// The claim annotation naming the provisioner that should provision it.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The older spelling of [`ANN_STORAGE_PROVISIONER`].
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The node the scheduler chose, for `WaitForFirstConsumer` classes.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The PV annotation naming the provisioner that made it.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The finalizer that keeps a PV until its backend volume is deleted (the
/// same name external-provisioner uses, so tools recognise it).
pub const FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// The node label a zone preference is read from.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The PV annotation kubelet reads to add a supplemental group to the pods
/// that use the volume (any volume type, CSI too).
pub const ANN_GID: &str = "pv.beta.kubernetes.io/gid";

/// What a claim (or a PV) asks for that aplo cannot read or give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// No `spec.resources.requests.storage`.
    #[error("the claim requests no storage (spec.resources.requests.storage)")]
    NoStorage,
    /// A size that is not a quantity.
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    /// A request of zero bytes.
    #[error("the claim requests zero bytes of storage")]
    ZeroBytes,
    /// A claim selector.
    #[error(
        "the claim has a selector; aplo cannot provision for a claim selector (remove spec.selector)"
    )]
    Selector,
    /// A data source (a clone or a snapshot's restore).
    #[error(
        "the claim asks for data from {kind} '{name}'; aplo cannot clone or restore volumes yet"
    )]
    DataSource {
        /// The source's kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// `volumeMode: Block`.
    #[error("the claim asks for volumeMode Block; GlusterFS volumes are Filesystem only")]
    Block,
    /// No access modes.
    #[error("the claim lists no access modes")]
    NoAccessModes,
    /// An access mode Kubernetes does not define.
    #[error("unknown access mode '{0}'")]
    AccessMode(String),
    /// A PV without `spec.capacity.storage`.
    #[error("the PV has no storage capacity")]
    NoCapacity,
}

/// The PV (and gluster volume) name for a claim: `pvc-<uid>`, so that a
/// retry or a restart can never make a second volume for the same claim.
pub fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// The claim uid a PV or volume name encodes, if it has that form.
pub fn claim_uid_of(volume_name: &str) -> Option<&str> {
    volume_name
        .strip_prefix("pvc-")
        .filter(|uid| !uid.is_empty())
}

/// The provisioner a claim asks for, from its annotations.
pub fn provisioner_of(claim: &PersistentVolumeClaim) -> Option<&str> {
    let annotations = claim.metadata.annotations.as_ref()?;
    annotations
        .get(ANN_STORAGE_PROVISIONER)
        .or_else(|| annotations.get(ANN_BETA_STORAGE_PROVISIONER))
        .map(String::as_str)
}

/// A pending claim, checked: what to ask the engine for.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionRequest {
    /// The claim as the policies see it.
    pub claim: Claim,
    /// The node chosen by the scheduler (`WaitForFirstConsumer`).
    pub selected_node: Option<String>,
}

/// The bytes a claim requests.
pub fn requested_bytes(claim: &PersistentVolumeClaim) -> Result<u64, ClaimError> {
    let storage = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .ok_or(ClaimError::NoStorage)?;
    let bytes = parse_quantity(&storage.0)?;
    if bytes == 0 {
        return Err(ClaimError::ZeroBytes);
    }
    Ok(bytes)
}

fn access_mode(mode: &str) -> Result<AccessMode, ClaimError> {
    Ok(match mode {
        "ReadWriteOnce" => AccessMode::ReadWriteOnce,
        "ReadOnlyMany" => AccessMode::ReadOnlyMany,
        "ReadWriteMany" => AccessMode::ReadWriteMany,
        "ReadWriteOncePod" => AccessMode::ReadWriteOncePod,
        other => return Err(ClaimError::AccessMode(other.to_owned())),
    })
}

/// Check what a pending claim asks for, and say plainly what aplo cannot
/// give.
pub fn provision_request(claim: &PersistentVolumeClaim) -> Result<ProvisionRequest, ClaimError> {
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.selector.is_some() {
        return Err(ClaimError::Selector);
    }
    if let Some(source) = spec
        .data_source_ref
        .as_ref()
        .map(|r| (&r.kind, &r.name))
        .or(spec.data_source.as_ref().map(|r| (&r.kind, &r.name)))
    {
        return Err(ClaimError::DataSource {
            kind: source.0.clone(),
            name: source.1.clone(),
        });
    }
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err(ClaimError::Block);
    }
    let modes = spec.access_modes.unwrap_or_default();
    if modes.is_empty() {
        return Err(ClaimError::NoAccessModes);
    }
    let access_modes = modes
        .iter()
        .map(|m| access_mode(m))
        .collect::<Result<Vec<_>, _>>()?;
    let meta = &claim.metadata;
    let annotations: Pairs = meta
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(ProvisionRequest {
        selected_node: annotations.get(ANN_SELECTED_NODE).cloned(),
        claim: Claim {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            annotations,
            requested_bytes: requested_bytes(claim)?,
            access_modes,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::api::storage::v1::StorageClass;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    pub(super) fn class(params: &[(&str, &str)]) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some("gold".into()),
                ..ObjectMeta::default()
            },
            provisioner: DEFAULT_PROVISIONER.into(),
            parameters: Some(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            mount_options: Some(vec!["log-level=WARNING".into()]),
            ..StorageClass::default()
        }
    }

    pub(super) fn claim(spec: PersistentVolumeClaimSpec) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                namespace: Some("shop".into()),
                uid: Some("0b9a".into()),
                annotations: Some(BTreeMap::from([(
                    ANN_STORAGE_PROVISIONER.to_owned(),
                    DEFAULT_PROVISIONER.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    pub(super) fn wanting(size: &str) -> PersistentVolumeClaimSpec {
        PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some("gold".into()),
            ..PersistentVolumeClaimSpec::default()
        }
    }

    #[test]
    fn a_claim_becomes_a_request_or_a_clear_refusal() {
        let request = provision_request(&claim(wanting("2Gi"))).unwrap();
        assert_eq!(request.claim.requested_bytes, 2 << 30);
        assert_eq!(request.claim.namespace, "shop");
        assert_eq!(request.claim.access_modes, vec![AccessMode::ReadWriteMany]);
        assert_eq!(request.selected_node, None);

        let mut block = wanting("1Gi");
        block.volume_mode = Some("Block".into());
        let mut no_modes = wanting("1Gi");
        no_modes.access_modes = None;
        let mut selector = wanting("1Gi");
        selector.selector = Some(Default::default());
        for (spec, needle) in [
            (block, "Filesystem only"),
            (no_modes, "no access modes"),
            (selector, "selector"),
            (wanting("0"), "zero bytes"),
            (wanting("ten"), "not a valid quantity"),
        ] {
            let err = provision_request(&claim(spec)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    pub(super) fn class_with_legacy() -> StorageClass {
        class(&[("volumeSource", "glusterfs")])
    }
}
