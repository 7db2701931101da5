//! The decision types of aplo's policy contract (`wit/0.1.0/policy.wit`) in
//! plain Rust, shared by the guest SDK and the host.
//!
//! Their JSON form (snake_case fields, unknown fields refused) is the format of
//! golden-file test cases, read by the native test runner and by the host
//! alike, so the two sides share one definition and cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Key/value pairs: labels, annotations, tags, settings or volume options.
pub type Pairs = BTreeMap<String, String>;

/// A 128-bit id of a cluster, node or device, written as 32 lowercase hex
/// characters (the form heketi uses).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub u128);

impl Id {
    /// The high and low halves, as the WIT `id` record carries them.
    pub fn halves(self) -> (u64, u64) {
        ((self.0 >> 64) as u64, self.0 as u64)
    }

    /// An id from its halves.
    pub fn from_halves(hi: u64, lo: u64) -> Id {
        Id((u128::from(hi) << 64) | u128::from(lo))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::str::FromStr for Id {
    type Err = String;

    fn from_str(s: &str) -> Result<Id, String> {
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("'{s}' is not an id (32 lowercase hex characters)"));
        }
        u128::from_str_radix(s, 16)
            .map(Id)
            .map_err(|e| e.to_string())
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a claim may be mounted, named as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessMode {
    /// `ReadWriteOnce`.
    ReadWriteOnce,
    /// `ReadOnlyMany`.
    ReadOnlyMany,
    /// `ReadWriteMany`.
    ReadWriteMany,
    /// `ReadWriteOncePod`.
    ReadWriteOncePod,
}

/// The claim a decision is made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Namespace; empty for REST API requests.
    #[serde(default)]
    pub namespace: String,
    /// Claim or volume name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: Pairs,
    /// Annotations.
    #[serde(default)]
    pub annotations: Pairs,
    /// Requested size in bytes.
    pub requested_bytes: u64,
    /// Requested access modes.
    #[serde(default)]
    pub access_modes: Vec<AccessMode>,
}

/// How a volume survives failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scheme {
    /// One brick per set.
    None,
    /// `count` full copies; with `arbiter` the third copy holds metadata only.
    Replicate {
        /// Copies per set.
        count: u8,
        /// Whether the last brick of each set is an arbiter.
        #[serde(default)]
        arbiter: bool,
    },
    /// Erasure coding with `data` + `redundancy` bricks per set.
    Disperse {
        /// Data bricks per set.
        data: u8,
        /// Redundancy bricks per set.
        redundancy: u8,
    },
}

impl Scheme {
    /// Bricks in one set.
    pub fn set_size(&self) -> usize {
        match *self {
            Scheme::None => 1,
            Scheme::Replicate { count, .. } => usize::from(count),
            Scheme::Disperse { data, redundancy } => usize::from(data) + usize::from(redundancy),
        }
    }

    /// How many bytes of usable volume one set gives per byte of data brick.
    pub fn data_multiplier(&self) -> u64 {
        match *self {
            Scheme::None | Scheme::Replicate { .. } => 1,
            Scheme::Disperse { data, .. } => u64::from(data),
        }
    }

    /// Whether the last brick of each set is an arbiter.
    pub fn has_arbiter(&self) -> bool {
        matches!(self, Scheme::Replicate { arbiter: true, .. })
    }
}

/// State of a node or device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In service.
    Online,
    /// Out of service by an admin.
    Offline,
    /// Failed.
    Failed,
}

/// A device that can hold bricks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// aplo's id.
    pub id: Id,
    /// State.
    pub state: State,
    /// Capacity in bytes.
    pub total_bytes: u64,
    /// Unallocated bytes.
    pub free_bytes: u64,
    /// Bricks on the device now.
    #[serde(default)]
    pub brick_count: u32,
    /// Admin tags.
    #[serde(default)]
    pub tags: Pairs,
}

/// A storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// aplo's id.
    pub id: Id,
    /// Manage hostname.
    pub hostname: String,
    /// Failure zone.
    pub zone: String,
    /// State.
    pub state: State,
    /// Admin tags.
    #[serde(default)]
    pub tags: Pairs,
    /// Devices.
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// A trusted storage pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// aplo's id.
    pub id: Id,
    /// Nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
}

/// What a placement policy may place bricks on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Clusters.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
}

/// Space and volumes in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Bytes provisioned.
    pub bytes: u64,
    /// Volumes.
    pub volumes: u32,
}

