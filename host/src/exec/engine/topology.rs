//! Topology operations: load a heketi topology file, add and remove nodes
//! and devices, set their states.

use super::{Engine, EngineError};
use crate::exec::driver::{Applied, DriverError};
use crate::model::paths::BrickRoot;
use crate::model::storage::{
    Backend, ClusterRecord, DeviceRecord, NodeRecord, Operation, OperationRecord,
};
use crate::model::topology::{DeviceSpec, NodeSpec, TopologySpec};
use crate::model::{Id, State};
use crate::plan::effect::Effect;
use crate::store::Change;

/// How a topology file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// The backend of devices that do not name one with a `backend` tag.
    pub backend: Backend,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            backend: Backend::LvmThin,
        }
    }
}

/// What loading a topology did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Clusters created.
    pub clusters_added: usize,
    /// Nodes added, by manage hostname.
    pub nodes_added: Vec<String>,
    /// Nodes already known.
    pub nodes_present: Vec<String>,
    /// Devices added, as `node:device`.
    pub devices_added: Vec<String>,
    /// Devices already known.
    pub devices_present: Vec<String>,
    /// What could not be done, with the reason. The rest was done.
    pub failures: Vec<String>,
}

/// The tag that chooses a device's backend.
pub const BACKEND_TAG: &str = "backend";

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
    /// Load a topology: add the clusters, nodes and devices that are not
    /// there yet. Nodes are matched by manage hostname, devices by name, so
    /// loading the same file twice changes nothing. A device that cannot
    /// be added is reported and the rest goes on.
    pub async fn load_topology(
        &self,
        spec: &TopologySpec,
        options: LoadOptions,
    ) -> Result<LoadReport, EngineError> {
        let mut report = LoadReport::default();
        for cluster in &spec.clusters {
            let known: Vec<Id> = self.with_state(|s| {
                cluster
                    .nodes
                    .iter()
                    .filter_map(|n| s.nodes.values().find(|r| r.manage == n.manage))
                    .map(|r| r.cluster)
                    .collect()
            });
            let cluster_id = match known.first() {
                Some(first) if known.iter().all(|c| c == first) => *first,
                Some(_) => {
                    report.failures.push(format!(
                        "the nodes of one cluster in the file ({}) belong to different clusters in aplo; nothing of it was loaded",
                        cluster.nodes.iter().map(|n| n.manage.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    continue;
                }
                None => {
                    let id = self.ids.next();
                    self.commit(vec![Change::PutCluster(ClusterRecord {
                        id,
                        file: true,
                        block: false,
                    })])?;
                    report.clusters_added += 1;
                    id
                }
            };
            for node_spec in &cluster.nodes {
                let existing = self.with_state(|s| {
                    s.nodes
                        .values()
                        .find(|r| r.manage == node_spec.manage)
                        .cloned()
                });
                let node = match existing {
                    Some(node) => {
                        if node.storage != node_spec.storage || node.zone != node_spec.zone {
                            report.failures.push(format!(
                                "node {}: the file says storage {} zone {}, aplo has storage {} zone {}; not changed",
                                node.manage, node_spec.storage, node_spec.zone, node.storage, node.zone
                            ));
                        }
                        report.nodes_present.push(node.manage.clone());
                        node
                    }
                    None => match self.add_node(cluster_id, node_spec).await {
                        Ok(node) => {
                            report.nodes_added.push(node.manage.clone());
                            node
                        }
                        Err(e) => {
                            report
                                .failures
                                .push(format!("node {}: {e}", node_spec.manage));
                            continue;
                        }
                    },
                };
                for device_spec in &node_spec.devices {
                    let label = format!("{}:{}", node.manage, device_spec.name);
                    let present = self.with_state(|s| {
                        s.devices
                            .values()
                            .any(|d| d.node == node.id && d.name == device_spec.name)
                    });
                    if present {
                        report.devices_present.push(label);
                        continue;
                    }
                    match self.add_device(node.id, device_spec, options.backend).await {
                        Ok(_) => report.devices_added.push(label),
                        Err(e) => report.failures.push(format!("device {label}: {e}")),
                    }
                }
            }
        }
        Ok(report)
    }

    /// Add a node to a cluster; if the cluster has other nodes, the new one
    /// is probed into their trusted pool.
    pub async fn add_node(&self, cluster: Id, spec: &NodeSpec) -> Result<NodeRecord, EngineError> {
        let (exists, others) = self.with_state(|s| {
            (
                s.clusters.contains_key(&cluster),
                crate::plan::volume::via(s, cluster, &|n| self.is_unhealthy(n)),
            )
        });
        if !exists {
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
            state: State::Online,
            tags: spec.tags.clone(),
        };
        if !others.is_empty() {
            self.driver
                .apply(&Effect::PeerProbe {
                    via: others,
                    node: node.clone(),
                })
                .await
                .map_err(|source| EngineError::Failed {
                    operation: "add node",
                    subject: node.manage.clone(),
                    step: "probe".into(),
                    source: Box::new(source),
                    outcome: "the node was not added".into(),
                })?;
        }
        self.commit(vec![Change::PutNode(node.clone())])?;
        Ok(node)
    }

    /// Remove a node that has no devices, detaching it from the pool.
    pub async fn remove_node(&self, manage_or_id: &str) -> Result<(), EngineError> {
        let node = self.find_node(manage_or_id)?;
        let (devices, others) = self.with_state(|s| {
            (
                s.devices.values().filter(|d| d.node == node.id).count(),
                crate::plan::volume::via(s, node.cluster, &|n| self.is_unhealthy(n))
                    .into_iter()
                    .filter(|n| n.id != node.id)
                    .collect::<Vec<_>>(),
            )
        });
        if devices > 0 {
            return Err(EngineError::Conflict(format!(
                "node {} still has {devices} device(s); remove them first",
                node.manage
            )));
        }
        if !others.is_empty() {
            self.driver
                .apply(&Effect::PeerDetach {
                    via: others,
                    node: node.clone(),
                })
                .await
                .map_err(|source| EngineError::Failed {
                    operation: "remove node",
                    subject: node.manage.clone(),
                    step: "detach".into(),
                    source: Box::new(source),
                    outcome: "the node is still in aplo".into(),
                })?;
        }
        self.commit(vec![Change::DeleteNode(node.id)])
    }

    fn find_node(&self, manage_or_id: &str) -> Result<NodeRecord, EngineError> {
        self.with_state(|s| {
            s.nodes
                .values()
                .find(|n| n.manage == manage_or_id || n.id.to_string() == manage_or_id)
                .cloned()
        })
        .ok_or_else(|| EngineError::NotFound {
            kind: "node",
            name: manage_or_id.to_owned(),
        })
    }

    fn find_device(&self, node: &str, name_or_id: &str) -> Result<DeviceRecord, EngineError> {
        let node = self.find_node(node)?;
        self.with_state(|s| {
            s.devices
                .values()
                .find(|d| {
                    d.node == node.id && (d.name == name_or_id || d.id.to_string() == name_or_id)
                })
                .cloned()
        })
        .ok_or_else(|| EngineError::NotFound {
            kind: "device",
            name: format!("{}:{name_or_id}", node.manage),
        })
    }

    /// Set a node's state; placement uses only online nodes.
    pub fn set_node_state(
        &self,
        manage_or_id: &str,
        state: State,
    ) -> Result<NodeRecord, EngineError> {
        let node = NodeRecord {
            state,
            ..self.find_node(manage_or_id)?
        };
        self.commit(vec![Change::PutNode(node.clone())])?;
        Ok(node)
    }

    /// Set a device's state; placement uses only online devices.
    pub fn set_device_state(
        &self,
        node: &str,
        device: &str,
        state: State,
    ) -> Result<DeviceRecord, EngineError> {
        let device = DeviceRecord {
            state,
            ..self.find_device(node, device)?
        };
        self.commit(vec![Change::PutDevice(device.clone())])?;
        Ok(device)
    }

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
            Some(name) => name
                .parse()
                .map_err(|e: String| EngineError::Invalid(format!("device {}: {e}", spec.name)))?,
            None => default_backend,
        };
        check_device_name(backend, &spec.name)?;
        let _planning = self.planning.lock().await;
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
        let operation = OperationRecord {
            id: self.ids.next(),
            operation: Operation::AddDevice {
                device: device.id,
                wipe: spec.destroy_data,
            },
            done: Vec::new(),
            rolling_back: false,
        };
        let _busy = self.claim_busy(device.id, "the device")?;
        self.commit(vec![
            Change::PutDevice(device.clone()),
            Change::PutOperation(operation.clone()),
        ])?;
        self.config.faults.reached("add-device:journaled");
        match self.prepare_device(&operation).await {
            Ok(device) => Ok(device),
            Err(e) => {
                let undo = self.undo_add_device(&operation).await;
                match (e, undo) {
                    (DriverError::Refused(message), Ok(())) => Err(EngineError::Invalid(message)),
                    (source, undo) => Err(EngineError::Failed {
                        operation: "add device",
                        subject: format!("{}:{}", node_record.manage, spec.name),
                        step: "prepare".into(),
                        source: Box::new(source),
                        outcome: self.undo_outcome(undo),
                    }),
                }
            }
        }
    }

    async fn prepare_device(
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

    async fn undo_add_device(&self, operation: &OperationRecord) -> Result<(), EngineError> {
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
                    step: "release".into(),
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
        let _planning = self.planning.lock().await;
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
        let operation = OperationRecord {
            id: self.ids.next(),
            operation: Operation::RemoveDevice { device: device.id },
            done: Vec::new(),
            rolling_back: false,
        };
        self.commit(vec![
            Change::PutDevice(DeviceRecord {
                state: State::Offline,
                ..device
            }),
            Change::PutOperation(operation.clone()),
        ])?;
        self.release_device(&operation).await
    }

    async fn release_device(&self, operation: &OperationRecord) -> Result<(), EngineError> {
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

    pub(super) async fn recover_device(
        &self,
        operation: &OperationRecord,
    ) -> Result<&'static str, EngineError> {
        match operation.operation {
            Operation::AddDevice { .. } => match self.prepare_device(operation).await {
                Ok(_) => Ok("rolled forward: the device is online"),
                Err(e) => {
                    tracing::warn!(error = %e, "preparing the device failed again; undoing the add");
                    self.undo_add_device(operation).await?;
                    Ok("rolled back: the device was not added")
                }
            },
            Operation::RemoveDevice { .. } => {
                self.release_device(operation).await?;
                Ok("rolled forward: the device is removed")
            }
            _ => unreachable!("recover_device recovers device operations"),
        }
    }
}
