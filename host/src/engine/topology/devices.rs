//! Device operations: add (journaled, prepared, then online), remove
//! (journaled, then released), resync, retire, change tags, and the
//! recovery of an interrupted add or remove.

use super::super::{Engine, EngineError};
use super::BACKEND_TAG;
use crate::engine::driver::{Applied, DriverError};
use crate::engine::{FaultPoint, Phase};
use crate::model::journal::{Operation, OperationKind, OperationRecord};
use crate::model::paths::BrickRoot;
use crate::model::storage::{Backend, DeviceRecord, NodeRecord, UnknownBackend};
use crate::model::topology::DeviceSpec;
use crate::model::{Id, Pairs, State};
use crate::plan::effect::Effect;
use crate::store::Change;

fn check_device_name(backend: Backend, name: &str) -> Result<(), EngineError> {
    match backend {
        Backend::Loop | Backend::Dir => BrickRoot::new(name)
            .map(|_| ())
            .map_err(|e| EngineError::Invalid(format!("device {name}: {e}"))),
        Backend::LvmThin => {
            let plain = name.starts_with("/dev/")
                && BrickRoot::new(name).is_ok()
                && !name.contains(char::is_whitespace);
            if plain {
                Ok(())
            } else {
                Err(EngineError::Invalid(format!(
                    "device '{}' must be a block device path under /dev/",
                    name.escape_default()
                )))
            }
        }
    }
}

impl Engine {
    /// Add a device: journaled, then prepared (wiped only if the spec says
    /// `destroydata`; `pvcreate` and `vgcreate` for `lvm-thin`), then
    /// online with its measured capacity. A device that cannot be prepared
    /// leaves nothing behind.
    pub async fn add_device(
        &self,
        node: Id,
        spec: &DeviceSpec,
        default_backend: Backend,
    ) -> Result<DeviceRecord, EngineError> {
        let backend = match spec.tags.get(BACKEND_TAG) {
            Some(name) => name.parse().map_err(|e: UnknownBackend| {
                EngineError::Invalid(format!("device {}: {e}", spec.name))
            })?,
            None => default_backend,
        };
        check_device_name(backend, &spec.name)?;
        // Held until the device is journaled (offline, so no placement
        // picks it), not while it is prepared on its node.
        let planning = self.planning.lock().await;
        let node_record = self
            .with_state(|s| s.nodes.get(&node).cloned())
            .ok_or_else(|| EngineError::NotFound {
                kind: "node",
                name: node.to_string(),
            })?;
        if self.with_state(|s| {
            s.devices
                .values()
                .any(|d| d.node == node && d.name == spec.name)
        }) {
            return Err(EngineError::Conflict(format!(
                "node {} already has device {}",
                node_record.manage, spec.name
            )));
        }
        let device = DeviceRecord {
            id: self.ids.next(),
            node,
            name: spec.name.clone(),
            backend,
            state: State::Offline,
            tags: spec.tags.clone(),
            total_bytes: 0,
        };
        let operation = OperationRecord::new(
            self.ids.next(),
            Operation::AddDevice {
                device: device.id,
                wipe: spec.destroy_data,
            },
        );
        let _busy = self.claim_busy(device.id, "the device")?;
        self.commit(vec![
            Change::PutDevice(device.clone()),
            Change::PutOperation(operation.clone()),
        ])?;
        drop(planning);
        self.config
            .faults
            .reached(FaultPoint::Journaled(OperationKind::AddDevice));
        match self.prepare_device(&operation).await {
            Ok(device) => Ok(device),
            Err(e) => {
                let undo = self.undo_add_device(&operation).await;
                match (e, undo) {
                    (DriverError::Refused(message), Ok(())) => Err(EngineError::Invalid(message)),
                    (source, undo) => Err(EngineError::Failed {
                        operation: "add device",
                        subject: format!("{}:{}", node_record.manage, spec.name),
                        step: Phase::Prepare,
                        source: Box::new(source),
                        outcome: self.undo_outcome(undo),
                    }),
                }
            }
        }
    }

