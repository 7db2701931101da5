//! Moving every brick off a device or node, one replacement at a time.

use crate::engine::{Engine, EngineError};
use crate::model::Id;
use crate::model::storage::BrickRecord;

/// Bricks moved off a device or node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evacuation {
    /// One line per brick moved: volume, old and new place.
    pub moved: Vec<String>,
}

impl Engine {
    /// Move every brick off `device` (heketi's device removal), then mark
    /// it failed. The device is taken offline first, so no placement picks
    /// it meanwhile. Each brick moves whole or not at all; if one cannot,
    /// the device stays offline with the bricks not yet moved, and asking
    /// again goes on.
    pub async fn evacuate_device(&self, device: Id) -> Result<Evacuation, EngineError> {
        self.evacuate(|b| b.device == device, &[], &format!("device {device}"))
            .await
    }

    /// Move every brick off `node` to the cluster's other nodes.
    pub async fn evacuate_node(&self, node: Id) -> Result<Evacuation, EngineError> {
        self.evacuate(|b| b.node == node, &[node], &format!("node {node}"))
            .await
    }

    async fn evacuate(
        &self,
        on: impl Fn(&BrickRecord) -> bool,
        leaving: &[Id],
        what: &str,
    ) -> Result<Evacuation, EngineError> {
        let mut bricks: Vec<BrickRecord> =
            self.with_state(|s| s.bricks.values().filter(|b| on(b)).cloned().collect());
        bricks.sort_by_key(|b| (b.volume, b.set, b.position));
        let mut report = Evacuation::default();
        for brick in bricks {
            let name = self
                .with_state(|s| s.volumes.get(&brick.volume).map(|v| v.name.clone()))
                .unwrap_or_else(|| brick.volume.to_string());
            let new = self.replace_brick(brick.id, leaving).await.map_err(|e| {
                EngineError::Conflict(format!(
                    "moving brick {} of volume {name} off {what} failed: {e}; {} brick(s) moved before it",
                    brick.id,
                    report.moved.len()
                ))
            })?;
            let (from, to) = self.with_state(|s| {
                let node = |id: Id| {
                    s.nodes
                        .get(&id)
                        .map_or_else(|| id.to_string(), |n| n.manage.clone())
                };
                (node(brick.node), node(new.node))
            });
            report.moved.push(format!(
                "volume {name}: brick {} on {from} -> brick {} on {to}",
                brick.id, new.id
            ));
        }
        Ok(report)
    }
}
