//! The CSI identity service over a real unix socket, called through the
//! generated gRPC client as kubelet and csi-sanity call it.

use std::sync::Arc;

use aplo::csi::proto::identity_client::IdentityClient;
use aplo::csi::proto::plugin_capability::{self, service};
use aplo::csi::proto::{GetPluginCapabilitiesRequest, GetPluginInfoRequest, ProbeRequest};
use aplo::csi::{Endpoint, Identity, NotReady};

async fn start(
    identity: Identity,
) -> (tempfile::TempDir, IdentityClient<tonic::transport::Channel>) {
    let dir = tempfile::tempdir().unwrap();
    let endpoint: Endpoint = format!("unix://{}/csi.sock", dir.path().display())
        .parse()
        .unwrap();
    let listener = endpoint.bind().unwrap();
    let served = endpoint.clone();
    tokio::spawn(async move {
        aplo::csi::server::serve(
            &served,
            listener,
            aplo::csi::server::Services {
                identity,
                node: None,
                controller: None,
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    });
    let client = IdentityClient::connect(format!("unix://{}", endpoint.path().display()))
        .await
        .expect("the socket answers");
    (dir, client)
}

fn identity(controller: bool, ready: Result<(), NotReady>) -> Identity {
    Identity {
        name: "glusterfs.aplo.dev".into(),
        version: "0.1.0".into(),
        controller,
        checks: vec![Arc::new(move || ready.clone())],
    }
}

#[tokio::test]
async fn identity_names_the_driver_and_its_capabilities() {
    let (_dir, mut client) = start(identity(true, Ok(()))).await;
    let info = client
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.name.as_str(), info.vendor_version.as_str()),
        ("glusterfs.aplo.dev", "0.1.0")
    );
    let capabilities = client
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    let services: Vec<i32> = capabilities
        .iter()
        .filter_map(|c| match &c.r#type {
            Some(plugin_capability::Type::Service(s)) => Some(s.r#type),
            _ => None,
        })
        .collect();
    assert_eq!(
        services,
        vec![
            service::Type::ControllerService as i32,
            service::Type::VolumeAccessibilityConstraints as i32
        ]
    );
    assert!(
        capabilities
            .iter()
            .any(|c| matches!(&c.r#type, Some(plugin_capability::Type::VolumeExpansion(_))))
    );
    let probe = client.probe(ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(true));
}

#[tokio::test]
async fn a_node_only_process_does_not_offer_the_controller_and_probes_not_ready_with_the_reason() {
    let (_dir, mut client) = start(identity(false, Err(NotReady::NoFuse))).await;
    let capabilities = client
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    assert!(!capabilities.iter().any(|c| matches!(
        &c.r#type,
        Some(plugin_capability::Type::Service(s)) if s.r#type == service::Type::ControllerService as i32
    )));
    let status = client.probe(ProbeRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("/dev/fuse does not exist"),
        "{status}"
    );
}
