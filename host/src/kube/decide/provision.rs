//! Claims: whether one is aplo's to provision now, what to ask the engine
//! for, the PV's backend, and the events that tell the claim's owner.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::{Known, Notice, Skip, event};
use crate::engine::{CreateRequest, OWNER_GID};
use crate::front::claim::{self, ClassOptions, ProvisionRequest};
use crate::kube::error::ReconcileError;
use crate::model::Pairs;
use crate::model::storage::VolumeState;

/// What to do with a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimStep {
    /// Nothing until it changes.
    Skip(Skip),
    /// It is bound: grow its volume if it asks for more.
    Expand {
        /// The claim's uid.
        uid: String,
        /// The PV it is bound to.
        volume: String,
    },
    /// Refused before anything is made: post the event, retry slowly.
    Refuse {
        /// The warning for the claim.
        event: Notice,
        /// Why.
        error: ReconcileError,
    },
    /// Its PV exists already: nothing left to do.
    Provisioned {
        /// The claim's uid.
        uid: String,
    },
    /// Make its volume and PV.
    Provision {
        /// The claim's uid.
        uid: String,
        /// The StorageClass's name (the metrics' label).
        class_name: String,
        /// The StorageClass.
        class: Arc<StorageClass>,
        /// The volume and PV name.
        volume: String,
    },
}

/// The next step for `claim`, as `provisioner` with what `known` holds.
pub fn claim_step(
    claim: &PersistentVolumeClaim,
    provisioner: &str,
    known: &impl Known,
) -> ClaimStep {
    if claim.metadata.deletion_timestamp.is_some() {
        return ClaimStep::Skip(Skip::Deleting);
    }
    let Some(uid) = claim.uid() else {
        return ClaimStep::Skip(Skip::NoUid);
    };
    let spec = claim.spec.clone().unwrap_or_default();
    if let Some(volume) = spec.volume_name.filter(|v| !v.is_empty()) {
        return ClaimStep::Expand { uid, volume };
    }
    if claim::provisioner_of(claim) != Some(provisioner) {
        return ClaimStep::Skip(Skip::OtherProvisioner);
    }
    let class_name = spec.storage_class_name.unwrap_or_default();
    let Some(class) = known.class(&class_name) else {
        let message = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
        return ClaimStep::Refuse {
            event: failed(message.clone()),
            error: ReconcileError::Refused(message),
        };
    };
    if class.provisioner != provisioner {
        return ClaimStep::Skip(Skip::OtherClass);
    }
    let delayed = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    if delayed && !claim.annotations().contains_key(claim::ANN_SELECTED_NODE) {
        return ClaimStep::Skip(Skip::NoNodeYet);
    }
    let volume = claim::volume_name(&uid);
    if known.has_volume(&volume) {
        return ClaimStep::Provisioned { uid };
    }
    ClaimStep::Provision {
        uid,
        class_name,
        class,
        volume,
    }
}

/// `namespace/name`, as claims are named in logs and events.
pub fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    )
}

fn failed(note: String) -> Notice {
    event(EventType::Warning, "ProvisioningFailed", "Provision", note)
}

/// The event that provisioning starts.
pub fn provisioning(claim: &PersistentVolumeClaim) -> Notice {
    event(
        EventType::Normal,
        "Provisioning",
        "Provision",
        format!(
            "External provisioner is provisioning volume for claim \"{}\"",
            claim_key(claim)
        ),
    )
}

/// The event that the PV `volume` is made.
pub fn provisioned(volume: &str) -> Notice {
    event(
        EventType::Normal,
        "ProvisioningSucceeded",
        "Provision",
        format!("Successfully provisioned volume {volume}"),
    )
}

/// The event that provisioning with class `class_name` failed.
pub fn provisioning_failed(class_name: &str, error: &ReconcileError) -> Notice {
    failed(format!(
        "failed to provision volume with StorageClass \"{class_name}\": {error}"
    ))
}

/// The error for a selected node that is not there.
pub fn missing_node(node: &str) -> ReconcileError {
    ReconcileError::Transient(format!("the selected node '{node}' does not exist"))
}

/// What to ask the engine for: volume `name` for `request`, with the
/// class's `options`, near the selected node and its zone.
pub fn create_request(
    name: &str,
    request: &ProvisionRequest,
    options: &ClassOptions,
    preferred_zone: Option<String>,
) -> CreateRequest {
    CreateRequest {
        name: Some(name.to_owned()),
        bytes: request.claim.requested_bytes,
        parameters: options.policy_parameters.clone(),
        claim: Some(request.claim.clone()),
        preferred_zone,
        preferred_node: request.selected_node.clone(),
        gid_range: Some(options.gid_range),
    }
}

/// What to do with a volume an earlier attempt left under the claim's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earlier {
    /// It is whole: make its PV.
    Reuse,
    /// It is half made or half gone: recover, then try again.
    Recover,
}

