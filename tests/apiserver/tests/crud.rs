//! Create, read, update, delete through a real kube client: metadata,
//! defaults, error Status fields, status subresource, finalizers.

mod common;

use aplo_dev_apiserver::Options;
use common::{client, server_with, status};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

fn claim(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap()
}

/// A server without the binder, so objects change only when tests say so.
async fn plain() -> aplo_dev_apiserver::ApiServer {
    server_with(Options {
        binder: false,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn create_sets_metadata_and_defaults() {
    let server = plain().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let pp = PostParams {
        field_manager: Some("tester".into()),
        ..PostParams::default()
    };
    let created = pvcs.create(&pp, &claim("data")).await.unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
    assert!(
        meta.resource_version
            .as_ref()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(
        meta.managed_fields.as_ref().unwrap()[0].manager.as_deref(),
        Some("tester")
    );
    assert_eq!(
        created.spec.as_ref().unwrap().volume_mode.as_deref(),
        Some("Filesystem")
    );
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );

    let got = pvcs.get("data").await.unwrap();
    assert_eq!(got.metadata.uid, meta.uid);

    let generated = pvcs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"generateName": "data-"}, "spec": {}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("data-") && name.len() == 10, "{name}");

    let scs: Api<StorageClass> = Api::all(client(&server));
    let sc = scs
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "gluster"}, "provisioner": "aplo.example"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(sc.volume_binding_mode.as_deref(), Some("Immediate"));
    let pvs: Api<PersistentVolume> = Api::all(client(&server));
    let pv = pvs
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        pv.spec
            .as_ref()
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );
    assert_eq!(pv.status.unwrap().phase.as_deref(), Some("Pending"));
}

