//! The node service: one glusterfs FUSE mount per volume per node at the
//! staging path, bind mounts of it into pods, stats, and recovery of a
//! mount whose client died.
//!
//! Every request is checked before anything runs: the paths are absolute,
//! free of `..` and inside the kubelet directory; the volume context names
//! the servers and the volume; the capability is a filesystem one. Mounts
//! and unmounts run through the exec layer.

use std::path::PathBuf;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::node_server;
use super::proto::node_service_capability::{self, rpc};
use super::proto::*;
use crate::exec::command::Executor;

mod mounts;
mod request;
mod stats;

use self::mounts::{Health, StageRecord};
use self::request::{mount_flags, required, volume_source};
use self::stats::{STAT_TIMEOUT, statvfs, usage};

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

impl Node {
    /// A node service running its commands through `exec`.
    pub fn new(config: NodeConfig, exec: Arc<dyn Executor>) -> Node {
        Node {
            config: Arc::new(config),
            exec,
        }
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
