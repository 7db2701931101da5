//! heketi's asynchronous operations: a long request answers `202 Accepted`
//! with `Location: /queue/{id}`; polling that returns 200 with
//! `X-Pending: true` while the work runs, then `303 See Other` to the
//! result (or 204 when there is none), or 500 with the error text. A
//! bounded number run at once; beyond that, `429` with `Retry-After`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::Id;

/// Where a finished operation points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// `303 See Other` to this path.
    SeeOther(String),
    /// `204 No Content` (deletes).
    NoContent,
    /// `500` with this text.
    Failed(String),
}

/// What polling an operation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Still running.
    Pending,
    /// Done.
    Done(Finished),
    /// No such operation (or it expired).
    Unknown,
}

struct Entry {
    /// The role that started it may poll it (the user role may poll only
    /// its own).
    owner: Option<String>,
    state: Option<Finished>,
    finished_at: Option<Instant>,
}

/// The operations of this process.
pub struct Queue {
    entries: Mutex<HashMap<String, Entry>>,
    max_in_flight: usize,
    /// How long a finished result stays pollable.
    keep: Duration,
}

/// Too many operations run already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many operations in flight ({0}); try again later")]
pub struct Busy(pub usize);

impl Queue {
    /// A queue running at most `max_in_flight` operations at once.
    pub fn new(max_in_flight: usize, keep: Duration) -> Arc<Queue> {
        Arc::new(Queue {
            entries: Mutex::new(HashMap::new()),
            max_in_flight: max_in_flight.max(1),
            keep,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new id: 128 bits from two independently keyed hashes of a counter
    /// and the clock.
    fn fresh_id(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let half = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(n ^ salt);
            h.write_u128(now);
            h.finish()
        };
        Id((u128::from(half(0)) << 64) | u128::from(half(u64::MAX))).to_string()
    }

    /// Operations running now.
    pub fn in_flight(&self) -> usize {
        self.lock().values().filter(|e| e.state.is_none()).count()
    }

    /// Start `work` in the background; its id for `/queue/{id}`. `owner`
    /// is who may poll it besides an admin (`None`: admins only).
    pub fn start<F>(self: &Arc<Self>, owner: Option<String>, work: F) -> Result<String, Busy>
    where
        F: Future<Output = Finished> + Send + 'static,
    {
        let id = self.fresh_id();
        {
            let mut entries = self.lock();
            let now = Instant::now();
            entries.retain(|_, e| e.finished_at.is_none_or(|t| now - t < self.keep));
            let running = entries.values().filter(|e| e.state.is_none()).count();
            if running >= self.max_in_flight {
                return Err(Busy(running));
            }
            entries.insert(
                id.clone(),
                Entry {
                    owner,
                    state: None,
                    finished_at: None,
                },
            );
        }
        let queue = self.clone();
        let key = id.clone();
        tokio::spawn(async move {
            let finished = work.await;
            if let Some(entry) = queue.lock().get_mut(&key) {
                entry.state = Some(finished);
                entry.finished_at = Some(Instant::now());
            }
        });
        Ok(id)
    }

    /// What an operation says, for `who` (`None`: an admin).
    pub fn poll(&self, id: &str, who: Option<&str>) -> Poll {
        let entries = self.lock();
        match entries.get(id) {
            None => Poll::Unknown,
            // Someone else's operation does not exist, as far as `who` can
            // tell.
            Some(e) if who.is_some() && e.owner.as_deref() != who => Poll::Unknown,
            Some(Entry { state: None, .. }) => Poll::Pending,
            Some(Entry {
                state: Some(done), ..
            }) => Poll::Done(done.clone()),
        }
    }

    /// Every operation's id and whether it is still running (`/operations`).
    pub fn list(&self) -> Vec<(String, bool)> {
        let mut list: Vec<(String, bool)> = self
            .lock()
            .iter()
            .map(|(id, e)| (id.clone(), e.state.is_none()))
            .collect();
        list.sort();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_is_pending_then_points_at_its_result() {
        let queue = Queue::new(4, Duration::from_secs(60));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let id = queue
            .start(Some("user".into()), async move {
                let _ = wait.await;
                Finished::SeeOther("/volumes/abc".into())
            })
            .unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(queue.poll(&id, None), Poll::Pending);
        assert_eq!(queue.poll(&id, Some("user")), Poll::Pending);
        assert_eq!(queue.poll(&id, Some("someone-else")), Poll::Unknown);
        go.send(()).unwrap();
        for _ in 0..100 {
            if queue.poll(&id, None) != Poll::Pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            queue.poll(&id, None),
            Poll::Done(Finished::SeeOther("/volumes/abc".into()))
        );
        assert_eq!(queue.poll("0".repeat(32).as_str(), None), Poll::Unknown);
    }

    #[tokio::test]
    async fn too_many_in_flight_is_refused() {
        let queue = Queue::new(2, Duration::from_secs(60));
        let mut holds = Vec::new();
        for _ in 0..2 {
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            holds.push(go);
            queue
                .start(None, async move {
                    let _ = wait.await;
                    Finished::NoContent
                })
                .unwrap();
        }
        assert_eq!(
            queue.start(None, async { Finished::NoContent }),
            Err(Busy(2))
        );
        assert_eq!(queue.in_flight(), 2);
        drop(holds);
    }
}
