//! The instance pool's slots: a counting semaphore over the pooling
//! allocator's instances, so that a full pool answers busy instead of failing.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::policy::metrics::PolicyMetrics;

/// A counting semaphore over the pool's slots. Waiting for one is bounded:
/// a pool held by slow calls makes later callers fail fast with
/// [`Fault::Busy`](crate::policy::Fault::Busy) instead of queueing behind
/// them for ever.
pub(super) struct Slots {
    pub(super) total: u32,
    pub(super) free: Mutex<u32>,
    pub(super) freed: Condvar,
    pub(super) metrics: PolicyMetrics,
}

pub(super) struct SlotGuard<'a>(&'a Slots);

impl Slots {
    pub(super) fn new(total: u32, metrics: PolicyMetrics) -> Slots {
        Slots {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
            metrics,
        }
    }

    /// A free slot, waiting at most `wait` for one; `None` when none came
    /// free in time.
    pub(super) fn acquire(&self, wait: Duration) -> Option<SlotGuard<'_>> {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut free, _) = self
            .freed
            .wait_timeout_while(free, wait, |free| *free == 0)
            .unwrap_or_else(|e| e.into_inner());
        if *free == 0 {
            return None;
        }
        *free -= 1;
        self.metrics.instance_started();
        Some(SlotGuard(self))
    }

    pub(super) fn in_use(&self) -> u32 {
        self.total - *self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
        self.0.metrics.instance_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_answers_busy_within_the_wait_and_a_freed_slot_is_taken() {
        let slots = Slots::new(2, PolicyMetrics::default());
        let (a, b) = (slots.acquire(Duration::ZERO), slots.acquire(Duration::ZERO));
        assert!(a.is_some() && b.is_some());
        assert_eq!(slots.in_use(), 2);
        let started = std::time::Instant::now();
        assert!(slots.acquire(Duration::from_millis(50)).is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // A slot freed while a caller waits goes to that caller.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| slots.acquire(Duration::from_secs(30)).is_some());
            drop(a);
            assert!(waiter.join().unwrap());
        });
        assert_eq!(slots.in_use(), 1);
        drop(b);
        assert_eq!(slots.in_use(), 0);
    }
}
