//! The controller service: volumes created, expanded, listed and deleted
//! through the same engine and policies as aplo's own provisioner, for
//! clusters that run the stock `external-provisioner` and
//! `external-resizer` sidecars.
//!
//! Volume ids are the engine's volume ids, the handles aplo's own PVs
//! carry. A CSI volume name becomes the gluster volume name when it is one
//! (`pvc-<uid>`, as external-provisioner names them), else `csi-` and a
//! digest of it; so a retry with the same name finds the same volume.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::controller_server;
use super::proto::controller_service_capability::{self, rpc};
use super::proto::*;
use crate::engine::{CreateRequest, Engine, EngineError};
use crate::model::storage::VolumeState;
use crate::model::{State, format_size};

mod request;
mod status;
mod volumes;

pub use self::status::status;
pub use self::volumes::volume_name;

use self::request::{access_modes, fits, policy_request, preferred_zone, required, wanted_bytes};
use self::status::no_snapshots;

/// The topology key aplo reports zones under.
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// The controller service.
#[derive(Clone)]
pub struct Controller {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller over `engine`.
    pub fn new(engine: Arc<Engine>) -> Controller {
        Controller { engine }
    }
}

#[tonic::async_trait]
impl controller_server::Controller for Controller {
    async fn create_volume(
        &self,
        request: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let r = request.into_inner();
        let csi_name = required("name", &r.name)?;
        let modes = access_modes(&r.volume_capabilities)?;
        if r.volume_content_source.is_some() {
            return Err(Status::invalid_argument(
                "volume_content_source: aplo cannot clone volumes or restore snapshots",
            ));
        }
        if !r.mutable_parameters.is_empty() {
            return Err(Status::invalid_argument(
                "mutable_parameters: aplo offers no VolumeAttributesClass parameters",
            ));
        }
        let (bytes, limit) = wanted_bytes(r.capacity_range.as_ref())?;
        let name = volume_name(csi_name);
        let (parameters, claim, gid_range) = policy_request(csi_name, &r.parameters, bytes, modes)?;
        self.writable()?;
        let record = match self.engine.volume(&name) {
            Ok((volume, _)) => {
                if !fits(volume.bytes, bytes, limit) {
                    return Err(Status::already_exists(format!(
                        "volume '{csi_name}' exists with {}, outside the capacity range asked now",
                        format_size(volume.bytes)
                    )));
                }
                if volume.state != VolumeState::Ready {
                    // An earlier attempt was interrupted: finish or undo it,
                    // then let the sidecar retry.
                    let report = self.engine.recover().await.map_err(status)?;
                    return Err(Status::aborted(format!(
                        "volume '{csi_name}' was left {:?} by an earlier attempt; recovery: {}",
                        volume.state,
                        report.outcomes.join("; ")
                    )));
                }
                volume
            }
            Err(EngineError::NotFound { .. }) => {
                let created = self
                    .engine
                    .create_volume(CreateRequest {
                        name: Some(name.clone()),
                        bytes,
                        parameters,
                        claim: Some(claim),
                        preferred_zone: preferred_zone(r.accessibility_requirements.as_ref()),
                        preferred_node: None,
                        gid_range: Some(gid_range),
                    })
                    .await
                    .map_err(status)?;
                if !fits(created.bytes, bytes, limit) {
                    // The layout rounded past the limit: nothing stays.
                    let made = format_size(created.bytes);
                    self.engine.delete_volume(&name).await.map_err(status)?;
                    return Err(Status::out_of_range(format!(
                        "the smallest volume the policies lay out for {} is {made}, above \
                         capacity_range.limit_bytes {}",
                        format_size(bytes),
                        format_size(limit.unwrap_or(0))
                    )));
                }
                // external-provisioner makes the PV; the orphan sweep of
                // aplo's own provisioner must not take the volume for one
                // whose PV never came.
                self.engine.mark_published(&name).map_err(status)?;
                created
            }
            Err(e) => return Err(status(e)),
        };
        Ok(Response::new(CreateVolumeResponse {
            volume: Some(self.describe(&record)),
        }))
    }

    async fn delete_volume(
        &self,
        request: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        if let Some(volume) = self.find(volume_id) {
            self.writable()?;
            match self.engine.delete_volume(&volume.id.to_string()).await {
                Ok(()) | Err(EngineError::NotFound { .. }) => {}
                Err(e) => return Err(status(e)),
            }
        }
        Ok(Response::new(DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        _request: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "aplo volumes need no attach (CSIDriver attachRequired: false)",
        ))
    }

