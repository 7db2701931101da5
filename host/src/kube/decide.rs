//! What the controllers decide, as pure functions: from a claim or a PV
//! and what the caches hold, the next step, and the patches and events
//! that report it. No client, no engine, no clock (the time is passed in).
//!
//! - [`provision`]: whether a claim is aplo's to provision, the engine
//!   request, the PV's backend and the provisioning events;
//! - [`expand`]: whether a bound claim asks for more, and the status
//!   patches and events of a resize;
//! - [`reclaim`]: what a PV's reclaim policy and phase ask for, and which
//!   backend volumes a crash left without an owner.
//!
//! [`crate::kube::controller`] reads the objects, calls these, and does
//! what they say.

pub mod expand;
pub mod provision;
pub mod reclaim;

use std::sync::Arc;

use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::events::{Event, EventType};

/// What the controllers' caches hold (reflector stores in the controller,
/// maps in tests).
pub trait Known {
    /// The StorageClass named `name`.
    fn class(&self, name: &str) -> Option<Arc<StorageClass>>;
    /// Whether a PV named `name` exists.
    fn has_volume(&self, name: &str) -> bool;
}

/// Why a reconcile leaves an object alone until it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The claim is being deleted.
    Deleting,
    /// The object has no uid (not from the API server).
    NoUid,
    /// The claim asks for another provisioner, or for none.
    OtherProvisioner,
    /// The claim's StorageClass belongs to another provisioner.
    OtherClass,
    /// A `WaitForFirstConsumer` claim whose node is not chosen yet.
    NoNodeYet,
    /// The PV was not provisioned by this provisioner.
    NotOurs,
    /// The PV is bound to another claim.
    OtherClaim,
    /// The claim's request or the PV's capacity cannot be read.
    Unreadable,
    /// The PV's class does not allow expansion (any more).
    NotExpandable,
}

/// An event to post about the object decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Normal or warning.
    pub type_: EventType,
    /// Why, in one CamelCase word (`ProvisioningFailed`).
    pub reason: &'static str,
    /// What was done (`Provision`, `Resize`, `Delete`).
    pub action: &'static str,
    /// What happened, for a person.
    pub note: String,
}

impl Notice {
    /// The event to publish, with no secondary object.
    pub fn into_event(self) -> Event {
        Event {
            type_: self.type_,
            reason: self.reason.to_owned(),
            note: Some(self.note),
            action: self.action.to_owned(),
            secondary: None,
        }
    }
}

