//! The mounts of one node: the staged glusterfs mount of each volume
//! (mounted, checked, remounted when its client died, recorded in the
//! state directory) and the bind mounts of it into pods.

use std::path::{Path, PathBuf};

use tonic::Status;

use super::Node;
use super::request::{internal, invalid, required};
use super::stats::{STAT_TIMEOUT, statvfs};
use crate::exec::command::ExecError;
use crate::exec::mount::{self, GlusterMount, MountEntry};

/// The lines of a client log a failed mount quotes.
pub(super) const LOG_TAIL_LINES: usize = 20;

/// What a staged volume was mounted with, kept in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct StageRecord {
    pub(super) volume_id: String,
    pub(super) hosts: Vec<String>,
    pub(super) volume: String,
    pub(super) flags: Vec<String>,
    pub(super) staging_path: PathBuf,
}

/// The health of a path where a mount should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Health {
    /// Nothing is mounted there.
    Unmounted,
    /// A mount that answers.
    Healthy(MountEntry),
    /// A mount whose client is gone (ENOTCONN, ESTALE, EIO, EHOSTDOWN) or
    /// that did not answer in time: why, and whether it was read-only.
    Stale(String, bool),
}

impl Node {
    /// `path` checked: absolute, no `..`, inside the kubelet directory.
    pub(super) fn inside(&self, field: &str, path: &str) -> Result<PathBuf, Status> {
        let path = PathBuf::from(required(field, path)?);
        mount::check_path(field, &path).map_err(invalid)?;
        if !path.starts_with(&self.config.kubelet_dir) {
            return Err(Status::invalid_argument(format!(
                "{field}: '{}' is outside the kubelet directory {}",
                path.display(),
                self.config.kubelet_dir.display()
            )));
        }
        Ok(path)
    }

