//! The node service: one glusterfs FUSE mount per volume per node at the
//! staging path, bind mounts of it into pods, stats, and recovery of a
//! mount whose client died.
//!
//! Every request is checked before anything runs: the paths are absolute,
//! free of `..` and inside the kubelet directory; the volume context names
//! the servers and the volume; the capability is a filesystem one. Mounts
//! and unmounts run through the exec layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::proto::node_server;
use super::proto::node_service_capability::{self, rpc};
use super::proto::volume_capability::AccessType;
use super::proto::volume_usage::Unit;
use super::proto::*;
use crate::exec::command::{ExecError, Executor};
use crate::exec::mount::{self, GlusterMount, MountEntry, MountError};

/// How a node plugin is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id, as kubelet knows the node.
    pub node_id: String,
    /// The node's zone, when known (`topology.kubernetes.io/zone`).
    pub zone: Option<String>,
    /// The kubelet directory: every staging and target path lies inside.
    pub kubelet_dir: PathBuf,
    /// Where each staged volume's mount is recorded (servers, volume,
    /// flags), for remounting it when a call carries no volume context.
    pub state_dir: PathBuf,
    /// Where each volume's client log goes.
    pub log_dir: PathBuf,
    /// The clients' log level.
    pub log_level: String,
    /// Cgroups the mount commands, and so the FUSE clients, run in.
    pub client_cgroups: Vec<PathBuf>,
}

/// The node service.
#[derive(Clone)]
pub struct Node {
    config: Arc<NodeConfig>,
    exec: Arc<dyn Executor>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The lines of a client log a failed mount quotes.
const LOG_TAIL_LINES: usize = 20;
/// How long a `statvfs` on a mount may take before the mount counts as
/// hung.
const STAT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a staged volume was mounted with, kept in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct StageRecord {
    volume_id: String,
    hosts: Vec<String>,
    volume: String,
    flags: Vec<String>,
    staging_path: PathBuf,
}

/// The health of a path where a mount should be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    /// Nothing is mounted there.
    Unmounted,
    /// A mount that answers.
    Healthy(MountEntry),
    /// A mount whose client is gone (ENOTCONN, ESTALE, EIO, EHOSTDOWN) or
    /// that did not answer in time: why, and whether it was read-only.
    Stale(String, bool),
}

fn invalid(e: MountError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn internal(e: ExecError) -> Status {
    Status::internal(e.to_string())
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is missing")))
    } else {
        Ok(value)
    }
}

/// The capability's mount flags; a block capability is refused.
fn mount_flags(capability: Option<&VolumeCapability>) -> Result<Vec<String>, Status> {
    let capability =
        capability.ok_or_else(|| Status::invalid_argument("volume_capability is missing"))?;
    match &capability.access_type {
        Some(AccessType::Mount(m)) => {
            if !(m.fs_type.is_empty() || m.fs_type == "glusterfs") {
                return Err(Status::invalid_argument(format!(
                    "fs_type '{}': aplo volumes are glusterfs",
                    m.fs_type.escape_default()
                )));
            }
            Ok(m.mount_flags.clone())
        }
        Some(AccessType::Block(_)) => Err(Status::invalid_argument(
            "block access is not offered: aplo volumes are glusterfs filesystems",
        )),
        None => Err(Status::invalid_argument(
            "volume_capability has no access type",
        )),
    }
}

/// The servers and volume from a PV's volume context (`hosts`, `volume`),
/// as aplo's PVs carry them.
fn volume_source(context: &HashMap<String, String>) -> Result<(Vec<String>, String), Status> {
    let get = |key: &str| {
        context
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Status::invalid_argument(format!("volume_context has no '{key}'")))
    };
    let hosts: Vec<String> = get("hosts")?
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    Ok((hosts, get("volume")?.clone()))
}

impl Node {
    /// A node service running its commands through `exec`.
    pub fn new(config: NodeConfig, exec: Arc<dyn Executor>) -> Node {
        Node {
            config: Arc::new(config),
            exec,
        }
    }

    /// `path` checked: absolute, no `..`, inside the kubelet directory.
    fn inside(&self, field: &str, path: &str) -> Result<PathBuf, Status> {
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

    fn record_path(&self, volume_id: &str) -> PathBuf {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(volume_id.as_bytes()));
        self.config.state_dir.join(format!("{digest}.json"))
    }

    fn log_file(&self, volume: &str) -> PathBuf {
        self.config.log_dir.join(format!("{volume}.log"))
    }

