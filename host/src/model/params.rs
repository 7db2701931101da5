//! StorageClass parameters that choose policies.
//!
//! - `placement`, `durability`, `quota`: the policy name for each decision
//!   (defaults: `zone-spread`, `classes`, and no quota policy).
//! - `<policy>.<key>`: a setting passed to that policy as `<key>`.
//! - Any other key without a dot is a host parameter, returned to the caller
//!   to check (later layers define them).

use std::collections::BTreeMap;
use std::fmt;

use super::{Decision, Pairs};

/// A policy's name: 1 to 63 characters of `a-z`, `0-9` and `-`, starting
/// with a letter or digit. It is also the policy's file stem in the policy
/// directory, so it can never name a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PolicyName(String);

impl PolicyName {
    /// Check and wrap a name.
    pub fn new(name: &str) -> Result<PolicyName, ParamError> {
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if valid {
            Ok(PolicyName(name.to_owned()))
        } else {
            Err(ParamError::BadPolicyName(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which policies decide for a StorageClass, with their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySelection {
    /// The placement policy.
    pub placement: PolicyName,
    /// The durability policy.
    pub durability: PolicyName,
    /// The quota policy; `None` admits every claim.
    pub quota: Option<PolicyName>,
    /// Settings per policy name, prefix removed.
    pub settings: BTreeMap<PolicyName, Pairs>,
    /// Parameters that are not about policies.
    pub host: Pairs,
}

/// A StorageClass parameter problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A policy name that breaks the naming rule.
    #[error("'{}' is not a valid policy name (use 1-63 characters of a-z, 0-9 and '-')", .0.escape_debug())]
    BadPolicyName(String),
    /// A `<policy>.<key>` entry for a policy that is not selected.
    #[error(
        "parameter '{}' configures policy '{policy}', which this class does not use (it uses {selected})",
        key.escape_debug()
    )]
    NotSelected {
        /// The parameter key.
        key: String,
        /// The policy it names.
        policy: String,
        /// The policies the class uses.
        selected: String,
    },
    /// A `<policy>.` entry with an empty setting key.
    #[error("parameter '{}' has no setting name after the policy name", .0.escape_debug())]
    EmptySetting(String),
}

impl PolicySelection {
    /// The placement policy used when a class names none.
    pub const DEFAULT_PLACEMENT: &'static str = "zone-spread";
    /// The durability policy used when a class names none.
    pub const DEFAULT_DURABILITY: &'static str = "classes";

    /// Read the parameters of a StorageClass.
    pub fn from_parameters(parameters: &Pairs) -> Result<PolicySelection, ParamError> {
        let name = |key: &str, default: Option<&str>| -> Result<Option<PolicyName>, ParamError> {
            parameters
                .get(key)
                .map(String::as_str)
                .or(default)
                .map(PolicyName::new)
                .transpose()
        };
        let placement = name("placement", Some(Self::DEFAULT_PLACEMENT))?.expect("has a default");
        let durability =
            name("durability", Some(Self::DEFAULT_DURABILITY))?.expect("has a default");
        let quota = name("quota", None)?;
        let mut selection = PolicySelection {
            placement,
            durability,
            quota,
            settings: BTreeMap::new(),
            host: Pairs::new(),
        };
        for (key, value) in parameters {
            if matches!(key.as_str(), "placement" | "durability" | "quota") {
                continue;
            }
            let Some((policy, setting)) = key.split_once('.') else {
                selection.host.insert(key.clone(), value.clone());
                continue;
            };
            if setting.is_empty() {
                return Err(ParamError::EmptySetting(key.clone()));
            }
            let policy = PolicyName::new(policy)?;
            if !selection.uses(&policy) {
                return Err(ParamError::NotSelected {
                    key: key.clone(),
                    policy: policy.to_string(),
                    selected: selection
                        .names()
                        .iter()
                        .map(|(d, n)| format!("{d}={n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            selection
                .settings
                .entry(policy)
                .or_default()
                .insert(setting.to_owned(), value.clone());
        }
        Ok(selection)
    }

    /// The policy for each decision this class makes.
    pub fn names(&self) -> Vec<(Decision, &PolicyName)> {
        let mut names = vec![
            (Decision::Durability, &self.durability),
            (Decision::Placement, &self.placement),
        ];
        if let Some(quota) = &self.quota {
            names.push((Decision::Quota, quota));
        }
        names
    }

    /// Whether `policy` decides anything for this class.
    pub fn uses(&self, policy: &PolicyName) -> bool {
        self.names().iter().any(|(_, name)| *name == policy)
    }

    /// The settings for `policy` (empty when none were given).
    pub fn settings_for(&self, policy: &PolicyName) -> Pairs {
        self.settings.get(policy).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::pairs;

    #[test]
    fn defaults_and_settings_are_read() {
        let s = PolicySelection::from_parameters(&pairs(&[
            ("quota", "namespace-quota"),
            ("namespace-quota.max-bytes", "10Gi"),
            ("zone-spread.strict", "true"),
            ("volumeSource", "csi"),
        ]))
        .unwrap();
        assert_eq!(s.placement.as_str(), "zone-spread");
        assert_eq!(s.durability.as_str(), "classes");
        assert_eq!(
            s.quota.as_ref().map(PolicyName::as_str),
            Some("namespace-quota")
        );
        assert_eq!(
            s.settings_for(&PolicyName::new("zone-spread").unwrap())
                .get("strict")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(s.host.get("volumeSource").map(String::as_str), Some("csi"));
    }

    #[test]
    fn settings_for_unused_policies_and_bad_names_are_refused() {
        let err = PolicySelection::from_parameters(&pairs(&[("binpack.x", "1")])).unwrap_err();
        assert!(
            err.to_string().contains("'binpack.x'")
                && err.to_string().contains("placement=zone-spread"),
            "{err}"
        );
        let err = PolicySelection::from_parameters(&pairs(&[("placement", "../etc/passwd")]))
            .unwrap_err();
        assert_eq!(err, ParamError::BadPolicyName("../etc/passwd".into()));
        assert!(PolicySelection::from_parameters(&pairs(&[("zone-spread.", "1")])).is_err());
        assert!(PolicyName::new("-x").is_err() && PolicyName::new(&"a".repeat(64)).is_err());
        // Names are quoted escaped: an escape sequence or a bidi override
        // in a parameter acts on no terminal.
        let err = PolicyName::new("x\u{1b}[2J\u{202e}")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("'x\\u{1b}[2J\\u{202e}'"), "{err}");
    }
}
