//! Expansion: whether a bound claim asks for more than its PV has, and the
//! status patches and events that report a resize as external-resizer
//! does.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::{Known, Notice, Skip, event};
use crate::front::claim::{self, ANN_PROVISIONED_BY};
use crate::kube::error::ReconcileError;
use crate::kube::patch::{
    CapacityPatch, CapacitySpec, ClaimStatus, ClaimStatusPatch, Condition, ConditionType,
    ResizeStatus, Storage,
};

/// How soon a claim bound to a PV not in the cache is looked at again.
pub const UNSEEN_VOLUME_RECHECK: Duration = Duration::from_secs(30);

/// What to do with a bound claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandStep {
    /// Its PV is not in the cache (not seen yet, or not ours): look again
    /// after [`UNSEEN_VOLUME_RECHECK`].
    Unseen,
    /// Nothing until it changes.
    Skip(Skip),
    /// The PV has what the claim asks for.
    Done,
    /// Grow the volume.
    Expand {
        /// The bytes the claim asks for.
        wanted: u64,
        /// The PV's StorageClass (the metrics' label).
        class_name: String,
        /// Mark the claim `Resizing` first: not when an earlier attempt
        /// failed, whose error stays up until a retry succeeds rather than
        /// flipping back to `Resizing` on every attempt.
        announce: bool,
    },
}

/// The next step for `claim` (uid `uid`) bound to `pv`, as `provisioner`
/// with what `known` holds.
pub fn expand_step(
    claim: &PersistentVolumeClaim,
    uid: &str,
    pv: Option<&PersistentVolume>,
    provisioner: &str,
    known: &impl Known,
) -> ExpandStep {
    let Some(pv) = pv else {
        return ExpandStep::Unseen;
    };
    if pv.annotations().get(ANN_PROVISIONED_BY).map(String::as_str) != Some(provisioner) {
        return ExpandStep::Skip(Skip::NotOurs);
    }
    let spec = pv.spec.as_ref();
    let bound_uid = spec
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|r| r.uid.as_deref());
    if bound_uid != Some(uid) {
        return ExpandStep::Skip(Skip::OtherClaim);
    }
    let (Ok(wanted), Ok(has)) = (claim::requested_bytes(claim), claim::pv_bytes(pv)) else {
        return ExpandStep::Skip(Skip::Unreadable);
    };
    if wanted <= has {
        return ExpandStep::Done;
    }
    let class_name = spec
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default();
    // The API server refuses such edits for classes that do not allow
    // expansion; a class changed afterwards is left alone.
    let expandable = known
        .class(&class_name)
        .is_some_and(|c| c.allow_volume_expansion == Some(true));
    if !expandable {
        return ExpandStep::Skip(Skip::NotExpandable);
    }
    let failed_before = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == ConditionType::ControllerResizeError.as_str())
        });
    ExpandStep::Expand {
        wanted,
        class_name,
        announce: !failed_before,
    }
}

/// Whether a volume of `bytes` must still grow to `wanted` (an earlier
/// attempt may have grown it without finishing the patches).
pub fn needs_growing(bytes: u64, wanted: u64) -> bool {
    bytes < wanted
}

fn storage<T>(storage: T) -> Option<Storage<T>> {
    Some(Storage { storage })
}

/// The claim status and event when the resize of `pv_name` to `wanted`
/// starts at `now`.
pub fn resizing(pv_name: &str, wanted: u64, now: Timestamp) -> (ClaimStatusPatch, Notice) {
    let patch = ClaimStatusPatch {
        status: ClaimStatus {
            allocated_resource_statuses: storage(ResizeStatus::InProgress),
            allocated_resources: storage(claim::quantity(wanted)),
            capacity: None,
            conditions: Some(vec![Condition::new(
                ConditionType::Resizing,
                now.to_string(),
                None,
            )]),
        },
    };
    let event = event(
        EventType::Normal,
        "Resizing",
        "Resize",
        format!("External resizer is resizing volume {pv_name}"),
    );
    (patch, event)
}

/// The patches and event once `pv_name` has grown to `bytes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resized {
    /// The PV's new capacity.
    pub volume: CapacityPatch,
    /// The claim's new capacity, its resize conditions cleared.
    pub claim: ClaimStatusPatch,
    /// The event for the claim.
    pub event: Notice,
}

/// What to report once `pv_name` has grown to `bytes`.
pub fn resized(pv_name: &str, bytes: u64) -> Resized {
    let capacity = claim::quantity(bytes);
    Resized {
        volume: CapacityPatch {
            spec: CapacitySpec {
                capacity: Storage {
                    storage: capacity.clone(),
                },
            },
        },
        claim: ClaimStatusPatch {
            status: ClaimStatus {
                allocated_resource_statuses: None,
                allocated_resources: None,
                capacity: storage(capacity),
                conditions: None,
            },
        },
        event: event(
            EventType::Normal,
            "VolumeResizeSuccessful",
            "Resize",
            format!(
                "Resize volume {pv_name} succeeded: it now has {}",
                crate::model::format_size(bytes)
            ),
        ),
    }
}