#[tokio::test]
async fn errors_carry_the_real_status_fields() {
    let server = plain().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    pvcs.create(&PostParams::default(), &claim("data"))
        .await
        .unwrap();

    let s = status(
        pvcs.create(&PostParams::default(), &claim("data"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "persistentvolumeclaims \"data\" already exists");
    let d = s.details.unwrap();
    assert_eq!(
        (d.name.as_str(), d.kind.as_str(), d.group.as_str()),
        ("data", "persistentvolumeclaims", "")
    );

    let s = status(pvcs.get("missing").await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "persistentvolumeclaims \"missing\" not found");

    let scs: Api<StorageClass> = Api::all(c.clone());
    let s = status(scs.get("missing").await.unwrap_err());
    assert_eq!(
        s.message,
        "storageclasses.storage.k8s.io \"missing\" not found"
    );
    assert_eq!(s.details.unwrap().group, "storage.k8s.io");

    let elsewhere: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "nowhere");
    let s = status(
        elsewhere
            .create(&PostParams::default(), &claim("data"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"nowhere\" not found");

    let s = status(
        pvcs.create(&PostParams::default(), &claim("Not_Valid"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.starts_with(
            "PersistentVolumeClaim \"Not_Valid\" is invalid: metadata.name: Invalid value"
        ),
        "{}",
        s.message
    );
    assert_eq!(s.details.unwrap().causes[0].field, "metadata.name");

    let mut wrong_ns = claim("other");
    wrong_ns.metadata.namespace = Some("kube-system".into());
    let s = status(
        pvcs.create(&PostParams::default(), &wrong_ns)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    let s = status(
        pvcs.patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    let s = status(
        pvcs.delete("missing", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
}

#[tokio::test]
async fn updates_need_a_current_resource_version() {
    let server = plain().await;
    let leases: Api<Lease> = Api::namespaced(client(&server), "default");
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}}),
    )
    .unwrap();
    let v1 = leases.create(&PostParams::default(), &lease).await.unwrap();

    let mut v2 = v1.clone();
    v2.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let v2 = leases
        .replace("leader", &PostParams::default(), &v2)
        .await
        .unwrap();
    assert_eq!(v2.metadata.generation, Some(2));
    assert!(v2.metadata.resource_version > v1.metadata.resource_version);

    // Stale.
    let s = status(
        leases
            .replace("leader", &PostParams::default(), &v1)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"leader\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Missing.
    let mut no_rv = v2.clone();
    no_rv.metadata.resource_version = None;
    let s = status(
        leases
            .replace("leader", &PostParams::default(), &no_rv)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    // Wrong uid.
    let mut other_uid = v2.clone();
    other_uid.metadata.uid = Some("00000000-0000-4000-8000-000000000000".into());
    assert_eq!(
        status(
            leases
                .replace("leader", &PostParams::default(), &other_uid)
                .await
                .unwrap_err()
        )
        .code,
        409
    );
    // Stale resourceVersion inside a merge patch.
    let stale = json!({"metadata": {"resourceVersion": v1.metadata.resource_version}, "spec": {"holderIdentity": "c"}});
    assert_eq!(
        status(
            leases
                .patch("leader", &PatchParams::default(), &Patch::Merge(stale))
                .await
                .unwrap_err()
        )
        .code,
        409
    );
    // A no-op write does not bump the resourceVersion.
    let same = leases
        .replace("leader", &PostParams::default(), &v2)
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, v2.metadata.resource_version);
    // Wrong kind in the body.
    let req = http_put_wrong_kind(&server).await;
    assert_eq!(req, 400);
}

async fn http_put_wrong_kind(server: &aplo_dev_apiserver::ApiServer) -> u16 {
    let c = client(server);
    let body =
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}))
            .unwrap();
    let req = http::Request::post("/apis/coordination.k8s.io/v1/namespaces/default/leases")
        .body(body)
        .unwrap();
    match c.request::<serde_json::Value>(req).await {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn status_subresource_splits_writes() {
    let server = plain().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    pvcs.create(&PostParams::default(), &claim("data"))
        .await
        .unwrap();

    // Main resource: status changes are ignored, spec changes kept.
    let p = json!({"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}});
    let after = pvcs
        .patch("data", &PatchParams::default(), &Patch::Merge(p))
        .await
        .unwrap();
    assert_eq!(
        after.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("pv1")
    );
    assert_eq!(
        after.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(after.metadata.generation, Some(2));

    // Status: only status changes; generation stays.
    let p = json!({"spec": {"volumeName": "other"}, "status": {"phase": "Bound"}, "metadata": {"labels": {"x": "y"}}});
    let after = pvcs
        .patch_status("data", &PatchParams::default(), &Patch::Merge(p))
        .await
        .unwrap();
    assert_eq!(
        after.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("pv1")
    );
    assert_eq!(
        after.status.as_ref().unwrap().phase.as_deref(),
        Some("Bound")
    );
    assert_eq!(after.metadata.labels.as_ref().unwrap().get("x"), None);
    assert_eq!(after.metadata.generation, Some(2));

    let mut whole = after.clone();
    whole.status.as_mut().unwrap().phase = Some("Lost".into());
    let replaced = pvcs
        .replace_status("data", &PostParams::default(), &whole)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Lost"));
    let got = pvcs.get_status("data").await.unwrap();
    assert_eq!(got.status.unwrap().phase.as_deref(), Some("Lost"));
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let server = plain().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let mut c = claim("held");
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let created = pvcs.create(&PostParams::default(), &c).await.unwrap();

    // Preconditions.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        status(pvcs.delete("held", &dp).await.unwrap_err()).code,
        409
    );
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        status(pvcs.delete("held", &dp).await.unwrap_err()).code,
        409
    );

    let pending = pvcs
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("object while finalizers remain");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(0));
    assert!(pvcs.get("held").await.is_ok());

    // No new finalizers while deleting.
    let add = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}});
    let s = status(
        pvcs.patch("held", &PatchParams::default(), &Patch::Merge(add))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));

    let remove = json!({"metadata": {"finalizers": null}});
    pvcs.patch("held", &PatchParams::default(), &Patch::Merge(remove))
        .await
        .unwrap();
    assert_eq!(status(pvcs.get("held").await.unwrap_err()).code, 404);

    // Without finalizers: gone at once, answered with a Success Status.
    pvcs.create(&PostParams::default(), &claim("free"))
        .await
        .unwrap();
    let gone = pvcs
        .delete("free", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("status");
    assert_eq!(gone.details.unwrap().name, "free");
    let _ = created;
}

#[tokio::test]
async fn dry_run_does_not_persist() {
    let server = plain().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    pvcs.create(&pp, &claim("ghost")).await.unwrap();
    assert_eq!(status(pvcs.get("ghost").await.unwrap_err()).code, 404);
}
