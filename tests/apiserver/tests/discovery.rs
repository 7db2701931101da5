//! Discovery through kube's `Discovery` and the raw endpoints.

mod common;

use common::{client, server};
use kube::discovery::{Discovery, Scope, verbs};

#[tokio::test]
async fn kube_discovery_finds_every_resource() {
    let server = server().await;
    let c = client(&server);
    let info = c.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));

    let discovery = Discovery::new(c.clone()).run().await.unwrap();
    let find = |group: &str, plural: &str| {
        discovery
            .get(group)
            .unwrap_or_else(|| panic!("group {group:?}"))
            .recommended_resources()
            .into_iter()
            .find(|(r, _)| r.plural == plural)
            .unwrap_or_else(|| panic!("{plural}"))
    };
    let (pvc, caps) = find("", "persistentvolumeclaims");
    assert_eq!(pvc.kind, "PersistentVolumeClaim");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation(verbs::WATCH) && caps.supports_operation(verbs::PATCH));
    assert!(
        caps.subresources.iter().any(|(r, _)| r.plural == "status"),
        "{:?}",
        caps.subresources
    );
    let (_, caps) = find("", "persistentvolumes");
    assert_eq!(caps.scope, Scope::Cluster);
    let (sc, _) = find("storage.k8s.io", "storageclasses");
    assert_eq!(sc.api_version, "storage.k8s.io/v1");
    find("coordination.k8s.io", "leases");
    find("events.k8s.io", "events");
    find("", "events");
    find("", "namespaces");
    find("", "nodes");

    let resources = c.list_core_api_resources("v1").await.unwrap();
    let pvc = resources
        .resources
        .iter()
        .find(|r| r.name == "persistentvolumeclaims")
        .unwrap();
    assert_eq!(pvc.short_names.as_deref(), Some(&["pvc".to_string()][..]));

    for path in ["/healthz", "/readyz", "/livez"] {
        let text = c
            .request_text(http::Request::get(path).body(vec![]).unwrap())
            .await
            .unwrap();
        assert_eq!(text, "ok");
    }
}

#[tokio::test]
async fn audit_log_records_requests() {
    let server = server().await;
    let c = client(&server);
    let pvcs: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(c, "default");
    let _ = pvcs.get("missing").await;
    let log = server.requests();
    let last = log.last().unwrap();
    assert_eq!(
        (
            last.verb.as_str(),
            last.resource.as_str(),
            last.namespace.as_deref(),
            last.name.as_deref(),
            last.status
        ),
        (
            "get",
            "persistentvolumeclaims",
            Some("default"),
            Some("missing"),
            404
        )
    );
    server.clear_requests();
    assert!(server.requests().is_empty());
}
