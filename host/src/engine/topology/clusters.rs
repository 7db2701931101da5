//! Cluster operations: create, set heketi's flags, delete when empty.

use super::super::{Engine, EngineError};
use crate::model::Id;
use crate::model::storage::ClusterRecord;
use crate::store::Change;

impl Engine {
    /// A new cluster, empty, with heketi's flags: `file` allows file
    /// volumes in it, `block` block-hosting volumes (which aplo does not
    /// make; the flag is kept for heketi's clients).
    pub fn create_cluster(&self, file: bool, block: bool) -> Result<ClusterRecord, EngineError> {
        let cluster = ClusterRecord {
            id: self.ids.next(),
            file,
            block,
        };
        self.commit(vec![Change::PutCluster(cluster.clone())])?;
        tracing::info!(cluster = %cluster.id, file, block, "cluster created");
        Ok(cluster)
    }

    /// Set a cluster's `file` and `block` flags.
    pub fn set_cluster_flags(
        &self,
        id: Id,
        file: bool,
        block: bool,
    ) -> Result<ClusterRecord, EngineError> {
        let cluster = ClusterRecord {
            file,
            block,
            ..self.find_cluster(id)?
        };
        self.commit(vec![Change::PutCluster(cluster.clone())])?;
        Ok(cluster)
    }

    /// Delete a cluster that has no nodes and no volumes.
    pub async fn delete_cluster(&self, id: Id) -> Result<(), EngineError> {
        // No volume is being planned into it meanwhile.
        let _planning = self.planning.lock().await;
        let cluster = self.find_cluster(id)?;
        let (nodes, volumes) = self.with_state(|s| {
            (
                s.nodes.values().filter(|n| n.cluster == id).count(),
                s.volumes.values().filter(|v| v.cluster == id).count(),
            )
        });
        if nodes > 0 || volumes > 0 {
            return Err(EngineError::Conflict(format!(
                "cluster {} still has {nodes} node(s) and {volumes} volume(s); delete the volumes and remove the nodes first",
                cluster.id
            )));
        }
        self.commit(vec![Change::DeleteCluster(id)])?;
        tracing::info!(cluster = %id, "cluster deleted");
        Ok(())
    }

    fn find_cluster(&self, id: Id) -> Result<ClusterRecord, EngineError> {
        self.with_state(|s| s.clusters.get(&id).cloned())
            .ok_or_else(|| EngineError::NotFound {
                kind: "cluster",
                name: id.to_string(),
            })
    }
}