    pub(in crate::engine) async fn prepare_device(
        &self,
        operation: &OperationRecord,
    ) -> Result<DeviceRecord, DriverError> {
        let Operation::AddDevice { device, wipe } = operation.operation else {
            unreachable!("prepare_device runs add-device operations")
        };
        let (node, device) = self
            .with_state(|s| {
                let d = s.devices.get(&device)?.clone();
                Some((s.nodes.get(&d.node)?.clone(), d))
            })
            .ok_or_else(|| DriverError::Refused(format!("device {device} is not in the store")))?;
        let capacity = match self
            .driver
            .apply(&Effect::PrepareDevice {
                node,
                device: device.clone(),
                wipe,
            })
            .await?
        {
            Applied::Capacity(bytes) => bytes,
            Applied::Done => 0,
        };
        let ready = DeviceRecord {
            total_bytes: capacity,
            state: State::Online,
            ..device
        };
        self.commit(vec![
            Change::PutDevice(ready.clone()),
            Change::DeleteOperation(operation.id),
        ])
        .map_err(|e| DriverError::Refused(e.to_string()))?;
        tracing::info!(device = %ready.name, capacity, "device added");
        Ok(ready)
    }

    pub(in crate::engine) async fn undo_add_device(
        &self,
        operation: &OperationRecord,
    ) -> Result<(), EngineError> {
        let Operation::AddDevice { device, .. } = operation.operation else {
            unreachable!("undo_add_device undoes add-device operations")
        };
        self.release_and_forget(
            device,
            operation.id,
            "undo add device",
            "the journal keeps the operation",
        )
        .await
    }

    /// Release a device on its node, then drop its record and the journal
    /// entry in one transaction.
    async fn release_and_forget(
        &self,
        device: Id,
        operation: Id,
        what: &'static str,
        outcome: &str,
    ) -> Result<(), EngineError> {
        if let Some((node, record)) = self.with_state(|s| {
            let d = s.devices.get(&device)?.clone();
            Some((s.nodes.get(&d.node)?.clone(), d))
        }) {
            self.driver
                .apply(&Effect::ReleaseDevice {
                    node,
                    device: record.clone(),
                })
                .await
                .map_err(|source| EngineError::Failed {
                    operation: what,
                    subject: record.name.clone(),
                    step: Phase::Release,
                    source: Box::new(source),
                    outcome: outcome.into(),
                })?;
        }
        self.commit(vec![
            Change::DeleteDevice(device),
            Change::DeleteOperation(operation),
        ])
    }

    /// Remove a device that holds no bricks, releasing it (`vgremove`,
    /// `pvremove` for `lvm-thin`).
    pub async fn remove_device(&self, node: &str, device: &str) -> Result<(), EngineError> {
        // Held until the device is journaled offline (no placement picks it
        // from then on), not while it is released on its node.
        let planning = self.planning.lock().await;
        let device = self.find_device(node, device)?;
        let volumes: Vec<String> = self.with_state(|s| {
            let mut names: Vec<String> = s
                .bricks
                .values()
                .filter(|b| b.device == device.id)
                .filter_map(|b| s.volumes.get(&b.volume).map(|v| v.name.clone()))
                .collect();
            names.sort();
            names.dedup();
            names
        });
        if !volumes.is_empty() {
            return Err(EngineError::Conflict(format!(
                "device {} holds bricks of {}; delete those volumes (or move their bricks) first",
                device.name,
                volumes.join(", ")
            )));
        }
        let _busy = self.claim_busy(device.id, "the device")?;
        let operation = OperationRecord::new(
            self.ids.next(),
            Operation::RemoveDevice { device: device.id },
        );
        self.commit(vec![
            Change::PutDevice(DeviceRecord {
                state: State::Offline,
                ..device
            }),
            Change::PutOperation(operation.clone()),
        ])?;
        drop(planning);
        self.release_device(&operation).await
    }

    pub(in crate::engine) async fn release_device(
        &self,
        operation: &OperationRecord,
    ) -> Result<(), EngineError> {
        let Operation::RemoveDevice { device } = operation.operation else {
            unreachable!("release_device runs remove-device operations")
        };
        self.release_and_forget(
            device,
            operation.id,
            "remove device",
            "the device is offline; the next start or `aplo repair` finishes removing it",
        )
        .await
    }

    fn device_by_id(&self, id: Id) -> Result<(NodeRecord, DeviceRecord), EngineError> {
        self.with_state(|s| {
            let d = s.devices.get(&id)?.clone();
            Some((s.nodes.get(&d.node)?.clone(), d))
        })
        .ok_or_else(|| EngineError::NotFound {
            kind: "device",
            name: id.to_string(),
        })
    }

