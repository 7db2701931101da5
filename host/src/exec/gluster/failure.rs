//! What a failed gluster command means, decided once, here, from the words
//! and error numbers glusterfs 10.3 really prints (each case is captured
//! under `tests/data/gluster/`). Callers match on [`Failure`], never on
//! gluster's text.
//!
//! Every pattern is anchored: the whole message is gluster's sentence with
//! only the volume or host name free, and that name is one word. A message
//! that merely contains a phrase is [`Failure::Other`].

/// gluster's `EG_ANOTRANS`: another transaction holds the lock.
const ERRNO_ANOTHER_TRANSACTION: i32 = 30802;

/// gluster's `EG_NOVOL`: the volume does not exist (`volume info NAME`).
const ERRNO_NO_VOLUME: i32 = 30806;

/// What a failure of a gluster command means to the one who ran it.
///
/// There is no "already stopped": `volume stop NAME force` (the only stop
/// aplo runs) succeeds on a stopped volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `Volume NAME already exists` (`volume create`).
    AlreadyExists,
    /// `Volume NAME does not exist` (`volume start|stop|delete`), or
    /// `Volume does not exist` with errno 30806 (`volume info NAME`).
    NotFound,
    /// `HOST is not part of cluster` (`peer detach` of a host the pool
    /// does not have).
    NotAPeer,
    /// The cluster lock is taken: `Another transaction is in progress for
    /// NAME. Please try again after some time.` (errno 30802) on the node
    /// asked, or `Locking failed on HOST. Please check log file for
    /// details.` from a peer. Worth retrying with backoff.
    Busy,
    /// `Volume NAME already started` (`volume start` without `force`).
    AlreadyStarted,
    /// `Rebalance on NAME is already started` (`volume rebalance NAME
    /// start` while one runs).
    RebalanceRunning,
    /// `No volumes present`: how `volume info` answers without `--xml`
    /// when there are none. With `--xml`, glusterfs 10.3 answers with an
    /// empty list instead (`volume-info-none.xml`); the case is kept for
    /// CLIs that say it as a failure.
    NoVolumes,
    /// Anything else: a real failure.
    Other,
}

/// The name between `prefix` and `suffix` that makes up the whole of
/// `message`, if it does and the name is one non-empty word.
fn named<'m>(message: &'m str, prefix: &str, suffix: &str) -> Option<&'m str> {
    let name = message.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// Classify gluster's `opErrno` and `opErrstr`.
pub fn classify(errno: i32, message: &str) -> Failure {
    let m = message.trim();
    if errno == ERRNO_ANOTHER_TRANSACTION
        || named(
            m,
            "Another transaction is in progress for ",
            ". Please try again after some time.",
        )
        .is_some()
        || named(
            m,
            "Locking failed on ",
            ". Please check log file for details.",
        )
        .is_some()
    {
        Failure::Busy
    } else if (errno == ERRNO_NO_VOLUME && m == "Volume does not exist")
        || named(m, "Volume ", " does not exist").is_some()
    {
        Failure::NotFound
    } else if named(m, "Volume ", " already exists").is_some() {
        Failure::AlreadyExists
    } else if named(m, "Volume ", " already started").is_some() {
        Failure::AlreadyStarted
    } else if named(m, "Rebalance on ", " is already started").is_some() {
        Failure::RebalanceRunning
    } else if named(m, "", " is not part of cluster").is_some() {
        Failure::NotAPeer
    } else if m == "No volumes present" {
        Failure::NoVolumes
    } else {
        Failure::Other
    }
}

/// What the gluster CLI prints (on standard output, exit status 1) when no
/// glusterd answers on the node.
const NO_GLUSTERD: &str = "Connection failed. Please check if gluster daemon is operational.";

/// Whether a command's output says that no glusterd answered: a line that
/// is the CLI's sentence, or the bare `Connection failed` its session
/// check (`system:: getwd`) prints.
pub fn glusterd_unreachable(output: &str) -> bool {
    output
        .lines()
        .map(str::trim)
        .any(|line| line == NO_GLUSTERD || line == "Connection failed")
}

#[cfg(test)]
mod tests {
    use super::super::{GlusterError, parse_outcome};
    use super::*;

    /// The failure a captured answer reports.
    fn kind_of(xml: &[u8]) -> Failure {
        parse_outcome(xml)
            .expect_err("the captured command failed")
            .kind()
    }

    macro_rules! captured {
        ($name:literal) => {
            include_bytes!(concat!("../../../tests/data/gluster/", $name))
        };
    }

    #[test]
    fn each_captured_failure_has_its_kind() {
        for (xml, kind) in [
            (
                &captured!("volume-create-exists.xml")[..],
                Failure::AlreadyExists,
            ),
            (captured!("volume-info-missing.xml"), Failure::NotFound),
            (captured!("volume-start-missing.xml"), Failure::NotFound),
            (captured!("peer-detach-unknown.xml"), Failure::NotAPeer),
            (captured!("volume-set-busy.xml"), Failure::Busy),
            (captured!("volume-set-locking-failed.xml"), Failure::Busy),
            (
                captured!("volume-start-started.xml"),
                Failure::AlreadyStarted,
            ),
            (
                captured!("rebalance-start-started.xml"),
                Failure::RebalanceRunning,
            ),
            // Failures that only look alike.
            (captured!("volume-delete-started.xml"), Failure::Other),
            (captured!("rebalance-not-distribute.xml"), Failure::Other),
            (captured!("peer-detach-self.xml"), Failure::Other),
        ] {
            assert_eq!(kind_of(xml), kind, "{}", String::from_utf8_lossy(xml));
        }
    }

    #[test]
    fn what_succeeds_is_no_failure() {
        // A forced stop of a stopped volume succeeds: there is no
        // "already stopped" to classify.
        parse_outcome(captured!("volume-stop-stopped.xml")).unwrap();
        // With --xml, no volumes is an empty list, not "No volumes present".
        assert_eq!(
            super::super::parse_volume_info(captured!("volume-info-none.xml")).unwrap(),
            []
        );
    }

    #[test]
    fn patterns_are_anchored() {
        for (errno, message) in [
            (0, "Volume v already exists, or not"),
            (0, "Volume two words already exists"),
            (0, "Volume  already exists"),
            (0, "Brick: h:/b already exists"),
            (
                30800,
                "Volume v has been started.Volume needs to be stopped before deletion.",
            ),
            (0, "Host 10.0.0.2 not connected"),
            (0, "Peer is not in 'Peer in Cluster' state"),
            (0, "Staging failed on h. Error: Volume v does not exist"),
            (0, "Rebalance is in progress"),
            (0, "another transaction is in progress"),
            (30800, "Volume does not exist"),
            (0, "No volumes present in cluster"),
        ] {
            assert_eq!(classify(errno, message), Failure::Other, "{message}");
        }
        assert_eq!(classify(30802, "anything"), Failure::Busy);
        assert_eq!(
            classify(
                0,
                "Another transaction is in progress for v. Please try again after some time.\n"
            ),
            Failure::Busy
        );
        assert_eq!(classify(0, "No volumes present"), Failure::NoVolumes);
        assert_eq!(GlusterError::Malformed("x".into()).kind(), Failure::Other);
    }

    #[test]
    fn no_glusterd_is_told_by_the_cli_s_own_words() {
        let printed = include_str!("../../../tests/data/gluster/no-glusterd.txt");
        assert!(glusterd_unreachable(printed));
        assert!(glusterd_unreachable("Connection failed\n"));
        assert!(!glusterd_unreachable("volume v: Connection failed on h"));
        assert!(!glusterd_unreachable(""));
    }
}