    pub(super) fn record_path(&self, volume_id: &str) -> PathBuf {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(volume_id.as_bytes()));
        self.config.state_dir.join(format!("{digest}.json"))
    }

    pub(super) fn log_file(&self, volume: &str) -> PathBuf {
        self.config.log_dir.join(format!("{volume}.log"))
    }

    /// What is mounted at `path`, and whether it answers.
    pub(super) async fn health(&self, path: &Path) -> Result<Health, Status> {
        let cmd = mount::find_mount(path).map_err(invalid)?;
        let entry = match self.exec.run(&cmd).await {
            // findmnt exits 1 when nothing is mounted there.
            Err(ExecError::Failed { status: 1, .. }) => return Ok(Health::Unmounted),
            Err(e) => return Err(internal(e)),
            Ok(out) => mount::parse_findmnt(&out.stdout)
                .map_err(|e| Status::internal(e.to_string()))?
                .pop()
                .ok_or_else(|| Status::internal("findmnt listed no mount"))?,
        };
        let read_only = entry.read_only();
        Ok(match statvfs(path).await {
            Ok(_) => Health::Healthy(entry),
            Err(Some(errno)) => Health::Stale(format!("statvfs: {errno}"), read_only),
            Err(None) => Health::Stale(
                format!("statvfs did not answer in {STAT_TIMEOUT:?}"),
                read_only,
            ),
        })
    }

    /// Unmount whatever is at `path`, lazily when it is stale.
    pub(super) async fn unmount(&self, path: &Path, lazy: bool) -> Result<(), Status> {
        let cmd = mount::unmount(path, lazy).map_err(invalid)?;
        match self.exec.run(&cmd).await {
            Ok(_) => Ok(()),
            // The mount can go between the check and the umount: the
            // glusterfs client's auto_unmount helper unmounts when its
            // client dies. Nothing mounted there is the goal reached.
            Err(e) => match self.health(path).await {
                Ok(Health::Unmounted) => Ok(()),
                _ => Err(internal(e)),
            },
        }
    }

    /// Mount the volume at `staging`, retrying without `auto_unmount` for a
    /// client too old for it; a failure quotes the client's log.
    pub(super) async fn mount_volume(&self, record: &StageRecord) -> Result<(), Status> {
        let log = self.log_file(&record.volume);
        std::fs::create_dir_all(&self.config.log_dir)
            .map_err(|e| Status::internal(format!("{}: {e}", self.config.log_dir.display())))?;
        let mut auto_unmount = true;
        loop {
            // Only what this attempt writes to the log is quoted.
            let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
            let cmd = mount::mount_glusterfs(&GlusterMount {
                hosts: &record.hosts,
                volume: &record.volume,
                target: &record.staging_path,
                log_file: Some(&log),
                log_level: Some(&self.config.log_level),
                auto_unmount,
                flags: &record.flags,
            })
            .map_err(invalid)?
            .in_cgroups(&self.config.client_cgroups);
            match self.exec.run(&cmd).await {
                Ok(_) => return Ok(()),
                Err(ExecError::Failed { stderr, .. })
                    if auto_unmount && mount::rejected_option(&stderr, "auto_unmount") =>
                {
                    auto_unmount = false;
                }
                Err(e) => {
                    let lines = tail(&log, log_start, LOG_TAIL_LINES);
                    let message = format!("{e}\nlast lines of {}:\n{lines}", log.display());
                    // The servers answered that they have no such volume.
                    return Err(if mount::servers_lack_volume(&lines, &record.volume) {
                        Status::not_found(format!(
                            "gluster volume '{}' does not exist on {}: {message}",
                            record.volume,
                            record.hosts.join(", ")
                        ))
                    } else {
                        Status::internal(message)
                    });
                }
            }
        }
    }

    /// Bind the staged mount into `target`, made if missing, read-only when
    /// asked; a failed read-only remount leaves nothing mounted.
    pub(super) async fn bind_target(
        &self,
        staging: &Path,
        target: &Path,
        read_only: bool,
    ) -> Result<(), Status> {
        std::fs::create_dir_all(target)
            .map_err(|e| Status::internal(format!("{}: {e}", target.display())))?;
        let bind = mount::bind(staging, target).map_err(invalid)?;
        self.exec.run(&bind).await.map_err(internal)?;
        if read_only {
            let ro = mount::remount_read_only(target).map_err(invalid)?;
            if let Err(e) = self.exec.run(&ro).await {
                let _ = self.unmount(target, false).await;
                return Err(internal(e));
            }
        }
        Ok(())
    }

    /// Mount a published volume whose client died again in place: the
    /// staged mount from its record, then the target bound to it anew
    /// (read-only if it was).
    pub(super) async fn remount_published(
        &self,
        volume_id: &str,
        target: &Path,
    ) -> Result<(), Status> {
        let record = self.load(volume_id).ok_or_else(|| {
            Status::failed_precondition(format!(
                "no stage record for volume {volume_id} on this node"
            ))
        })?;
        self.stage(&record).await?;
        let read_only = match self.health(target).await? {
            Health::Healthy(_) => return Ok(()),
            Health::Stale(_, read_only) => {
                self.unmount(target, true).await?;
                read_only
            }
            Health::Unmounted => record.flags.iter().any(|f| f == "ro"),
        };
        self.bind_target(&record.staging_path, target, read_only)
            .await
    }

    pub(super) fn save(&self, record: &StageRecord) -> Result<(), Status> {
        let io = |e: std::io::Error| {
            Status::internal(format!("{}: {e}", self.config.state_dir.display()))
        };
        std::fs::create_dir_all(&self.config.state_dir).map_err(io)?;
        let path = self.record_path(&record.volume_id);
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(record).expect("a record serializes"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    pub(super) fn load(&self, volume_id: &str) -> Option<StageRecord> {
        let bytes = std::fs::read(self.record_path(volume_id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stage `record`: mount it unless a healthy mount of the same volume
    /// is there; a stale one is unmounted first; another volume's mount is
    /// a conflict.
    pub(super) async fn stage(&self, record: &StageRecord) -> Result<(), Status> {
        match self.health(&record.staging_path).await? {
            Health::Healthy(entry) => {
                let expected = format!("/{}", record.volume);
                return if entry.fstype == "fuse.glusterfs" && entry.source.ends_with(&expected) {
                    Ok(())
                } else {
                    Err(Status::already_exists(format!(
                        "{} already holds {} ({})",
                        record.staging_path.display(),
                        entry.source,
                        entry.fstype
                    )))
                };
            }
            Health::Stale(why, _) => {
                tracing::warn!(path = %record.staging_path.display(), %why, "remounting a stale staged volume");
                self.unmount(&record.staging_path, true).await?;
            }
            Health::Unmounted => {}
        }
        std::fs::create_dir_all(&record.staging_path)
            .map_err(|e| Status::internal(format!("{}: {e}", record.staging_path.display())))?;
        self.mount_volume(record).await?;
        self.save(record)
    }
}

/// The last `lines` lines a file gained past byte `from`, or a note that
/// it cannot be read.
pub(super) fn tail(path: &Path, from: u64, lines: usize) -> String {
    use std::io::{Read, Seek};
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        file.seek(std::io::SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) if text.trim().is_empty() => "(the client wrote nothing to it)".into(),
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}
