//! A journaled operation's record: which of its steps are done, whether
//! they are in the operation's order, and which way recovery takes it.

use serde::{Deserialize, Serialize};

use super::{Operation, OperationKind, Step};
use crate::model::Id;

/// A journal record aplo would not have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// A step is marked done that is not one of the operation's steps in
    /// its current direction, or is out of their order, or is there twice.
    #[error(
        "{operation} {id}{} has step '{step}' marked done out of place; its steps are, in order: {}",
        if *.undoing { " (undoing)" } else { "" },
        in_order(.steps)
    )]
    StepOutOfPlace {
        /// The operation's kind.
        operation: OperationKind,
        /// The record's id.
        id: Id,
        /// Whether the record is being undone.
        undoing: bool,
        /// The step out of place.
        step: Step,
        /// The steps the record may mark done, in order.
        steps: &'static [Step],
    },
}

/// Steps as a list for a message: `bricks, volume`, or `none`.
fn in_order(steps: &[Step]) -> String {
    if steps.is_empty() {
        "none".to_owned()
    } else {
        let order: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
        order.join(", ")
    }
}

/// An unfinished operation, written before its first side effect and
/// removed in the same transaction as its last store change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRecord {
    /// Id.
    pub id: Id,
    /// What it does.
    pub operation: Operation,
    /// The steps completed so far, in order.
    #[serde(default)]
    pub done: Vec<Step>,
    /// Set once the operation is being undone.
    #[serde(default)]
    pub rolling_back: bool,
}

/// Which way recovery takes an unfinished operation, judged from its
/// journal alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Finish it.
    Forward,
    /// Undo it.
    Back,
    /// Try to finish it; undo it if that fails.
    ForwardElseBack,
    /// Only gluster knows whether it took the operation's change: finish
    /// it if gluster did, undo it if not.
    AskGluster,
}

impl OperationRecord {
    /// A new record: nothing done yet, going forward.
    pub fn new(id: Id, operation: Operation) -> OperationRecord {
        OperationRecord {
            id,
            operation,
            done: Vec::new(),
            rolling_back: false,
        }
    }

