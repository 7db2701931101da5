//! A store in memory: for `aplo simulate` and tests.

use std::sync::Mutex;

use super::{Change, Store, StoreError, apply};
use crate::model::storage::Snapshot;

/// A store that keeps everything in memory and forgets it on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<Snapshot>,
}

impl MemoryStore {
    /// A store holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> MemoryStore {
        MemoryStore {
            data: Mutex::new(snapshot),
        }
    }
}

impl Store for MemoryStore {
    fn read(&self) -> Result<Snapshot, StoreError> {
        Ok(self.data.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        apply(
            &mut self.data.lock().unwrap_or_else(|e| e.into_inner()),
            changes,
        );
        Ok(())
    }
}
