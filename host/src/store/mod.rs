//! The store: where aplo keeps its clusters, nodes, devices, volumes,
//! bricks and operation journal.
//!
//! Storage sits behind the [`Store`] trait: the embedded [`RedbStore`] is the
//! default and needs no server; a store for highly available deployments can
//! be added beside it. Every [`Store::write`] is one atomic transaction.
//!
//! Schema versions: 1 holds the records and the journal; 2 adds heketi's
//! admin mode ([`AdminMode`]) beside them. A version-1 store is opened as
//! version 2 (its mode is `normal`), and version-1 exports import; a store
//! or export of a later version than this build's is refused.

mod memory;
mod redb;

pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;

use serde::{Deserialize, Serialize};

use crate::model::Id;
use crate::model::journal::OperationRecord;
use crate::model::storage::{
    AdminMode, BrickRecord, ClusterRecord, DeviceRecord, NodeRecord, Snapshot, VolumeRecord,
};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema version this build opens and imports (bringing it to
/// [`SCHEMA_VERSION`]).
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// One change in a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert or replace a cluster.
    PutCluster(ClusterRecord),
    /// Remove a cluster.
    DeleteCluster(Id),
    /// Insert or replace a node.
    PutNode(NodeRecord),
    /// Remove a node.
    DeleteNode(Id),
    /// Insert or replace a device.
    PutDevice(DeviceRecord),
    /// Remove a device.
    DeleteDevice(Id),
    /// Insert or replace a volume.
    PutVolume(VolumeRecord),
    /// Remove a volume.
    DeleteVolume(Id),
    /// Insert or replace a brick.
    PutBrick(BrickRecord),
    /// Remove a brick.
    DeleteBrick(Id),
    /// Insert or replace a journal entry.
    PutOperation(OperationRecord),
    /// Remove a journal entry (the operation finished).
    DeleteOperation(Id),
    /// Set heketi's admin mode (kept beside the records, not in a
    /// [`Snapshot`]).
    SetAdminMode(AdminMode),
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("store {path}: {message}")]
    Backend {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The database was written by a different schema version.
    #[error(
        "store {path} has schema version {found}; this aplo reads version {expected} (export with the aplo that wrote it, import with this one)"
    )]
    Schema {
        /// The database file.
        path: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A setting could not be decoded.
    #[error("store {path}: setting {key} is damaged: {message}")]
    CorruptSetting {
        /// The database file.
        path: String,
        /// The setting.
        key: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// A record could not be decoded.
    #[error("store {path}: record {id} in {table} is damaged: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// The table.
        table: &'static str,
        /// The record.
        id: Id,
        /// The decoder's message.
        message: String,
    },
    /// An import was refused.
    #[error("import refused: {0}")]
    Import(String),
}

impl StoreError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::Backend { .. } => "backend",
            StoreError::Schema { .. } => "schema",
            StoreError::Corrupt { .. } | StoreError::CorruptSetting { .. } => "corrupt",
            StoreError::Import(_) => "import",
        }
    }
}

/// Where aplo's state lives.
pub trait Store: Send + Sync {
    /// Everything, as of one consistent moment.
    fn read(&self) -> Result<Snapshot, StoreError>;

    /// heketi's admin mode ([`AdminMode::Normal`] until one is written).
    fn admin_mode(&self) -> Result<AdminMode, StoreError>;

    /// Apply changes in one atomic transaction: all or none.
    fn write(&self, changes: &[Change]) -> Result<(), StoreError>;
}

/// Apply changes to a snapshot, as a store applies a write (the admin
/// mode is not in a snapshot: [`Change::SetAdminMode`] leaves it as it is).
pub fn apply(snapshot: &mut Snapshot, changes: &[Change]) {
    for change in changes {
        match change {
            Change::PutCluster(r) => {
                snapshot.clusters.insert(r.id, r.clone());
            }
            Change::DeleteCluster(id) => {
                snapshot.clusters.remove(id);
            }
            Change::PutNode(r) => {
                snapshot.nodes.insert(r.id, r.clone());
            }
            Change::DeleteNode(id) => {
                snapshot.nodes.remove(id);
            }
            Change::PutDevice(r) => {
                snapshot.devices.insert(r.id, r.clone());
            }
            Change::DeleteDevice(id) => {
                snapshot.devices.remove(id);
            }
            Change::PutVolume(r) => {
                snapshot.volumes.insert(r.id, r.clone());
            }
            Change::DeleteVolume(id) => {
                snapshot.volumes.remove(id);
            }
            Change::PutBrick(r) => {
                snapshot.bricks.insert(r.id, r.clone());
            }
            Change::DeleteBrick(id) => {
                snapshot.bricks.remove(id);
            }
            Change::PutOperation(r) => {
                snapshot.operations.insert(r.id, r.clone());
            }
            Change::DeleteOperation(id) => {
                snapshot.operations.remove(id);
            }
            Change::SetAdminMode(_) => {}
        }
    }
}

/// The `aplo db export` format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// The schema version of the data.
    pub schema: u32,
    /// The data.
    pub data: Snapshot,
    /// heketi's admin mode (schema 2; `normal` when absent).
    #[serde(default)]
    pub admin_mode: AdminMode,
}

/// Export a store's contents.
pub fn export(store: &dyn Store) -> Result<Export, StoreError> {
    Ok(Export {
        schema: SCHEMA_VERSION,
        data: store.read()?,
        admin_mode: store.admin_mode()?,
    })
}

/// Import an export into an empty store, in one transaction.
pub fn import(store: &dyn Store, export: Export) -> Result<(), StoreError> {
    if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&export.schema) {
        return Err(StoreError::Import(format!(
            "the export has schema version {}; this aplo imports versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}",
            export.schema
        )));
    }
    let current = store.read()?;
    if current != Snapshot::default() || store.admin_mode()? != AdminMode::Normal {
        return Err(StoreError::Import(
            "the store is not empty; import only into a new store".into(),
        ));
    }
    let d = export.data;
    let mut changes = Vec::new();
    changes.extend(d.clusters.into_values().map(Change::PutCluster));
    changes.extend(d.nodes.into_values().map(Change::PutNode));
    changes.extend(d.devices.into_values().map(Change::PutDevice));
    changes.extend(d.volumes.into_values().map(Change::PutVolume));
    changes.extend(d.bricks.into_values().map(Change::PutBrick));
    changes.extend(d.operations.into_values().map(Change::PutOperation));
    if export.admin_mode != AdminMode::Normal {
        changes.push(Change::SetAdminMode(export.admin_mode));
    }
    store.write(&changes)
}
