//! The `admission.k8s.io/v1` AdmissionReview wire format, as far as a
//! validating webhook for PersistentVolumeClaims reads and writes it.
//!
//! Only the fields the webhook uses are read; the rest (`userInfo`,
//! `resource`, `options`, ...) are skipped unparsed. The objects are parsed
//! as k8s-openapi `PersistentVolumeClaim`s, which check their own
//! `apiVersion` and `kind`.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::{Deserialize, Serialize};

/// The review's `apiVersion`.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review's `kind`.
pub const KIND: &str = "AdmissionReview";

/// An incoming review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<Request>,
}

/// A group, version and kind.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    /// The API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

/// What the API server asks about.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Copied into the response.
    pub uid: String,
    /// The kind of the object under review.
    pub kind: GroupVersionKind,
    /// The object's name (empty for a CREATE with `generateName`).
    #[serde(default)]
    pub name: String,
    /// The object's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// The new object (CREATE and UPDATE).
    #[serde(default)]
    pub object: Option<PersistentVolumeClaim>,
    /// The object before the change (UPDATE).
    #[serde(default)]
    pub old_object: Option<PersistentVolumeClaim>,
    /// Whether the change will not be persisted.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer, without the review around it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The request's uid.
    pub uid: String,
    /// Whether the change is admitted.
    pub allowed: bool,
    /// Why not (for a denial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Warnings shown to the client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a Response,
}

impl Response {
    /// An allowed change, with optional warnings.
    pub fn allow(uid: String, warnings: Vec<String>) -> Response {
        Response {
            uid,
            allowed: true,
            status: None,
            warnings,
        }
    }

    /// A denied change: `code` and `reason` follow `metav1.Status`
    /// (403 `Forbidden` for a policy's refusal).
    pub fn deny(uid: String, code: u16, reason: &str, message: String) -> Response {
        Response {
            uid,
            allowed: false,
            status: Some(Status {
                code: Some(i32::from(code)),
                message: Some(message),
                reason: Some(reason.to_owned()),
                status: Some("Failure".to_owned()),
                ..Status::default()
            }),
            warnings: Vec::new(),
        }
    }

    /// The response wrapped in an `admission.k8s.io/v1` AdmissionReview.
    pub fn to_review_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ReviewOut {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        })
        .expect("a response always serializes")
    }
}

/// The core group's PersistentVolumeClaim kind, the only one reviewed.
fn is_pvc(kind: &GroupVersionKind) -> bool {
    kind.group.is_empty() && kind.version == "v1" && kind.kind == "PersistentVolumeClaim"
}

/// Just the types of a review, to explain a review that does not parse.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<RequestHeader>,
}

#[derive(Deserialize)]
struct RequestHeader {
    #[serde(default)]
    kind: GroupVersionKind,
}

