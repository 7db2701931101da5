//! The domain: decision inputs and outputs, StorageClass parameters, and the
//! rules every policy answer must obey. Pure data and pure functions: nothing
//! here does I/O or knows about WebAssembly.

pub mod journal;
pub mod options;
pub mod params;
pub mod paths;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod topology;
pub mod validate;

pub use aplo_policy_types::size::{GIB, KIB, MIB, TIB, format_size, parse_size, round_up};
pub use aplo_policy_types::{
    AccessMode, Allowance, Brick, BrickRole, BrickSet, Claim, Cluster, Device, DurabilityDecision,
    Id, Info, Layout, Node, Pairs, PlacementRequest, QuotaRequest, Scheme, SettingDoc, State,
    Topology, Usage, consumed_bytes,
};
pub use params::{PolicyName, PolicySelection};

/// The decisions a policy can make.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// `settings.validate`: checking a policy's settings.
    Validate,
    /// `durability.decide`.
    Durability,
    /// `placement.place`.
    Placement,
    /// `quota.check`.
    Quota,
}

impl Decision {
    /// The decision's name as used in parameters, CLI flags and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Validate => "validate",
            Decision::Durability => "durability",
            Decision::Placement => "placement",
            Decision::Quota => "quota",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Decision`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown decision '{0}' (use durability, placement, quota or validate)")]
pub struct UnknownDecision(pub String);

impl std::str::FromStr for Decision {
    type Err = UnknownDecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "validate" => Ok(Decision::Validate),
            "durability" => Ok(Decision::Durability),
            "placement" => Ok(Decision::Placement),
            "quota" => Ok(Decision::Quota),
            other => Err(UnknownDecision(other.to_owned())),
        }
    }
}

/// A decision's answer: what the policy granted, or its refusal.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<T> {
    /// The policy answered, and the answer passed validation.
    Granted(T),
    /// The policy refused, with a reason for the user.
    Refused(String),
}

impl<T> Verdict<T> {
    /// The granted value, if any.
    pub fn granted(self) -> Option<T> {
        match self {
            Verdict::Granted(value) => Some(value),
            Verdict::Refused(_) => None,
        }
    }
}
