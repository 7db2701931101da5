//! How the controllers watch: the retry pace of a failing watch, the end
//! of a controller whose store never listed, and the pace of the orphan
//! sweep.

use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::Store;
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher;

/// The watch configuration of every controller.
pub fn config() -> watcher::Config {
    watcher::Config::default()
}

/// The first wait of a watch that failed.
const WATCH_RETRY_MIN: Duration = Duration::from_millis(250);
/// The longest wait of a watch that keeps failing.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(5);

/// How aplo's watches retry after an error: from 250 ms, doubling, at most
/// 5 s, back to 250 ms after a minute without errors. kube-runtime's
/// default grows to 30 s and resets only after two quiet minutes: after
/// two or three API server restarts in a row (a control-plane upgrade),
/// new claims went unseen for half a minute. A relist is cheap next to
/// that.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff {
            next: WATCH_RETRY_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(WATCH_RETRY_MAX);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_RETRY_MIN;
    }
}

/// [`WatchBackoff`], reset after a quiet minute.
pub fn backoff() -> ResetTimerBackoff<WatchBackoff> {
    ResetTimerBackoff::new(WatchBackoff::default(), Duration::from_secs(60))
}

/// A controller's run, `done`, ended early on shutdown if its store never
/// listed: kube-runtime holds a controller's runner, and with it the end
/// of a graceful shutdown, until the store is ready, so with the API
/// unreachable `done` would never end. Until then no reconcile of it has
/// started, so nothing is cut short.
pub async fn stopped<K: Resource + Clone>(
    done: impl std::future::Future<Output = ()>,
    store: &Store<K>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let unsynced = async {
        shutdown.await;
        if listed(store) {
            std::future::pending::<()>().await;
        }
        tracing::debug!("stopping a controller whose store never listed");
    };
    tokio::select! {
        () = done => {}
        () = unsynced => {}
    }
}

/// Run `sweep` every `interval` once `ready` (the stores have listed),
/// looking again every `recheck` until then; never ends. The time a sweep
/// takes is not counted in the interval.
pub async fn sweep_every<F, S>(
    ready: impl Fn() -> bool,
    interval: Duration,
    recheck: Duration,
    mut sweep: S,
) where
    S: FnMut() -> F,
    F: std::future::Future<Output = ()>,
{
    loop {
        if ready() {
            sweep().await;
            tokio::time::sleep(interval).await;
        } else {
            tokio::time::sleep(recheck).await;
        }
    }
}

/// Whether `store` has had its first list, without waiting.
pub fn listed<K: Resource + Clone>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::FutureExt;
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_watch_retries_within_five_seconds_and_starts_over_on_reset() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u64> = backoff
            .by_ref()
            .take(8)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(WATCH_RETRY_MIN));
    }

    fn millis(backoff: &mut impl Iterator<Item = Duration>) -> u128 {
        backoff.next().unwrap().as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_backoff_starts_over_only_after_a_quiet_minute() {
        let mut backoff = backoff();
        assert_eq!([millis(&mut backoff), millis(&mut backoff)], [250, 500]);
        // Errors 59 s apart are not quiet enough: it keeps growing.
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(millis(&mut backoff), 1000);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(millis(&mut backoff), 2000);
        // A minute and a bit without an error: back to 250 ms.
        tokio::time::advance(Duration::from_millis(60_001)).await;
        assert_eq!(millis(&mut backoff), 250);
        assert_eq!(millis(&mut backoff), 500);
    }

    /// A sweeper driven for `run` on the paused clock, with stores that
    /// list after `listed`: the times of its sweeps, from its start, and
    /// how often it looked whether the stores had listed.
    async fn sweeps(listed: Duration, run: Duration) -> (Vec<Duration>, u32) {
        use std::cell::{Cell, RefCell};
        let started = tokio::time::Instant::now();
        let looks = Cell::new(0);
        let swept = RefCell::new(Vec::new());
        let ready = || {
            looks.set(looks.get() + 1);
            started.elapsed() >= listed
        };
        let sweeper = sweep_every(
            ready,
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                swept.borrow_mut().push(started.elapsed());
                // A sweep that takes a while (its API calls).
                tokio::time::sleep(Duration::from_secs(3))
            },
        );
        let _ = tokio::time::timeout(run, sweeper).await;
        (swept.into_inner(), looks.get())
    }

    #[tokio::test(start_paused = true)]
    async fn the_orphan_sweep_waits_for_the_stores_then_runs_every_interval() {
        let (swept, looks) = sweeps(Duration::from_secs(1), Duration::from_secs(200)).await;
        let secs = |s: f64| Duration::from_secs_f64(s);
        // The first sweep at the first look after the stores listed, then
        // one every minute after the previous sweep ended.
        assert_eq!(swept, [secs(1.0), secs(64.0), secs(127.0), secs(190.0)]);
        // Looked every 200 ms until then (0, 0.2, ..., 1.0 s), then once
        // before each sweep.
        assert_eq!(looks, 6 + 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_orphan_sweep_never_runs_before_the_stores_list() {
        let (swept, looks) = sweeps(Duration::MAX, Duration::from_secs(10)).await;
        assert!(swept.is_empty(), "swept at {swept:?}");
        // It kept looking all along: "no sweep" is not "never asked".
        assert_eq!(looks, 51);
    }
}
