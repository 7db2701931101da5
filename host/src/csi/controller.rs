//! The controller service: volumes created, expanded, listed and deleted
//! through the same engine and policies as aplo's own provisioner, for
//! clusters that run the stock `external-provisioner` and
//! `external-resizer` sidecars.
//!
//! Volume ids are the engine's volume ids, the handles aplo's own PVs
//! carry. A CSI volume name becomes the gluster volume name when it is one
//! (`pvc-<uid>`, as external-provisioner names them), else `csi-` and a
//! digest of it; so a retry with the same name finds the same volume.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::controller_server;
use super::proto::controller_service_capability::{self, rpc};
use super::proto::volume_capability::AccessType;
use super::proto::volume_capability::access_mode::Mode;
use super::proto::*;
use crate::engine::{CreateRequest, Engine, EngineError, Kind};
use crate::front::claim::{VolumeSource, parameter_options};
use crate::model::paths::check_volume_name;
use crate::model::storage::{AdminMode, VolumeRecord, VolumeState};
use crate::model::{AccessMode, Claim, Decision, State, format_size};

/// The topology key aplo reports zones under.
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// The prefix of the parameters external-provisioner adds or consumes
/// itself (secrets, `--extra-create-metadata`).
const SIDECAR_PREFIX: &str = "csi.storage.k8s.io/";
const PVC_NAME: &str = "csi.storage.k8s.io/pvc/name";
const PVC_NAMESPACE: &str = "csi.storage.k8s.io/pvc/namespace";

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

/// The status for an engine error, from its classification (the same the
/// REST API and the provisioner answer from): a policy's refusal keeps the
/// policy's words, what may pass on a retry says so, and a fault says what
/// failed while its details stay in aplo's log.
pub fn status(e: EngineError) -> Status {
    let message = e.answer();
    match e.class().kind {
        Kind::Invalid => Status::invalid_argument(message),
        Kind::NotFound => Status::not_found(message),
        Kind::Conflict => Status::aborted(message),
        Kind::Refused(Decision::Quota | Decision::Placement) => Status::resource_exhausted(message),
        Kind::Refused(Decision::Durability | Decision::Validate) => {
            Status::failed_precondition(message)
        }
        Kind::Overloaded => Status::unavailable(message),
        Kind::Fault => Status::internal(message),
    }
}

/// The gluster volume name for a CSI volume name.
pub fn volume_name(csi_name: &str) -> String {
    if check_volume_name(csi_name).is_ok() {
        return csi_name.to_owned();
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(csi_name.as_bytes()));
    format!("csi-{}", &digest[..32])
}

/// The access modes the capabilities ask for; a block capability or a
/// missing access mode is refused.
fn access_modes(capabilities: &[VolumeCapability]) -> Result<Vec<AccessMode>, Status> {
    if capabilities.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities is empty"));
    }
    let mut modes = Vec::new();
    for (i, capability) in capabilities.iter().enumerate() {
        match &capability.access_type {
            Some(AccessType::Mount(m)) if m.fs_type.is_empty() || m.fs_type == "glusterfs" => {}
            Some(AccessType::Mount(m)) => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}]: fs_type '{}': aplo volumes are glusterfs",
                    m.fs_type.escape_default()
                )));
            }
            Some(AccessType::Block(_)) => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}]: block access is not offered: aplo volumes are glusterfs filesystems"
                )));
            }
            None => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}] has no access type"
                )));
            }
        }
        let mode = capability
            .access_mode
            .as_ref()
            .and_then(|m| Mode::try_from(m.mode).ok())
            .unwrap_or(Mode::Unknown);
        let mode = match mode {
            Mode::SingleNodeWriter | Mode::SingleNodeMultiWriter => AccessMode::ReadWriteOnce,
            Mode::SingleNodeSingleWriter => AccessMode::ReadWriteOncePod,
            Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly => AccessMode::ReadOnlyMany,
            Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter => AccessMode::ReadWriteMany,
            Mode::Unknown => {
                return Err(Status::invalid_argument(format!(
                    "volume_capabilities[{i}] has no access mode"
                )));
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    Ok(modes)
}

/// The bytes a capacity range asks for: at least `required_bytes` (1 GiB
/// when nothing is asked), at most `limit_bytes` when set.
fn wanted_bytes(range: Option<&CapacityRange>) -> Result<(u64, Option<u64>), Status> {
    let Some(range) = range else {
        return Ok((crate::model::GIB, None));
    };
    let required = u64::try_from(range.required_bytes)
        .map_err(|_| Status::invalid_argument("capacity_range.required_bytes is negative"))?;
    let limit = u64::try_from(range.limit_bytes)
        .map_err(|_| Status::invalid_argument("capacity_range.limit_bytes is negative"))?;
    let limit = (limit > 0).then_some(limit);
    if let Some(limit) = limit
        && required > limit
    {
        return Err(Status::out_of_range(format!(
            "capacity_range asks for at least {} but at most {}",
            format_size(required),
            format_size(limit)
        )));
    }
    let wanted = if required == 0 {
        limit.map_or(crate::model::GIB, |l| l.min(crate::model::GIB))
    } else {
        required
    };
    Ok((wanted, limit))
}

/// Whether a volume of `bytes` satisfies a capacity range.
fn fits(bytes: u64, required: u64, limit: Option<u64>) -> bool {
    bytes >= required && limit.is_none_or(|l| bytes <= l)
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is missing")))
    } else {
        Ok(value)
    }
}

impl Controller {
    /// A controller over `engine`.
    pub fn new(engine: Arc<Engine>) -> Controller {
        Controller { engine }
    }

