//! PVs and what outlives them: what a PV's reclaim policy and phase ask
//! for, its finalizer, and which backend volumes a crash left with neither
//! a PV nor a claim.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::{Known, Notice, event};
use crate::front::claim::{self, ANN_PROVISIONED_BY, FINALIZER};
use crate::kube::error::ReconcileError;
use crate::kube::patch::{FinalizersMeta, FinalizersPatch};
use crate::model::storage::ClaimRef;

/// What to do with a PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStep {
    /// Another provisioner's: leave it alone.
    NotOurs,
    /// Its reclaim policy is not `Delete`: the backend volume stays.
    Retain {
        /// It is being deleted and still has our finalizer: remove it.
        release: bool,
    },
    /// Bound, or not released yet: nothing to do.
    InUse,
    /// Released (or being deleted) with policy `Delete`.
    Reclaim {
        /// It still has our finalizer: delete the backend volume, then
        /// remove the finalizer.
        backend: bool,
        /// It is not being deleted yet: delete it.
        delete_pv: bool,
        /// Its StorageClass (the metrics' label).
        class_name: String,
    },
}

/// Whether `provisioner` made `pv`.
pub fn is_ours(pv: &PersistentVolume, provisioner: &str) -> bool {
    pv.annotations().get(ANN_PROVISIONED_BY).map(String::as_str) == Some(provisioner)
}

/// The next step for `pv`, as `provisioner`. A PV with no reclaim policy
/// is retained.
pub fn volume_step(pv: &PersistentVolume, provisioner: &str) -> VolumeStep {
    if !is_ours(pv, provisioner) {
        return VolumeStep::NotOurs;
    }
    let spec = pv.spec.as_ref();
    let reclaim = spec
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    let deleting = pv.metadata.deletion_timestamp.is_some();
    let finalized = pv.finalizers().iter().any(|f| f == FINALIZER);
    if reclaim != "Delete" {
        return VolumeStep::Retain {
            release: deleting && finalized,
        };
    }
    if phase == Some("Bound") || !(deleting || phase == Some("Released")) {
        return VolumeStep::InUse;
    }
    VolumeStep::Reclaim {
        backend: finalized,
        delete_pv: !deleting,
        class_name: spec
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_default(),
    }
}

/// The patch that removes our finalizer from `pv`, keeping the others; the
/// resourceVersion makes it a compare-and-swap, so a concurrent change of
/// the finalizer list fails with a conflict and is retried.
pub fn without_finalizer(pv: &PersistentVolume) -> FinalizersPatch {
    FinalizersPatch {
        metadata: FinalizersMeta {
            finalizers: pv
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
            resource_version: pv.resource_version(),
        },
    }
}

/// The event when deleting a PV's backend volume failed.
pub fn delete_failed(error: &ReconcileError) -> Notice {
    event(
        EventType::Warning,
        "VolumeFailedDelete",
        "Delete",
        error.to_string(),
    )
}

/// Whether the backend volume `name`, made for `claim`, may be an orphan
/// left by an interrupted provisioning, with what the caches hold: made by
/// a provisioner (`pvc-<uid>` for a claim), never published as a PV, its
/// claim uid not among `claimed`, and no PV of its name. A volume that had
/// a PV is never one: its reclaim policy rules (a `Retain` volume outlives
/// its PV on purpose). Returns the claim's uid; the API server must still
/// confirm that the PV and the claim are gone.
pub fn orphan_candidate<'a>(
    name: &'a str,
    claim: Option<&ClaimRef>,
    claimed: &HashSet<String>,
    known: &impl Known,
) -> Option<&'a str> {
    let uid = claim::claim_uid_of(name)?;
    if claim.is_none_or(|c| c.published) || claimed.contains(uid) || known.has_volume(name) {
        return None;
    }
    Some(uid)
}

/// Whether `found`, read from the API server by the name an orphan
/// candidate's claim had, is that same claim (uid `uid`): then the volume
/// is no orphan.
pub fn same_claim(found: Option<&PersistentVolumeClaim>, uid: &str) -> bool {
    found.is_some_and(|c| c.uid().as_deref() == Some(uid))
}