    /// Measure a device again and take the answer as its capacity
    /// (heketi's resync, e.g. after a `capacity` tag changed or a
    /// directory's filesystem grew). Only while the device holds no
    /// bricks: the drivers measure a device in use as its free space, not
    /// its size, so a measurement then would count the bricks twice.
    pub async fn resync_device(&self, id: Id) -> Result<DeviceRecord, EngineError> {
        // Held while checking that the device holds no bricks and marking
        // it busy: from then until it is measured, placement sees it
        // offline (see `Engine::policy_topology`), so no brick lands on it
        // meanwhile, and the lock is not held while the node answers.
        let planning = self.planning.lock().await;
        let (node, device) = self.device_by_id(id)?;
        let holding = self.with_state(|s| super::volumes_on(s, |b| b.device == id));
        if !holding.is_empty() {
            return Err(EngineError::Conflict(format!(
                "device {} holds bricks of {}; aplo measures a device only while it holds no bricks",
                device.name,
                holding.join(", ")
            )));
        }
        let _busy = self.claim_busy(device.id, "the device")?;
        drop(planning);
        let subject = format!("{}:{}", node.manage, device.name);
        let measured = self
            .driver
            .apply(&Effect::PrepareDevice {
                node,
                device: device.clone(),
                wipe: false,
            })
            .await
            .map_err(|source| EngineError::Failed {
                operation: "resync device",
                subject,
                step: Phase::Measure,
                source: Box::new(source),
                outcome: "the device is unchanged".into(),
            })?;
        let total_bytes = match measured {
            Applied::Capacity(bytes) => bytes,
            Applied::Done => device.total_bytes,
        };
        let before = device.total_bytes;
        // The record as it is now (its state may have been set meanwhile),
        // with the new size.
        let _planning = self.planning.lock().await;
        let (_, device) = self.device_by_id(id)?;
        let device = DeviceRecord {
            total_bytes,
            ..device
        };
        self.commit(vec![Change::PutDevice(device.clone())])?;
        tracing::info!(device = %device.name, before, after = total_bytes, "device resynced");
        Ok(device)
    }

    /// Mark a device failed (heketi's device removal): take it offline,
    /// move each of its bricks to a device the volume's placement policy
    /// picks (see [`Engine::evacuate_device`]), then mark it failed. If a
    /// brick cannot move, the device stays offline with the bricks not yet
    /// moved, and the error says which and why.
    pub async fn fail_device(&self, id: Id) -> Result<DeviceRecord, EngineError> {
        let (_, device) = self.device_by_id(id)?;
        if device.state == State::Online {
            let _planning = self.planning.lock().await;
            let (_, device) = self.device_by_id(id)?;
            self.commit(vec![Change::PutDevice(DeviceRecord {
                state: State::Offline,
                ..device
            })])?;
        }
        let moved = self.evacuate_device(id).await?;
        if !moved.moved.is_empty() {
            tracing::info!(device = %device.name, bricks = moved.moved.len(), "bricks moved off the device");
        }
        let _planning = self.planning.lock().await;
        let (_, device) = self.device_by_id(id)?;
        let holding = self.with_state(|s| super::volumes_on(s, |b| b.device == id));
        if !holding.is_empty() {
            return Err(EngineError::Conflict(format!(
                "device {} still holds bricks of {} (placed while its bricks were moving?); fail it again",
                device.name,
                holding.join(", ")
            )));
        }
        let _busy = self.claim_busy(device.id, "the device")?;
        let device = DeviceRecord {
            state: State::Failed,
            ..device
        };
        self.commit(vec![Change::PutDevice(device.clone())])?;
        Ok(device)
    }

    /// Change a device's tags: `update` gets the current tags and returns
    /// the new ones. The `backend` tag chose the backend when the device
    /// was added; it may be removed but not changed to another backend.
    pub async fn update_device_tags(
        &self,
        id: Id,
        update: impl FnOnce(&Pairs) -> Pairs,
    ) -> Result<DeviceRecord, EngineError> {
        let _planning = self.planning.lock().await;
        let (_, device) = self.device_by_id(id)?;
        let _busy = self.claim_busy(device.id, "the device")?;
        let tags = update(&device.tags);
        if let Some(backend) = tags.get(BACKEND_TAG)
            && backend != device.backend.as_str()
        {
            return Err(EngineError::Invalid(format!(
                "tag {BACKEND_TAG}: device {} was added as {}; its backend cannot change",
                device.name, device.backend
            )));
        }
        let device = DeviceRecord { tags, ..device };
        self.commit(vec![Change::PutDevice(device.clone())])?;
        Ok(device)
    }
}