/// The claim status and event when growing `pv_name` to `wanted` failed
/// with `error` (a refusal is infeasible; anything else still in progress).
pub fn resize_failed(
    pv_name: &str,
    wanted: u64,
    error: &ReconcileError,
    now: Timestamp,
) -> (ClaimStatusPatch, Notice) {
    let message = format!("resize volume {pv_name} failed: {error}");
    let progress = match error {
        ReconcileError::Refused(_) => ResizeStatus::Infeasible,
        ReconcileError::Transient(_) | ReconcileError::Paused(_) => ResizeStatus::InProgress,
    };
    let patch = ClaimStatusPatch {
        status: ClaimStatus {
            allocated_resource_statuses: storage(progress),
            allocated_resources: storage(claim::quantity(wanted)),
            capacity: None,
            conditions: Some(vec![Condition::new(
                ConditionType::ControllerResizeError,
                now.to_string(),
                Some(message.clone()),
            )]),
        },
    };
    let event = event(EventType::Warning, "VolumeResizeFailed", "Resize", message);
    (patch, event)
}

/// The event when a resize waits because aplo is read-only.
pub fn resize_paused(error: &ReconcileError) -> Notice {
    event(
        EventType::Warning,
        "VolumeResizeFailed",
        "Resize",
        error.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;
    use crate::kube::decide::fixtures::{Cache, US, claim, class, pv};

    fn expandable(name: &str, allow: Option<bool>) -> Cache {
        let mut c = class(name, US);
        c.allow_volume_expansion = allow;
        Cache {
            classes: vec![c],
            ..Cache::default()
        }
    }

    fn expand(wanted: u64, announce: bool) -> ExpandStep {
        ExpandStep::Expand {
            wanted,
            class_name: "gold".into(),
            announce,
        }
    }

    #[test]
    fn a_bound_claim_grows_only_when_it_asks_for_more_of_an_expandable_pv_of_ours() {
        let gib = 1u64 << 30;
        let two = || claim().bound_to("pvc-u1").asking(Some("2Gi"));
        let yes = || expandable("gold", Some(true));
        let cases = [
            ("bigger", two(), Some(pv()), yes(), expand(2 * gib, true)),
            (
                "bigger in other units",
                two().asking(Some("1100M")),
                Some(pv()),
                yes(),
                expand(1_100_000_000, true),
            ),
            (
                "equal",
                two().asking(Some("1Gi")),
                Some(pv()),
                yes(),
                ExpandStep::Done,
            ),
            (
                "equal in other units",
                two().asking(Some("1024Mi")),
                Some(pv()),
                yes(),
                ExpandStep::Done,
            ),
            (
                "smaller",
                two().asking(Some("512Mi")),
                Some(pv()),
                yes(),
                ExpandStep::Done,
            ),
            ("PV not seen", two(), None, yes(), ExpandStep::Unseen),
            (
                "PV of another provisioner",
                two(),
                Some(pv().made_by(Some("other.io"))),
                yes(),
                ExpandStep::Skip(Skip::NotOurs),
            ),
            (
                "PV of no provisioner",
                two(),
                Some(pv().made_by(None)),
                yes(),
                ExpandStep::Skip(Skip::NotOurs),
            ),
            (
                "PV bound to another claim",
                two(),
                Some(pv().claim_uid(Some("u2"))),
                yes(),
                ExpandStep::Skip(Skip::OtherClaim),
            ),
            (
                "PV bound to no claim",
                two(),
                Some(pv().claim_uid(None)),
                yes(),
                ExpandStep::Skip(Skip::OtherClaim),
            ),
            (
                "claim asks for nothing",
                two().asking(None),
                Some(pv()),
                yes(),
                ExpandStep::Skip(Skip::Unreadable),
            ),
            (
                "claim asks for nonsense",
                two().asking(Some("ten")),
                Some(pv()),
                yes(),
                ExpandStep::Skip(Skip::Unreadable),
            ),
            (
                "PV has no capacity",
                two(),
                Some(pv().size(None)),
                yes(),
                ExpandStep::Skip(Skip::Unreadable),
            ),
            (
                "class forbids expansion",
                two(),
                Some(pv()),
                expandable("gold", Some(false)),
                ExpandStep::Skip(Skip::NotExpandable),
            ),
            (
                "class says nothing of expansion",
                two(),
                Some(pv()),
                expandable("gold", None),
                ExpandStep::Skip(Skip::NotExpandable),
            ),
            (
                "class gone",
                two(),
                Some(pv()),
                expandable("silver", Some(true)),
                ExpandStep::Skip(Skip::NotExpandable),
            ),
            (
                "PV of no class",
                two(),
                Some(pv().class(None)),
                yes(),
                ExpandStep::Skip(Skip::NotExpandable),
            ),
            (
                "an earlier attempt failed: its error stays up",
                two().conditions(&["FileSystemResizePending", "ControllerResizeError"]),
                Some(pv()),
                yes(),
                expand(2 * gib, false),
            ),
            (
                "other conditions: announced",
                two().conditions(&["Resizing"]),
                Some(pv()),
                yes(),
                expand(2 * gib, true),
            ),
        ];
        for (name, claim, pv, cache, expected) in cases {
            let pv = pv.map(|p| p.0);
            let got = expand_step(&claim.0, "u1", pv.as_ref(), US, &cache);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_volume_grows_only_while_smaller_than_wanted() {
        for (name, bytes, wanted, expected) in [
            ("smaller", 1 << 30, 2 << 30, true),
            (
                "equal: grown by an earlier attempt",
                2 << 30,
                2 << 30,
                false,
            ),
            (
                "bigger: grown by an earlier attempt",
                3 << 30,
                2 << 30,
                false,
            ),
        ] {
            assert_eq!(needs_growing(bytes, wanted), expected, "{name}");
        }
    }

    fn json_of(value: impl Serialize) -> String {
        serde_json::to_string(&value).unwrap()
    }

    const NOW: &str = "2026-12-07T18:01:02.345678901Z";

    #[test]
    fn resize_patches_send_what_json_sent() {
        let now: Timestamp = NOW.parse().unwrap();
        let wanted = 2u64 << 30;
        // Each old patch is the `json!` the controller sent.
        let status_patch = |value: serde_json::Value| json!({ "status": value });

        let (started, _) = resizing("pvc-u1", wanted, now);
        let old = status_patch(json!({
            "conditions": [{"type": "Resizing", "status": "True", "lastTransitionTime": now.to_string()}],
            "allocatedResources": {"storage": claim::quantity(wanted)},
            "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
        }));
        assert_eq!(json_of(started), json_of(old), "resizing");

        let done = resized("pvc-u1", 3 << 30);
        let capacity = claim::quantity(3 << 30);
        let old_pv = json!({"spec": {"capacity": {"storage": capacity}}});
        assert_eq!(json_of(done.volume), json_of(old_pv), "resized PV");
        let old_claim = status_patch(json!({
            "capacity": {"storage": capacity},
            "conditions": null,
            "allocatedResourceStatuses": null,
        }));
        assert_eq!(json_of(done.claim), json_of(old_claim), "resized claim");

        for (name, error, infeasible) in [
            ("refused", ReconcileError::Refused("no room".into()), true),
            (
                "transient",
                ReconcileError::Transient("conflict".into()),
                false,
            ),
        ] {
            let (failed, _) = resize_failed("pvc-u1", wanted, &error, now);
            let message = error.to_string();
            let old = status_patch(json!({
                "conditions": [{
                    "type": "ControllerResizeError",
                    "status": "True",
                    "lastTransitionTime": now.to_string(),
                    "message": format!("resize volume pvc-u1 failed: {message}"),
                }],
                "allocatedResources": {"storage": claim::quantity(wanted)},
                "allocatedResourceStatuses": {"storage": if infeasible {
                    "ControllerResizeInfeasible"
                } else {
                    "ControllerResizeInProgress"
                }},
            }));
            assert_eq!(json_of(failed), json_of(old), "{name}");
        }
    }

    #[test]
    fn resizes_report_as_external_resizer_does() {
        let now: Timestamp = NOW.parse().unwrap();
        let gib = 1u64 << 30;
        let paused = ReconcileError::Paused("aplo is in read-only mode".into());
        let refused = ReconcileError::Refused("quota: 1 GiB left".into());
        let transient = ReconcileError::Transient("Kubernetes API: timeout".into());
        let failed = |e| resize_failed("pvc-u1", 2 * gib, e, now);
        let cases = [
            (
                "starting",
                resizing("pvc-u1", 2 * gib, now).1,
                EventType::Normal,
                "Resizing",
                "External resizer is resizing volume pvc-u1".to_owned(),
            ),
            (
                "done",
                resized("pvc-u1", 2 * gib).event,
                EventType::Normal,
                "VolumeResizeSuccessful",
                "Resize volume pvc-u1 succeeded: it now has 2GiB".to_owned(),
            ),
            (
                "refused with a reason",
                failed(&refused).1,
                EventType::Warning,
                "VolumeResizeFailed",
                "resize volume pvc-u1 failed: quota: 1 GiB left".to_owned(),
            ),
            (
                "failed for now",
                failed(&transient).1,
                EventType::Warning,
                "VolumeResizeFailed",
                "resize volume pvc-u1 failed: Kubernetes API: timeout".to_owned(),
            ),
            (
                "paused",
                resize_paused(&paused),
                EventType::Warning,
                "VolumeResizeFailed",
                "aplo is in read-only mode".to_owned(),
            ),
        ];
        for (name, event, type_, reason, note) in cases {
            assert_eq!(event.type_, type_, "{name}");
            assert_eq!(event.reason, reason, "{name}");
            assert_eq!(event.action, "Resize", "{name}");
            assert_eq!(event.note, note, "{name}");
        }
        let statuses = [
            ("refused", &refused, ResizeStatus::Infeasible),
            ("transient", &transient, ResizeStatus::InProgress),
            ("paused", &paused, ResizeStatus::InProgress),
        ];
        for (name, error, expected) in statuses {
            let (patch, _) = failed(error);
            let got = patch.status.allocated_resource_statuses.map(|s| s.storage);
            assert_eq!(got, Some(expected), "{name}");
        }
    }
}
