//! The operation journal: what a journaled operation does, which of its
//! steps are done, the order of those steps, and which way recovery takes
//! an operation a crash left unfinished.
//!
//! The serialized names (an operation's `kind`, a step's name) are what
//! stores hold. Renaming one breaks the recovery of a journal written
//! before: `host/tests/engine.rs` recovers stores kept under
//! `host/tests/data/journals/`, written by an earlier aplo.

mod record;

use serde::{Deserialize, Serialize};

pub use record::{JournalError, OperationRecord, Recovery};

use super::Id;

/// What a journaled operation does. Everything it needs to roll forward
/// or back is here or in the records it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Prepare a device (`pvcreate`, `vgcreate`, or a directory check). The
    /// device record is written with the journal entry, state `offline`,
    /// and goes online when the operation finishes.
    AddDevice {
        /// The device.
        device: Id,
        /// Whether existing signatures may be wiped.
        wipe: bool,
    },
    /// Release a device that holds no bricks.
    RemoveDevice {
        /// The device.
        device: Id,
    },
    /// Probe a node into its cluster's trusted pool. The node record is
    /// written with the journal entry, state `offline`, and goes online
    /// when the operation finishes.
    AddNode {
        /// The node.
        node: Id,
    },
    /// Detach a node that has no devices from the pool, then forget it.
    RemoveNode {
        /// The node.
        node: Id,
    },
    /// Create a volume: its record and bricks are in the store (state
    /// `creating`), reserving their space.
    CreateVolume {
        /// The volume.
        volume: Id,
    },
    /// Delete a volume and all its bricks.
    DeleteVolume {
        /// The volume.
        volume: Id,
    },
    /// Grow a volume. Bricks in `grown` keep their ids and grow in place;
    /// bricks in `added` are new records of the volume, added as brick sets.
    ExpandVolume {
        /// The volume.
        volume: Id,
        /// Usable bytes before.
        from_bytes: u64,
        /// Usable bytes after.
        to_bytes: u64,
        /// Bricks grown in place, with their sizes before: `(brick, bytes, consumed)`.
        grown: Vec<(Id, u64, u64)>,
        /// New bricks.
        added: Vec<Id>,
        /// The quota hard limit after the expansion, if any.
        #[serde(default)]
        hard_limit: Option<u64>,
    },
    /// Move one brick of a volume to another device (`replace-brick`). The
    /// new brick's record is written with the journal entry, reserving its
    /// space; the old one's is dropped when the operation finishes.
    ReplaceBrick {
        /// The volume.
        volume: Id,
        /// The brick leaving.
        old: Id,
        /// The brick taking its place (same set, position and role).
        new: Id,
    },
}

impl Operation {
    /// Its kind, without its data.
    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::AddDevice { .. } => OperationKind::AddDevice,
            Operation::RemoveDevice { .. } => OperationKind::RemoveDevice,
            Operation::AddNode { .. } => OperationKind::AddNode,
            Operation::RemoveNode { .. } => OperationKind::RemoveNode,
            Operation::CreateVolume { .. } => OperationKind::CreateVolume,
            Operation::DeleteVolume { .. } => OperationKind::DeleteVolume,
            Operation::ExpandVolume { .. } => OperationKind::ExpandVolume,
            Operation::ReplaceBrick { .. } => OperationKind::ReplaceBrick,
        }
    }

    /// A short name, for logs and reports (the journal's `kind`).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The volume it concerns, if any.
    pub fn volume(&self) -> Option<Id> {
        match self {
            Operation::CreateVolume { volume }
            | Operation::DeleteVolume { volume }
            | Operation::ExpandVolume { volume, .. }
            | Operation::ReplaceBrick { volume, .. } => Some(*volume),
            Operation::AddDevice { .. }
            | Operation::RemoveDevice { .. }
            | Operation::AddNode { .. }
            | Operation::RemoveNode { .. } => None,
        }
    }

    /// The record it keeps busy while it runs: its volume, device or node.
    pub fn subject(&self) -> Id {
        match *self {
            Operation::AddDevice { device, .. } | Operation::RemoveDevice { device } => device,
            Operation::AddNode { node } | Operation::RemoveNode { node } => node,
            Operation::CreateVolume { volume }
            | Operation::DeleteVolume { volume }
            | Operation::ExpandVolume { volume, .. }
            | Operation::ReplaceBrick { volume, .. } => volume,
        }
    }
}

