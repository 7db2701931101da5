//! Adding a node (journaled, probed into the pool, then online) and
//! removing one (journaled, detached, then forgotten), and the recovery of
//! either when it was interrupted.

use super::super::recover::KEPT;
use super::super::{Engine, EngineError};
use crate::engine::driver::DriverError;
use crate::engine::{FaultPoint, Phase};
use crate::model::journal::{Operation, OperationKind, OperationRecord};
use crate::model::storage::NodeRecord;
use crate::model::topology::NodeSpec;
use crate::model::{Id, State};
use crate::plan::effect::Effect;
use crate::store::Change;

impl Engine {
    /// Add a node to a cluster. It is journaled first (its record `offline`,
    /// so nothing is placed on it), then probed into the pool of the
    /// cluster's other nodes, if any, then put online. A probe that fails
    /// is undone: the node is detached if gluster took it in part, and
    /// forgotten.
    pub async fn add_node(&self, cluster: Id, spec: &NodeSpec) -> Result<NodeRecord, EngineError> {
        if !self.with_state(|s| s.clusters.contains_key(&cluster)) {
            return Err(EngineError::NotFound {
                kind: "cluster",
                name: cluster.to_string(),
            });
        }
        if self.with_state(|s| s.nodes.values().any(|n| n.manage == spec.manage)) {
            return Err(EngineError::Conflict(format!(
                "a node with manage hostname {} already exists",
                spec.manage
            )));
        }
        let node = NodeRecord {
            id: self.ids.next(),
            cluster,
            manage: spec.manage.clone(),
            storage: spec.storage.clone(),
            zone: spec.zone.clone(),
            state: State::Offline,
            tags: spec.tags.clone(),
        };
        let operation = OperationRecord::new(self.ids.next(), Operation::AddNode { node: node.id });
        let _busy = self.claim_busy(node.id, "the node")?;
        self.commit(vec![
            Change::PutNode(node.clone()),
            Change::PutOperation(operation.clone()),
        ])?;
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::AddNode));
        match self.join_pool(&operation).await {
            Ok(node) => Ok(node),
            Err(source) => {
                let undo = self.forget_node(&operation, "undo add node", KEPT).await;
                Err(EngineError::Failed {
                    operation: "add node",
                    subject: spec.manage.clone(),
                    step: Phase::Probe,
                    source: Box::new(source),
                    outcome: self.undo_outcome(undo),
                })
            }
        }
    }

    /// Remove a node that has no devices: journaled, detached from the
    /// pool, then forgotten. A detach that fails leaves the node as it was.
    pub async fn remove_node(&self, manage_or_id: &str) -> Result<(), EngineError> {
        let node = self.find_node(manage_or_id)?;
        let _busy = self.claim_busy(node.id, "the node")?;
        let devices = self.devices_on(node.id);
        if devices > 0 {
            return Err(EngineError::Conflict(format!(
                "node {} still has {devices} device(s); remove them first",
                node.manage
            )));
        }
        let operation =
            OperationRecord::new(self.ids.next(), Operation::RemoveNode { node: node.id });
        self.commit(vec![Change::PutOperation(operation.clone())])?;
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::RemoveNode));
        let removed = self
            .forget_node(&operation, "remove node", "the node is still in aplo")
            .await;
        if removed.is_err() {
            // Nothing changed in gluster: the node stays, the entry goes.
            self.commit(vec![Change::DeleteOperation(operation.id)])?;
        }
        removed
    }

    /// How many devices a node has.
    fn devices_on(&self, node: Id) -> usize {
        self.with_state(|s| s.devices.values().filter(|d| d.node == node).count())
    }

    /// The journaled node and the other nodes of its cluster to run gluster
    /// commands through (healthy first).
    fn node_and_peers(&self, node: Id) -> Option<(NodeRecord, Vec<NodeRecord>)> {
        self.with_state(|s| {
            let record = s.nodes.get(&node)?.clone();
            let peers = crate::plan::volume::via(s, record.cluster, &|n| self.is_unhealthy(n))
                .into_iter()
                .filter(|n| n.id != node)
                .collect();
            Some((record, peers))
        })
    }

    /// Probe the node of an add-node operation into its pool (gluster
    /// answers success when it is in already), then put it online and
    /// drop the journal entry in one transaction.
    pub(in crate::engine) async fn join_pool(
        &self,
        operation: &OperationRecord,
    ) -> Result<NodeRecord, DriverError> {
        let Operation::AddNode { node } = operation.operation else {
            unreachable!("join_pool runs add-node operations")
        };
        let (record, peers) = self
            .node_and_peers(node)
            .ok_or_else(|| DriverError::Refused(format!("node {node} is not in the store")))?;
        if !peers.is_empty() {
            self.driver
                .apply(&Effect::PeerProbe {
                    via: peers,
                    node: record.clone(),
                })
                .await?;
        }
        self.config.faults.reached(FaultPoint::Probed);
        let online = NodeRecord {
            state: State::Online,
            ..record
        };
        self.commit(vec![
            Change::PutNode(online.clone()),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| DriverError::Refused(e.to_string()))?;
        tracing::info!(node = %online.manage, "node added");
        Ok(online)
    }

    /// Detach the node of `operation` from its pool (a node gluster does
    /// not know counts as detached), then drop its record and the journal
    /// entry in one transaction. Refused while the node has devices;
    /// `outcome` says what a failure leaves.
    pub(in crate::engine) async fn forget_node(
        &self,
        operation: &OperationRecord,
        what: &'static str,
        outcome: &str,
    ) -> Result<(), EngineError> {
        let node = operation.operation.subject();
        if let Some((record, peers)) = self.node_and_peers(node) {
            let devices = self.devices_on(node);
            if devices > 0 {
                return Err(EngineError::Conflict(format!(
                    "node {} has {devices} device(s); {outcome}",
                    record.manage
                )));
            }
            if !peers.is_empty() {
                self.driver
                    .apply(&Effect::PeerDetach {
                        via: peers,
                        node: record.clone(),
                    })
                    .await
                    .map_err(|source| EngineError::Failed {
                        operation: what,
                        subject: record.manage.clone(),
                        step: Phase::Detach,
                        source: Box::new(source),
                        outcome: outcome.into(),
                    })?;
            }
        }
        self.commit(vec![
            Change::DeleteNode(node),
            Change::DeleteOperation(operation.id),
        ])
    }
}