    /// What is mounted at `path`, and whether it answers.
    async fn health(&self, path: &Path) -> Result<Health, Status> {
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
    async fn unmount(&self, path: &Path, lazy: bool) -> Result<(), Status> {
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
    async fn mount_volume(&self, record: &StageRecord) -> Result<(), Status> {
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
    async fn bind_target(
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
    async fn remount_published(&self, volume_id: &str, target: &Path) -> Result<(), Status> {
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

    fn save(&self, record: &StageRecord) -> Result<(), Status> {
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

    fn load(&self, volume_id: &str) -> Option<StageRecord> {
        let bytes = std::fs::read(self.record_path(volume_id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stage `record`: mount it unless a healthy mount of the same volume
    /// is there; a stale one is unmounted first; another volume's mount is
    /// a conflict.
    async fn stage(&self, record: &StageRecord) -> Result<(), Status> {
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

/// `statvfs` of a path off the reactor: `Err(None)` when it did not answer
/// within [`STAT_TIMEOUT`] (a hung mount).
async fn statvfs(path: &Path) -> Result<rustix::fs::StatVfs, Option<rustix::io::Errno>> {
    let probe = path.to_owned();
    match tokio::time::timeout(
        STAT_TIMEOUT,
        tokio::task::spawn_blocking(move || rustix::fs::statvfs(&probe)),
    )
    .await
    {
        Ok(Ok(result)) => result.map_err(Some),
        Ok(Err(_)) | Err(_) => Err(None),
    }
}

/// Bytes and inodes from a `statvfs`.
fn usage(s: &rustix::fs::StatVfs) -> Vec<VolumeUsage> {
    let frsize = s.f_frsize;
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    vec![
        VolumeUsage {
            total: clamp(s.f_blocks.saturating_mul(frsize)),
            available: clamp(s.f_bavail.saturating_mul(frsize)),
            used: clamp(s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(frsize)),
            unit: Unit::Bytes as i32,
        },
        VolumeUsage {
            total: clamp(s.f_files),
            available: clamp(s.f_ffree),
            used: clamp(s.f_files.saturating_sub(s.f_ffree)),
            unit: Unit::Inodes as i32,
        },
    ]
}

/// The last `lines` lines a file gained past byte `from`, or a note that
/// it cannot be read.
fn tail(path: &Path, from: u64, lines: usize) -> String {
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

#[tonic::async_trait]
impl node_server::Node for Node {
    async fn node_stage_volume(
        &self,
        request: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?.to_owned();
        let staging_path = self.inside("staging_target_path", &r.staging_target_path)?;
        let flags = mount_flags(r.volume_capability.as_ref())?;
        let (hosts, volume) = volume_source(&r.volume_context)?;
        let record = StageRecord {
            volume_id,
            hosts,
            volume,
            flags,
            staging_path,
        };
        self.stage(&record).await?;
        Ok(Response::new(NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        request: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        let staging_path = self.inside("staging_target_path", &r.staging_target_path)?;
        match self.health(&staging_path).await? {
            Health::Unmounted => {}
            Health::Healthy(_) => self.unmount(&staging_path, false).await?,
            Health::Stale(..) => self.unmount(&staging_path, true).await?,
        }
        let _ = std::fs::remove_file(self.record_path(volume_id));
        // kubelet removes the directory too; one that is not empty is
        // left alone.
        let _ = std::fs::remove_dir(&staging_path);
        Ok(Response::new(NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        request: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?.to_owned();
        let target = self.inside("target_path", &r.target_path)?;
        let flags = mount_flags(r.volume_capability.as_ref())?;
        if r.staging_target_path.is_empty() {
            return Err(Status::failed_precondition(
                "staging_target_path is missing: the volume must be staged first",
            ));
        }
        let staging_path = self.inside("staging_target_path", &r.staging_target_path)?;
        // A staged mount whose client died is mounted again first.
        if let Health::Stale(..) | Health::Unmounted = self.health(&staging_path).await? {
            let record = match self.load(&volume_id) {
                Some(record) => record,
                None => {
                    let (hosts, volume) = volume_source(&r.volume_context)?;
                    StageRecord {
                        volume_id: volume_id.clone(),
                        hosts,
                        volume,
                        flags: flags.clone(),
                        staging_path: staging_path.clone(),
                    }
                }
            };
            self.stage(&record).await?;
        }
        match self.health(&target).await? {
            Health::Healthy(entry) => {
                if entry.read_only() == r.readonly {
                    return Ok(Response::new(NodePublishVolumeResponse {}));
                }
                return Err(Status::already_exists(format!(
                    "{} is already published {}",
                    target.display(),
                    if entry.read_only() {
                        "read-only"
                    } else {
                        "read-write"
                    }
                )));
            }
            Health::Stale(..) => self.unmount(&target, true).await?,
            Health::Unmounted => {}
        }
        let read_only = r.readonly || flags.iter().any(|f| f == "ro");
        self.bind_target(&staging_path, &target, read_only).await?;
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let r = request.into_inner();
        required("volume_id", &r.volume_id)?;
        let target = self.inside("target_path", &r.target_path)?;
        match self.health(&target).await? {
            Health::Unmounted => {}
            Health::Healthy(_) => self.unmount(&target, false).await?,
            Health::Stale(..) => self.unmount(&target, true).await?,
        }
        match std::fs::remove_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Status::internal(format!("{}: {e}", target.display()))),
        }
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        request: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        let path = PathBuf::from(required("volume_path", &r.volume_path)?);
        if !path.is_absolute() || !path.starts_with(&self.config.kubelet_dir) {
            return Err(Status::not_found(format!(
                "volume {volume_id} is not published at '{}'",
                path.display()
            )));
        }
        let condition =
            |abnormal: bool, message: String| Some(VolumeCondition { abnormal, message });
        let why = match statvfs(&path).await {
            Ok(s) => {
                return Ok(Response::new(NodeGetVolumeStatsResponse {
                    usage: usage(&s),
                    volume_condition: condition(false, "the mount answers".into()),
                }));
            }
            Err(Some(errno)) if errno == rustix::io::Errno::NOENT => {
                return Err(Status::not_found(format!(
                    "volume {volume_id} is not published at '{}'",
                    path.display()
                )));
            }
            Err(Some(errno)) => format!("statvfs: {errno}"),
            Err(None) => format!("statvfs did not answer in {STAT_TIMEOUT:?}"),
        };
        tracing::warn!(volume = volume_id, path = %path.display(), %why, "remounting a published volume whose client is gone");
        let (outcome, usage) = match self.remount_published(volume_id, &path).await {
            Ok(()) => (
                "it was mounted again in place; containers see the new mount only with \
                 mountPropagation HostToContainer, others need a restart"
                    .to_owned(),
                statvfs(&path).await.map(|s| usage(&s)).unwrap_or_default(),
            ),
            Err(e) => (
                format!("mounting it again failed: {}", e.message()),
                Vec::new(),
            ),
        };
        Ok(Response::new(NodeGetVolumeStatsResponse {
            usage,
            volume_condition: condition(
                true,
                format!("the gluster client of this mount is gone ({why}); {outcome}"),
            ),
        }))
    }

    async fn node_expand_volume(
        &self,
        request: Request<NodeExpandVolumeRequest>,
    ) -> Result<Response<NodeExpandVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        let path = PathBuf::from(required("volume_path", &r.volume_path)?);
        if !path.is_absolute() || std::fs::metadata(&path).is_err() {
            return Err(Status::not_found(format!(
                "volume {volume_id} is not published at '{}'",
                path.display()
            )));
        }
        // Gluster clients see a volume's new size by themselves.
        let bytes = r.capacity_range.map_or(0, |c| c.required_bytes);
        Ok(Response::new(NodeExpandVolumeResponse {
            capacity_bytes: bytes,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _request: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let capability = |kind: rpc::Type| NodeServiceCapability {
            r#type: Some(node_service_capability::Type::Rpc(
                node_service_capability::Rpc {
                    r#type: kind as i32,
                },
            )),
        };
        Ok(Response::new(NodeGetCapabilitiesResponse {
            capabilities: [
                rpc::Type::StageUnstageVolume,
                rpc::Type::GetVolumeStats,
                rpc::Type::VolumeCondition,
                rpc::Type::ExpandVolume,
                rpc::Type::SingleNodeMultiWriter,
            ]
            .into_iter()
            .map(capability)
            .collect(),
        }))
    }

    async fn node_get_info(
        &self,
        _request: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        let segments = self
            .config
            .zone
            .iter()
            .map(|zone| ("topology.kubernetes.io/zone".to_owned(), zone.clone()))
            .collect();
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.config.node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: Some(Topology { segments }),
        }))
    }
}
