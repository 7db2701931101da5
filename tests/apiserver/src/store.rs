//! The in-memory object store: tables of `Arc`'d objects, one global
//! resourceVersion counter, a bounded history of changes for watch
//! resumption and consistent paging, and a broadcast of every change.
//!
//! Everything sits behind one mutex; a change is broadcast while the lock
//! is held, so receivers see changes in resourceVersion order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::object::meta_mut;

/// An object's key in its table: (namespace or `""`, name).
pub(crate) type Key = (String, String);
/// One storage table, ordered by key like etcd.
pub(crate) type Table = BTreeMap<Key, Arc<Value>>;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub(crate) struct Change {
    /// The resourceVersion it was committed at.
    pub rv: u64,
    /// Storage key of the table.
    pub storage: &'static str,
    /// Added, modified, deleted.
    pub kind: ChangeKind,
    /// The object after the change (for deletes: the last state, with the
    /// deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change (`None` for adds).
    pub prev: Option<Arc<Value>>,
}

impl Change {
    /// The object's table key.
    pub fn key(&self) -> Key {
        key_of(&self.object)
    }
}

/// The key of a stored object.
pub(crate) fn key_of(obj: &Value) -> Key {
    let m = obj.get("metadata");
    let s = |f: &str| {
        m.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

/// The mutable state.
pub(crate) struct State {
    /// The newest resourceVersion issued.
    pub rv: u64,
    /// Resource versions below this are too old (410).
    pub floor: u64,
    /// Add the pv/pvc protection finalizers on create (binder enabled).
    pub protect: bool,
    tables: HashMap<&'static str, Table>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    tx: broadcast::Sender<Arc<Change>>,
}

/// The shared store.
pub(crate) struct Store {
    state: Mutex<State>,
}

impl Store {
    /// An empty store keeping `history_limit` changes.
    pub fn new(history_limit: usize, protect: bool) -> Store {
        // A receiver more than `history_limit` changes behind could not
        // resume from the history either: it lags and gets a 410.
        let (tx, _) = broadcast::channel(history_limit.max(1));
        Store {
            state: Mutex::new(State {
                rv: 1,
                floor: 1,
                protect,
                tables: HashMap::new(),
                history: VecDeque::new(),
                history_limit,
                tx,
            }),
        }
    }

    /// Lock the state. A panic while locked poisons nothing we rely on.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The table `storage` (empty if never written).
    pub fn table(&self, storage: &'static str) -> Option<&Table> {
        self.tables.get(storage)
    }

    /// One object.
    pub fn get(&self, storage: &'static str, key: &Key) -> Option<&Arc<Value>> {
        self.tables.get(storage)?.get(key)
    }

    /// A receiver of every change committed after this call.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Changes to `storage` after resourceVersion `after`, oldest first.
    /// `after` must be at least `floor`.
    pub fn changes_since(&self, storage: &'static str, after: u64) -> Vec<Arc<Change>> {
        let start = self.history.partition_point(|c| c.rv <= after);
        self.history
            .range(start..)
            .filter(|c| c.storage == storage)
            .cloned()
            .collect()
    }

    /// Fail with 410 if `rv` is older than the history covers.
    pub fn check_not_expired(&self, rv: u64) -> ApiResult<()> {
        if rv < self.floor {
            Err(ApiError::Expired(format!(
                "too old resource version: {rv} ({})",
                self.rv
            )))
        } else {
            Ok(())
        }
    }

    /// The table `storage` as it was at resourceVersion `rv`, rebuilt from
    /// the current table and the history.
    pub fn snapshot(&self, storage: &'static str, rv: u64) -> ApiResult<Table> {
        self.check_not_expired(rv)?;
        if rv > self.rv {
            return Err(ApiError::TooLargeResourceVersion {
                requested: rv,
                current: self.rv,
            });
        }
        let mut table = self.tables.get(storage).cloned().unwrap_or_default();
        for c in self.history.iter().rev().take_while(|c| c.rv > rv) {
            if c.storage != storage {
                continue;
            }
            match &c.prev {
                None => {
                    table.remove(&c.key());
                }
                Some(prev) => {
                    table.insert(c.key(), prev.clone());
                }
            }
        }
        Ok(table)
    }

    /// Make every resourceVersion issued so far too old.
    pub fn expire(&mut self) {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
    }

    /// Store `obj` under a new resourceVersion (added or modified).
    pub fn put(&mut self, storage: &'static str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let obj = Arc::new(obj);
        let key = key_of(&obj);
        let prev = self
            .tables
            .entry(storage)
            .or_default()
            .insert(key, obj.clone());
        let kind = if prev.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(storage, kind, obj.clone(), prev);
        obj
    }

    /// Remove an object; `last` is its final state (e.g. with finalizers
    /// removed), stamped with the deletion's resourceVersion.
    pub fn remove(&mut self, storage: &'static str, mut last: Value) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let last = Arc::new(last);
        let prev = self
            .tables
            .get_mut(storage)
            .and_then(|t| t.remove(&key_of(&last)));
        self.record(storage, ChangeKind::Deleted, last.clone(), prev);
        last
    }

    fn record(
        &mut self,
        storage: &'static str,
        kind: ChangeKind,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            storage,
            kind,
            object,
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = self.floor.max(old.rv);
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, v: i64) -> Value {
        json!({"metadata": {"name": name}, "v": v})
    }

    #[test]
    fn snapshots_rebuild_the_past() {
        let store = Store::new(100, false);
        let mut s = store.lock();
        s.put("t", obj("a", 1));
        let at = s.rv;
        s.put("t", obj("a", 2));
        s.put("t", obj("b", 1));
        let last_b = (*s.get("t", &("".into(), "b".into())).unwrap().as_ref()).clone();
        s.remove("t", last_b);
        let past = s.snapshot("t", at).unwrap();
        assert_eq!(past.len(), 1);
        assert_eq!(past[&("".into(), "a".into())]["v"], 1);
        assert_eq!(s.changes_since("t", at).len(), 3);
    }

    #[test]
    fn history_window_and_expiry_set_the_floor() {
        let store = Store::new(2, false);
        let mut s = store.lock();
        for i in 0..5 {
            s.put("t", obj("a", i));
        }
        assert!(s.check_not_expired(s.rv - 2).is_ok());
        assert_eq!(s.check_not_expired(s.rv - 3).unwrap_err().code(), 410);
        s.expire();
        assert_eq!(s.check_not_expired(s.rv - 1).unwrap_err().code(), 410);
        assert!(s.snapshot("t", s.rv).is_ok());
    }
}
