//! The embedded store: one redb file, a table per kind of record, keyed by
//! id, values in JSON; a `meta` table holds the schema version and a
//! `settings` table (schema 2) the admin mode, by name, in JSON.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION, Store, StoreError};
use crate::model::Id;
use crate::model::storage::{AdminMode, Snapshot};

const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
const CLUSTERS: TableDefinition<u128, &[u8]> = TableDefinition::new("clusters");
const NODES: TableDefinition<u128, &[u8]> = TableDefinition::new("nodes");
const DEVICES: TableDefinition<u128, &[u8]> = TableDefinition::new("devices");
const VOLUMES: TableDefinition<u128, &[u8]> = TableDefinition::new("volumes");
const BRICKS: TableDefinition<u128, &[u8]> = TableDefinition::new("bricks");
const OPERATIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("operations");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");

/// The admin mode's key in `settings`.
const ADMIN_MODE: &str = "admin_mode";

/// The redb-backed store.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Open the database at `path`, creating it (with this schema version)
    /// if it does not exist. An older schema version this build knows is
    /// brought to this one, in one transaction (version 1 gains the
    /// `settings` table); any other version is refused, with nothing
    /// written.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::Backend {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| fail(&e))?;
        let store = RedbStore {
            db,
            path: path.to_path_buf(),
        };
        let txn = store.db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            let found = meta.get("schema").map_err(|e| fail(&e))?.map(|v| v.value());
            match found {
                Some(version) if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version) => {
                    // Dropped without a commit: nothing is written.
                    return Err(StoreError::Schema {
                        path: path.display().to_string(),
                        found: version,
                        expected: SCHEMA_VERSION,
                    });
                }
                Some(SCHEMA_VERSION) => {}
                // New, or older: the tables below are all the migration
                // there is.
                None | Some(_) => {
                    meta.insert("schema", SCHEMA_VERSION)
                        .map_err(|e| fail(&e))?;
                }
            }
            for table in [CLUSTERS, NODES, DEVICES, VOLUMES, BRICKS, OPERATIONS] {
                txn.open_table(table).map_err(|e| fail(&e))?;
            }
            txn.open_table(SETTINGS).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))?;
        Ok(store)
    }

    fn fail(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialize")
}