    /// UNAVAILABLE (the sidecars retry) while heketi's admin mode is
    /// read-only: no volume is created, grown or deleted.
    fn writable(&self) -> Result<(), Status> {
        match self.engine.admin_mode().map_err(status)? {
            AdminMode::ReadOnly => Err(Status::unavailable(
                "aplo is in read-only mode (heketi's admin mode, set through POST /admin or \
                 `aplo server mode set`): no volume is created, grown or deleted until an admin \
                 sets it back to normal",
            )),
            AdminMode::Normal | AdminMode::LocalClient => Ok(()),
        }
    }

    /// The volume as CSI describes it: id, size, how to mount it, and the
    /// zones of its bricks.
    fn describe(&self, volume: &VolumeRecord) -> Volume {
        let hosts = self.engine.volume_hosts(volume.id);
        let zones: BTreeSet<String> = self.engine.with_state(|s| {
            s.bricks_of(volume.id)
                .iter()
                .filter_map(|b| s.nodes.get(&b.node))
                .map(|n| n.zone.clone())
                .filter(|z| !z.is_empty())
                .collect()
        });
        Volume {
            volume_id: volume.id.to_string(),
            capacity_bytes: i64::try_from(volume.bytes).unwrap_or(i64::MAX),
            volume_context: HashMap::from([
                ("hosts".to_owned(), hosts.join(",")),
                ("volume".to_owned(), volume.name.clone()),
            ]),
            content_source: None,
            accessible_topology: zones
                .into_iter()
                .map(|zone| Topology {
                    segments: HashMap::from([(ZONE_KEY.to_owned(), zone)]),
                })
                .collect(),
        }
    }

    /// The volume with this CSI id, if it exists and is not being deleted.
    fn find(&self, volume_id: &str) -> Option<VolumeRecord> {
        self.engine
            .volumes()
            .into_iter()
            .find(|v| v.id.to_string() == volume_id)
    }

    /// The volumes ListVolumes pages through, in a stable order.
    fn listed(&self) -> Vec<VolumeRecord> {
        let mut volumes: Vec<VolumeRecord> = self
            .engine
            .volumes()
            .into_iter()
            .filter(|v| v.state == VolumeState::Ready)
            .collect();
        volumes.sort_by_key(|v| v.id.to_string());
        volumes
    }
}

/// The request's policy parameters and the claim its sidecar metadata
/// names.
fn policy_request(
    name: &str,
    parameters: &HashMap<String, String>,
    bytes: u64,
    modes: Vec<AccessMode>,
) -> Result<(crate::model::Pairs, Claim, (u32, u32)), Status> {
    let class: BTreeMap<String, String> = parameters
        .iter()
        .filter(|(k, _)| !k.starts_with(SIDECAR_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let options = parameter_options(class).map_err(|e| Status::invalid_argument(e.to_string()))?;
    if options.source != VolumeSource::Csi {
        return Err(Status::invalid_argument(
            "volumeSource 'glusterfs' (the legacy in-tree source) is only made by aplo's own \
             provisioner; the CSI controller makes CSI volumes",
        ));
    }
    let claim = Claim {
        namespace: parameters.get(PVC_NAMESPACE).cloned().unwrap_or_default(),
        name: parameters
            .get(PVC_NAME)
            .cloned()
            .unwrap_or_else(|| name.to_owned()),
        labels: Default::default(),
        annotations: Default::default(),
        requested_bytes: bytes,
        access_modes: modes,
    };
    Ok((options.policy_parameters, claim, options.gid_range))
}

/// The zone the scheduler prefers, from the first preferred (else
/// requisite) topology naming one.
fn preferred_zone(requirements: Option<&TopologyRequirement>) -> Option<String> {
    let requirements = requirements?;
    requirements
        .preferred
        .iter()
        .chain(&requirements.requisite)
        .find_map(|t| t.segments.get(ZONE_KEY).cloned())
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

fn no_snapshots() -> Status {
    Status::unimplemented(
        "snapshots are not offered: gluster snapshots need thin-LVM bricks, which aplo's \
         bricks are not on every kernel",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_names_map_to_gluster_names_deterministically() {
        assert_eq!(volume_name("pvc-0b1c2d"), "pvc-0b1c2d");
        let long = "sanity-".to_owned() + &"x".repeat(121);
        let mapped = volume_name(&long);
        assert!(mapped.starts_with("csi-") && mapped.len() == 36, "{mapped}");
        assert_eq!(mapped, volume_name(&long));
        assert_ne!(volume_name("a b"), volume_name("a  b"));
        assert!(check_volume_name(&volume_name("-x;rm")).is_ok());
    }

    #[test]
    fn capacity_ranges_are_checked() {
        let range = |required, limit| CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        };
        let gib = crate::model::GIB as i64;
        assert_eq!(
            wanted_bytes(Some(&range(gib, 2 * gib))).unwrap(),
            (crate::model::GIB, Some(2 * crate::model::GIB))
        );
        assert_eq!(wanted_bytes(None).unwrap(), (crate::model::GIB, None));
        assert_eq!(
            wanted_bytes(Some(&range(2 * gib, gib))).unwrap_err().code(),
            tonic::Code::OutOfRange
        );
        assert_eq!(
            wanted_bytes(Some(&range(-1, 0))).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(fits(2 * crate::model::GIB, crate::model::GIB, None));
        assert!(!fits(
            2 * crate::model::GIB,
            crate::model::GIB,
            Some(crate::model::GIB)
        ));
    }
}
