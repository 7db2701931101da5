//! Deleting a volume: stop, delete, tear the bricks down, free the space.
//! A delete, once journaled, always rolls forward.

use super::volume::{Teardown, apply_all};
use super::{Engine, EngineError};
use crate::exec::driver::DriverError;
use crate::model::storage::{Operation, OperationRecord, VolumeRecord, VolumeState};
use crate::plan::effect::Effect;
use crate::store::Change;

impl Engine {
    /// Delete a volume: stop it, delete it, tear its bricks down and free
    /// their space. A delete, once journaled, always rolls forward.
    #[tracing::instrument(skip_all, fields(volume = name_or_id))]
    pub async fn delete_volume(&self, name_or_id: &str) -> Result<(), EngineError> {
        let planning = self.planning.lock().await;
        let volume = self.find_volume(name_or_id)?;
        let pending = self.with_state(|s| {
            s.operations
                .values()
                .any(|o| o.operation.volume() == Some(volume.id))
        });
        if pending {
            return Err(EngineError::Conflict(format!(
                "volume {} has an unfinished operation; run `aplo repair` first",
                volume.name
            )));
        }
        let _busy = self.claim_busy(volume.id, &format!("volume {}", volume.name))?;
        let operation = OperationRecord {
            id: self.ids.next(),
            operation: Operation::DeleteVolume { volume: volume.id },
            done: Vec::new(),
            rolling_back: false,
        };
        self.commit(vec![
            Change::PutVolume(VolumeRecord {
                state: VolumeState::Deleting,
                ..volume.clone()
            }),
            Change::PutOperation(operation.clone()),
        ])?;
        drop(planning);
        self.config.faults.reached("delete-volume:journaled");
        self.delete_steps(operation).await
    }

    pub(super) async fn delete_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<(), EngineError> {
        let Operation::DeleteVolume { volume: id } = operation.operation else {
            unreachable!("delete_steps runs delete operations")
        };
        let Some(Teardown {
            volume,
            target,
            brick_effects,
            brick_ids,
        }) = self.teardown(id)
        else {
            return self.commit(vec![Change::DeleteOperation(operation.id)]);
        };
        let failed = |step: &str, source: DriverError| EngineError::Failed {
            operation: "delete volume",
            subject: volume.name.clone(),
            step: step.to_owned(),
            source: Box::new(source),
            outcome:
                "the volume is marked deleting; the next start or `aplo repair` finishes the delete"
                    .into(),
        };
        let steps = [
            (
                "stop",
                Effect::StopVolume {
                    target: target.clone(),
                },
            ),
            ("delete", Effect::DeleteVolume { target }),
        ];
        for (step, effect) in steps {
            if operation.done.iter().any(|d| d == step) {
                continue;
            }
            self.driver
                .apply(&effect)
                .await
                .map_err(|e| failed(step, e))?;
            operation = self.step_done(&operation, step)?;
        }
        if !operation.done.iter().any(|d| d == "bricks") {
            apply_all(&self.driver, brick_effects?)
                .await
                .map_err(|e| failed("bricks", e))?;
            operation = self.step_done(&operation, "bricks")?;
        }
        let mut changes: Vec<Change> = brick_ids.into_iter().map(Change::DeleteBrick).collect();
        changes.push(Change::DeleteVolume(id));
        changes.push(Change::DeleteOperation(operation.id));
        self.commit(changes)?;
        tracing::info!(volume = %volume.name, "volume deleted");
        Ok(())
    }
}
