//! JSON, merge, strategic merge and server-side apply patches.

mod common;

use aplo_dev_apiserver::Options;
use common::{client, server_with, status};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

async fn setup() -> (aplo_dev_apiserver::ApiServer, Api<PersistentVolumeClaim>) {
    let server = server_with(Options {
        binder: false,
        ..Options::default()
    })
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let c: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "labels": {"a": "1"}, "finalizers": ["x/one", "x/two"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    pvcs.create(&PostParams::default(), &c).await.unwrap();
    (server, pvcs)
}

#[tokio::test]
async fn json_merge_and_strategic_patches() {
    let (_server, pvcs) = setup().await;
    let pp = PatchParams::default();

    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        {"op": "replace", "path": "/spec/resources/requests/storage", "value": "2Gi"},
    ]))
    .unwrap();
    let out = pvcs
        .patch("data", &pp, &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(out.metadata.labels.as_ref().unwrap()["b"], "2");
    assert_eq!(
        out.spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "2Gi"
    );
    let failing: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/metadata/labels/a", "value": "nope"}]),
    )
    .unwrap();
    assert_eq!(
        status(
            pvcs.patch("data", &pp, &Patch::Json::<()>(failing))
                .await
                .unwrap_err()
        )
        .code,
        422
    );

    let out = pvcs
        .patch(
            "data",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": null, "c": "3"}}})),
        )
        .await
        .unwrap();
    let labels = out.metadata.labels.unwrap();
    assert!(!labels.contains_key("a") && labels["c"] == "3");

    // Strategic: finalizers merge as a set; $deleteFromPrimitiveList removes.
    let out = pvcs
        .patch(
            "data",
            &pp,
            &Patch::Strategic(json!({"metadata": {"finalizers": ["x/three"]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        out.metadata.finalizers.unwrap(),
        ["x/one", "x/two", "x/three"]
    );
    let out = pvcs
        .patch(
            "data",
            &pp,
            &Patch::Strategic(
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/one"]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(out.metadata.finalizers.unwrap(), ["x/two", "x/three"]);
    // accessModes has no patch strategy: replaced.
    let out = pvcs
        .patch(
            "data",
            &pp,
            &Patch::Strategic(json!({"spec": {"accessModes": ["ReadWriteMany"]}})),
        )
        .await
        .unwrap();
    assert_eq!(out.spec.unwrap().access_modes.unwrap(), ["ReadWriteMany"]);
}

#[tokio::test]
async fn strategic_merges_containers_by_name() {
    let server = server_with(Options {
        binder: false,
        ..Options::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}});
    let out = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let containers = out.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(
        (containers[0].name.as_str(), containers[0].image.as_deref()),
        ("b", Some("z"))
    );
}

#[tokio::test]
async fn server_side_apply_tracks_owners() {
    let server = server_with(Options {
        binder: false,
        ..Options::default()
    })
    .await;
    let scs: Api<StorageClass> = Api::all(client(&server));
    let a = PatchParams::apply("alice");
    let config = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "aplo.example",
        "parameters": {"replicas": "3", "zone": "a"}});
    // Creates when absent.
    let created = scs.patch("fast", &a, &Patch::Apply(&config)).await.unwrap();
    assert_eq!(created.parameters.as_ref().unwrap()["zone"], "a");
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("alice"), Some("Apply"))
    );
    assert_eq!(
        mf[0].fields_v1.as_ref().unwrap().0["f:parameters"],
        json!({"f:replicas": {}, "f:zone": {}})
    );

    // fieldManager is required.
    let s = status(
        scs.patch("fast", &PatchParams::default(), &Patch::Apply(&config))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));

    // Bob conflicts on a field Alice owns with another value...
    let bob = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "aplo.example", "parameters": {"zone": "b"}});
    let s = status(
        scs.patch("fast", &PatchParams::apply("bob"), &Patch::Apply(&bob))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("conflict with \"alice\""),
        "{}",
        s.message
    );
    assert!(s.message.contains(".parameters.zone"), "{}", s.message);
    // ...and wins with force; provisioner (same value) is then shared.
    let forced = scs
        .patch(
            "fast",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&bob),
        )
        .await
        .unwrap();
    assert_eq!(forced.parameters.as_ref().unwrap()["zone"], "b");

    // Alice stops applying replicas and zone: replicas goes (only she owned
    // it); zone is Bob's now and stays.
    let alice2 = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "aplo.example"});
    let out = scs.patch("fast", &a, &Patch::Apply(&alice2)).await.unwrap();
    let params = out.parameters.unwrap();
    assert!(!params.contains_key("replicas"), "{params:?}");
    assert_eq!(params["zone"], "b");
    // Bob drops provisioner: Alice still owns it, so it stays.
    let bob2 = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "parameters": {"zone": "b"}});
    let out = scs
        .patch("fast", &PatchParams::apply("bob"), &Patch::Apply(&bob2))
        .await
        .unwrap();
    assert_eq!(out.provisioner, "aplo.example");

    // A merge patch takes ownership of what it changes.
    let out = scs
        .patch(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(json!({"parameters": {"zone": "c"}})),
        )
        .await
        .unwrap();
    let managers: Vec<String> = out
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m != "alice" && m != "bob"),
        "{managers:?}"
    );
    let s = status(
        scs.patch("fast", &PatchParams::apply("bob"), &Patch::Apply(&bob2))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 409);
}

#[tokio::test]
async fn apply_to_status_only_touches_status() {
    let (_server, pvcs) = setup().await;
    let p = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "status": {"phase": "Bound"}, "spec": {"volumeName": "ignored"}});
    let out = pvcs
        .patch_status(
            "data",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(&p),
        )
        .await
        .unwrap();
    assert_eq!(out.status.unwrap().phase.as_deref(), Some("Bound"));
    assert_eq!(out.spec.unwrap().volume_name, None);
    let mf = out.metadata.managed_fields.unwrap();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("ctl")
                && m.subresource.as_deref() == Some("status"))
    );
}
