//! Asking gluster: a command run on the first node of a cluster that answers,
//! the volume options it knows, and a volume's info (and whether aplo owns it).

use std::collections::BTreeSet;

use super::CommandDriver;
use crate::engine::driver::DriverError;
use crate::exec::command::{Cmd, ExecError, Executor};
use crate::exec::gluster::{self, VolumeInfo};
use crate::model::options::OptionNames;
use crate::model::storage::NodeRecord;
use crate::plan::effect::{BrickAddress, Target};

/// Whether a failure means "this node cannot be asked", so that another
/// node of the cluster should be.
pub(super) fn unreachable(e: &ExecError) -> bool {
    match e {
        ExecError::Spawn { .. } | ExecError::Timeout { .. } => true,
        ExecError::Failed {
            status,
            stderr,
            stdout,
            ..
        } => {
            *status == 255
                || gluster::glusterd_unreachable(stderr)
                || gluster::glusterd_unreachable(&String::from_utf8_lossy(stdout))
        }
    }
}

pub(super) fn addresses(bricks: &[BrickAddress]) -> Vec<(String, String)> {
    bricks
        .iter()
        .map(|b| (b.host.clone(), b.path.clone()))
        .collect()
}

impl CommandDriver {
    /// Ask the first node of `via` that answers which volume options its
    /// gluster has (`volume set help-xml`).
    pub(super) async fn read_option_names(
        &self,
        via: &[NodeRecord],
    ) -> Result<OptionNames, DriverError> {
        let cmd = gluster::volume_set_help();
        let mut last = "the cluster has no nodes".to_owned();
        for node in via {
            match self.connections.node(node).run(&cmd).await {
                Ok(out) => {
                    let options = gluster::parse_set_help(&out.stdout).map_err(|source| {
                        DriverError::Gluster {
                            command: cmd.display(),
                            source,
                        }
                    })?;
                    let source = format!("the gluster on {}", node.manage);
                    return Ok(gluster::option_names(&options, source));
                }
                Err(e) if unreachable(&e) => last = e.to_string(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(DriverError::Unreachable {
            what: cmd.display(),
            last,
        })
    }

    /// Run a gluster command on the first node of `via` that answers,
    /// retrying with backoff while gluster reports another transaction.
    pub(super) async fn gluster(
        &self,
        via: &[NodeRecord],
        cmd: &Cmd,
    ) -> Result<Vec<u8>, DriverError> {
        let mut last = "the cluster has no nodes".to_owned();
        for node in via {
            let exec = self.connections.node(node);
            let mut wait = self.config.busy_backoff;
            for attempt in 1..=self.config.busy_attempts.max(1) {
                let stdout = match exec.run(cmd).await {
                    Ok(out) => out.stdout,
                    Err(e) if unreachable(&e) => {
                        last = e.to_string();
                        break;
                    }
                    // Some gluster versions exit non-zero with the XML.
                    Err(ExecError::Failed { stdout, .. })
                        if stdout.windows(11).any(|w| w == b"<cliOutput>") =>
                    {
                        stdout
                    }
                    Err(e) => return Err(e.into()),
                };
                match gluster::parse_outcome(&stdout) {
                    Ok(()) => return Ok(stdout),
                    Err(e) if e.is_busy() && attempt < self.config.busy_attempts => {
                        tracing::info!(node = %node.manage, command = %cmd.display(), ?wait, "gluster is busy; retrying");
                        tokio::time::sleep(wait).await;
                        wait = wait.saturating_mul(2);
                    }
                    Err(source) => {
                        return Err(DriverError::Gluster {
                            command: cmd.display(),
                            source,
                        });
                    }
                }
            }
        }
        Err(DriverError::Unreachable {
            what: cmd.display(),
            last,
        })
    }

    pub(super) async fn info(&self, target: &Target) -> Result<Option<VolumeInfo>, DriverError> {
        match self
            .gluster(&target.via, &gluster::volume_info(Some(&target.name)))
            .await
        {
            Ok(xml) => {
                let info =
                    gluster::parse_volume_info(&xml).map_err(|source| DriverError::Gluster {
                        command: "volume info".into(),
                        source,
                    })?;
                Ok(info.into_iter().find(|v| v.name == target.name))
            }
            Err(DriverError::Gluster { source, .. }) if source.is_missing_volume() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The volume if it exists and every brick of it is one aplo planned.
    /// A volume of the same name with none of the planned bricks is
    /// someone else's: it is left alone, as if absent. A volume mixing
    /// planned and other bricks is refused.
    pub(super) async fn owned(&self, target: &Target) -> Result<Option<VolumeInfo>, DriverError> {
        let Some(info) = self.info(target).await? else {
            return Ok(None);
        };
        let ours: BTreeSet<(&str, &str)> = target
            .bricks
            .iter()
            .map(|b| (b.host.as_str(), b.path.as_str()))
            .collect();
        let foreign: Vec<String> = info
            .bricks
            .iter()
            .filter(|b| !ours.contains(&(b.host.as_str(), b.path.as_str())))
            .map(|b| format!("{}:{}", b.host, b.path))
            .collect();
        if foreign.is_empty() {
            Ok(Some(info))
        } else if foreign.len() == info.bricks.len() {
            tracing::warn!(volume = %target.name, "a gluster volume of this name exists but is not aplo's; leaving it alone");
            Ok(None)
        } else {
            Err(DriverError::Refused(format!(
                "gluster volume '{}' has bricks aplo did not create ({}); it is not aplo's to change",
                target.name,
                foreign.join(", ")
            )))
        }
    }
}
