//! API errors and their `kind: Status` bodies.
//!
//! One enum, one exhaustive mapping to HTTP status codes and `Status.reason`
//! values, with messages worded like the real API server's so that clients
//! (kube-rs, kubectl) see what they would see against a real cluster.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// One cause in `Status.details.causes` (used by `Invalid` and apply
/// conflicts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub kind: &'static str,
    /// Human-readable message.
    pub message: String,
    /// The field path, e.g. `metadata.name` or `.spec.x`.
    pub field: String,
}

/// Names the object an error is about: resource, group, object name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Target {
    /// Plural resource name, e.g. `persistentvolumeclaims`.
    pub resource: &'static str,
    /// API group, `""` for core.
    pub group: &'static str,
    /// Object name (may be empty).
    pub name: String,
    /// Kind, for `Invalid` messages (`PersistentVolumeClaim "x" is invalid`).
    pub kind: &'static str,
}

impl Target {
    /// The target `name` of resource `def`.
    pub fn of(def: &ResourceDef, name: &str) -> Target {
        Target {
            resource: def.plural,
            group: def.group,
            name: name.to_string(),
            kind: def.kind,
        }
    }

    /// `persistentvolumeclaims` or `storageclasses.storage.k8s.io`.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The object (or namespace) does not exist: 404 `NotFound`.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Target),
    /// The path names no resource we serve: 404 `NotFound`.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// Create of an existing object: 409 `AlreadyExists`.
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Target),
    /// Stale resourceVersion, uid or precondition mismatch, apply conflict:
    /// 409 `Conflict`.
    #[error("{message}")]
    Conflict {
        /// The object.
        target: Target,
        /// Full message.
        message: String,
        /// Apply conflicts list their fields here.
        causes: Vec<Cause>,
    },
    /// Validation failed: 422 `Invalid`.
    #[error("{} \"{}\" is invalid: {}", .target.kind, .target.name, join_causes(.causes))]
    Invalid {
        /// The object.
        target: Target,
        /// What is wrong.
        causes: Vec<Cause>,
    },
    /// Malformed request: 400 `BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// A resourceVersion or continue token that history no longer covers:
    /// 410 `Expired` (what the real server answers; kube only checks 410).
    #[error("{0}")]
    Expired(String),
    /// Verb not allowed on this path: 405 `MethodNotAllowed`.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// Unknown patch content type: 415 `UnsupportedMediaType`.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
    )]
    UnsupportedMediaType,
    /// resourceVersion newer than any we issued: 504 `Timeout`.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// What the client asked for.
        requested: u64,
        /// Our newest.
        current: u64,
    },
}

fn join_causes(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    /// An `Invalid` error with one cause.
    pub fn invalid(target: Target, field: &str, kind: &'static str, message: String) -> ApiError {
        ApiError::Invalid {
            target,
            causes: vec![Cause {
                kind,
                message,
                field: field.to_string(),
            }],
        }
    }

    /// The standard optimistic-concurrency conflict.
    pub fn stale(target: Target) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            target.qualified(),
            target.name
        );
        ApiError::Conflict {
            target,
            message,
            causes: Vec::new(),
        }
    }

    /// A precondition conflict (uid or resourceVersion).
    pub fn precondition(target: Target, what: &str, wanted: &str, actual: &str) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{}\": Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}",
            target.qualified(),
            target.name
        );
        ApiError::Conflict {
            target,
            message,
            causes: Vec::new(),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::NoRoute => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Expired(_) => 410,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType => 415,
            ApiError::TooLargeResourceVersion { .. } => 504,
        }
    }

    /// The `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Expired(_) => "Expired",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType => "UnsupportedMediaType",
            ApiError::TooLargeResourceVersion { .. } => "Timeout",
        }
    }

    /// The `kind: Status` body, as the real API server writes it.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) => Some(details(t, &[])),
            ApiError::Conflict { target, causes, .. } => Some(details(target, causes)),
            ApiError::Invalid { target, causes } => {
                let mut d = details(target, causes);
                d["kind"] = json!(target.kind);
                Some(d)
            }
            ApiError::NoRoute => Some(json!({})),
            ApiError::TooLargeResourceVersion { .. } => Some(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            ),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

fn details(t: &Target, causes: &[Cause]) -> Value {
    let mut d = serde_json::Map::new();
    if !t.name.is_empty() {
        d.insert("name".into(), json!(t.name));
    }
    if !t.group.is_empty() {
        d.insert("group".into(), json!(t.group));
    }
    d.insert("kind".into(), json!(t.resource));
    if !causes.is_empty() {
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.kind, "message": c.message, "field": c.field}))
            .collect();
        d.insert("causes".into(), Value::Array(causes));
    }
    Value::Object(d)
}

/// `Result` with an [`ApiError`].
pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_the_real_server() {
        let t = Target {
            resource: "storageclasses",
            group: "storage.k8s.io",
            name: "fast".into(),
            kind: "StorageClass",
        };
        let s = ApiError::NotFound(t).status();
        assert_eq!(
            s["message"],
            "storageclasses.storage.k8s.io \"fast\" not found"
        );
        assert_eq!(
            s["details"],
            json!({"name": "fast", "group": "storage.k8s.io", "kind": "storageclasses"})
        );
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn invalid_lists_its_causes() {
        let t = Target {
            resource: "persistentvolumeclaims",
            name: "Bad".into(),
            kind: "PersistentVolumeClaim",
            ..Target::default()
        };
        let e = ApiError::invalid(
            t,
            "metadata.name",
            "FieldValueInvalid",
            "Invalid value: \"Bad\"".into(),
        );
        assert_eq!(
            e.to_string(),
            "PersistentVolumeClaim \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\""
        );
        assert_eq!(e.status()["details"]["causes"][0]["field"], "metadata.name");
    }
}
