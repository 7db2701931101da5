//! Node health as the gluster pool reports it, and the topology the
//! placement policies see with it.

use std::sync::Arc;

use super::Engine;
use crate::model::storage::Snapshot;
use crate::model::{Id, State, Topology};

impl Engine {
    pub(super) fn is_unhealthy(&self, node: Id) -> bool {
        self.unhealthy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node)
    }

    /// Ask the pool about node health every `interval` in the background,
    /// so that placements do not wait for it (for long-running processes;
    /// keep the interval below the health TTL). Stops when the task is
    /// aborted or the engine is dropped.
    pub fn watch_health(
        self: &Arc<Self>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                engine.refresh_health().await;
                drop(engine);
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// [`Engine::refresh_health`], unless the pool was asked within the
    /// health TTL.
    pub(super) async fn recent_health(&self) {
        let fresh = self
            .health_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < self.config.health_ttl);
        if !fresh {
            self.refresh_health().await;
        }
    }

    /// Ask each cluster's pool which nodes are disconnected; placement then
    /// treats them as offline. A cluster that does not answer keeps what
    /// was known.
    pub async fn refresh_health(&self) {
        *self
            .health_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        let clusters: Vec<Id> = self.with_state(|s| s.clusters.keys().copied().collect());
        for cluster in clusters {
            let (via, nodes) = self.with_state(|s| {
                (
                    crate::plan::volume::via(s, cluster, &|n| self.is_unhealthy(n)),
                    s.nodes
                        .values()
                        .filter(|n| n.cluster == cluster)
                        .map(|n| (n.id, n.storage.clone(), n.manage.clone()))
                        .collect::<Vec<_>>(),
                )
            });
            if via.is_empty() {
                continue;
            }
            let Ok(peers) = self.driver.peers(&via).await else {
                tracing::warn!(%cluster, "no node of the cluster answered `pool list`");
                continue;
            };
            let mut unhealthy = self.unhealthy.lock().unwrap_or_else(|e| e.into_inner());
            for (id, storage, manage) in nodes {
                let down = peers
                    .iter()
                    .any(|p| !p.connected && (p.hostname == storage || p.hostname == manage));
                if down {
                    if unhealthy.insert(id) {
                        tracing::warn!(node = %manage, "gluster reports the node disconnected");
                    }
                } else if unhealthy.remove(&id) {
                    tracing::info!(node = %manage, "gluster reports the node connected again");
                }
            }
        }
    }

    /// The topology placement policies see: the store's, with nodes the
    /// pool reports disconnected marked offline, and devices an operation
    /// of this process is busy with (being measured, added or removed)
    /// marked offline too.
    pub fn policy_topology(&self) -> Topology {
        let mut topology = self.with_state(Snapshot::policy_topology);
        let unhealthy = self.unhealthy.lock().unwrap_or_else(|e| e.into_inner());
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        for node in topology
            .clusters
            .iter_mut()
            .flat_map(|c| c.nodes.iter_mut())
        {
            if node.state == State::Online && unhealthy.contains(&node.id) {
                node.state = State::Offline;
            }
            for device in node.devices.iter_mut() {
                if device.state == State::Online && busy.contains(&device.id) {
                    device.state = State::Offline;
                }
            }
        }
        topology
    }
}