/// Whether `claim` waits for a volume of StorageClass `class` (so a change
/// of that class should look at it again).
pub fn waits_for_class(claim: &PersistentVolumeClaim, class: &str) -> bool {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.storage_class_name.as_deref()) == Some(class)
        && spec
            .and_then(|s| s.volume_name.as_deref())
            .is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::decide::fixtures::{Cache, US, claim, pv};

    fn reclaim(backend: bool, delete_pv: bool) -> VolumeStep {
        VolumeStep::Reclaim {
            backend,
            delete_pv,
            class_name: "gold".into(),
        }
    }

    #[test]
    fn a_pv_is_reclaimed_only_when_released_with_policy_delete() {
        let released = || pv().phase(Some("Released"));
        let retained = || pv().reclaim(Some("Retain"));
        let cases = [
            ("bound", pv(), VolumeStep::InUse),
            (
                "available",
                pv().phase(Some("Available")),
                VolumeStep::InUse,
            ),
            ("pending", pv().phase(Some("Pending")), VolumeStep::InUse),
            ("no status", pv().phase(None), VolumeStep::InUse),
            ("released", released(), reclaim(true, true)),
            (
                "failed and deleted",
                pv().phase(Some("Failed")).deleted(),
                reclaim(true, false),
            ),
            (
                "released and deleted",
                released().deleted(),
                reclaim(true, false),
            ),
            (
                "bound and deleted: still in use",
                pv().deleted(),
                VolumeStep::InUse,
            ),
            (
                "released without our finalizer: the backend is gone",
                released().finalizers(&["kubernetes.io/pv-protection"]),
                reclaim(false, true),
            ),
            (
                "deleted without our finalizer",
                released().deleted().finalizers(&[]),
                reclaim(false, false),
            ),
            (
                "released, of no class",
                released().class(None),
                VolumeStep::Reclaim {
                    backend: true,
                    delete_pv: true,
                    class_name: String::new(),
                },
            ),
            (
                "retained, bound",
                retained(),
                VolumeStep::Retain { release: false },
            ),
            (
                "retained, released",
                retained().phase(Some("Released")),
                VolumeStep::Retain { release: false },
            ),
            (
                "retained, deleted: the finalizer goes",
                retained().deleted(),
                VolumeStep::Retain { release: true },
            ),
            (
                "retained, deleted, without our finalizer",
                retained()
                    .deleted()
                    .finalizers(&["kubernetes.io/pv-protection"]),
                VolumeStep::Retain { release: false },
            ),
            (
                "no reclaim policy is Retain",
                released().reclaim(None).deleted(),
                VolumeStep::Retain { release: true },
            ),
            (
                "Recycle is kept too",
                released().reclaim(Some("Recycle")),
                VolumeStep::Retain { release: false },
            ),
            (
                "another provisioner's",
                released().made_by(Some("other.io")),
                VolumeStep::NotOurs,
            ),
            (
                "no provisioner's",
                released().deleted().made_by(None),
                VolumeStep::NotOurs,
            ),
        ];
        for (name, pv, expected) in cases {
            assert_eq!(volume_step(&pv.0, US), expected, "{name}");
        }
    }

    #[test]
    fn only_our_finalizer_is_removed_at_the_version_read() {
        let cases = [
            ("ours alone", pv(), &[][..], Some("812")),
            (
                "others stay in order",
                pv().finalizers(&["a/one", FINALIZER, "b/two"]),
                &["a/one", "b/two"][..],
                Some("812"),
            ),
            ("none", pv().finalizers(&[]), &[][..], Some("812")),
        ];
        for (name, pv, kept, version) in cases {
            let patch = without_finalizer(&pv.0);
            assert_eq!(patch.metadata.finalizers, kept, "{name}");
            assert_eq!(
                patch.metadata.resource_version.as_deref(),
                version,
                "{name}"
            );
        }
        let mut unversioned = pv().0;
        unversioned.metadata.resource_version = None;
        // The old patch sent `null` then; so does this one.
        assert_eq!(
            serde_json::to_string(&without_finalizer(&unversioned)).unwrap(),
            r#"{"metadata":{"finalizers":[],"resourceVersion":null}}"#
        );
    }

    #[test]
    fn a_failed_delete_is_a_warning_on_the_pv() {
        let event = delete_failed(&ReconcileError::Transient("gluster: busy".into()));
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(
            (event.reason, event.action),
            ("VolumeFailedDelete", "Delete")
        );
        assert_eq!(event.note, "gluster: busy");
    }

    fn claim_ref(published: bool) -> ClaimRef {
        ClaimRef {
            namespace: "shop".into(),
            name: "data".into(),
            published,
        }
    }

    #[test]
    fn only_unpublished_volumes_of_vanished_claims_are_orphan_candidates() {
        let unpublished = claim_ref(false);
        let published = claim_ref(true);
        let cases = [
            (
                "unpublished, claim and PV gone",
                "pvc-u1",
                Some(&unpublished),
                &[][..],
                &[][..],
                Some("u1"),
            ),
            ("published", "pvc-u1", Some(&published), &[], &[], None),
            ("made for no claim", "pvc-u1", None, &[], &[], None),
            (
                "not named for a claim",
                "vol_7",
                Some(&unpublished),
                &[],
                &[],
                None,
            ),
            (
                "named pvc- alone",
                "pvc-",
                Some(&unpublished),
                &[],
                &[],
                None,
            ),
            (
                "its claim is cached",
                "pvc-u1",
                Some(&unpublished),
                &["u1"],
                &[],
                None,
            ),
            (
                "another claim is cached",
                "pvc-u1",
                Some(&unpublished),
                &["u2"],
                &[],
                Some("u1"),
            ),
            (
                "its PV is cached",
                "pvc-u1",
                Some(&unpublished),
                &[],
                &["pvc-u1"],
                None,
            ),
        ];
        for (name, volume, claim, claimed, volumes, expected) in cases {
            let claimed = claimed.iter().map(|u| u.to_string()).collect();
            let cache = Cache {
                volumes: volumes.iter().map(|v| v.to_string()).collect(),
                ..Cache::default()
            };
            assert_eq!(
                orphan_candidate(volume, claim, &claimed, &cache),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_claim_of_the_same_name_keeps_the_volume_only_with_the_same_uid() {
        let cases = [
            ("same uid", Some(claim()), true),
            ("recreated with another uid", Some(claim().uid("u2")), false),
            ("with no uid", Some(claim().without_uid()), false),
            ("gone", None, false),
        ];
        for (name, found, expected) in cases {
            let found = found.map(|c| c.0);
            assert_eq!(same_claim(found.as_ref(), "u1"), expected, "{name}");
        }
    }

    #[test]
    fn a_class_change_looks_again_at_its_pending_claims() {
        let cases = [
            ("pending, of the class", claim(), true),
            (
                "an empty volume name is pending",
                claim().bound_to(""),
                true,
            ),
            ("bound", claim().bound_to("pvc-u1"), false),
            ("of another class", claim().class(Some("silver")), false),
            ("of no class", claim().class(None), false),
        ];
        for (name, claim, expected) in cases {
            assert_eq!(waits_for_class(&claim.0, "gold"), expected, "{name}");
        }
    }
}
