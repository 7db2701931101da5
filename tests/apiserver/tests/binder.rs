//! The PV binder: provisioner annotations, binding, Released, protection
//! finalizers, WaitForFirstConsumer.

mod common;

use common::{client, eventually, server, status};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn claim(name: &str, class: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).unwrap()
}

fn class(name: &str, mode: &str) -> StorageClass {
    serde_json::from_value(json!({"metadata": {"name": name}, "provisioner": "aplo.example/gluster", "volumeBindingMode": mode})).unwrap()
}

fn volume(name: &str, claim: &PersistentVolumeClaim) -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "gluster",
        "claimRef": {"namespace": claim.metadata.namespace, "name": claim.metadata.name, "uid": claim.metadata.uid},
        "glusterfs": {"endpoints": "ep", "path": "vol"}}})).unwrap()
}

fn ann<'a>(c: &'a PersistentVolumeClaim, k: &str) -> Option<&'a str> {
    c.metadata.annotations.as_ref()?.get(k).map(String::as_str)
}

fn phase_pv(pv: &PersistentVolume) -> Option<String> {
    pv.status.as_ref()?.phase.clone()
}

#[tokio::test]
async fn provisions_binds_and_releases() {
    let server = server().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let scs: Api<StorageClass> = Api::all(c.clone());

    // The claim exists before its class: annotated once the class appears.
    let created = pvcs
        .create(&PostParams::default(), &claim("data", "gluster"))
        .await
        .unwrap();
    assert_eq!(
        created.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pvc-protection".to_string()][..])
    );
    scs.create(&PostParams::default(), &class("gluster", "Immediate"))
        .await
        .unwrap();
    let annotated = eventually(5, || async {
        let c = pvcs.get("data").await.unwrap();
        ann(&c, "volume.kubernetes.io/storage-provisioner")
            .is_some()
            .then_some(c)
    })
    .await;
    assert_eq!(
        ann(&annotated, "volume.kubernetes.io/storage-provisioner"),
        Some("aplo.example/gluster")
    );
    assert_eq!(
        ann(&annotated, "volume.beta.kubernetes.io/storage-provisioner"),
        Some("aplo.example/gluster")
    );

    // The provisioner creates a volume pointing at the claim: both bind.
    pvs.create(&PostParams::default(), &volume("pv-data", &annotated))
        .await
        .unwrap();
    let bound = eventually(5, || async {
        let c = pvcs.get("data").await.unwrap();
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await;
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("pv-data")
    );
    assert_eq!(ann(&bound, "pv.kubernetes.io/bind-completed"), Some("yes"));
    assert_eq!(
        ann(&bound, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );
    let st = bound.status.unwrap();
    assert_eq!(st.capacity.unwrap()["storage"].0, "2Gi");
    assert_eq!(st.access_modes.unwrap(), ["ReadWriteMany"]);
    let pv = pvs.get("pv-data").await.unwrap();
    assert_eq!(phase_pv(&pv).as_deref(), Some("Bound"));
    assert_eq!(
        pv.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pv-protection".to_string()][..])
    );

    // Resizing the volume does not change the claim's capacity.
    pvs.patch(
        "pv-data",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"capacity": {"storage": "5Gi"}}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        pvcs.get("data")
            .await
            .unwrap()
            .status
            .unwrap()
            .capacity
            .unwrap()["storage"]
            .0,
        "2Gi"
    );

    // A bound volume is protected while its claim exists.
    pvs.delete("pv-data", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        pvs.get("pv-data")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    // Deleting the claim: protection finalizer removed, claim gone, volume
    // Released, then its own finalizer goes and it is deleted.
    pvcs.delete("data", &DeleteParams::default()).await.unwrap();
    eventually(5, || async {
        pvcs.get("data").await.is_err().then_some(())
    })
    .await;
    eventually(5, || async {
        pvs.get("pv-data").await.is_err().then_some(())
    })
    .await;
}

#[tokio::test]
async fn released_when_the_claim_goes_and_available_without_claim() {
    let server = server().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let cl = pvcs
        .create(&PostParams::default(), &claim("data", "none"))
        .await
        .unwrap();
    pvs.create(&PostParams::default(), &volume("pv-data", &cl))
        .await
        .unwrap();
    eventually(5, || async {
        (phase_pv(&pvs.get("pv-data").await.unwrap()).as_deref() == Some("Bound")).then_some(())
    })
    .await;
    pvcs.delete("data", &DeleteParams::default()).await.unwrap();
    eventually(5, || async {
        (phase_pv(&pvs.get("pv-data").await.unwrap()).as_deref() == Some("Released")).then_some(())
    })
    .await;
    // A new claim with the same name has another uid: still Released.
    pvcs.create(&PostParams::default(), &claim("data", "none"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        phase_pv(&pvs.get("pv-data").await.unwrap()).as_deref(),
        Some("Released")
    );
    let fresh = pvcs.get("data").await.unwrap();
    assert_eq!(fresh.status.unwrap().phase.as_deref(), Some("Pending"));

    let free: PersistentVolume = serde_json::from_value(
        json!({"metadata": {"name": "free"}, "spec": {"capacity": {"storage": "1Gi"}}}),
    )
    .unwrap();
    pvs.create(&PostParams::default(), &free).await.unwrap();
    eventually(5, || async {
        (phase_pv(&pvs.get("free").await.unwrap()).as_deref() == Some("Available")).then_some(())
    })
    .await;
    // Unbound volumes go as soon as they are deleted.
    pvs.delete("free", &DeleteParams::default()).await.unwrap();
    eventually(5, || async { pvs.get("free").await.is_err().then_some(()) }).await;
    let _ = status;
}

#[tokio::test]
async fn wait_for_first_consumer_waits_for_a_selected_node() {
    let server = server().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let scs: Api<StorageClass> = Api::all(c.clone());
    scs.create(
        &PostParams::default(),
        &class("local", "WaitForFirstConsumer"),
    )
    .await
    .unwrap();
    pvcs.create(&PostParams::default(), &claim("wait", "local"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        ann(
            &pvcs.get("wait").await.unwrap(),
            "volume.kubernetes.io/storage-provisioner"
        ),
        None
    );
    let select =
        json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-1"}}});
    pvcs.patch("wait", &PatchParams::default(), &Patch::Merge(select))
        .await
        .unwrap();
    eventually(5, || async {
        ann(
            &pvcs.get("wait").await.unwrap(),
            "volume.kubernetes.io/storage-provisioner",
        )
        .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_thousand_claims_bind() {
    let server = server().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let started = std::time::Instant::now();
    let claims = futures::future::join_all((0..1000).map(|i| {
        let pvcs = pvcs.clone();
        async move {
            pvcs.create(&PostParams::default(), &claim(&format!("c{i}"), "gluster"))
                .await
                .unwrap()
        }
    }))
    .await;
    futures::future::join_all(claims.iter().enumerate().map(|(i, cl)| {
        let pvs = pvs.clone();
        async move {
            pvs.create(&PostParams::default(), &volume(&format!("pv{i}"), cl))
                .await
                .unwrap()
        }
    }))
    .await;
    eventually(20, || async {
        let list = pvcs.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .all(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
