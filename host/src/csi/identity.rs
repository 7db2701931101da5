//! The identity service: who the driver is, what it offers, and whether
//! it is ready.

use std::path::PathBuf;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::identity_server;
use super::proto::plugin_capability::{self, service, volume_expansion};
use super::proto::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
    GetPluginInfoResponse, PluginCapability, ProbeRequest, ProbeResponse,
};

/// What a role lacks to work now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The glusterfs client is not installed under this root.
    #[error(
        "the glusterfs client is not installed (no mount.glusterfs under {})",
        .0.display()
    )]
    NoGlusterClient(PathBuf),
    /// There is no `/dev/fuse`.
    #[error("/dev/fuse does not exist (mount /dev from the host)")]
    NoFuse,
    /// kubelet refused the registration (its reason).
    #[error("kubelet refused the registration: {0}")]
    RegistrationRefused(String),
}

/// Whether a role can work now: `Err` says what it lacks.
pub type Readiness = Arc<dyn Fn() -> Result<(), NotReady> + Send + Sync>;

/// The identity service of one driver process.
#[derive(Clone)]
pub struct Identity {
    /// The driver's name: the provisioner name, which aplo's PVs carry as
    /// their CSI driver.
    pub name: String,
    /// The driver's version.
    pub version: String,
    /// Whether this process serves the controller role.
    pub controller: bool,
    /// The checks `Probe` runs, one per role served.
    pub checks: Vec<Readiness>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("controller", &self.controller)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// What each role served lacks now; empty when all are ready.
    pub fn failures(&self) -> Vec<NotReady> {
        self.checks
            .iter()
            .filter_map(|check| check().err())
            .collect()
    }

    /// The capabilities `GetPluginCapabilities` answers: the controller
    /// service when this process runs it, topology constraints, and online
    /// expansion.
    pub fn capabilities(&self) -> Vec<PluginCapability> {
        let service = |kind: service::Type| PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service {
                    r#type: kind as i32,
                },
            )),
        };
        let mut capabilities = Vec::new();
        if self.controller {
            capabilities.push(service(service::Type::ControllerService));
        }
        capabilities.push(service(service::Type::VolumeAccessibilityConstraints));
        capabilities.push(PluginCapability {
            r#type: Some(plugin_capability::Type::VolumeExpansion(
                plugin_capability::VolumeExpansion {
                    r#type: volume_expansion::Type::Online as i32,
                },
            )),
        });
        capabilities
    }
}

/// What is missing, as one line.
pub(super) fn joined(failures: &[NotReady]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[tonic::async_trait]
impl identity_server::Identity for Identity {
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: self.name.clone(),
            vendor_version: self.version.clone(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: self.capabilities(),
        }))
    }

    async fn probe(
        &self,
        _request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        let failures = self.failures();
        if failures.is_empty() {
            Ok(Response::new(ProbeResponse { ready: Some(true) }))
        } else {
            // The spec's answer for a missing dependency.
            Err(Status::failed_precondition(format!(
                "not ready: {}",
                joined(&failures)
            )))
        }
    }
}
