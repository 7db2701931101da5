//! How the controllers watch: the retry pace of a failing watch, and the
//! end of a controller whose store never listed.

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
}
