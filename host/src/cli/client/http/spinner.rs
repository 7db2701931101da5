//! The spinner a long operation shows on stderr, with the seconds it has
//! run, on a terminal only.

use std::io::Write;
use std::time::Duration;

/// A spinner with the elapsed seconds on stderr, shown only on a terminal.
pub(super) struct Spinner<'a> {
    on: bool,
    what: &'a str,
    frame: usize,
    shown: bool,
}

impl<'a> Spinner<'a> {
    pub(super) fn new(on: bool, what: &'a str) -> Spinner<'a> {
        Spinner {
            on,
            what,
            frame: 0,
            shown: false,
        }
    }

    pub(super) fn tick(&mut self, elapsed: Duration) {
        if !self.on {
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} {}… {}s",
            FRAMES[self.frame],
            self.what,
            elapsed.as_secs()
        );
        let _ = err.flush();
        self.shown = true;
    }

    pub(super) fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

impl Drop for Spinner<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}
