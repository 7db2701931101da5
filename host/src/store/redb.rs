//! The embedded store: one redb file, a table per kind of record, keyed by
//! id, values in JSON; a `meta` table holds the schema version.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, SCHEMA_VERSION, Store, StoreError};
use crate::model::Id;
use crate::model::storage::Snapshot;

const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
const CLUSTERS: TableDefinition<u128, &[u8]> = TableDefinition::new("clusters");
const NODES: TableDefinition<u128, &[u8]> = TableDefinition::new("nodes");
const DEVICES: TableDefinition<u128, &[u8]> = TableDefinition::new("devices");
const VOLUMES: TableDefinition<u128, &[u8]> = TableDefinition::new("volumes");
const BRICKS: TableDefinition<u128, &[u8]> = TableDefinition::new("bricks");
const OPERATIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("operations");

/// The redb-backed store.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Open the database at `path`, creating it (with this schema version)
    /// if it does not exist. A database of another schema version is refused.
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
        let found = {
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            let found = meta.get("schema").map_err(|e| fail(&e))?.map(|v| v.value());
            if found.is_none() {
                meta.insert("schema", SCHEMA_VERSION)
                    .map_err(|e| fail(&e))?;
            }
            for table in [CLUSTERS, NODES, DEVICES, VOLUMES, BRICKS, OPERATIONS] {
                txn.open_table(table).map_err(|e| fail(&e))?;
            }
            found
        };
        txn.commit().map_err(|e| fail(&e))?;
        match found {
            Some(version) if version != SCHEMA_VERSION => Err(StoreError::Schema {
                path: path.display().to_string(),
                found: version,
                expected: SCHEMA_VERSION,
            }),
            _ => Ok(store),
        }
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

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        for change in changes {
            let (table, id, value) = match change {
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