impl Store for RedbStore {
    fn read(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        fn load<T: DeserializeOwned>(
            store: &RedbStore,
            txn: &redb::ReadTransaction,
            table: TableDefinition<u128, &[u8]>,
            name: &'static str,
        ) -> Result<std::collections::BTreeMap<Id, T>, StoreError> {
            let table = txn.open_table(table).map_err(|e| store.fail(e))?;
            let mut out = std::collections::BTreeMap::new();
            for entry in table.iter().map_err(|e| store.fail(e))? {
                let (key, value) = entry.map_err(|e| store.fail(e))?;
                let id = Id(key.value());
                let record =
                    serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
                        path: store.path.display().to_string(),
                        table: name,
                        id,
                        message: e.to_string(),
                    })?;
                out.insert(id, record);
            }
            Ok(out)
        }
        Ok(Snapshot {
            clusters: load(self, &txn, CLUSTERS, "clusters")?,
            nodes: load(self, &txn, NODES, "nodes")?,
            devices: load(self, &txn, DEVICES, "devices")?,
            volumes: load(self, &txn, VOLUMES, "volumes")?,
            bricks: load(self, &txn, BRICKS, "bricks")?,
            operations: load(self, &txn, OPERATIONS, "operations")?,
        })
    }

    fn admin_mode(&self) -> Result<AdminMode, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let settings = txn.open_table(SETTINGS).map_err(|e| self.fail(e))?;
        let Some(value) = settings.get(ADMIN_MODE).map_err(|e| self.fail(e))? else {
            return Ok(AdminMode::Normal);
        };
        serde_json::from_slice(value.value()).map_err(|e| StoreError::CorruptSetting {
            path: self.path.display().to_string(),
            key: ADMIN_MODE,
            message: e.to_string(),
        })
    }

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        for change in changes {
            let (table, id, value) = match change {
                Change::SetAdminMode(mode) => {
                    txn.open_table(SETTINGS)
                        .map_err(|e| self.fail(e))?
                        .insert(ADMIN_MODE, encode(mode).as_slice())
                        .map_err(|e| self.fail(e))?;
                    continue;
                }
                Change::PutCluster(r) => (CLUSTERS, r.id, Some(encode(r))),
                Change::DeleteCluster(id) => (CLUSTERS, *id, None),
                Change::PutNode(r) => (NODES, r.id, Some(encode(r))),
                Change::DeleteNode(id) => (NODES, *id, None),
                Change::PutDevice(r) => (DEVICES, r.id, Some(encode(r))),
                Change::DeleteDevice(id) => (DEVICES, *id, None),
                Change::PutVolume(r) => (VOLUMES, r.id, Some(encode(r))),
                Change::DeleteVolume(id) => (VOLUMES, *id, None),
                Change::PutBrick(r) => (BRICKS, r.id, Some(encode(r))),
                Change::DeleteBrick(id) => (BRICKS, *id, None),
                Change::PutOperation(r) => (OPERATIONS, r.id, Some(encode(r))),
                Change::DeleteOperation(id) => (OPERATIONS, *id, None),
            };
            let mut table = txn.open_table(table).map_err(|e| self.fail(e))?;
            match value {
                Some(bytes) => {
                    table
                        .insert(id.0, bytes.as_slice())
                        .map_err(|e| self.fail(e))?;
                }
                None => {
                    table.remove(id.0).map_err(|e| self.fail(e))?;
                }
            }
        }
        txn.commit().map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BrickRole;
    use crate::model::State;
    use crate::model::storage::{Backend, BrickRecord, ClusterRecord, DeviceRecord, NodeRecord};

    fn cluster(id: u128) -> ClusterRecord {
        ClusterRecord {
            id: Id(id),
            file: true,
            block: false,
        }
    }

    fn node(id: u128, cluster: u128) -> NodeRecord {
        NodeRecord {
            id: Id(id),
            cluster: Id(cluster),
            manage: format!("n{id}"),
            storage: format!("10.0.0.{id}"),
            zone: "1".into(),
            state: State::Online,
            tags: Default::default(),
        }
    }

    #[test]
    fn writes_are_read_back_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aplo.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store
                .write(&[Change::PutCluster(cluster(1)), Change::PutNode(node(2, 1))])
                .unwrap();
            store
                .write(&[
                    Change::PutDevice(DeviceRecord {
                        id: Id(3),
                        node: Id(2),
                        name: "/dev/vdb".into(),
                        state: State::Online,
                        tags: Default::default(),
                        backend: Backend::LvmThin,
                        total_bytes: 100,
                    }),
                    Change::PutBrick(BrickRecord {
                        id: Id(5),
                        volume: Id(4),
                        device: Id(3),
                        node: Id(2),
                        bytes: 8,
                        consumed: 10,
                        role: BrickRole::Data,
                        set: 0,
                        position: 0,
                        path: "/b".into(),
                    }),
                ])
                .unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let snapshot = store.read().unwrap();
        assert_eq!(snapshot.clusters[&Id(1)], cluster(1));
        assert_eq!(snapshot.nodes[&Id(2)], node(2, 1));
        let topology = snapshot.policy_topology();
        assert_eq!(topology.clusters[0].nodes[0].devices[0].free_bytes, 90);
        store.write(&[Change::DeleteNode(Id(2))]).unwrap();
        assert!(store.read().unwrap().nodes.is_empty());
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aplo.redb");
        drop(RedbStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema", SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = RedbStore::open(&path).err().unwrap();
        assert!(
            matches!(err, StoreError::Schema { found, .. } if found == SCHEMA_VERSION + 1),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_store_opens_as_version_2_in_normal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aplo.redb");
        {
            // What a version-1 aplo wrote: no settings table.
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("schema", 1).unwrap();
            txn.open_table(CLUSTERS)
                .unwrap()
                .insert(1u128, encode(&cluster(1)).as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.admin_mode().unwrap(), AdminMode::Normal);
        assert_eq!(store.read().unwrap().clusters[&Id(1)], cluster(1));
        store
            .write(&[Change::SetAdminMode(AdminMode::ReadOnly)])
            .unwrap();
        drop(store);
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let schema = txn.open_table(META).unwrap().get("schema").unwrap();
        assert_eq!(schema.map(|v| v.value()), Some(SCHEMA_VERSION));
    }

    #[test]
    fn the_admin_mode_survives_reopening_and_travels_in_exports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.admin_mode().unwrap(), AdminMode::Normal);
            store
                .write(&[
                    Change::PutCluster(cluster(1)),
                    Change::SetAdminMode(AdminMode::LocalClient),
                ])
                .unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.admin_mode().unwrap(), AdminMode::LocalClient);
        let exported = super::super::export(&store).unwrap();
        assert_eq!(exported.admin_mode, AdminMode::LocalClient);
        let json = serde_json::to_value(&exported).unwrap();
        assert_eq!(json["admin_mode"], "local-client");
        assert_eq!(json["schema"], SCHEMA_VERSION);
        let copy = RedbStore::open(&dir.path().join("b.redb")).unwrap();
        super::super::import(&copy, serde_json::from_value(json).unwrap()).unwrap();
        assert_eq!(copy.admin_mode().unwrap(), AdminMode::LocalClient);
        assert_eq!(copy.read().unwrap(), store.read().unwrap());
        // A store whose only content is its mode is not empty.
        let moded = RedbStore::open(&dir.path().join("c.redb")).unwrap();
        moded
            .write(&[Change::SetAdminMode(AdminMode::ReadOnly)])
            .unwrap();
        let refused = super::super::import(&moded, exported).unwrap_err();
        assert!(refused.to_string().contains("not empty"), "{refused}");
        // A version-1 export (no mode) imports, in normal mode.
        let old = RedbStore::open(&dir.path().join("d.redb")).unwrap();
        let v1 = r#"{"schema": 1, "data": {"clusters": {"00000000000000000000000000000001": {"id": "00000000000000000000000000000001"}}}}"#;
        super::super::import(&old, serde_json::from_str(v1).unwrap()).unwrap();
        assert_eq!(old.admin_mode().unwrap(), AdminMode::Normal);
        assert_eq!(old.read().unwrap().clusters.len(), 1);
    }

    #[test]
    fn a_damaged_admin_mode_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("aplo.redb")).unwrap();
        {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(SETTINGS)
                .unwrap()
                .insert(ADMIN_MODE, &b"\"sideways\""[..])
                .unwrap();
            txn.commit().unwrap();
        }
        let err = store.admin_mode().unwrap_err();
        assert!(err.to_string().contains("setting admin_mode"), "{err}");
        assert_eq!(err.label(), "corrupt");
    }

    #[test]
    fn a_damaged_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aplo.redb");
        let store = RedbStore::open(&path).unwrap();
        {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(NODES)
                .unwrap()
                .insert(7u128, &b"{not json"[..])
                .unwrap();
            txn.commit().unwrap();
        }
        let err = store.read().unwrap_err();
        assert!(
            err.to_string()
                .contains("record 00000000000000000000000000000007 in nodes"),
            "{err}"
        );
    }

    #[test]
    fn export_and_import_round_trip_into_an_empty_store_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = RedbStore::open(&dir.path().join("a.redb")).unwrap();
        first
            .write(&[Change::PutCluster(cluster(1)), Change::PutNode(node(2, 1))])
            .unwrap();
        let exported = super::super::export(&first).unwrap();
        let json = serde_json::to_string(&exported).unwrap();
        let second = RedbStore::open(&dir.path().join("b.redb")).unwrap();
        super::super::import(&second, serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(second.read().unwrap(), first.read().unwrap());
        let again = super::super::import(&second, exported.clone()).unwrap_err();
        assert!(again.to_string().contains("not empty"), "{again}");
        let third = RedbStore::open(&dir.path().join("c.redb")).unwrap();
        let mut future = exported;
        future.schema += 1;
        assert!(
            super::super::import(&third, future)
                .unwrap_err()
                .to_string()
                .contains("schema version")
        );
    }
}
