//! The workload file of a simulation: claims to play in order, and the
//! claims it expands to.

use serde::Deserialize;

use crate::model::{Claim, Pairs, parse_size};

/// A workload that cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// Not a workload: a field is unknown, missing or of the wrong type.
    #[error("the workload is not valid: {path}: {message}")]
    Invalid {
        /// The field's path, e.g. `claims[0]`.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A claim's size is not a size.
    #[error("claims[{index}].size: {message}")]
    Size {
        /// The claim's index in the file.
        index: usize,
        /// Why the size cannot be read.
        message: String,
    },
    /// More than [`MAX_CLAIMS`] claims.
    #[error("the workload has more than {MAX_CLAIMS} claims")]
    TooManyClaims,
}

/// A workload file: claims to play in order.
///
/// ```yaml
/// claims:
///   - {name: db, namespace: team-a, size: 50Gi, count: 4}
///   - {size: 10Gi, count: 20, parameters: {classes.class: arbiter}}
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The claims.
    pub claims: Vec<ClaimSpec>,
}

/// One line of a workload: `count` claims alike.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// A name prefix (default `claim`); claims are named `<name>-<n>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace (default `default`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Requested size, e.g. `10Gi`.
    pub size: String,
    /// How many such claims (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// StorageClass parameters for these claims, over the run's own.
    #[serde(default)]
    pub parameters: Pairs,
    /// Claim labels.
    #[serde(default)]
    pub labels: Pairs,
    /// Claim annotations.
    #[serde(default)]
    pub annotations: Pairs,
}

fn one() -> u32 {
    1
}

/// One claim of a workload, expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct SimClaim {
    /// Its name (also the volume name).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Requested bytes.
    pub bytes: u64,
    /// Parameters (the run's, overridden by the claim's).
    pub parameters: Pairs,
    /// Labels.
    pub labels: Pairs,
    /// Annotations.
    pub annotations: Pairs,
}

impl SimClaim {
    /// The claim as the policies see it.
    pub fn claim(&self) -> Claim {
        Claim {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            requested_bytes: self.bytes,
            access_modes: Vec::new(),
        }
    }
}

/// The most claims a workload may expand to.
pub const MAX_CLAIMS: usize = 1_000_000;

/// Parse a workload (JSON or YAML); errors name the field.
pub fn parse_workload(text: &str) -> Result<Workload, WorkloadError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| WorkloadError::Invalid {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    } else {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| WorkloadError::Invalid {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

/// Set the `placement`, `durability` and `quota` parameters of a run
/// that are given, over those in `parameters`.
pub fn choose_policies(
    parameters: &mut Pairs,
    placement: &Option<String>,
    durability: &Option<String>,
    quota: &Option<String>,
) {
    for (key, value) in [
        ("placement", placement),
        ("durability", durability),
        ("quota", quota),
    ] {
        if let Some(value) = value {
            parameters.insert(key.into(), value.clone());
        }
    }
}

/// Expand a workload into claims, with the run's parameters under each
/// claim's own.
pub fn expand(workload: &Workload, parameters: &Pairs) -> Result<Vec<SimClaim>, WorkloadError> {
    let mut claims = Vec::new();
    for (i, spec) in workload.claims.iter().enumerate() {
        let bytes =
            parse_size(&spec.size).map_err(|message| WorkloadError::Size { index: i, message })?;
        let prefix = spec.name.clone().unwrap_or_else(|| "claim".into());
        let mut merged = parameters.clone();
        merged.extend(spec.parameters.clone());
        for _ in 0..spec.count {
            if claims.len() >= MAX_CLAIMS {
                return Err(WorkloadError::TooManyClaims);
            }
            claims.push(SimClaim {
                name: format!("{prefix}-{}", claims.len() + 1),
                namespace: spec.namespace.clone().unwrap_or_else(|| "default".into()),
                bytes,
                parameters: merged.clone(),
                labels: spec.labels.clone(),
                annotations: spec.annotations.clone(),
            });
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GIB;

    #[test]
    fn workloads_expand_and_bad_ones_name_the_field() {
        let w = parse_workload(
            "claims:\n  - {name: db, size: 2Gi, count: 2, parameters: {classes.class: arbiter}}\n  - {size: 1Gi}\n",
        )
        .unwrap();
        let claims = expand(&w, &Pairs::from([("placement".into(), "binpack".into())])).unwrap();
        assert_eq!(claims.len(), 3);
        assert_eq!(claims[0].name, "db-1");
        assert_eq!(claims[2].name, "claim-3");
        assert_eq!(claims[1].bytes, 2 * GIB);
        assert_eq!(claims[0].parameters.len(), 2);
        assert_eq!(claims[2].namespace, "default");
        let err = parse_workload("claims:\n  - {size: 1Gi, colour: red}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("claims[0]") && err.contains("colour"), "{err}");
        let err = expand(
            &parse_workload("{\"claims\": [{\"size\": \"lots\"}]}").unwrap(),
            &Pairs::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("claims[0].size"), "{err}");
    }
}