    async fn controller_unpublish_volume(
        &self,
        _request: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "aplo volumes need no attach (CSIDriver attachRequired: false)",
        ))
    }

    async fn validate_volume_capabilities(
        &self,
        request: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        if r.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities is empty"));
        }
        if self.find(volume_id).is_none() {
            return Err(Status::not_found(format!(
                "volume {volume_id} does not exist"
            )));
        }
        Ok(Response::new(match access_modes(&r.volume_capabilities) {
            Ok(_) => ValidateVolumeCapabilitiesResponse {
                confirmed: Some(validate_volume_capabilities_response::Confirmed {
                    volume_context: r.volume_context,
                    volume_capabilities: r.volume_capabilities,
                    parameters: r.parameters,
                    mutable_parameters: r.mutable_parameters,
                }),
                message: String::new(),
            },
            Err(why) => ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: why.message().to_owned(),
            },
        }))
    }

    async fn list_volumes(
        &self,
        request: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        let r = request.into_inner();
        let volumes = self.listed();
        let start = if r.starting_token.is_empty() {
            0
        } else {
            r.starting_token
                .parse::<usize>()
                .ok()
                .filter(|start| *start <= volumes.len())
                .ok_or_else(|| {
                    Status::aborted(format!(
                        "starting_token '{}' is not one this driver gave (the list may have changed)",
                        r.starting_token.escape_default()
                    ))
                })?
        };
        let max = match usize::try_from(r.max_entries) {
            Ok(0) => usize::MAX,
            Ok(max) => max,
            Err(_) => return Err(Status::invalid_argument("max_entries is negative")),
        };
        let page: Vec<_> = volumes.iter().skip(start).take(max).collect();
        let next = start + page.len();
        Ok(Response::new(ListVolumesResponse {
            entries: page
                .into_iter()
                .map(|v| list_volumes_response::Entry {
                    volume: Some(self.describe(v)),
                    status: None,
                })
                .collect(),
            next_token: if next < volumes.len() {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn get_capacity(
        &self,
        request: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        let r = request.into_inner();
        if let Some(capabilities) = Some(&r.volume_capabilities).filter(|c| !c.is_empty()) {
            access_modes(capabilities)?;
        }
        let zone = r
            .accessible_topology
            .as_ref()
            .and_then(|t| t.segments.get(ZONE_KEY).cloned());
        let topology = self.engine.policy_topology();
        let devices = topology
            .clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .filter(|n| n.state == State::Online)
            .filter(|n| zone.as_ref().is_none_or(|z| &n.zone == z))
            .flat_map(|n| &n.devices)
            .filter(|d| d.state == State::Online);
        let free: u64 = devices.clone().map(|d| d.free_bytes).sum();
        let largest: u64 = devices.map(|d| d.free_bytes).max().unwrap_or(0);
        Ok(Response::new(GetCapacityResponse {
            available_capacity: i64::try_from(free).unwrap_or(i64::MAX),
            maximum_volume_size: Some(i64::try_from(largest).unwrap_or(i64::MAX)),
            minimum_volume_size: None,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _request: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let capability = |kind: rpc::Type| ControllerServiceCapability {
            r#type: Some(controller_service_capability::Type::Rpc(
                controller_service_capability::Rpc {
                    r#type: kind as i32,
                },
            )),
        };
        Ok(Response::new(ControllerGetCapabilitiesResponse {
            capabilities: [
                rpc::Type::CreateDeleteVolume,
                rpc::Type::ListVolumes,
                rpc::Type::GetCapacity,
                rpc::Type::ExpandVolume,
                rpc::Type::SingleNodeMultiWriter,
            ]
            .into_iter()
            .map(capability)
            .collect(),
        }))
    }

    async fn create_snapshot(
        &self,
        _request: Request<CreateSnapshotRequest>,
    ) -> Result<Response<CreateSnapshotResponse>, Status> {
        Err(no_snapshots())
    }

    async fn delete_snapshot(
        &self,
        _request: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<DeleteSnapshotResponse>, Status> {
        Err(no_snapshots())
    }

    async fn list_snapshots(
        &self,
        _request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        Err(no_snapshots())
    }

    async fn get_snapshot(
        &self,
        _request: Request<GetSnapshotRequest>,
    ) -> Result<Response<GetSnapshotResponse>, Status> {
        Err(no_snapshots())
    }

    async fn controller_expand_volume(
        &self,
        request: Request<ControllerExpandVolumeRequest>,
    ) -> Result<Response<ControllerExpandVolumeResponse>, Status> {
        let r = request.into_inner();
        let volume_id = required("volume_id", &r.volume_id)?;
        let range = r
            .capacity_range
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("capacity_range is missing"))?;
        let (bytes, limit) = wanted_bytes(Some(range))?;
        let volume = self
            .find(volume_id)
            .ok_or_else(|| Status::not_found(format!("volume {volume_id} does not exist")))?;
        let grown = if volume.bytes >= bytes {
            // Already that large: an expansion retried.
            volume
        } else {
            self.writable()?;
            self.engine
                .expand_volume(&volume.id.to_string(), bytes)
                .await
                .map_err(status)?
        };
        if let Some(limit) = limit.filter(|l| grown.bytes > *l) {
            return Err(Status::out_of_range(format!(
                "volume {volume_id} has {}, above capacity_range.limit_bytes {}",
                format_size(grown.bytes),
                format_size(limit)
            )));
        }
        Ok(Response::new(ControllerExpandVolumeResponse {
            capacity_bytes: i64::try_from(grown.bytes).unwrap_or(i64::MAX),
            // Gluster clients see the new size by themselves.
            node_expansion_required: false,
        }))
    }

    async fn controller_get_volume(
        &self,
        _request: Request<ControllerGetVolumeRequest>,
    ) -> Result<Response<ControllerGetVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "ControllerGetVolume is not offered (no GET_VOLUME capability)",
        ))
    }

    async fn controller_modify_volume(
        &self,
        _request: Request<ControllerModifyVolumeRequest>,
    ) -> Result<Response<ControllerModifyVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "aplo offers no VolumeAttributesClass parameters (no MODIFY_VOLUME capability)",
        ))
    }
}