/// Documentation of one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDoc {
    /// Key without the `<policy>.` prefix.
    pub key: String,
    /// What it does and which values it takes.
    pub description: String,
    /// Default value, if any.
    #[serde(default)]
    pub default: Option<String>,
}

/// What a policy says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Info {
    /// One-line description.
    pub description: String,
    /// The policy's own version.
    pub version: String,
    /// Settings understood.
    #[serde(default)]
    pub settings: Vec<SettingDoc>,
}

/// A durability decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurabilityDecision {
    /// How the volume is protected.
    pub scheme: Scheme,
    /// Gluster volume options to set.
    #[serde(default)]
    pub volume_options: Pairs,
    /// Snapshot reserve factor, 1.0 for none.
    #[serde(default = "one")]
    pub snapshot_reserve: f64,
}

fn one() -> f64 {
    1.0
}

/// What is to be placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// Volume name, for messages.
    pub volume_name: String,
    /// Usable bytes needed at least.
    pub bytes: u64,
    /// Durability chosen.
    pub scheme: Scheme,
    /// Snapshot reserve factor: a brick of `b` bytes consumes `ceil(b * f)`.
    #[serde(default = "one")]
    pub snapshot_reserve: f64,
    /// Preferred zone for the first brick of each set.
    #[serde(default)]
    pub preferred_zone: Option<String>,
    /// Preferred node (hostname) for the first brick of each set.
    #[serde(default)]
    pub preferred_node: Option<String>,
}

impl PlacementRequest {
    /// Bytes a brick of `brick_bytes` consumes on its device.
    pub fn consumed(&self, brick_bytes: u64) -> u64 {
        consumed_bytes(brick_bytes, self.snapshot_reserve)
    }
}

/// Bytes a brick of `brick_bytes` consumes with a snapshot reserve factor.
pub fn consumed_bytes(brick_bytes: u64, reserve: f64) -> u64 {
    if reserve <= 1.0 || !reserve.is_finite() {
        return brick_bytes;
    }
    let scaled = (brick_bytes as f64 * reserve).ceil();
    if scaled >= u64::MAX as f64 {
        u64::MAX
    } else {
        scaled as u64
    }
}

/// What a brick is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrickRole {
    /// Holds data.
    Data,
    /// Holds metadata only.
    Arbiter,
}

/// One brick to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brick {
    /// Device id.
    pub device: Id,
    /// Usable size in bytes.
    pub bytes: u64,
    /// Data or arbiter.
    #[serde(default = "data_role")]
    pub role: BrickRole,
}

fn data_role() -> BrickRole {
    BrickRole::Data
}

/// Bricks that protect each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrickSet {
    /// Bricks in gluster's order; an arbiter comes last.
    pub bricks: Vec<Brick>,
}

/// Where a volume's bricks go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Brick sets.
    pub sets: Vec<BrickSet>,
    /// Whether no two bricks of a set may share a zone.
    #[serde(default)]
    pub strict_zones: bool,
}

/// What a quota policy checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRequest {
    /// The claim, with its new requested size.
    pub claim: Claim,
    /// Current size: 0 for a new claim.
    #[serde(default)]
    pub current_bytes: u64,
    /// Namespace usage, excluding this claim.
    #[serde(default)]
    pub namespace_usage: Usage,
    /// Cluster usage, excluding this claim.
    #[serde(default)]
    pub cluster_usage: Usage,
}

/// An allowed claim.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// Hard limit for the gluster quota, in bytes.
    #[serde(default)]
    pub hard_limit: Option<u64>,
}

impl Info {
    /// An `Info` with no settings documented yet.
    pub fn new(description: impl Into<String>, version: impl Into<String>) -> Info {
        Info {
            description: description.into(),
            version: version.into(),
            settings: Vec::new(),
        }
    }

    /// Document a setting.
    pub fn setting(mut self, key: &str, description: &str, default: Option<&str>) -> Info {
        self.settings.push(SettingDoc {
            key: key.to_owned(),
            description: description.to_owned(),
            default: default.map(str::to_owned),
        });
        self
    }
}

impl DurabilityDecision {
    /// A decision with no volume options and no snapshot reserve.
    pub fn new(scheme: Scheme) -> DurabilityDecision {
        DurabilityDecision {
            scheme,
            volume_options: Pairs::new(),
            snapshot_reserve: 1.0,
        }
    }
}

#[cfg(feature = "golden")]
pub mod golden;
pub mod size;