/// What to do with an earlier attempt's volume in `state`.
pub fn earlier(state: VolumeState) -> Earlier {
    match state {
        VolumeState::Ready => Earlier::Reuse,
        VolumeState::Creating | VolumeState::Expanding | VolumeState::Deleting => Earlier::Recover,
    }
}

/// The error after recovering what an earlier attempt left of `name`.
pub fn left_by_earlier(name: &str, state: VolumeState, outcomes: &[String]) -> ReconcileError {
    ReconcileError::Transient(format!(
        "volume {name} was left {state:?} by an earlier attempt; recovery: {}",
        outcomes.join("; ")
    ))
}

/// The group id a volume's gluster options give it, if any.
pub fn volume_gid(options: &Pairs) -> Option<u32> {
    options.get(OWNER_GID).and_then(|g| g.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::claim::{ANN_BETA_STORAGE_PROVISIONER, ANN_STORAGE_PROVISIONER};
    use crate::kube::decide::fixtures::{Cache, US, claim, class};

    fn wait_for_consumer(mut c: StorageClass) -> StorageClass {
        c.volume_binding_mode = Some("WaitForFirstConsumer".into());
        c
    }

    fn skip(why: Skip) -> ClaimStep {
        ClaimStep::Skip(why)
    }

    fn provision(class: StorageClass) -> ClaimStep {
        ClaimStep::Provision {
            uid: "u1".into(),
            class_name: class.metadata.name.clone().unwrap_or_default(),
            class: Arc::new(class),
            volume: "pvc-u1".into(),
        }
    }

    fn refuse(message: &str) -> ClaimStep {
        ClaimStep::Refuse {
            event: Notice {
                type_: EventType::Warning,
                reason: "ProvisioningFailed",
                action: "Provision",
                note: message.into(),
            },
            error: ReconcileError::Refused(message.into()),
        }
    }

    fn expand(volume: &str) -> ClaimStep {
        ClaimStep::Expand {
            uid: "u1".into(),
            volume: volume.into(),
        }
    }

    #[test]
    fn a_claim_is_provisioned_only_when_it_is_ours_and_ready() {
        let gold = || vec![class("gold", US)];
        let delayed = wait_for_consumer(class("gold", US));
        let other = ANN_STORAGE_PROVISIONER;
        let cases = [
            (
                "ours",
                claim(),
                gold(),
                &[][..],
                provision(class("gold", US)),
            ),
            (
                "the beta annotation is read too",
                claim().provisioner(ANN_BETA_STORAGE_PROVISIONER, Some(US)),
                gold(),
                &[],
                provision(class("gold", US)),
            ),
            (
                "deleted",
                claim().deleted(),
                gold(),
                &[],
                skip(Skip::Deleting),
            ),
            (
                "deleted and bound",
                claim().deleted().bound_to("pvc-u1"),
                gold(),
                &[],
                skip(Skip::Deleting),
            ),
            (
                "no uid",
                claim().without_uid(),
                gold(),
                &[],
                skip(Skip::NoUid),
            ),
            (
                "already bound",
                claim().bound_to("pvc-u1"),
                gold(),
                &[],
                expand("pvc-u1"),
            ),
            (
                "bound to another provisioner's PV: still looked at",
                claim()
                    .provisioner(other, Some("other.io"))
                    .bound_to("nfs-7"),
                vec![],
                &[],
                expand("nfs-7"),
            ),
            (
                "an empty volume name is unbound",
                claim().bound_to(""),
                gold(),
                &[],
                provision(class("gold", US)),
            ),
            (
                "another provisioner",
                claim().provisioner(other, Some("other.io")),
                gold(),
                &[],
                skip(Skip::OtherProvisioner),
            ),
            (
                "no provisioner annotation",
                claim().provisioner(other, None),
                gold(),
                &[],
                skip(Skip::OtherProvisioner),
            ),
            (
                "the class is missing",
                claim(),
                vec![class("silver", US)],
                &[],
                refuse("storageclass.storage.k8s.io \"gold\" not found"),
            ),
            (
                "no class named",
                claim().class(None),
                gold(),
                &[],
                refuse("storageclass.storage.k8s.io \"\" not found"),
            ),
            (
                "the class is another provisioner's",
                claim(),
                vec![class("gold", "other.io")],
                &[],
                skip(Skip::OtherClass),
            ),
            (
                "waiting for the first consumer",
                claim(),
                vec![delayed.clone()],
                &[],
                skip(Skip::NoNodeYet),
            ),
            (
                "the first consumer's node is chosen",
                claim().on_node("n1"),
                vec![delayed.clone()],
                &[],
                provision(delayed.clone()),
            ),
            (
                "a node chosen for an immediate class changes nothing",
                claim().on_node("n1"),
                gold(),
                &[],
                provision(class("gold", US)),
            ),
            (
                "its PV exists",
                claim(),
                gold(),
                &["pvc-u1"],
                ClaimStep::Provisioned { uid: "u1".into() },
            ),
            (
                "another claim's PV exists",
                claim(),
                gold(),
                &["pvc-u2"],
                provision(class("gold", US)),
            ),
        ];
        for (name, claim, classes, volumes, expected) in cases {
            let cache = Cache {
                classes,
                volumes: volumes.iter().map(|v| v.to_string()).collect(),
            };
            assert_eq!(claim_step(&claim.0, US, &cache), expected, "{name}");
        }
    }

    #[test]
    fn provisioning_events_say_what_external_provisioner_says() {
        let claim = claim().0;
        let refused = ReconcileError::Refused("quota: 5 GiB left".into());
        let cases = [
            (
                "starting",
                provisioning(&claim),
                EventType::Normal,
                "Provisioning",
                "External provisioner is provisioning volume for claim \"shop/data\"",
            ),
            (
                "done",
                provisioned("pvc-u1"),
                EventType::Normal,
                "ProvisioningSucceeded",
                "Successfully provisioned volume pvc-u1",
            ),
            (
                "failed with a reason",
                provisioning_failed("gold", &refused),
                EventType::Warning,
                "ProvisioningFailed",
                "failed to provision volume with StorageClass \"gold\": quota: 5 GiB left",
            ),
        ];
        for (name, event, type_, reason, note) in cases {
            assert_eq!(event.type_, type_, "{name}");
            assert_eq!(event.reason, reason, "{name}");
            assert_eq!(event.action, "Provision", "{name}");
            assert_eq!(event.note, note, "{name}");
        }
        assert_eq!(claim_key(&claim), "shop/data");
        assert_eq!(
            missing_node("n9"),
            ReconcileError::Transient("the selected node 'n9' does not exist".into())
        );
    }

    #[test]
    fn only_a_ready_volume_of_an_earlier_attempt_is_reused() {
        let cases = [
            ("ready", VolumeState::Ready, Earlier::Reuse),
            ("creating", VolumeState::Creating, Earlier::Recover),
            ("expanding", VolumeState::Expanding, Earlier::Recover),
            ("deleting", VolumeState::Deleting, Earlier::Recover),
        ];
        for (name, state, expected) in cases {
            assert_eq!(earlier(state), expected, "{name}");
        }
        let outcomes = ["op 7 undone".to_owned(), "op 8 finished".to_owned()];
        let expected = "volume pvc-u1 was left Creating by an earlier attempt; \
                        recovery: op 7 undone; op 8 finished";
        assert_eq!(
            left_by_earlier("pvc-u1", VolumeState::Creating, &outcomes),
            ReconcileError::Transient(expected.into())
        );
    }

    #[test]
    fn the_engine_is_asked_for_what_the_claim_and_class_say() {
        let mut on_node = claim().on_node("n1").asking(Some("2Gi")).0;
        on_node.metadata.labels = Some([("app".to_owned(), "shop".to_owned())].into());
        let options = |params: &[(&str, &str)]| {
            let mut c = class("gold", US);
            c.parameters = Some(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            claim::class_options(&c).unwrap()
        };
        let cases = [
            (
                "no node",
                claim().0,
                options(&[]),
                None,
                None,
                1u64 << 30,
                claim::DEFAULT_GID_RANGE,
            ),
            (
                "a node in a zone, a policy and a gid range",
                on_node,
                options(&[
                    ("placement", "binpack"),
                    ("gidMin", "3000"),
                    ("gidMax", "3999"),
                ]),
                Some("z1"),
                Some("n1"),
                2 << 30,
                (3000, 3999),
            ),
        ];
        for (name, claim, options, zone, node, bytes, gids) in cases {
            let request = claim::provision_request(&claim).unwrap();
            let got = create_request("pvc-u1", &request, &options, zone.map(str::to_owned));
            let expected = CreateRequest {
                name: Some("pvc-u1".into()),
                bytes,
                parameters: options.policy_parameters.clone(),
                claim: Some(request.claim.clone()),
                preferred_zone: zone.map(str::to_owned),
                preferred_node: node.map(str::to_owned),
                gid_range: Some(gids),
            };
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_volume_gid_is_read_from_its_options() {
        let cases = [
            ("set", &[(OWNER_GID, "2001")][..], Some(2001)),
            ("not set", &[("performance.cache-size", "64MB")][..], None),
            ("not a number", &[(OWNER_GID, "staff")][..], None),
            ("negative", &[(OWNER_GID, "-1")][..], None),
        ];
        for (name, options, expected) in cases {
            let options: Pairs = options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(volume_gid(&options), expected, "{name}");
        }
    }
}
