//! Deleting a volume: stop, delete, tear the bricks down, free the space.
//! A delete, once journaled, always rolls forward.

use super::{Engine, EngineError};
use crate::engine::FaultPoint;
use crate::model::journal::{Operation, OperationKind, OperationRecord};
use crate::model::storage::{VolumeRecord, VolumeState};
use crate::store::Change;

impl Engine {
    /// Delete a volume: stop it, delete it, tear its bricks down and free
    /// their space. A delete, once journaled, always rolls forward: asking
    /// again after a failed delete finishes it.
    #[tracing::instrument(skip_all, fields(volume = name_or_id))]
    pub async fn delete_volume(&self, name_or_id: &str) -> Result<(), EngineError> {
        let planning = self.planning.lock().await;
        let volume = self.find_volume(name_or_id)?;
        let pending = self.with_state(|s| {
            s.operations
                .values()
                .find(|o| o.operation.volume() == Some(volume.id))
                .cloned()
        });
        if let Some(unfinished) = pending
            .as_ref()
            .filter(|o| matches!(o.operation, Operation::DeleteVolume { .. }))
        {
            let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
            drop(planning);
            tracing::info!(volume = %volume.name, "finishing an earlier delete");
            return self.delete_steps(unfinished.clone()).await;
        }
        if pending.is_some() {
            return Err(EngineError::Conflict(format!(
                "volume {} has an unfinished operation; run `aplo repair` first",
                volume.name
            )));
        }
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
        let operation = OperationRecord::new(
            self.ids.next(),
            Operation::DeleteVolume { volume: volume.id },
        );
        self.commit(vec![
            Change::PutVolume(VolumeRecord {
                state: VolumeState::Deleting,
                ..volume.clone()
            }),
            Change::PutOperation(operation.clone()),
        ])?;
        drop(planning);
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::DeleteVolume));
        self.delete_steps(operation).await
    }

    pub(super) async fn delete_steps(&self, operation: OperationRecord) -> Result<(), EngineError> {
        let name = self.with_state(|s| {
            operation
                .operation
                .volume()
                .and_then(|v| s.volumes.get(&v))
                .map(|v| v.name.clone())
        });
        self.teardown(
            operation,
            "delete volume",
            "the volume is marked deleting; the next start or `aplo repair` finishes the delete",
        )
        .await?;
        tracing::info!(volume = ?name, "volume deleted");
        Ok(())
    }
}