/// An operation's kind, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationKind {
    /// [`Operation::AddDevice`].
    AddDevice,
    /// [`Operation::RemoveDevice`].
    RemoveDevice,
    /// [`Operation::AddNode`].
    AddNode,
    /// [`Operation::RemoveNode`].
    RemoveNode,
    /// [`Operation::CreateVolume`].
    CreateVolume,
    /// [`Operation::DeleteVolume`].
    DeleteVolume,
    /// [`Operation::ExpandVolume`].
    ExpandVolume,
    /// [`Operation::ReplaceBrick`].
    ReplaceBrick,
}

/// What each kind journals, going forward and undoing: (kind, name,
/// forward steps, undo steps). `None` for the undo: it is not journaled
/// step by step (one store transaction after idempotent effects), and the
/// record keeps the forward steps done when the undo began.
type Journaled = (
    OperationKind,
    &'static str,
    &'static [Step],
    Option<&'static [Step]>,
);

/// A volume's teardown: deleting it, or undoing its create.
const TEARDOWN: &[Step] = &[Step::Stop, Step::Delete, Step::Bricks];

const KINDS: [Journaled; 8] = [
    (OperationKind::AddDevice, "add-device", &[], None),
    (OperationKind::RemoveDevice, "remove-device", &[], None),
    (OperationKind::AddNode, "add-node", &[], None),
    (OperationKind::RemoveNode, "remove-node", &[], None),
    (
        OperationKind::CreateVolume,
        "create-volume",
        &[
            Step::Bricks,
            Step::Volume,
            Step::Options,
            Step::Start,
            Step::Quota,
        ],
        Some(TEARDOWN),
    ),
    (OperationKind::DeleteVolume, "delete-volume", TEARDOWN, None),
    (
        OperationKind::ExpandVolume,
        "expand-volume",
        &[
            Step::Grow,
            Step::Bricks,
            Step::AddBricks,
            Step::Rebalance,
            Step::Quota,
        ],
        None,
    ),
    (
        OperationKind::ReplaceBrick,
        "replace-brick",
        &[Step::Brick, Step::Replace, Step::Teardown],
        None,
    ),
];

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 8] = [
        OperationKind::AddDevice,
        OperationKind::RemoveDevice,
        OperationKind::AddNode,
        OperationKind::RemoveNode,
        OperationKind::CreateVolume,
        OperationKind::DeleteVolume,
        OperationKind::ExpandVolume,
        OperationKind::ReplaceBrick,
    ];

    fn journaled(self) -> &'static Journaled {
        KINDS
            .iter()
            .find(|k| k.0 == self)
            .expect("every kind is in the table")
    }

    /// Its name, as the journal's `kind` (`create-volume`).
    pub fn as_str(self) -> &'static str {
        self.journaled().1
    }

    /// The steps it journals going forward, in order. An operation runs
    /// those its plan needs (an expansion in place only grows).
    pub fn forward(self) -> &'static [Step] {
        self.journaled().2
    }

    /// The steps its undo journals, in order, when the undo is journaled
    /// step by step.
    pub fn undo(self) -> Option<&'static [Step]> {
        self.journaled().3
    }
}