/// Why a review body cannot be read (a 400 that says so plainly).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("the body is not an AdmissionReview: expected a JSON object")]
    NotAnObject,
    /// A review of another version or kind.
    #[error("expected an {API_VERSION} {KIND}, got apiVersion '{api_version}' kind '{kind}'")]
    WrongReview {
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// A review of another kind of object than a claim.
    #[error(
        "this webhook reviews core v1 PersistentVolumeClaims, not group '{}' version '{}' \
         kind '{}'",
        .0.group, .0.version, .0.kind
    )]
    WrongObject(GroupVersionKind),
    /// The object is not an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}")]
    NotAReview(#[source] serde_json::Error),
    /// A field of the review is malformed.
    #[error("the AdmissionReview is malformed at {path}: {source}")]
    Malformed {
        /// Where.
        path: String,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The review has no request.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// A `CREATE` or `UPDATE` request without its object.
    #[error("the {0} request has no object (request.object)")]
    NoObject(String),
    /// An `UPDATE` request without its old object.
    #[error("the UPDATE request has no old object (request.oldObject)")]
    NoOldObject,
}

/// Check the review's and the object's types.
fn check_types(
    api_version: &str,
    review_kind: &str,
    object_kind: Option<&GroupVersionKind>,
) -> Result<(), ReviewError> {
    if api_version != API_VERSION || review_kind != KIND {
        return Err(ReviewError::WrongReview {
            api_version: api_version.to_owned(),
            kind: review_kind.to_owned(),
        });
    }
    match object_kind {
        Some(kind) if !is_pvc(kind) => Err(ReviewError::WrongObject(kind.clone())),
        _ => Ok(()),
    }
}

/// Whether the JSON text is an object (serde would read a struct from an
/// array too).
fn is_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Read a review body into its request, or say plainly what is wrong with
/// it (for a 400 answer).
pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let review: ReviewIn = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ReviewError::NotJson(inner);
        }
        if !is_object(body) {
            return ReviewError::NotAnObject;
        }
        // A review of the wrong kind, or about another kind of object,
        // says so better than where its parse stopped.
        if let Ok(header) = serde_json::from_slice::<Header>(body)
            && let Err(wrong) = check_types(
                &header.api_version,
                &header.kind,
                header.request.as_ref().map(|r| &r.kind),
            )
        {
            return wrong;
        }
        if path == "." {
            ReviewError::NotAReview(inner)
        } else {
            ReviewError::Malformed {
                path,
                source: inner,
            }
        }
    })?;
    if !is_object(body) {
        return Err(ReviewError::NotAnObject);
    }
    check_types(
        &review.api_version,
        &review.kind,
        review.request.as_ref().map(|r| &r.kind),
    )?;
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    let needs_old = request.operation == "UPDATE";
    let needs_object = needs_old || request.operation == "CREATE";
    if needs_object && request.object.is_none() {
        return Err(ReviewError::NoObject(request.operation));
    }
    if needs_old && request.old_object.is_none() {
        return Err(ReviewError::NoOldObject);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
      "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"PersistentVolumeClaim"},
      "resource":{"group":"","version":"v1","resource":"persistentvolumeclaims"},
      "namespace":"shop","operation":"CREATE","userInfo":{"username":"me"},
      "object":{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"}},
      "oldObject":null,"dryRun":false}}"#;

    #[test]
    fn a_review_parses_and_a_bad_one_is_explained() {
        let request = parse(CREATE.as_bytes()).unwrap();
        assert_eq!(request.uid, "u1");
        assert_eq!(request.namespace.as_deref(), Some("shop"));
        assert!(request.object.is_some() && request.old_object.is_none());

        let pod = CREATE.replace(
            r#""kind":"PersistentVolumeClaim","metadata""#,
            r#""kind":"Pod","metadata""#,
        );
        let v1beta1 = CREATE.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1");
        let update = CREATE.replace("\"CREATE\"", "\"UPDATE\"");
        let cases = [
            ("{", "not JSON"),
            ("[1]", "not an AdmissionReview"),
            (
                &pod,
                "request.object: invalid value: string \"Pod\", expected PersistentVolumeClaim",
            ),
            (&v1beta1, "expected an admission.k8s.io/v1 AdmissionReview"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "no request",
            ),
            (&update, "no old object"),
        ];
        for (body, needle) in cases {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn a_denial_follows_the_documented_format() {
        let json = Response::deny("u1".into(), 403, "Forbidden", "no".into()).to_review_json();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["apiVersion"], API_VERSION);
        assert_eq!(value["kind"], KIND);
        assert_eq!(value["response"]["uid"], "u1");
        assert_eq!(value["response"]["allowed"], false);
        assert_eq!(value["response"]["status"]["code"], 403);
        assert_eq!(value["response"]["status"]["message"], "no");
        let allowed = Response::allow("u2".into(), vec!["careful".into()]).to_review_json();
        let value: serde_json::Value = serde_json::from_slice(&allowed).unwrap();
        assert_eq!(value["response"]["allowed"], true);
        assert_eq!(value["response"]["warnings"][0], "careful");
        assert!(value["response"].get("status").is_none());
    }
}
