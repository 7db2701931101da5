//! Recovery: finish or undo every operation the journal holds, as every
//! start does.

use super::expand::undoable;
use super::{Engine, EngineError};
use crate::model::storage::{Operation, OperationRecord};

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
        let operation = &operation;
        match &operation.operation {
            Operation::CreateVolume { .. } => {
                let started = operation.done.iter().any(|d| d == "start");
                if started && !operation.rolling_back {
                    match self.create_steps(operation.clone()).await {
                        Ok(_) => return Ok("rolled forward: the volume is whole"),
                        Err((step, e)) => {
                            tracing::warn!(%step, error = %e, "rolling a create forward failed; undoing it");
                        }
                    }
                }
                let current = self
                    .with_state(|s| s.operations.get(&operation.id).cloned())
                    .unwrap_or_else(|| operation.clone());
                self.undo_create(&current).await?;
                Ok("rolled back: nothing of the volume is left")
            }
            Operation::DeleteVolume { .. } => {
                self.delete_steps(operation.clone()).await?;
                Ok("rolled forward: the volume is deleted")
            }
            Operation::ExpandVolume { .. } => {
                if undoable(operation) {
                    self.undo_expand(operation).await?;
                    Ok("rolled back: the volume has its old size")
                } else {
                    self.expand_steps(operation.clone())
                        .await
                        .map_err(|(step, source)| EngineError::Failed {
                            operation: "expand volume",
                            subject: operation.id.to_string(),
                            step,
                            source: Box::new(source),
                            outcome: "the journal keeps the operation".into(),
                        })?;
                    Ok("rolled forward: the volume has its new size")
                }
            }
            Operation::ReplaceBrick { .. } => self.recover_replace(operation).await,
            Operation::AddDevice { .. } | Operation::RemoveDevice { .. } => {
                self.recover_device(operation).await
            }
            Operation::AddNode { .. } | Operation::RemoveNode { .. } => {
                self.recover_node(operation).await
            }
        }
    }
}
