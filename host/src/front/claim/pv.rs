//! The PersistentVolume that answers a provisioned claim, and what a PV
//! says about its size.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, GlusterfsPersistentVolumeSource, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    ANN_GID, ANN_PROVISIONED_BY, ClaimError, ClassOptions, FINALIZER, VolumeSource, parse_quantity,
    quantity,
};

/// The backend volume a PV points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The engine's volume id (the CSI volume handle).
    pub id: String,
    /// The gluster volume name.
    pub name: String,
    /// Usable bytes provisioned.
    pub bytes: u64,
    /// The gluster servers to mount from, first one first.
    pub hosts: Vec<String>,
    /// The volume's own group id, if it has one.
    pub gid: Option<u32>,
}

/// The PV for a provisioned claim.
pub fn build_pv(
    provisioner: &str,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    options: &ClassOptions,
    backend: &Backend,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let meta = &claim.metadata;
    let claim_ref = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    };
    let (csi, glusterfs) = match &options.source {
        VolumeSource::Csi => (
            Some(CSIPersistentVolumeSource {
                driver: provisioner.to_owned(),
                volume_handle: backend.id.clone(),
                volume_attributes: Some(BTreeMap::from([
                    ("hosts".to_owned(), backend.hosts.join(",")),
                    ("volume".to_owned(), backend.name.clone()),
                ])),
                ..CSIPersistentVolumeSource::default()
            }),
            None,
        ),
        VolumeSource::Glusterfs {
            endpoints,
            namespace,
        } => (
            None,
            Some(GlusterfsPersistentVolumeSource {
                endpoints: endpoints.clone(),
                endpoints_namespace: namespace.clone().or_else(|| meta.namespace.clone()),
                path: backend.name.clone(),
                read_only: None,
            }),
        ),
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(backend.name.clone()),
            annotations: Some(
                std::iter::once((ANN_PROVISIONED_BY.to_owned(), provisioner.to_owned()))
                    .chain(backend.gid.map(|gid| (ANN_GID.to_owned(), gid.to_string())))
                    .collect(),
            ),
            finalizers: Some(vec![FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([(
                "storage".to_owned(),
                quantity(backend.bytes),
            )])),
            claim_ref: Some(claim_ref),
            csi,
            glusterfs,
            mount_options: class.mount_options.clone(),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_owned()),
            ),
            storage_class_name: class.metadata.name.clone(),
            volume_mode: Some(spec.volume_mode.unwrap_or_else(|| "Filesystem".to_owned())),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

/// A PV's capacity in bytes.
pub fn pv_bytes(pv: &PersistentVolume) -> Result<u64, ClaimError> {
    let q = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .ok_or(ClaimError::NoCapacity)?;
    parse_quantity(&q.0).map_err(ClaimError::from)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{claim, class, class_with_legacy, wanting};
    use super::super::{DEFAULT_PROVISIONER, claim_uid_of, class_options, volume_name};
    use super::*;

    #[test]
    fn the_pv_answers_the_claim() {
        let claim = claim(wanting("1Gi"));
        let backend = Backend {
            id: "42".into(),
            name: volume_name("0b9a"),
            bytes: 1 << 30,
            hosts: vec!["g1".into(), "g2".into()],
            gid: Some(2001),
        };
        let class = class(&[]);
        let pv = build_pv(
            DEFAULT_PROVISIONER,
            &claim,
            &class,
            &class_options(&class).unwrap(),
            &backend,
        );
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-0b9a"));
        assert_eq!(pv.metadata.annotations.as_ref().unwrap()[ANN_GID], "2001");
        assert_eq!(pv.metadata.finalizers, Some(vec![FINALIZER.to_owned()]));
        let spec = pv.spec.as_ref().unwrap();
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(
            spec.claim_ref.as_ref().unwrap().uid.as_deref(),
            Some("0b9a")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("gold"));
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(spec.mount_options, class.mount_options);
        let csi = spec.csi.as_ref().unwrap();
        assert_eq!(csi.driver, DEFAULT_PROVISIONER);
        assert_eq!(csi.volume_handle, "42");
        let attributes = csi.volume_attributes.as_ref().unwrap();
        assert_eq!(attributes["hosts"], "g1,g2");
        assert_eq!(attributes["volume"], "pvc-0b9a");
        assert_eq!(pv_bytes(&pv), Ok(1 << 30));

        let legacy = class_options(&class_with_legacy()).unwrap();
        let pv = build_pv(DEFAULT_PROVISIONER, &claim, &class, &legacy, &backend);
        let gluster = pv.spec.unwrap().glusterfs.unwrap();
        assert_eq!(gluster.path, "pvc-0b9a");
        assert_eq!(gluster.endpoints_namespace.as_deref(), Some("shop"));
        assert_eq!(claim_uid_of("pvc-0b9a"), Some("0b9a"));
        assert_eq!(claim_uid_of("vol_1"), None);
    }
}
