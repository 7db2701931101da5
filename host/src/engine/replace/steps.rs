//! A replacement's journaled steps, forward and back, and whether gluster
//! already took the new brick (for recovery).

use crate::engine::Phase;
use crate::engine::driver::DriverError;
use crate::engine::volume::apply_all;
use crate::engine::{Engine, EngineError, StepError};
use crate::model::State;
use crate::model::journal::{Operation, OperationRecord, Step};
use crate::model::storage::BrickRecord;
use crate::plan::effect::Effect;
use crate::plan::volume as plan;
use crate::store::Change;

impl Engine {
    /// The forward steps: the new brick, `replace-brick`, the old brick's
    /// teardown (given up when its node is not online or unreachable),
    /// records.
    pub(in crate::engine) async fn replace_steps(
        &self,
        mut operation: OperationRecord,
    ) -> Result<(), StepError> {
        let Operation::ReplaceBrick { volume, old, new } = operation.operation else {
            unreachable!("replace_steps runs replace operations")
        };
        let fail = |step: Phase, e: EngineError| (step, DriverError::Refused(e.to_string()));
        let prepared = self.with_state(|s| {
            let volume = s.volumes.get(&volume)?.clone();
            let old = s.bricks.get(&old)?.clone();
            let new = s.bricks.get(&new)?.clone();
            Some((
                self.target(s, &volume),
                plan::address(s, &old),
                plan::address(s, &new),
                plan::placed(s, &old),
                plan::placed(s, &new),
                s.nodes
                    .get(&old.node)
                    .is_none_or(|n| n.state != State::Online)
                    || self.is_unhealthy(old.node),
            ))
        });
        let Some((target, old_address, new_address, old_placed, new_placed, old_node_down)) =
            prepared
        else {
            return Err(fail(
                Phase::Plan,
                EngineError::Invalid(format!(
                    "volume {volume} or brick {old} or {new} is not in the store"
                )),
            ));
        };
        let create = new_placed
            .map(|p| vec![Effect::CreateBrick(p)])
            .map_err(|e| EngineError::Invalid(e.to_string()));
        operation = self.step(operation, Step::Brick, create).await?;
        let (name, via) = (target.name.clone(), target.via.clone());
        let replace = Effect::ReplaceBrick {
            target,
            old: old_address,
            new: new_address.clone(),
        };
        operation = self
            .step(operation, Step::Replace, Ok(vec![replace]))
            .await?;
        self.await_brick_online(&name, &via, &new_address).await;
        if !operation.has_done(Step::Teardown) {
            let teardown = match old_placed {
                Ok(p) => apply_all(&self.driver, vec![Effect::DestroyBrick(p)]).await,
                Err(e) => Err(DriverError::Refused(e.to_string())),
            };
            match teardown {
                Ok(()) => {}
                // A node that is leaving (offline or failed) or unreachable
                // keeps its old brick; if it comes back, `aplo check`
                // reports it as an orphan and `aplo repair` removes it (no
                // gluster volume uses it now).
                Err(e) if old_node_down => {
                    tracing::warn!(brick = %old, error = %e, "the old brick's node is leaving or unreachable; its brick is left there for `aplo repair` if it returns");
                }
                Err(e) => return Err((Phase::Step(Step::Teardown), e)),
            }
            operation = self
                .step_done(&operation, Step::Teardown)
                .map_err(|e| fail(Phase::Step(Step::Teardown), e))?;
        }
        self.commit(vec![
            Change::DeleteBrick(old),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| fail(Phase::Finish, e))?;
        tracing::info!(volume = %volume, %old, %new, "brick replaced");
        Ok(())
    }

    /// Wait (up to 30 s) until gluster reports the new brick's process
    /// online: glusterd starts it during `replace-brick`, and it takes a
    /// second or two to sign in. Not a failure if it does not: `aplo check`
    /// reports a brick whose process is down, and `aplo repair` restarts it.
    async fn await_brick_online(
        &self,
        volume: &str,
        via: &[crate::model::storage::NodeRecord],
        brick: &crate::plan::effect::BrickAddress,
    ) {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(30) {
            let Ok(status) = self.driver.volume_status(via, volume).await else {
                return;
            };
            match status
                .iter()
                .find(|b| b.host == brick.host && b.path == brick.path)
            {
                Some(b) if b.online => return,
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                // Not listed (a simulation, or a status gluster could not
                // give in full): nothing to wait for.
                None => return,
            }
        }
        tracing::warn!(%volume, %brick, "the new brick's process is not online after 30 s; `aplo check` will report it");
    }

    /// Undo a replacement gluster has not taken: destroy the new brick and
    /// drop its record; the old brick stays the volume's.
    pub(in crate::engine) async fn undo_replace(
        &self,
        operation: &OperationRecord,
    ) -> Result<(), EngineError> {
        let Operation::ReplaceBrick { new, .. } = operation.operation else {
            unreachable!("undo_replace undoes replace operations")
        };
        let mut marked = operation.clone();
        marked.rolling_back = true;
        self.commit(vec![Change::PutOperation(marked)])?;
        let effects = self.with_state(|s| {
            let bricks: Vec<&BrickRecord> = s.bricks.get(&new).into_iter().collect();
            self.bricks_effects(s, &bricks, Effect::DestroyBrick)
        })?;
        apply_all(&self.driver, effects)
            .await
            .map_err(|source| EngineError::Failed {
                operation: "undo replace brick",
                subject: new.to_string(),
                step: Phase::Step(Step::Brick),
                source: Box::new(source),
                outcome: "the journal keeps the operation".into(),
            })?;
        self.commit(vec![
            Change::DeleteBrick(new),
            Change::DeleteOperation(operation.id),
        ])
    }

    /// Whether gluster's volume already has the operation's new brick.
    pub(in crate::engine) async fn gluster_took(
        &self,
        operation: &OperationRecord,
    ) -> Result<bool, EngineError> {
        let Operation::ReplaceBrick { volume, new, .. } = operation.operation else {
            return Ok(false);
        };
        let Some((name, via, address)) = self.with_state(|s| {
            let volume = s.volumes.get(&volume)?;
            let brick = s.bricks.get(&new)?;
            Some((
                volume.name.clone(),
                self.target(s, volume).via,
                plan::address(s, brick),
            ))
        }) else {
            return Ok(false);
        };
        let volumes = self.driver.volumes(&via).await.map_err(|e| {
            EngineError::Conflict(format!(
                "gluster could not be asked whether volume {name} already uses brick {address} ({e}); the replacement stays journaled"
            ))
        })?;
        Ok(volumes.iter().any(|v| {
            v.name == name
                && v.bricks
                    .iter()
                    .any(|b| b.host == address.host && b.path == address.path)
        }))
    }
}
