//! Fault-injection points. In a build with the `fault-injection` feature
//! (tests only), the engine stops at the named point, says so on stderr and
//! waits to be killed, so that a test can SIGKILL it mid-operation. In
//! every other build the points compile to nothing.

/// Where to stop, if anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    at: Option<String>,
}

impl Faults {
    /// Stop at `point` (`<operation>:<step>`, e.g. `create-volume:bricks`).
    #[cfg(feature = "fault-injection")]
    pub fn at(point: Option<String>) -> Faults {
        Faults { at: point }
    }

    /// Called after each journaled step.
    #[cfg(feature = "fault-injection")]
    pub fn reached(&self, point: &str) {
        if self.at.as_deref() == Some(point) {
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

    /// Called after each journaled step (no-op in this build).
    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub fn reached(&self, _point: &str) {}
}
