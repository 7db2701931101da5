//! One effect applied: devices and bricks through their own modules, peers
//! and volumes as gluster commands, each safe to run again after a crash.

use super::CommandDriver;
use super::glusterd::addresses;
use crate::engine::driver::{Applied, DriverError};
use crate::exec::gluster::{self, Failure};
use crate::plan::effect::{BrickAddress, Effect};

impl CommandDriver {
    pub(super) async fn apply_effect(&self, effect: &Effect) -> Result<Applied, DriverError> {
        match effect {
            Effect::PrepareDevice { node, device, wipe } => {
                return self
                    .prepare(node, device, *wipe)
                    .await
                    .map(Applied::Capacity);
            }
            Effect::ReleaseDevice { node, device } => self.release(node, device).await?,
            Effect::CreateBrick(_) | Effect::GrowBrick(_) | Effect::DestroyBrick(_) => {
                self.brick(effect).await?;
            }
            Effect::PeerProbe { via, node } => {
                self.gluster(via, &gluster::peer_probe(&node.storage))
                    .await?;
            }
            Effect::PeerDetach { via, node } => {
                match self
                    .gluster(via, &gluster::peer_detach(&node.storage))
                    .await
                {
                    // Detached already (a retry after a crash).
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::NotAPeer => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::CreateVolume {
                target,
                scheme,
                force,
            } => {
                // Try first: on the usual path the name is free. Only when
                // gluster says it exists (a retry after a crash, or someone
                // else's volume) is it compared with the plan.
                let cmd = gluster::volume_create(
                    &target.name,
                    scheme,
                    &addresses(&target.bricks),
                    *force,
                );
                match self.gluster(&target.via, &cmd).await {
                    Ok(_) => {}
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::AlreadyExists =>
                    {
                        let same = self.info(target).await?.is_some_and(|info| {
                            let have: Vec<(String, String)> = info
                                .bricks
                                .iter()
                                .map(|b| (b.host.clone(), b.path.clone()))
                                .collect();
                            have == addresses(&target.bricks)
                        });
                        if !same {
                            return Err(DriverError::Refused(format!(
                                "a gluster volume named '{}' already exists and is not the one aplo planned",
                                target.name
                            )));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Effect::SetOptions { target, options } => {
                // Setting an option to its value again is harmless; this
                // runs right after the create, or on a volume aplo owns.
                if !options.is_empty() {
                    let cmd = gluster::volume_set_many(&target.name, options)
                        .map_err(|e| DriverError::Refused(e.to_string()))?;
                    self.gluster(&target.via, &cmd).await?;
                }
            }
            Effect::StartVolume { target, force } => {
                match self
                    .gluster(&target.via, &gluster::volume_start(&target.name, *force))
                    .await
                {
                    Err(DriverError::Gluster { source, .. })
                        if !*force && source.kind() == Failure::AlreadyStarted => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::StopVolume { target } => {
                if let Some(info) = self.owned(target).await?
                    && info.status == "Started"
                {
                    self.gluster(&target.via, &gluster::volume_stop(&target.name))
                        .await?;
                }
            }
            Effect::DeleteVolume { target } => {
                if let Some(info) = self.owned(target).await? {
                    if info.status == "Started" {
                        self.gluster(&target.via, &gluster::volume_stop(&target.name))
                            .await?;
                    }
                    self.gluster(&target.via, &gluster::volume_delete(&target.name))
                        .await?;
                }
            }
            Effect::AddBricks {
                target,
                scheme,
                bricks,
                force,
            } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                let present = bricks.iter().all(|b| {
                    info.bricks
                        .iter()
                        .any(|have| have.host == b.host && have.path == b.path)
                });
                if !present {
                    let cmd =
                        gluster::volume_add_brick(&target.name, scheme, &addresses(bricks), *force);
                    self.gluster(&target.via, &cmd).await?;
                }
            }
            Effect::ReplaceBrick { target, old, new } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                let has = |b: &BrickAddress| {
                    info.bricks
                        .iter()
                        .any(|have| have.host == b.host && have.path == b.path)
                };
                // Done already (a retry after a crash): nothing to do.
                if has(new) && !has(old) {
                    return Ok(Applied::Done);
                }
                if !has(old) {
                    return Err(DriverError::Refused(format!(
                        "gluster volume '{}' has neither brick {old} nor {new}",
                        target.name
                    )));
                }
                let cmd =
                    gluster::volume_replace_brick(&target.name, &old.to_string(), &new.to_string());
                self.gluster(&target.via, &cmd).await?;
            }
            Effect::Rebalance { target } => {
                match self
                    .gluster(&target.via, &gluster::rebalance_start(&target.name))
                    .await
                {
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::RebalanceRunning => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::SetQuota { target, bytes } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                if info.options.get("features.quota").map(String::as_str) != Some("on") {
                    self.gluster(&target.via, &gluster::quota_enable(&target.name))
                        .await?;
                }
                self.gluster(&target.via, &gluster::quota_limit(&target.name, *bytes))
                    .await?;
            }
        }
        Ok(Applied::Done)
    }
}