    /// Whether `step` is marked done.
    pub fn has_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// The steps the record may mark done in its current direction: the
    /// undo's when the undo is journaled step by step, else the forward
    /// ones.
    pub fn steps(&self) -> &'static [Step] {
        let kind = self.operation.kind();
        match kind.undo() {
            Some(undo) if self.rolling_back => undo,
            _ => kind.forward(),
        }
    }

    /// Check that the steps marked done are steps of the operation, in
    /// its order, each once: a journal that says otherwise was not
    /// written by aplo, and recovering it would guess.
    pub fn check(&self) -> Result<(), JournalError> {
        let steps = self.steps();
        let mut next = 0;
        for step in &self.done {
            match steps[next..].iter().position(|s| s == step) {
                Some(at) => next += at + 1,
                None => {
                    return Err(JournalError::StepOutOfPlace {
                        operation: self.operation.kind(),
                        id: self.id,
                        undoing: self.rolling_back,
                        step: *step,
                        steps,
                    });
                }
            }
        }
        Ok(())
    }

    /// Which way recovery takes it. A create is finished once its volume
    /// started, and undone before; a delete always goes forward; an
    /// expansion by new brick sets is undone until gluster has them; a
    /// replacement is finished once gluster replaced the brick, undone
    /// before it made the new one, and otherwise only gluster knows; an
    /// added device or node goes forward unless it cannot.
    pub fn recovery(&self) -> Recovery {
        match &self.operation {
            Operation::CreateVolume { .. } => {
                if self.has_done(Step::Start) && !self.rolling_back {
                    Recovery::ForwardElseBack
                } else {
                    Recovery::Back
                }
            }
            Operation::DeleteVolume { .. }
            | Operation::RemoveDevice { .. }
            | Operation::RemoveNode { .. } => Recovery::Forward,
            Operation::AddDevice { .. } | Operation::AddNode { .. } => Recovery::ForwardElseBack,
            Operation::ExpandVolume { .. } => {
                if self.expansion_undoable() {
                    Recovery::Back
                } else {
                    Recovery::Forward
                }
            }
            Operation::ReplaceBrick { .. } => {
                if self.replaced() {
                    Recovery::Forward
                } else if self.rolling_back || !self.has_done(Step::Brick) {
                    Recovery::Back
                } else {
                    Recovery::AskGluster
                }
            }
        }
    }

    /// Whether an expansion can still be undone: it adds brick sets and
    /// gluster has not taken them yet (growing in place only goes forward).
    pub fn expansion_undoable(&self) -> bool {
        match &self.operation {
            Operation::ExpandVolume { added, grown, .. } => {
                grown.is_empty()
                    && !added.is_empty()
                    && (self.rolling_back || !self.has_done(Step::AddBricks))
            }
            _ => false,
        }
    }

    /// Whether a replacement is past gluster's `replace-brick`.
    pub fn replaced(&self) -> bool {
        !self.rolling_back && self.has_done(Step::Replace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{create, expand, record, replace};
    use super::*;

    #[test]
    fn recovery_follows_the_journal() {
        use Recovery::*;
        use Step::*;
        let rows: Vec<(&str, OperationRecord, Recovery)> = vec![
            ("create, nothing done", record(create(), &[], false), Back),
            (
                "create, volume not started",
                record(create(), &[Bricks, Volume, Options], false),
                Back,
            ),
            (
                "create, started",
                record(create(), &[Bricks, Volume, Options, Start], false),
                ForwardElseBack,
            ),
            ("create, undoing", record(create(), &[Stop], true), Back),
            (
                "delete",
                record(Operation::DeleteVolume { volume: Id(2) }, &[Stop], false),
                Forward,
            ),
            (
                "expand by new sets, bricks made",
                record(expand(false, true), &[Bricks], false),
                Back,
            ),
            (
                "expand by new sets, gluster has them",
                record(expand(false, true), &[Bricks, AddBricks], false),
                Forward,
            ),
            (
                "expand by new sets, undoing after add-bricks",
                record(expand(false, true), &[Bricks, AddBricks], true),
                Back,
            ),
            (
                "expand in place",
                record(expand(true, false), &[], false),
                Forward,
            ),
            (
                "expand in place and by sets",
                record(expand(true, true), &[], false),
                Forward,
            ),
            ("replace, nothing done", record(replace(), &[], false), Back),
            (
                "replace, new brick made",
                record(replace(), &[Brick], false),
                AskGluster,
            ),
            (
                "replace, replaced",
                record(replace(), &[Brick, Replace], false),
                Forward,
            ),
            ("replace, undoing", record(replace(), &[Brick], true), Back),
            (
                "add device",
                record(
                    Operation::AddDevice {
                        device: Id(5),
                        wipe: false,
                    },
                    &[],
                    false,
                ),
                ForwardElseBack,
            ),
            (
                "remove device",
                record(Operation::RemoveDevice { device: Id(5) }, &[], false),
                Forward,
            ),
            (
                "add node",
                record(Operation::AddNode { node: Id(6) }, &[], false),
                ForwardElseBack,
            ),
            (
                "remove node",
                record(Operation::RemoveNode { node: Id(6) }, &[], false),
                Forward,
            ),
        ];
        for (name, record, want) in rows {
            assert_eq!(record.recovery(), want, "{name}");
            assert_eq!(record.check(), Ok(()), "{name}");
        }
    }

    #[test]
    fn check_refuses_steps_out_of_place() {
        use Step::*;
        let rows: Vec<(&str, OperationRecord, &str)> = vec![
            (
                "a step of another operation",
                record(create(), &[Bricks, Grow], false),
                "step 'grow' marked done out of place; its steps are, in order: bricks, volume, options, start, quota",
            ),
            (
                "out of order",
                record(create(), &[Volume, Bricks], false),
                "step 'bricks' marked done out of place",
            ),
            (
                "twice",
                record(create(), &[Bricks, Bricks], false),
                "step 'bricks' marked done out of place",
            ),
            (
                "a forward step while the undo is journaled",
                record(create(), &[Start], true),
                "create-volume 00000000000000000000000000000001 (undoing) has step 'start'",
            ),
            (
                "a step of an operation without steps",
                record(Operation::RemoveNode { node: Id(6) }, &[Stop], false),
                "its steps are, in order: none",
            ),
        ];
        for (name, record, want) in rows {
            let e = record.check().unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
