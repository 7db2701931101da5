//! The background thread that rescans the policy directory, and how to
//! wait for the registry to have looked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Registry;

/// How far the registry has got: what to wait for, instead of sleeping,
/// after changing the policy directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Increases by one with every change to the set of active policies.
    pub generation: u64,
    /// Directory scans begun. Scans run one at a time, so scan number
    /// `scans_begun + 1` begins after this is read, and has seen whatever
    /// was changed before, once `scans_done` passes `scans_begun`.
    pub scans_begun: u64,
    /// Directory scans finished.
    pub scans_done: u64,
}

impl Registry {
    /// How far the registry has got.
    pub fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait, at most `timeout`, until `done` holds of the registry's
    /// progress: `Ok` with the progress then, or `Err` with the last one
    /// seen when the time ran out.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&Progress) -> bool,
    ) -> Result<Progress, Progress> {
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let (progress, _) = self
            .progressed
            .wait_timeout_while(progress, timeout, |p| !done(p))
            .unwrap_or_else(|e| e.into_inner());
        if done(&progress) {
            Ok(*progress)
        } else {
            Err(*progress)
        }
    }

    /// Record progress and wake whoever waits for it.
    pub(super) fn advance(&self, step: impl FnOnce(&mut Progress)) {
        step(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()));
        self.progressed.notify_all();
    }

    /// Rescan the directory every `interval` on a background thread until
    /// the returned watcher is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, registry) = (stop.clone(), Arc::downgrade(self));
        let thread = std::thread::Builder::new()
            .name("aplo-policy-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(interval);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    match registry.upgrade() {
                        Some(registry) => {
                            registry.rescan();
                        }
                        None => break,
                    }
                }
            })
            .expect("spawn the policy watcher thread");
        Watcher {
            stop,
            thread: Some(thread),
        }
    }
}

/// Stops the directory watcher when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
