//! A store in memory: for `aplo simulate` and tests.

use std::sync::Mutex;

use super::{Change, Store, StoreError, apply};
use crate::model::storage::{AdminMode, Snapshot};

/// A store that keeps everything in memory and forgets it on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<(Snapshot, AdminMode)>,
}

impl MemoryStore {
    /// A store holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> MemoryStore {
        MemoryStore {
            data: Mutex::new((snapshot, AdminMode::Normal)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Snapshot, AdminMode)> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn read(&self) -> Result<Snapshot, StoreError> {
        Ok(self.lock().0.clone())
    }

    fn admin_mode(&self) -> Result<AdminMode, StoreError> {
        Ok(self.lock().1)
    }

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut data = self.lock();
        apply(&mut data.0, changes);
        for change in changes {
            if let Change::SetAdminMode(mode) = change {
                data.1 = *mode;
            }
        }
        Ok(())
    }
}
