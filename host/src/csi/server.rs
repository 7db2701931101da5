//! The gRPC server on its unix socket.

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use super::controller::Controller;
use super::identity::Identity;
use super::node::Node;
use super::proto::controller_server::ControllerServer;
use super::proto::identity_server::IdentityServer;
use super::proto::node_server::NodeServer;

/// Where the driver listens: a unix socket, written `unix:///abs/path.sock`
/// (the CSI convention, as in `CSI_ENDPOINT`) or as a plain absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    path: PathBuf,
}

/// A refused endpoint or a socket that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The endpoint is not a unix socket path aplo can use.
    #[error("endpoint '{endpoint}': {reason}")]
    Invalid {
        /// What was given.
        endpoint: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The socket could not be made or served.
    #[error("socket {path}: {source}")]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("serving CSI on {path}: {source}")]
    Serve {
        /// The socket's path.
        path: PathBuf,
        /// What tonic reported.
        #[source]
        source: tonic::transport::Error,
    },
}

impl std::str::FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(endpoint: &str) -> Result<Endpoint, EndpointError> {
        let invalid = |reason| EndpointError::Invalid {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let path = match endpoint.split_once("://") {
            Some(("unix", path)) => path,
            Some(_) => return Err(invalid("only unix:// endpoints are served")),
            None => endpoint,
        };
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err(invalid("the socket path must be absolute"));
        }
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid("the socket path must not contain '..'"));
        }
        Ok(Endpoint {
            path: path.to_owned(),
        })
    }
}

impl Endpoint {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bind the socket: a socket file left by an earlier run is replaced,
    /// any other file is refused.
    pub fn bind(&self) -> Result<UnixListener, EndpointError> {
        let io = |source| EndpointError::Io {
            path: self.path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
                std::fs::remove_file(&self.path).map_err(io)?;
            }
            Ok(_) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        UnixListener::bind(&self.path).map_err(io)
    }
}

/// The services one server offers: identity always, node and controller
/// for the roles it plays.
#[derive(Debug)]
pub struct Services {
    /// The identity service.
    pub identity: Identity,
    /// The node service (node role).
    pub node: Option<Node>,
    /// The controller service (controller role).
    pub controller: Option<Controller>,
}

/// Serve `services` on `listener` until `shutdown` completes.
pub async fn serve(
    endpoint: &Endpoint,
    listener: UnixListener,
    services: Services,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EndpointError> {
    tonic::transport::Server::builder()
        .add_service(IdentityServer::new(services.identity))
        .add_optional_service(services.node.map(NodeServer::new))
        .add_optional_service(services.controller.map(ControllerServer::new))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|source| EndpointError::Serve {
            path: endpoint.path.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_absolute_unix_paths() {
        let plain: Endpoint = "/csi/csi.sock".parse().unwrap();
        assert_eq!(plain.path(), Path::new("/csi/csi.sock"));
        let url: Endpoint = "unix:///var/lib/kubelet/plugins/x/csi.sock"
            .parse()
            .unwrap();
        assert_eq!(url.path(), Path::new("/var/lib/kubelet/plugins/x/csi.sock"));
        for bad in [
            "tcp://127.0.0.1:10000",
            "unix://relative.sock",
            "csi.sock",
            "/a/../b.sock",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