fn event(type_: EventType, reason: &'static str, action: &'static str, note: String) -> Notice {
    Notice {
        type_,
        reason,
        action,
        note,
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Objects for the decision tables, built like sentences:
    //! `claim().class("gold").asking("2Gi").bound_to("pvc-1")`.

    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{
        ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimCondition,
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
        PersistentVolumeStatus, VolumeResourceRequirements,
    };
    use k8s_openapi::api::storage::v1::StorageClass;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::Known;
    use crate::front::claim::{
        ANN_BETA_STORAGE_PROVISIONER, ANN_PROVISIONED_BY, ANN_SELECTED_NODE,
        ANN_STORAGE_PROVISIONER, FINALIZER,
    };

    /// The provisioner the tables run as.
    pub const US: &str = "glusterfs.aplo.dev";

    /// A claim `shop/data` with uid `u1`, asking [`US`] for 1Gi of `gold`.
    pub fn claim() -> Claim {
        Claim(PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                namespace: Some("shop".into()),
                uid: Some("u1".into()),
                annotations: Some(BTreeMap::from([(
                    ANN_STORAGE_PROVISIONER.to_owned(),
                    US.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteMany".into()]),
                storage_class_name: Some("gold".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".into()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        })
    }

    /// A claim being built.
    #[derive(Clone)]
    pub struct Claim(pub PersistentVolumeClaim);

    impl Claim {
        fn spec(&mut self) -> &mut PersistentVolumeClaimSpec {
            self.0.spec.get_or_insert_with(Default::default)
        }

        fn annotations(&mut self) -> &mut BTreeMap<String, String> {
            self.0
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
        }

        /// Of StorageClass `name`, or of none.
        pub fn class(mut self, name: Option<&str>) -> Self {
            self.spec().storage_class_name = name.map(str::to_owned);
            self
        }

        /// Asking for `size` of storage, or for none.
        pub fn asking(mut self, size: Option<&str>) -> Self {
            let requests = size.map(|s| BTreeMap::from([("storage".into(), Quantity(s.into()))]));
            self.spec().resources = Some(VolumeResourceRequirements {
                requests,
                ..VolumeResourceRequirements::default()
            });
            self
        }

        /// Bound to the PV `name` (`""` as the API server may leave it).
        pub fn bound_to(mut self, name: &str) -> Self {
            self.spec().volume_name = Some(name.into());
            self
        }

        /// Asking for `provisioner` under `annotation`, or for no one.
        pub fn provisioner(mut self, annotation: &str, provisioner: Option<&str>) -> Self {
            let annotations = self.annotations();
            annotations.remove(ANN_STORAGE_PROVISIONER);
            annotations.remove(ANN_BETA_STORAGE_PROVISIONER);
            if let Some(p) = provisioner {
                annotations.insert(annotation.into(), p.into());
            }
            self
        }

        /// With the scheduler's chosen node.
        pub fn on_node(mut self, node: &str) -> Self {
            self.annotations()
                .insert(ANN_SELECTED_NODE.into(), node.into());
            self
        }

        /// Being deleted.
        pub fn deleted(mut self) -> Self {
            self.0.metadata.deletion_timestamp =
                Some(Time("2026-12-07T12:00:00Z".parse().unwrap()));
            self
        }

        /// With uid `uid`.
        pub fn uid(mut self, uid: &str) -> Self {
            self.0.metadata.uid = Some(uid.into());
            self
        }

        /// With no uid.
        pub fn without_uid(mut self) -> Self {
            self.0.metadata.uid = None;
            self
        }

        /// With these status conditions.
        pub fn conditions(mut self, types: &[&str]) -> Self {
            let conditions = types
                .iter()
                .map(|t| PersistentVolumeClaimCondition {
                    type_: (*t).into(),
                    status: "True".into(),
                    ..PersistentVolumeClaimCondition::default()
                })
                .collect();
            self.0.status = Some(PersistentVolumeClaimStatus {
                conditions: Some(conditions),
                ..PersistentVolumeClaimStatus::default()
            });
            self
        }
    }

    /// The PV `pvc-u1` [`US`] made for [`claim`]: 1Gi of `gold`, `Delete`,
    /// bound, with the finalizer.
    pub fn pv() -> Pv {
        Pv(PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pvc-u1".into()),
                resource_version: Some("812".into()),
                annotations: Some(BTreeMap::from([(
                    ANN_PROVISIONED_BY.to_owned(),
                    US.to_owned(),
                )])),
                finalizers: Some(vec![FINALIZER.to_owned()]),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity("1Gi".into()),
                )])),
                claim_ref: Some(ObjectReference {
                    namespace: Some("shop".into()),
                    name: Some("data".into()),
                    uid: Some("u1".into()),
                    ..ObjectReference::default()
                }),
                persistent_volume_reclaim_policy: Some("Delete".into()),
                storage_class_name: Some("gold".into()),
                ..PersistentVolumeSpec::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some("Bound".into()),
                ..PersistentVolumeStatus::default()
            }),
        })
    }

    /// A PV being built.
    #[derive(Clone)]
    pub struct Pv(pub PersistentVolume);

    impl Pv {
        fn spec(&mut self) -> &mut PersistentVolumeSpec {
            self.0.spec.get_or_insert_with(Default::default)
        }

        /// Provisioned by `provisioner`, or with no annotation.
        pub fn made_by(mut self, provisioner: Option<&str>) -> Self {
            self.0.metadata.annotations = provisioner
                .map(|p| BTreeMap::from([(ANN_PROVISIONED_BY.to_owned(), p.to_owned())]));
            self
        }

        /// Of `size`, or with no capacity.
        pub fn size(mut self, size: Option<&str>) -> Self {
            self.spec().capacity =
                size.map(|s| BTreeMap::from([("storage".to_owned(), Quantity(s.into()))]));
            self
        }

        /// Bound to the claim with `uid`, or to none.
        pub fn claim_uid(mut self, uid: Option<&str>) -> Self {
            self.spec().claim_ref = uid.map(|u| ObjectReference {
                uid: Some(u.into()),
                ..ObjectReference::default()
            });
            self
        }

        /// Of StorageClass `name`, or of none.
        pub fn class(mut self, name: Option<&str>) -> Self {
            self.spec().storage_class_name = name.map(str::to_owned);
            self
        }

        /// With reclaim policy `policy`, or none.
        pub fn reclaim(mut self, policy: Option<&str>) -> Self {
            self.spec().persistent_volume_reclaim_policy = policy.map(str::to_owned);
            self
        }

        /// In `phase`, or with no status.
        pub fn phase(mut self, phase: Option<&str>) -> Self {
            self.0.status = phase.map(|p| PersistentVolumeStatus {
                phase: Some(p.into()),
                ..PersistentVolumeStatus::default()
            });
            self
        }

        /// With these finalizers.
        pub fn finalizers(mut self, finalizers: &[&str]) -> Self {
            self.0.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
            self
        }

        /// Being deleted.
        pub fn deleted(mut self) -> Self {
            self.0.metadata.deletion_timestamp =
                Some(Time("2026-12-07T12:00:00Z".parse().unwrap()));
            self
        }
    }

    /// A StorageClass `name` of `provisioner`.
    pub fn class(name: &str, provisioner: &str) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            provisioner: provisioner.into(),
            ..StorageClass::default()
        }
    }

    /// What the caches hold in a table row.
    #[derive(Default)]
    pub struct Cache {
        /// The StorageClasses.
        pub classes: Vec<StorageClass>,
        /// The PV names.
        pub volumes: BTreeSet<String>,
    }

    impl Known for Cache {
        fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
            self.classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))
                .cloned()
                .map(Arc::new)
        }

        fn has_volume(&self, name: &str) -> bool {
            self.volumes.contains(name)
        }
    }
}