impl std::fmt::Display for OperationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A journaled step. Each is marked done in the operation's record once
/// its effects are applied; a step marked done is never run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Create (or destroy, tearing down) the bricks.
    Bricks,
    /// `volume create`.
    Volume,
    /// `volume set`.
    Options,
    /// `volume start`.
    Start,
    /// The quota's hard limit.
    Quota,
    /// `volume stop`.
    Stop,
    /// `volume delete`.
    Delete,
    /// Grow bricks in place.
    Grow,
    /// `volume add-brick`.
    AddBricks,
    /// `volume rebalance … start`.
    Rebalance,
    /// Create the new brick of a replacement.
    Brick,
    /// `volume replace-brick`.
    Replace,
    /// Destroy the brick that left.
    Teardown,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 13] = [
        Step::Bricks,
        Step::Volume,
        Step::Options,
        Step::Start,
        Step::Quota,
        Step::Stop,
        Step::Delete,
        Step::Grow,
        Step::AddBricks,
        Step::Rebalance,
        Step::Brick,
        Step::Replace,
        Step::Teardown,
    ];

    /// Its name, as the journal keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Bricks => "bricks",
            Step::Volume => "volume",
            Step::Options => "options",
            Step::Start => "start",
            Step::Quota => "quota",
            Step::Stop => "stop",
            Step::Delete => "delete",
            Step::Grow => "grow",
            Step::AddBricks => "add-bricks",
            Step::Rebalance => "rebalance",
            Step::Brick => "brick",
            Step::Replace => "replace",
            Step::Teardown => "teardown",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn record(
        operation: Operation,
        done: &[Step],
        rolling_back: bool,
    ) -> OperationRecord {
        OperationRecord {
            done: done.to_vec(),
            rolling_back,
            ..OperationRecord::new(Id(1), operation)
        }
    }

    pub(super) fn create() -> Operation {
        Operation::CreateVolume { volume: Id(2) }
    }

    pub(super) fn expand(grown: bool, added: bool) -> Operation {
        Operation::ExpandVolume {
            volume: Id(2),
            from_bytes: 1,
            to_bytes: 2,
            grown: if grown { vec![(Id(3), 1, 1)] } else { vec![] },
            added: if added { vec![Id(4)] } else { vec![] },
            hard_limit: None,
        }
    }

    pub(super) fn replace() -> Operation {
        Operation::ReplaceBrick {
            volume: Id(2),
            old: Id(3),
            new: Id(4),
        }
    }

    #[test]
    fn the_serialized_names_are_the_ones_stores_hold() {
        let names: Vec<String> = Step::ALL
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "bricks",
                "volume",
                "options",
                "start",
                "quota",
                "stop",
                "delete",
                "grow",
                "add-bricks",
                "rebalance",
                "brick",
                "replace",
                "teardown"
            ]
        );
        for step in Step::ALL {
            assert_eq!(serde_json::to_value(step).unwrap(), step.as_str());
        }
        let kind = serde_json::to_value(create()).unwrap();
        assert_eq!(kind["kind"], "create-volume");
        assert_eq!(
            serde_json::from_str::<OperationRecord>(
                r#"{"id":"00000000000000000000000000000001","operation":{"kind":"create-volume","volume":"00000000000000000000000000000002"},"done":["bricks","volume"],"rolling_back":false}"#
            )
            .unwrap(),
            record(create(), &[Step::Bricks, Step::Volume], false)
        );
    }

    #[test]
    fn an_unknown_step_in_a_stored_record_is_refused_by_name() {
        let e = serde_json::from_str::<OperationRecord>(
            r#"{"id":"00000000000000000000000000000001","operation":{"kind":"create-volume","volume":"00000000000000000000000000000002"},"done":["bricks","mount"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `mount`"), "{e}");
    }

    #[test]
    fn every_kind_has_a_name_and_its_operation_says_it() {
        let ops = [
            Operation::AddDevice {
                device: Id(1),
                wipe: false,
            },
            Operation::RemoveDevice { device: Id(1) },
            Operation::AddNode { node: Id(1) },
            Operation::RemoveNode { node: Id(1) },
            create(),
            Operation::DeleteVolume { volume: Id(1) },
            expand(false, true),
            replace(),
        ];
        for (op, kind) in ops.iter().zip(OperationKind::ALL) {
            assert_eq!(op.kind(), kind);
            assert_eq!(serde_json::to_value(op).unwrap()["kind"], kind.as_str());
        }
    }
}
