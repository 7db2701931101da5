//! Registration with kubelet, and the node plugin's health endpoint, so the
//! node plugin runs as one container with no sidecars.
//!
//! kubelet watches its `plugins_registry` directory for sockets. For each
//! it asks who the plugin is and where its CSI endpoint is (`GetInfo`), then
//! says whether it registered it (`NotifyRegistrationStatus`). A refusal is
//! kept: the health endpoint then fails, so the liveness probe restarts the
//! container and it registers again, as the stock registrar's exit does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use super::identity::{Identity, NotReady, joined};
use super::server::{Endpoint, EndpointError};

/// The messages and service generated from
/// `host/proto/pluginregistration/api.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("pluginregistration");
}

use proto::registration_server::{Registration, RegistrationServer};
use proto::{InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse};

/// The plugin type kubelet expects of a CSI driver.
const CSI_PLUGIN: &str = "CSIPlugin";

/// The CSI versions the driver speaks, as kubelet names them.
const SUPPORTED_VERSIONS: [&str; 1] = ["1.0.0"];

/// What kubelet last said about the registration: nothing yet, accepted,
/// or refused with its reason.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    inner: Arc<Mutex<Option<Said>>>,
}

/// What kubelet said.
#[derive(Debug, Clone)]
enum Said {
    /// It registered the plugin.
    Registered,
    /// It refused, for this reason.
    Refused(String),
}

/// The registration service for one driver.
#[derive(Debug, Clone)]
pub struct Registrar {
    name: String,
    endpoint: PathBuf,
    status: Outcome,
}

impl Registrar {
    /// Register driver `name`, whose CSI socket kubelet reaches at
    /// `endpoint` (a path on the node).
    pub fn new(name: String, endpoint: PathBuf) -> Registrar {
        Registrar {
            name,
            endpoint,
            status: Outcome::default(),
        }
    }

    /// The registration socket in kubelet's `registry` directory, named as
    /// kubelet's own registrar names it.
    pub fn socket(&self, registry: &Path) -> Result<Endpoint, EndpointError> {
        registry
            .join(format!("{}-reg.sock", self.name))
            .display()
            .to_string()
            .parse()
    }

    /// `Err` with kubelet's reason when it refused the registration.
    pub fn refusal(&self) -> Result<(), NotReady> {
        match &*self.status.inner.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(Said::Refused(reason)) => Err(NotReady::RegistrationRefused(reason.clone())),
            _ => Ok(()),
        }
    }

    /// Whether kubelet has accepted the registration.
    pub fn registered(&self) -> bool {
        matches!(
            *self.status.inner.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Said::Registered)
        )
    }
}

#[tonic::async_trait]
impl Registration for Registrar {
    async fn get_info(
        &self,
        _request: Request<InfoRequest>,
    ) -> Result<Response<PluginInfo>, Status> {
        Ok(Response::new(PluginInfo {
            r#type: CSI_PLUGIN.to_owned(),
            name: self.name.clone(),
            endpoint: self.endpoint.display().to_string(),
            supported_versions: SUPPORTED_VERSIONS.map(str::to_owned).to_vec(),
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        let outcome = if status.plugin_registered {
            tracing::info!(driver = %self.name, "kubelet registered the plugin");
            Said::Registered
        } else {
            tracing::error!(driver = %self.name, reason = %status.error, "kubelet refused the plugin's registration");
            Said::Refused(status.error)
        };
        *self.status.inner.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}

/// Serve the registration service on `listener` (bound from `socket`)
/// until `shutdown`, then remove the socket, which tells kubelet the
/// plugin is gone.
pub async fn serve(
    socket: &Endpoint,
    listener: UnixListener,
    registrar: Registrar,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), EndpointError> {
    // kubelet sends the socket's path as the HTTP/2 authority, which the
    // server would refuse: every connection goes through the front.
    let incoming =
        UnixListenerStream::new(listener).map(|accepted| accepted.map(super::authority::front));
    let served = tonic::transport::Server::builder()
        .add_service(RegistrationServer::new(registrar))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = std::fs::remove_file(socket.path());
    served.map_err(|source| EndpointError::Serve {
        path: socket.path().to_owned(),
        source,
    })
}

/// The health endpoint: `GET /healthz` answers 200 when every role is
/// ready (what `Probe` checks) and kubelet has not refused the
/// registration, else 503 naming what is wrong. The liveness probe of the
/// node DaemonSet calls it.
pub fn health_router(identity: Identity, registrar: Option<Registrar>) -> axum::Router {
    use axum::http::StatusCode;
    axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let identity = identity.clone();
            let registrar = registrar.clone();
            async move {
                let mut failures = identity.failures();
                if let Some(Err(refused)) = registrar.as_ref().map(Registrar::refusal) {
                    failures.push(refused);
                }
                if failures.is_empty() {
                    (StatusCode::OK, "ok\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", joined(&failures)),
                    )
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registrar() -> Registrar {
        Registrar::new(
            "glusterfs.aplo.dev".into(),
            "/var/lib/kubelet/plugins/glusterfs.aplo.dev/csi.sock".into(),
        )
    }

    #[tokio::test]
    async fn get_info_names_the_driver_and_its_endpoint() {
        let info = registrar()
            .get_info(Request::new(InfoRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.r#type, "CSIPlugin");
        assert_eq!(info.name, "glusterfs.aplo.dev");
        assert_eq!(
            info.endpoint,
            "/var/lib/kubelet/plugins/glusterfs.aplo.dev/csi.sock"
        );
        assert_eq!(info.supported_versions, vec!["1.0.0"]);
    }

    #[tokio::test]
    async fn a_refusal_is_kept_and_a_later_acceptance_clears_it() {
        let r = registrar();
        assert!(!r.registered());
        assert!(r.refusal().is_ok());
        r.notify_registration_status(Request::new(RegistrationStatus {
            plugin_registered: false,
            error: "version 9 unsupported".into(),
        }))
        .await
        .unwrap();
        assert_eq!(
            r.refusal().unwrap_err().to_string(),
            "kubelet refused the registration: version 9 unsupported"
        );
        r.notify_registration_status(Request::new(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        }))
        .await
        .unwrap();
        assert!(r.registered());
        assert!(r.refusal().is_ok());
    }

    #[test]
    fn the_socket_is_named_after_the_driver() {
        let socket = registrar()
            .socket(Path::new("/var/lib/kubelet/plugins_registry"))
            .unwrap();
        assert_eq!(
            socket.path(),
            Path::new("/var/lib/kubelet/plugins_registry/glusterfs.aplo.dev-reg.sock")
        );
    }
}
