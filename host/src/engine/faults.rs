//! Fault-injection points. In a build with the `fault-injection` feature
//! (tests only), the engine stops at the chosen point, says so on stderr and
//! waits to be killed, so that a test can SIGKILL it mid-operation. In
//! every other build the points compile to nothing.
//!
//! The points derive from the journal's types ([`OperationKind`],
//! [`Step`]): a step added to an operation is a point at once, and
//! [`FaultPoint::all`] lists every one for the crash tests.

use crate::model::journal::{OperationKind, Step};

/// A point where a test build can stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultPoint {
    /// The operation's journal entry is written, before its first effect
    /// (`create-volume:journaled`).
    Journaled(OperationKind),
    /// A step is marked done in the journal (`create-volume:bricks`).
    Done(OperationKind, Step),
    /// An added node answered the peer probe, before it is marked online
    /// (`add-node:probe`).
    Probed,
    /// The provisioner created a claim's volume, before it made the PV
    /// (`provision:volume-created`).
    VolumeCreated,
}

impl FaultPoint {
    /// Every point: each kind's journal entry, each step of each kind
    /// (forward and undoing), and the two points between operations.
    pub fn all() -> Vec<FaultPoint> {
        let mut points = Vec::new();
        for kind in OperationKind::ALL {
            points.push(FaultPoint::Journaled(kind));
            let undo = kind.undo().unwrap_or_default();
            for &step in kind.forward().iter().chain(undo) {
                let point = FaultPoint::Done(kind, step);
                if !points.contains(&point) {
                    points.push(point);
                }
            }
        }
        points.push(FaultPoint::Probed);
        points.push(FaultPoint::VolumeCreated);
        points
    }

    /// The points of one kind's steps going forward, its journal entry
    /// first: where a crash test stops that operation.
    pub fn forward(kind: OperationKind) -> Vec<FaultPoint> {
        std::iter::once(FaultPoint::Journaled(kind))
            .chain(kind.forward().iter().map(|&s| FaultPoint::Done(kind, s)))
            .collect()
    }
}

impl std::fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultPoint::Journaled(kind) => write!(f, "{kind}:journaled"),
            FaultPoint::Done(kind, step) => write!(f, "{kind}:{step}"),
            FaultPoint::Probed => f.write_str("add-node:probe"),
            FaultPoint::VolumeCreated => f.write_str("provision:volume-created"),
        }
    }
}

/// A name that is no fault point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' is not a fault point; the points are: {known}")]
pub struct UnknownFaultPoint {
    /// The name given.
    pub name: String,
    /// Every point's name, comma-separated.
    pub known: String,
}

impl std::str::FromStr for FaultPoint {
    type Err = UnknownFaultPoint;

    fn from_str(s: &str) -> Result<FaultPoint, UnknownFaultPoint> {
        FaultPoint::all()
            .into_iter()
            .find(|p| p.to_string() == s)
            .ok_or_else(|| {
                let known: Vec<String> = FaultPoint::all().iter().map(|p| p.to_string()).collect();
                UnknownFaultPoint {
                    name: s.to_owned(),
                    known: known.join(", "),
                }
            })
    }
}

/// Where to stop, if anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    at: Option<FaultPoint>,
}

impl Faults {
    /// Stop at `point`.
    #[cfg(feature = "fault-injection")]
    pub fn at(point: Option<FaultPoint>) -> Faults {
        Faults { at: point }
    }

    /// Called at each point.
    #[cfg(feature = "fault-injection")]
    pub fn reached(&self, point: FaultPoint) {
        if self.at == Some(point) {
            use std::io::Write;
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "aplo: fault point {point} reached; waiting to be killed"
            );
            let _ = err.flush();
            loop {
                std::thread::park();
            }
        }
    }

    /// Called at each point (no-op in this build).
    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub fn reached(&self, _point: FaultPoint) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_reads_back_from_its_name_and_names_are_unique() {
        let points = FaultPoint::all();
        let names: std::collections::BTreeSet<String> =
            points.iter().map(|p| p.to_string()).collect();
        assert_eq!(names.len(), points.len(), "{names:?}");
        for point in points {
            assert_eq!(point.to_string().parse::<FaultPoint>(), Ok(point));
        }
    }

    #[test]
    fn the_names_are_the_ones_crash_tests_and_operators_use() {
        let names: Vec<String> = FaultPoint::all().iter().map(|p| p.to_string()).collect();
        for name in [
            "create-volume:journaled",
            "create-volume:start",
            "create-volume:stop",
            "delete-volume:bricks",
            "expand-volume:add-bricks",
            "replace-brick:teardown",
            "add-node:probe",
            "remove-node:journaled",
            "provision:volume-created",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }

    #[test]
    fn an_unknown_point_is_refused_with_the_list() {
        let e = "create-volume:sleep"
            .parse::<FaultPoint>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'create-volume:sleep' is not a fault point"),
            "{e}"
        );
        assert!(e.contains("create-volume:bricks"), "{e}");
    }

    #[test]
    fn forward_points_start_with_the_journal_entry() {
        assert_eq!(
            FaultPoint::forward(OperationKind::ReplaceBrick)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "replace-brick:journaled",
                "replace-brick:brick",
                "replace-brick:replace",
                "replace-brick:teardown"
            ]
        );
    }
}
