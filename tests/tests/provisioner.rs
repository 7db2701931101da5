//! The provisioner against a real control plane (kube-apiserver, etcd and
//! kube-controller-manager's PV binder, built from source), as aplo's
//! ServiceAccount under deploy/base's RBAC, on the simulate executor. Every
//! outcome is read back from Kubernetes objects and events.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aplo::engine::driver::SimDriver;
use aplo::engine::{Engine, EngineConfig};
use aplo::front::Phase;
use aplo::kube::LeaseConfig;
use aplo::store::MemoryStore;
use aplo::store::Store;
use aplo_e2e::kube::{
    BreakableDriver, NAMESPACE, Provisioner, SERVICE_ACCOUNT, World, registry, sim_engine,
    sim_engine_on,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_claims_across_three_classes_are_each_bound_exactly_once() {
    let world = World::start().await;
    world
        .class("replica3", &[("classes.class", "replica3")], "Delete")
        .await;
    world
        .class("arbiter", &[("classes.class", "arbiter")], "Delete")
        .await;
    world
        .class(
            "disperse",
            &[("classes.class", "disperse-4-2"), ("placement", "binpack")],
            "Delete",
        )
        .await;
    let engine = sim_engine(6).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());

    let classes = ["replica3", "arbiter", "disperse"];
    let claims = names("claim", 50);
    let mut uids = Vec::new();
    for (i, name) in claims.iter().enumerate() {
        uids.push(world.claim("default", name, classes[i % 3], "1Gi").await);
    }
    world.wait_bound("default", &claims, WAIT).await;

    // One PV per claim, named for it, pointing back at it.
    let pvs = world.pvs().await;
    assert_eq!(pvs.len(), 50, "one PV per claim");
    let pv_names: BTreeSet<String> = pvs.iter().map(|p| p.name_any()).collect();
    let expected: BTreeSet<String> = uids.iter().map(|u| format!("pvc-{u}")).collect();
    assert_eq!(pv_names, expected);
    for pv in &pvs {
        let spec = pv.spec.as_ref().unwrap();
        let csi = spec.csi.as_ref().expect("a CSI source by default");
        assert_eq!(csi.driver, aplo_e2e::kube::PROVISIONER);
        let (volume, _) = engine
            .volume(&pv.name_any())
            .expect("the backend volume exists");
        assert_eq!(csi.volume_handle, volume.id.to_string());
        assert_eq!(
            pv.annotations()
                .get("pv.kubernetes.io/provisioned-by")
                .map(String::as_str),
            Some(aplo_e2e::kube::PROVISIONER)
        );
        assert!(
            pv.finalizers()
                .iter()
                .any(|f| f == aplo::front::claim::FINALIZER)
        );
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(pv.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
    }
    // The classes' policies decided: each class's volumes have its scheme.
    for (i, name) in claims.iter().enumerate() {
        let claim = world.claims("default").get(name).await.unwrap();
        let pv = claim.spec.unwrap().volume_name.unwrap();
        let (volume, bricks) = engine.volume(&pv).unwrap();
        let per_set = match classes[i % 3] {
            "replica3" | "arbiter" => 3,
            _ => 6,
        };
        assert_eq!(bricks.len() % per_set, 0, "{name}: {:?}", volume.scheme);
        let scheme = format!("{:?}", volume.scheme);
        match classes[i % 3] {
            "replica3" => assert!(scheme.contains("arbiter: false"), "{scheme}"),
            "arbiter" => assert!(scheme.contains("arbiter: true"), "{scheme}"),
            _ => assert!(scheme.contains("Disperse"), "{scheme}"),
        }
    }
    assert_eq!(engine.volumes().len(), 50, "no volume was made twice");

    // Each claim heard exactly one success.
    for name in claims.iter().take(5) {
        let events = world.events_about("default", name).await;
        let succeeded = events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("ProvisioningSucceeded"))
            .count();
        assert_eq!(succeeded, 1, "{name}: {events:?}");
        assert!(
            events
                .iter()
                .any(|e| e.reason.as_deref() == Some("Provisioning"))
        );
    }
    let metrics = provisioner.metrics.render();
    assert!(
        metrics.contains("controller_persistentvolumeclaim_provision_total{class=\"arbiter\"} 17"),
        "{metrics}"
    );
    assert!(metrics.contains("aplo_policy_decisions_total{decision=\"placement\",policy=\"binpack\",outcome=\"granted\"} 16"), "{metrics}");
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_refusal_is_a_warning_event_with_the_policy_reason_and_is_retried_slowly() {
    let world = World::start().await;
    world
        .class(
            "capped",
            &[
                ("quota", "namespace-quota"),
                ("namespace-quota.max-volumes", "1"),
            ],
            "Delete",
        )
        .await;
    let engine = sim_engine(3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    world.claim("default", "first", "capped", "1Gi").await;
    world.wait_bound("default", &["first".into()], WAIT).await;
    world.claim("default", "second", "capped", "1Gi").await;
    let event = world
        .wait_event("default", "second", "ProvisioningFailed", WAIT)
        .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains("namespace-quota"), "{note}");
    assert!(note.contains("refused"), "{note}");
    // What an admin reads: kubectl describe shows the policy's reason.
    let described = world
        .k8s
        .kubectl(&["describe", "pvc", "second", "-n", "default"]);
    assert!(
        described.contains("ProvisioningFailed") && described.contains("namespace-quota"),
        "{described}"
    );
    // Backoff: 0.5 s, 1 s, 2 s, ... so in 3 s at most four attempts (a hot
    // loop would make hundreds).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = provisioner.metrics.render();
    let failed = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "controller_persistentvolumeclaim_provision_failed_total{class=\"capped\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no failure counter: {metrics}"));
    assert!(
        (1..=5).contains(&failed),
        "{failed} attempts in ~3 s: {metrics}"
    );
    let claim = world.claims("default").get("second").await.unwrap();
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(engine.volumes().len(), 1);
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_removes_the_volume_and_retain_keeps_it() {
    let world = World::start().await;
    world.class("gone", &[], "Delete").await;
    world.class("kept", &[], "Retain").await;
    let engine = sim_engine(3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let gone = world.claim("default", "gone", "gone", "1Gi").await;
    let kept = world.claim("default", "kept", "kept", "1Gi").await;
    world
        .wait_bound("default", &["gone".into(), "kept".into()], WAIT)
        .await;
    assert_eq!(engine.volumes().len(), 2);
    for name in ["gone", "kept"] {
        world
            .claims("default")
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    // Delete: the backend volume goes, then the PV object.
    let pvs = world.volumes();
    world.wait_pv_gone(&format!("pvc-{gone}"), WAIT).await;
    assert!(
        engine.volume(&format!("pvc-{gone}")).is_err(),
        "the backend volume was deleted"
    );
    // Retain: Released (by kube-controller-manager's PV binder), and both
    // the PV and its volume stay.
    world
        .wait_pv_phase(&format!("pvc-{kept}"), "Released", WAIT)
        .await;
    assert!(engine.volume(&format!("pvc-{kept}")).is_ok());
    // Deleting a retained PV lets it go and leaves the volume.
    pvs.delete(&format!("pvc-{kept}"), &DeleteParams::default())
        .await
        .unwrap();
    world.wait_pv_gone(&format!("pvc-{kept}"), WAIT).await;
    // Give the orphan sweep (every second here) time to make a mistake: a
    // volume that had a PV is never swept.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        engine.volume(&format!("pvc-{kept}")).is_ok(),
        "Retain keeps the volume"
    );
    let metrics = provisioner.metrics.render();
    assert!(
        metrics.contains("controller_persistentvolume_delete_total{class=\"gone\"} 1"),
        "{metrics}"
    );
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bigger_request_expands_the_volume_the_pv_and_the_claim_status() {
    let world = World::start().await;
    world.class("grow", &[], "Delete").await;
    let engine = sim_engine(3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let uid = world.claim("default", "data", "grow", "1Gi").await;
    world.wait_bound("default", &["data".into()], WAIT).await;
    world
        .claims("default")
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}})),
        )
        .await
        .unwrap();
    world
        .wait_event("default", "data", "VolumeResizeSuccessful", WAIT)
        .await;
    world.wait_event("default", "data", "Resizing", WAIT).await;
    let pv = world.volumes().get(&format!("pvc-{uid}")).await.unwrap();
    assert_eq!(
        pv.spec.unwrap().capacity.unwrap()["storage"].0,
        "3Gi",
        "the PV's capacity follows"
    );
    let claim: PersistentVolumeClaim = world.claims("default").get("data").await.unwrap();
    let status = claim.status.unwrap();
    assert_eq!(status.capacity.unwrap()["storage"].0, "3Gi");
    assert!(
        status.conditions.unwrap_or_default().is_empty(),
        "no Resizing condition left"
    );
    let (volume, _) = engine.volume(&format!("pvc-{uid}")).unwrap();
    assert!(volume.bytes >= 3 << 30);
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_server_restart_cuts_watches_and_expires_versions_and_loses_no_claim() {
    let mut world = World::audited().await;
    world.class("flaky", &[], "Delete").await;
    let engine = sim_engine(3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let claims = names("flaky", 30);
    for (i, name) in claims.iter().enumerate() {
        world.claim("default", name, "flaky", "1Gi").await;
        if i % 6 == 5 {
            // A crash of the API server while claims keep arriving, five
            // times in a row, as in a control-plane upgrade: every watch is
            // cut, and the new server's watch cache starts at the current
            // revision, so resuming from an older one is 410 Gone. Claims
            // must still bind within WAIT of the last one (kube-runtime's
            // default watch backoff, up to 30 s, did not).
            world.k8s.restart_apiserver().await.unwrap();
        }
    }
    world.wait_bound("default", &claims, WAIT).await;
    assert_eq!(engine.volumes().len(), 30);
    let pvs = world.pvs().await;
    assert_eq!(pvs.len(), 30);
    // The watch really was cut: the controller listed claims again.
    let user = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let lists = world
        .k8s
        .audit()
        .iter()
        .filter(|r| r.user == user && r.verb == "list" && r.resource == "persistentvolumeclaims")
        .count();
    assert!(
        lists >= 2,
        "the controller re-listed claims after the restarts ({lists} lists)"
    );
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_when_the_leader_dies_mid_provision() {
    let world = World::start().await;
    world.class("ha", &[], "Delete").await;
    // Both instances share one store, as two replicas share the state
    // volume; each opens it only once it leads. The first one's brick
    // creations pass only while `gate` is open.
    let store = Arc::new(MemoryStore::default());
    drop(sim_engine_on(store.clone(), 3).await);
    let (gate, gated) = tokio::sync::watch::channel(true);
    let open = |store: Arc<MemoryStore>, driver: Arc<dyn aplo::engine::driver::Driver>| {
        Arc::new(Engine::new(store, driver, registry(), EngineConfig::default()).unwrap())
    };
    let elected = |identity: &str| {
        let mut options = Provisioner::options();
        options.settings.identity = identity.into();
        options.lease = Some(LeaseConfig {
            lease_duration: Duration::from_secs(4),
            renew_deadline: Duration::from_secs(3),
            retry_period: Duration::from_millis(250),
            ..LeaseConfig::new(NAMESPACE, "aplo-test", identity)
        });
        options
    };
    let first = Provisioner::start_with(
        world.aplo().await,
        {
            let store = store.clone();
            move || open(store, Arc::new(BreakableDriver::gated(gated)))
        },
        elected("first"),
    );
    wait_phase(&first, Phase::Leading).await;
    let second_engine = Arc::new(std::sync::OnceLock::new());
    let second = Provisioner::start_with(
        world.aplo().await,
        {
            let store = store.clone();
            let second_engine = second_engine.clone();
            move || {
                let engine = open(store, Arc::new(SimDriver::new(1 << 40)));
                second_engine.set(engine.clone()).ok();
                engine
            }
        },
        elected("second"),
    );
    let before = names("before", 5);
    for name in &before {
        world.claim("default", name, "ha", "1Gi").await;
    }
    world.wait_bound("default", &before, WAIT).await;
    assert_eq!(
        second.status.phase(),
        Phase::Standby,
        "only one instance leads"
    );

    // The leader starts a volume and stops at its bricks: the operation is
    // journaled, unfinished, when it dies.
    gate.send(false).unwrap();
    world.claim("default", "midway", "ha", "1Gi").await;
    let deadline = std::time::Instant::now() + WAIT;
    while store.read().unwrap().operations.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader never started provisioning"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let after = names("after", 4);
    for name in &after {
        world.claim("default", name, "ha", "1Gi").await;
    }
    wait_phase(&second, Phase::Leading).await;
    let everything: Vec<String> = before
        .iter()
        .chain(&after)
        .cloned()
        .chain(["midway".to_owned()])
        .collect();
    world.wait_bound("default", &everything, WAIT).await;
    assert_eq!(second.status.phase(), Phase::Leading);
    let lease = Api::<Lease>::namespaced(world.client.clone(), NAMESPACE)
        .get("aplo-test")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("second"));
    assert!(lease.lease_transitions.unwrap_or(0) >= 1);

    // Nothing orphaned: one PV and one volume per claim, every brick in a
    // volume, no operation left in the journal.
    let pvs = world.pvs().await;
    assert_eq!(pvs.len(), 10, "no claim was provisioned twice");
    let engine = second_engine
        .get()
        .expect("the second instance opened the store");
    assert_eq!(engine.volumes().len(), 10, "no volume was left behind");
    let snapshot = store.read().unwrap();
    assert!(snapshot.operations.is_empty(), "{:?}", snapshot.operations);
    assert!(
        snapshot
            .bricks
            .values()
            .all(|b| snapshot.volumes.contains_key(&b.volume)),
        "a brick outside every volume"
    );
    second.stop().await.unwrap();
}

async fn wait_phase(provisioner: &Provisioner, phase: Phase) {
    let deadline = std::time::Instant::now() + WAIT;
    while provisioner.status.phase() != phase {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}, not {phase:?}",
            provisioner.status.phase()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` on a local address, as (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_and_readiness_are_served_over_http() {
    let world = World::start().await;
    world.class("gold", &[], "Delete").await;
    let engine = sim_engine(3).await;
    let provisioner = Provisioner::start(world.aplo().await, engine, Provisioner::options());
    let (addr, serving) = aplo::http::bind(
        "127.0.0.1:0".parse().unwrap(),
        aplo::http::HttpState::new(provisioner.metrics.clone(), provisioner.status.clone()),
    )
    .await
    .unwrap();
    let server = tokio::spawn(serving);
    wait_phase(&provisioner, Phase::Leading).await;
    world.claim("default", "one", "gold", "1Gi").await;
    world.wait_bound("default", &["one".into()], WAIT).await;
    let (status, body) = http_get(addr, "/readyz").await;
    assert!(status.contains("200"), "{status}: {body}");
    assert_eq!(
        body,
        "Leading\nstore: open\npolicies: 5 loaded\nwatches: synced\n"
    );
    let (status, body) = http_get(addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    for needle in [
        "controller_persistentvolumeclaim_provision_total{class=\"gold\"} 1",
        "controller_persistentvolumeclaim_provision_duration_seconds_count{class=\"gold\"} 1",
        "aplo_policy_decisions_total{decision=\"durability\",policy=\"classes\",outcome=\"granted\"}",
        "aplo_policy_decision_duration_seconds_bucket",
        "aplo_leader 1",
        "aplo_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1",
        "aplo_http_request_duration_seconds_count{route=\"/readyz\",method=\"GET\"} 1",
    ] {
        assert!(body.contains(needle), "no {needle} in:\n{body}");
    }
    provisioner.stop().await.unwrap();
    let (status, body) = http_get(addr, "/readyz").await;
    assert!(status.contains("503"), "{status}");
    assert!(body.starts_with("Stopped\nstore: closed\n"), "{body}");
    let (status, body) = http_get(addr, "/volumes").await;
    assert!(
        status.contains("404"),
        "no API configured here: {status} {body}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_delete_is_a_pv_event_and_is_retried_until_it_succeeds() {
    use std::sync::atomic::Ordering;
    let world = World::start().await;
    world.class("gone", &[], "Delete").await;
    let driver = Arc::new(BreakableDriver::new());
    let engine = aplo_e2e::kube::engine_with(driver.clone(), 3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let uid = world.claim("default", "data", "gone", "1Gi").await;
    world.wait_bound("default", &["data".into()], WAIT).await;
    let pv = format!("pvc-{uid}");

    driver.fail_deletes.store(true, Ordering::SeqCst);
    world
        .claims("default")
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    // Events about cluster-scoped objects are posted in "default".
    let event = world
        .wait_event("default", &pv, "VolumeFailedDelete", WAIT)
        .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("injected failure"),
        "{event:?}"
    );
    let kept = world.volumes().get(&pv).await.unwrap();
    assert!(
        kept.finalizers()
            .iter()
            .any(|f| f == aplo::front::claim::FINALIZER)
    );
    assert!(engine.volume(&pv).is_ok(), "the volume is still there");

    driver.fail_deletes.store(false, Ordering::SeqCst);
    world.wait_pv_gone(&pv, WAIT).await;
    assert!(
        engine.volume(&pv).is_err(),
        "the backend volume was deleted"
    );
    let metrics = provisioner.metrics.render();
    assert!(
        metrics.contains("controller_persistentvolume_delete_failed_total{class=\"gone\"}"),
        "{metrics}"
    );
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_expansion_is_a_resize_error_on_the_claim() {
    let world = World::start().await;
    world
        .class(
            "small",
            &[
                ("quota", "namespace-quota"),
                ("namespace-quota.max-volume-size", "2Gi"),
            ],
            "Delete",
        )
        .await;
    let engine = sim_engine(3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let uid = world.claim("default", "data", "small", "1Gi").await;
    world.wait_bound("default", &["data".into()], WAIT).await;
    world
        .claims("default")
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}})),
        )
        .await
        .unwrap();
    let event = world
        .wait_event("default", "data", "VolumeResizeFailed", WAIT)
        .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("namespace-quota"), "{note}");
    let status = world
        .claims("default")
        .get("data")
        .await
        .unwrap()
        .status
        .unwrap();
    let conditions = status.conditions.unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c.type_ == "ControllerResizeError"
            && c.message
                .as_deref()
                .unwrap_or_default()
                .contains("namespace-quota")),
        "{conditions:?}"
    );
    assert_eq!(
        status
            .allocated_resource_statuses
            .unwrap_or_default()
            .get("storage")
            .map(String::as_str),
        Some("ControllerResizeInfeasible")
    );
    assert_eq!(
        status.capacity.unwrap()["storage"].0,
        "1Gi",
        "the capacity did not change"
    );
    let pv = world.volumes().get(&format!("pvc-{uid}")).await.unwrap();
    assert_eq!(pv.spec.unwrap().capacity.unwrap()["storage"].0, "1Gi");
    provisioner.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_aplo_provisions_and_deletes_nothing_until_set_back_to_normal() {
    use aplo::model::storage::AdminMode;
    use aplo::store::Change;
    let world = World::start().await;
    world.class("paused", &[], "Delete").await;
    let store = Arc::new(MemoryStore::default());
    let engine = sim_engine_on(store.clone(), 3).await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());
    let kept = world.claim("default", "kept", "paused", "1Gi").await;
    world.wait_bound("default", &["kept".into()], WAIT).await;

    // heketi's admin mode, as POST /admin writes it.
    store
        .write(&[Change::SetAdminMode(AdminMode::ReadOnly)])
        .unwrap();
    world.claim("default", "waiting", "paused", "1Gi").await;
    let event = world
        .wait_event("default", "waiting", "ProvisioningFailed", WAIT)
        .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("read-only mode"), "{note}");
    world
        .claims("default")
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    let pv = format!("pvc-{kept}");
    let event = world
        .wait_event("default", &pv, "VolumeFailedDelete", WAIT)
        .await;
    assert!(
        event.note.unwrap_or_default().contains("read-only mode"),
        "the PV's event says why it stays"
    );
    assert_eq!(engine.volumes().len(), 1, "nothing made, nothing deleted");

    // Back to normal: the claim binds and the released volume goes, at the
    // refusal pace (no backoff grew meanwhile).
    store
        .write(&[Change::SetAdminMode(AdminMode::Normal)])
        .unwrap();
    world.wait_bound("default", &["waiting".into()], WAIT).await;
    world.wait_pv_gone(&pv, WAIT).await;
    assert_eq!(engine.volumes().len(), 1);
    provisioner.stop().await.unwrap();
}
