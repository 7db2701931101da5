//! Recovery: finish or undo every operation the journal holds, as every
//! start does.

use super::{Engine, EngineError, Phase, StepError};
use crate::model::journal::{Operation, OperationKind, OperationRecord, Recovery};
use crate::store::Change;

/// What a recovery that failed leaves.
pub(super) const KEPT: &str = "the journal keeps the operation";

/// What recovery did with each unfinished operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// One line per operation: what it was and how it ended.
    pub outcomes: Vec<String>,
    /// Operations still unfinished (recovery failed; they stay journaled).
    pub unfinished: usize,
}

impl Engine {
    /// Finish or undo every unfinished operation in the journal. Creates
    /// that had not started their volume are undone; everything else rolls
    /// forward (a create that cannot is undone). Operations whose recovery
    /// fails stay journaled for the next attempt.
    pub async fn recover(&self) -> Result<RecoveryReport, EngineError> {
        let operations: Vec<OperationRecord> =
            self.with_state(|s| s.operations.values().cloned().collect());
        let mut report = RecoveryReport::default();
        if !operations.is_empty() {
            self.refresh_health().await;
        }
        for operation in operations {
            let subject = operation
                .operation
                .volume()
                .and_then(|v| self.with_state(|s| s.volumes.get(&v).map(|v| v.name.clone())))
                .unwrap_or_else(|| operation.id.to_string());
            let what = format!("{} {subject}", operation.operation.name());
            let outcome = self.recover_one(&operation).await;
            match outcome {
                Ok(how) => report.outcomes.push(format!("{what}: {how}")),
                Err(e) => {
                    report.unfinished += 1;
                    report
                        .outcomes
                        .push(format!("{what}: still unfinished: {e}"));
                }
            }
        }
        Ok(report)
    }

    async fn recover_one(&self, operation: &OperationRecord) -> Result<&'static str, EngineError> {
        let what = match operation.operation {
            Operation::AddDevice { .. } | Operation::RemoveDevice { .. } => "the device",
            Operation::AddNode { .. } | Operation::RemoveNode { .. } => "the node",
            _ => "the volume",
        };
        let _busy = self.claim_busy(operation.operation.subject(), what)?;
        // It may have finished (in this process) since the journal was read.
        let Some(operation) = self.with_state(|s| s.operations.get(&operation.id).cloned()) else {
            return Ok("finished meanwhile");
        };
        operation
            .check()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let Operation::ReplaceBrick { volume, new, .. } = operation.operation
            && self.with_state(|s| !s.volumes.contains_key(&volume))
        {
            // Deleted since: its bricks went with it.
            let mut changes = vec![Change::DeleteOperation(operation.id)];
            if self.with_state(|s| s.bricks.contains_key(&new)) {
                changes.insert(0, Change::DeleteBrick(new));
            }
            self.commit(changes)?;
            return Ok("dropped: the volume is gone");
        }
        self.settle(&operation).await
    }

    /// Finish or undo an unfinished operation, the way its journal says
    /// ([`OperationRecord::recovery`]). Recovery, and a replacement that
    /// failed midway, end here; this is the one place that picks an
    /// operation's forward or undo.
    pub(super) async fn settle(
        &self,
        operation: &OperationRecord,
    ) -> Result<&'static str, EngineError> {
        match operation.recovery() {
            Recovery::Forward => self.roll_forward(operation).await,
            Recovery::Back => self.roll_back(operation).await,
            Recovery::ForwardElseBack => match self.roll_forward(operation).await {
                Ok(how) => Ok(how),
                Err(e) => {
                    tracing::warn!(operation = %operation.operation.kind(), error = %e, "rolling forward failed; undoing it");
                    let current = self
                        .with_state(|s| s.operations.get(&operation.id).cloned())
                        .unwrap_or_else(|| operation.clone());
                    self.roll_back(&current).await
                }
            },
            Recovery::AskGluster => {
                if self.gluster_took(operation).await? {
                    self.roll_forward(operation).await
                } else {
                    self.roll_back(operation).await
                }
            }
        }
    }

    /// Run the steps an operation has not done yet, and end it.
    async fn roll_forward(&self, operation: &OperationRecord) -> Result<&'static str, EngineError> {
        let failed = |what: &'static str| {
            move |(step, source): StepError| EngineError::Failed {
                operation: what,
                subject: operation.id.to_string(),
                step,
                source: Box::new(source),
                outcome: KEPT.into(),
            }
        };
        let record = operation.clone();
        match operation.operation.kind() {
            OperationKind::CreateVolume => {
                self.create_steps(record)
                    .await
                    .map_err(failed("create volume"))?;
                Ok("rolled forward: the volume is whole")
            }
            OperationKind::DeleteVolume => {
                self.delete_steps(record).await?;
                Ok("rolled forward: the volume is deleted")
            }
            OperationKind::ExpandVolume => {
                self.expand_steps(record)
                    .await
                    .map_err(failed("expand volume"))?;
                Ok("rolled forward: the volume has its new size")
            }
            OperationKind::ReplaceBrick => {
                self.replace_steps(record)
                    .await
                    .map_err(failed("replace brick"))?;
                Ok("rolled forward: the new brick serves in the old one's place")
            }
            OperationKind::AddDevice => {
                self.prepare_device(operation)
                    .await
                    .map_err(|source| failed("add device")((Phase::Prepare, source)))?;
                Ok("rolled forward: the device is online")
            }
            OperationKind::RemoveDevice => {
                self.release_device(operation).await?;
                Ok("rolled forward: the device is removed")
            }
            OperationKind::AddNode => {
                self.join_pool(operation)
                    .await
                    .map_err(|source| failed("add node")((Phase::Probe, source)))?;
                Ok("rolled forward: the node is in the pool and online")
            }
            OperationKind::RemoveNode => {
                self.forget_node(operation, "remove node", KEPT).await?;
                Ok("rolled forward: the node is removed")
            }
        }
    }

    /// Undo what an operation did, and end it.
    async fn roll_back(&self, operation: &OperationRecord) -> Result<&'static str, EngineError> {
        match operation.operation.kind() {
            OperationKind::CreateVolume => {
                self.undo_create(operation).await?;
                Ok("rolled back: nothing of the volume is left")
            }
            OperationKind::ExpandVolume => {
                self.undo_expand(operation).await?;
                Ok("rolled back: the volume has its old size")
            }
            OperationKind::ReplaceBrick => {
                self.undo_replace(operation).await?;
                Ok("rolled back: the old brick still serves")
            }
            OperationKind::AddDevice => {
                self.undo_add_device(operation).await?;
                Ok("rolled back: the device was not added")
            }
            OperationKind::AddNode => {
                self.forget_node(operation, "undo add node", KEPT).await?;
                Ok("rolled back: the node was not added")
            }
            kind @ (OperationKind::DeleteVolume
            | OperationKind::RemoveDevice
            | OperationKind::RemoveNode) => Err(EngineError::Invalid(format!(
                "{kind} only rolls forward; nothing undoes it"
            ))),
        }
    }
}
