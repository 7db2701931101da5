//! Topology operations: load a heketi topology file; create, flag and
//! delete clusters; set node states and tags. Cluster operations live in
//! [`clusters`], adding and removing nodes in [`nodes`], device operations
//! in [`devices`].

mod clusters;
mod devices;
mod nodes;

use super::{Engine, EngineError};
use crate::model::journal::OperationRecord;
use crate::model::storage::{Backend, ClusterRecord, DeviceRecord, NodeRecord, Snapshot};
use crate::model::topology::TopologySpec;
use crate::model::{Id, Pairs, State};
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

    /// A node by manage hostname or id.
    pub fn find_node(&self, manage_or_id: &str) -> Result<NodeRecord, EngineError> {
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

    /// A device by its node (manage hostname or id) and its name or id.
    pub fn find_device(&self, node: &str, name_or_id: &str) -> Result<DeviceRecord, EngineError> {
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

    /// Mark a node and all its devices failed (heketi's node removal): take
    /// it offline, move each of its bricks to the cluster's other nodes
    /// (see [`Engine::evacuate_node`]), then mark it and its devices failed.
    /// This is also how a dead node's volumes regain their redundancy. If a
    /// brick cannot move, the node stays offline with the bricks not yet
    /// moved, and the error says which and why.
    pub async fn fail_node(&self, id: Id) -> Result<NodeRecord, EngineError> {
        let node = self.find_node(&id.to_string())?;
        if node.state == State::Online {
            let _planning = self.planning.lock().await;
            let node = self.find_node(&id.to_string())?;
            self.commit(vec![Change::PutNode(NodeRecord {
                state: State::Offline,
                ..node
            })])?;
        }
        let moved = self.evacuate_node(id).await?;
        if !moved.moved.is_empty() {
            tracing::info!(node = %node.manage, bricks = moved.moved.len(), "bricks moved off the node");
        }
        let _planning = self.planning.lock().await;
        let node = self.find_node(&id.to_string())?;
        let (devices, holding) = self.with_state(|s| {
            let devices: Vec<DeviceRecord> = s
                .devices
                .values()
                .filter(|d| d.node == id)
                .cloned()
                .collect();
            let holding = volumes_on(s, |b| b.node == id);
            (devices, holding)
        });
        if !holding.is_empty() {
            return Err(EngineError::Conflict(format!(
                "node {} still holds bricks of {} (placed while its bricks were moving?); fail it again",
                node.manage,
                holding.join(", ")
            )));
        }
        let failed = NodeRecord {
            state: State::Failed,
            ..node
        };
        let mut changes = vec![Change::PutNode(failed.clone())];
        changes.extend(devices.into_iter().map(|d| {
            Change::PutDevice(DeviceRecord {
                state: State::Failed,
                ..d
            })
        }));
        self.commit(changes)?;
        Ok(failed)
    }

    /// Change a node's tags: `update` gets the current tags and returns
    /// the new ones.
    pub async fn update_node_tags(
        &self,
        id: Id,
        update: impl FnOnce(&Pairs) -> Pairs,
    ) -> Result<NodeRecord, EngineError> {
        // Serialised with planning, so that no change is lost and a
        // placement sees the tags before or after, never half.
        let _planning = self.planning.lock().await;
        let node = self.find_node(&id.to_string())?;
        let node = NodeRecord {
            tags: update(&node.tags),
            ..node
        };
        self.commit(vec![Change::PutNode(node.clone())])?;
        Ok(node)
    }

    /// Whether a journaled operation is running in this process (and not
    /// left over from a crash or a failed undo).
    pub fn operation_running(&self, operation: &OperationRecord) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&operation.operation.subject())
    }
}

/// The names of the volumes with a brick matching `on`, sorted, each once.
fn volumes_on(
    s: &Snapshot,
    on: impl Fn(&crate::model::storage::BrickRecord) -> bool,
) -> Vec<String> {
    let mut names: Vec<String> = s
        .bricks
        .values()
        .filter(|b| on(b))
        .filter_map(|b| s.volumes.get(&b.volume).map(|v| v.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}
