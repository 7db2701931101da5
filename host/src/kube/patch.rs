//! The merge patches the controllers send, typed.
//!
//! Each serializes to the JSON the controllers sent when they were written
//! with `json!`, key for key and in the same order (serde_json's maps sort
//! their keys, so fields here are declared in alphabetical order of their
//! JSON names). In a merge patch a key set to `null` removes the field, a
//! key left out keeps it: fields that may clear are `Option`s serialized as
//! `null`, fields that may be left alone are skipped when `None`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;

/// A `storage` quantity, as in a capacity or resource list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Storage<T> {
    /// The value for `storage`.
    pub storage: T,
}

/// Replace a PV's finalizers, only if the PV is still at the version read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalizersPatch {
    /// The metadata fields set.
    pub metadata: FinalizersMeta,
}

/// The metadata of a [`FinalizersPatch`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizersMeta {
    /// The finalizers kept.
    pub finalizers: Vec<String>,
    /// The version the finalizers were read at: the patch is then a
    /// compare-and-swap (sent as `null` when unknown, as before).
    pub resource_version: Option<String>,
}

/// Set a PV's capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPatch {
    /// The spec fields set.
    pub spec: CapacitySpec,
}

/// The spec of a [`CapacityPatch`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacitySpec {
    /// The new capacity.
    pub capacity: Storage<Quantity>,
}

/// Change a claim's status (its `status` subresource).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimStatusPatch {
    /// The status fields set.
    pub status: ClaimStatus,
}

/// The status of a [`ClaimStatusPatch`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimStatus {
    /// How far the resize of `storage` is; `None` clears it.
    pub allocated_resource_statuses: Option<Storage<ResizeStatus>>,
    /// The size being resized to; left alone when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_resources: Option<Storage<Quantity>>,
    /// The size the claim now has; left alone when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Storage<Quantity>>,
    /// The claim's conditions, all replaced; `None` clears them.
    pub conditions: Option<Vec<Condition>>,
}

/// Where a resize is, in external-resizer's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResizeStatus {
    /// Under way, or failed in a way that may pass.
    #[serde(rename = "ControllerResizeInProgress")]
    InProgress,
    /// Refused: it will not succeed as asked.
    #[serde(rename = "ControllerResizeInfeasible")]
    Infeasible,
}

/// A claim condition, always with status `True`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When it became true (RFC 3339).
    pub last_transition_time: String,
    /// What happened, if it needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Always `True`.
    pub status: &'static str,
    /// Which condition.
    #[serde(rename = "type")]
    pub type_: ConditionType,
}

/// The claim conditions the resizer sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConditionType {
    /// A resize is under way.
    Resizing,
    /// The last resize failed.
    ControllerResizeError,
}

impl ConditionType {
    /// The name Kubernetes knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Resizing => "Resizing",
            ConditionType::ControllerResizeError => "ControllerResizeError",
        }
    }
}

impl Condition {
    /// A condition that is true since `at`.
    pub fn new(type_: ConditionType, at: String, message: Option<String>) -> Condition {
        Condition {
            last_transition_time: at,
            message,
            status: "True",
            type_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bytes a typed patch sends, and those the old `json!` sent.
    fn same(typed: impl Serialize, old: serde_json::Value) {
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
    }

    #[test]
    fn finalizers_patches_send_what_json_sent() {
        let kept = vec!["other/finalizer".to_owned()];
        for version in [Some("812".to_owned()), None] {
            same(
                FinalizersPatch {
                    metadata: FinalizersMeta {
                        finalizers: kept.clone(),
                        resource_version: version.clone(),
                    },
                },
                json!({"metadata": {"finalizers": kept, "resourceVersion": version}}),
            );
        }
    }

    #[test]
    fn capacity_patches_send_what_json_sent() {
        let capacity = Quantity("3Gi".into());
        same(
            CapacityPatch {
                spec: CapacitySpec {
                    capacity: Storage {
                        storage: capacity.clone(),
                    },
                },
            },
            json!({"spec": {"capacity": {"storage": capacity}}}),
        );
    }

    #[test]
    fn condition_names_are_what_kubernetes_knows() {
        for type_ in [
            ConditionType::Resizing,
            ConditionType::ControllerResizeError,
        ] {
            assert_eq!(serde_json::to_value(type_).unwrap(), json!(type_.as_str()));
        }
    }
}
