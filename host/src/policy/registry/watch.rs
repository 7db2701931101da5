//! The background thread that rescans the policy directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Registry;

impl Registry {
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
