//! The storage engine against the model: the real policies, the real
//! journal and store, and a driver that keeps a tiny model of the world
//! (bricks and gluster volumes) so that every test can check that what
//! exists matches the store. Interruptions stop the driver at a chosen
//! effect and drop the operation mid-flight, as a crash would; a new engine
//! on the same store then recovers. (The SIGKILL version of this, on real
//! gluster, is in `tests/tests/crash_recovery.rs`.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplo::engine::driver::{Applied, DeviceFacts, Driver, DriverError, SimDriver};
use aplo::engine::{CreateRequest, Engine, EngineConfig, EngineError, LoadOptions};
use aplo::exec::command::BoxFuture;
use aplo::exec::gluster::{BrickInfo, BrickStatus, Peer, VolumeInfo};
use aplo::model::journal::Step;
use aplo::model::storage::{DeviceRecord, NodeRecord, VolumeState};
use aplo::model::topology::parse_topology;
use aplo::model::{GIB, Id, Pairs, Scheme};
use aplo::plan::effect::Effect;
use aplo::store::{MemoryStore, Store};

/// What the fake world holds.
#[derive(Debug, Default)]
struct World {
    bricks: BTreeSet<Id>,
    volumes: BTreeSet<String>,
    /// Each gluster volume's bricks (`host:path`), as gluster would list them.
    gluster: BTreeMap<String, Vec<String>>,
    /// The storage addresses probed into the pool and not detached since.
    peers: BTreeSet<String>,
    applied: Vec<String>,
}

/// How the driver misbehaves.
#[derive(Debug, Clone, Default)]
enum Trouble {
    #[default]
    None,
    /// Fail the effect whose description starts with this, every time.
    Fail(String),
    /// Never finish the `n`th effect (0-based), as if the process died;
    /// say so on the `Notify` when it is reached.
    Hang(usize, Arc<tokio::sync::Notify>),
}

struct ModelDriver {
    world: Arc<Mutex<World>>,
    trouble: Trouble,
    sim: SimDriver,
}

impl ModelDriver {
    fn new(world: Arc<Mutex<World>>, trouble: Trouble) -> Arc<ModelDriver> {
        Arc::new(ModelDriver {
            world,
            trouble,
            sim: SimDriver::new(100 * GIB),
        })
    }
}

impl Driver for ModelDriver {
    fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>> {
        Box::pin(async move {
            let text = effect.to_string();
            let n = {
                let mut world = self.world.lock().unwrap();
                world.applied.push(text.clone());
                world.applied.len() - 1
            };
            match &self.trouble {
                Trouble::Fail(prefix) if text.starts_with(prefix.as_str()) => {
                    return Err(DriverError::Refused(format!("injected failure: {text}")));
                }
                Trouble::Hang(at, reached) if *at == n => {
                    reached.notify_one();
                    std::future::pending::<()>().await
                }
                _ => {}
            }
            {
                let mut world = self.world.lock().unwrap();
                match effect {
                    Effect::CreateBrick(p) => {
                        world.bricks.insert(p.brick.id);
                    }
                    Effect::DestroyBrick(p) => {
                        world.bricks.remove(&p.brick.id);
                    }
                    Effect::CreateVolume { target, .. } => {
                        world.volumes.insert(target.name.clone());
                        world.gluster.insert(
                            target.name.clone(),
                            target.bricks.iter().map(ToString::to_string).collect(),
                        );
                    }
                    Effect::DeleteVolume { target } => {
                        world.volumes.remove(&target.name);
                        world.gluster.remove(&target.name);
                    }
                    Effect::PeerProbe { node, .. } => {
                        world.peers.insert(node.storage.clone());
                    }
                    Effect::PeerDetach { node, .. } => {
                        world.peers.remove(&node.storage);
                    }
                    Effect::AddBricks { target, bricks, .. } => {
                        let have = world.gluster.entry(target.name.clone()).or_default();
                        have.extend(bricks.iter().map(ToString::to_string));
                    }
                    Effect::ReplaceBrick { target, old, new } => {
                        let have = world.gluster.entry(target.name.clone()).or_default();
                        for b in have.iter_mut().filter(|b| **b == old.to_string()) {
                            *b = new.to_string();
                        }
                    }
                    _ => {}
                }
            }
            self.sim.apply(effect).await
        })
    }

    fn peers<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>> {
        self.sim.peers(via)
    }

    fn volumes<'a>(
        &'a self,
        _: &'a [NodeRecord],
    ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>> {
        let world = self.world.lock().unwrap();
        let volumes = world
            .gluster
            .iter()
            .map(|(name, bricks)| VolumeInfo {
                name: name.clone(),
                id: String::new(),
                status: "Started".into(),
                kind: String::new(),
                replica_count: 0,
                arbiter_count: 0,
                disperse_count: 0,
                redundancy_count: 0,
                bricks: bricks
                    .iter()
                    .map(|b| {
                        let (host, path) = b.split_once(':').unwrap();
                        BrickInfo {
                            host: host.into(),
                            path: path.into(),
                            host_uuid: String::new(),
                            arbiter: false,
                        }
                    })
                    .collect(),
                options: Pairs::new(),
            })
            .collect();
        Box::pin(async move { Ok(volumes) })
    }

    fn volume_status<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>> {
        self.sim.volume_status(via, name)
    }

    fn device_facts<'a>(
        &'a self,
        node: &'a NodeRecord,
        device: &'a DeviceRecord,
    ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>> {
        self.sim.device_facts(node, device)
    }
}

/// Three nodes in three zones, two plain devices each (heketi's format).
const TOPOLOGY: &str = r#"{"clusters": [{"nodes": [
  {"node": {"hostnames": {"manage": ["n1"], "storage": ["10.0.0.1"]}, "zone": 1}, "devices": ["/dev/vdb", "/dev/vdc"]},
  {"node": {"hostnames": {"manage": ["n2"], "storage": ["10.0.0.2"]}, "zone": 2}, "devices": ["/dev/vdb", "/dev/vdc"]},
  {"node": {"hostnames": {"manage": ["n3"], "storage": ["10.0.0.3"]}, "zone": 3}, "devices": ["/dev/vdb", {"name": "/dev/vdc", "tags": {"disktype": "ssd"}}]}
]}]}"#;

struct Setup {
    store: Arc<MemoryStore>,
    world: Arc<Mutex<World>>,
    registry: Arc<aplo::policy::Registry>,
}

impl Setup {
    async fn new() -> Setup {
        Setup::with_registry(common::registry()).await
    }

    /// [`Setup::new`] deciding with `registry`'s policies.
    async fn with_registry(registry: Arc<aplo::policy::Registry>) -> Setup {
        let setup = Setup {
            store: Arc::new(MemoryStore::default()),
            world: Arc::new(Mutex::new(World::default())),
            registry,
        };
        let engine = setup.engine(Trouble::None);
        let report = engine
            .load_topology(&parse_topology(TOPOLOGY).unwrap(), LoadOptions::default())
            .await
            .unwrap();
        assert!(report.failures.is_empty(), "{report:?}");
        assert_eq!(report.nodes_added.len(), 3);
        assert!(!report.devices_added.is_empty());
        setup.world.lock().unwrap().applied.clear();
        setup
    }

    fn engine(&self, trouble: Trouble) -> Engine {
        Engine::new(
            self.store.clone(),
            ModelDriver::new(self.world.clone(), trouble),
            self.registry.clone(),
            EngineConfig::default(),
        )
        .unwrap()
    }

    /// The world holds exactly the bricks and volumes the store has, and
    /// the journal is empty.
    fn assert_consistent(&self) {
        let snapshot = self.store.read().unwrap();
        let world = self.world.lock().unwrap();
        assert!(
            snapshot.operations.is_empty(),
            "unfinished: {:?}",
            snapshot.operations
        );
        let bricks: BTreeSet<Id> = snapshot.bricks.keys().copied().collect();
        assert_eq!(world.bricks, bricks, "bricks in the world vs the store");
        let volumes: BTreeSet<String> = snapshot.volumes.values().map(|v| v.name.clone()).collect();
        assert_eq!(
            world.volumes, volumes,
            "gluster volumes in the world vs the store"
        );
        for volume in snapshot.volumes.values() {
            let want: BTreeSet<String> = snapshot
                .bricks_of(volume.id)
                .into_iter()
                .map(|b| aplo::plan::volume::address(&snapshot, b).to_string())
                .collect();
            let have: BTreeSet<String> = world.gluster[&volume.name].iter().cloned().collect();
            assert_eq!(
                have, want,
                "gluster's bricks of {} vs the store's",
                volume.name
            );
        }
        assert!(
            snapshot
                .volumes
                .values()
                .all(|v| v.state == VolumeState::Ready)
        );
    }
}

fn request(name: &str, bytes: u64) -> CreateRequest {
    CreateRequest {
        name: Some(name.into()),
        bytes,
        ..CreateRequest::default()
    }
}

#[tokio::test]
async fn loading_a_topology_twice_changes_nothing() {
    let setup = Setup::new().await;
    let before = setup.store.read().unwrap();
    assert_eq!(before.nodes.len(), 3);
    assert_eq!(before.devices.len(), 6);
    let zones: BTreeSet<&str> = before.nodes.values().map(|n| n.zone.as_str()).collect();
    assert_eq!(zones.len(), 3);
    let engine = setup.engine(Trouble::None);
    let report = engine
        .load_topology(&parse_topology(TOPOLOGY).unwrap(), LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(report.devices_present.len(), 6);
    assert!(report.devices_added.is_empty() && report.nodes_added.is_empty());
    assert_eq!(setup.store.read().unwrap(), before);
    assert!(
        setup.world.lock().unwrap().applied.is_empty(),
        "nothing ran"
    );
}

#[tokio::test]
async fn create_expand_delete_through_the_default_policies() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    let volume = engine
        .create_volume(request("demo", 10 * GIB))
        .await
        .unwrap();
    assert_eq!(
        volume.scheme,
        Scheme::Replicate {
            count: 3,
            arbiter: false
        }
    );
    assert!(volume.bytes >= 10 * GIB);
    let (_, bricks) = engine.volume("demo").unwrap();
    let nodes: BTreeSet<Id> = bricks.iter().map(|b| b.node).collect();
    assert_eq!(nodes.len(), 3, "one brick per node");
    assert!(
        bricks
            .iter()
            .all(|b| b.path.ends_with(&format!("/mounts/{}/brick", b.id)))
    );
    setup.assert_consistent();
    let applied = setup.world.lock().unwrap().applied.clone();
    let order: Vec<&str> = applied
        .iter()
        .map(|a| a.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["create", "create", "create", "create", "set", "start"],
        "{applied:?}"
    );

    // Growing in place: the devices have room.
    let grown = engine.expand_volume("demo", 20 * GIB).await.unwrap();
    assert!(grown.bytes >= 20 * GIB);
    let (_, after) = engine.volume("demo").unwrap();
    assert_eq!(after.len(), 3, "same bricks, grown");
    assert!(after.iter().all(|b| b.bytes >= 20 * GIB));
    setup.assert_consistent();

    // Free space is what the bricks leave, before and after a delete.
    let free = |s: &aplo::model::storage::Snapshot| -> u64 {
        s.policy_topology()
            .clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .flat_map(|n| &n.devices)
            .map(|d| d.free_bytes)
            .sum()
    };
    let with = free(&setup.store.read().unwrap());
    engine.delete_volume("demo").await.unwrap();
    let without = free(&setup.store.read().unwrap());
    assert_eq!(
        without - with,
        after.iter().map(|b| b.consumed).sum::<u64>()
    );
    setup.assert_consistent();
    assert!(setup.store.read().unwrap().volumes.is_empty());
}

#[tokio::test]
async fn expanding_past_the_devices_adds_brick_sets() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    engine
        .create_volume(request("big", 60 * GIB))
        .await
        .unwrap();
    // 100 GiB devices: 120 GiB cannot grow in place, so a second set comes.
    let grown = engine.expand_volume("big", 120 * GIB).await.unwrap();
    assert!(grown.bytes >= 120 * GIB, "{}", grown.bytes);
    let (_, bricks) = engine.volume("big").unwrap();
    let sets: BTreeSet<u32> = bricks.iter().map(|b| b.set).collect();
    assert_eq!(sets.len(), 2, "{bricks:?}");
    let applied = setup.world.lock().unwrap().applied.clone();
    assert!(
        applied.iter().any(|a| a.starts_with("add bricks to big")),
        "{applied:?}"
    );
    assert!(
        applied.iter().any(|a| a.starts_with("rebalance big")),
        "{applied:?}"
    );
    setup.assert_consistent();
}

#[tokio::test]
async fn bad_requests_are_refused_and_nothing_is_created() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    let before = setup.store.read().unwrap();
    let cases: Vec<(CreateRequest, &str)> = vec![
        (request("../etc", GIB), "volume name"),
        (request("a/b", GIB), "volume name"),
        (request("ok", 0), "zero"),
        (request("ok", u64::MAX), "larger than"),
        (
            CreateRequest {
                parameters: Pairs::from([("placement".into(), "no-such-policy".into())]),
                ..request("ok", GIB)
            },
            "no policy named 'no-such-policy'",
        ),
        (request("ok", 500 * GIB), "refused"),
    ];
    for (req, expected) in cases {
        let err = engine.create_volume(req.clone()).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{req:?}: {err}");
    }
    assert_eq!(setup.store.read().unwrap(), before);
    assert!(
        setup.world.lock().unwrap().applied.is_empty(),
        "no effect was applied"
    );
    engine.create_volume(request("taken", GIB)).await.unwrap();
    let err = engine
        .create_volume(request("taken", GIB))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err}");
    let err = engine.expand_volume("taken", GIB / 2).await.unwrap_err();
    assert!(err.to_string().contains("larger size"), "{err}");
    let err = engine.delete_volume("nope").await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    setup.assert_consistent();
}

#[tokio::test]
async fn a_failed_step_rolls_the_create_back() {
    for failing in [
        "create brick",
        "create volume",
        "set options",
        "start volume",
    ] {
        let setup = Setup::new().await;
        let engine = setup.engine(Trouble::Fail(failing.into()));
        let err = engine
            .create_volume(request("doomed", GIB))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("injected failure") && text.contains("rolled back"),
            "{failing}: {text}"
        );
        setup.assert_consistent();
        assert!(setup.store.read().unwrap().volumes.is_empty());
        assert!(
            setup.world.lock().unwrap().bricks.is_empty(),
            "{failing}: no brick left"
        );
    }
}

#[tokio::test]
async fn a_delete_that_fails_stays_journaled_and_recovery_finishes_it() {
    let setup = Setup::new().await;
    setup
        .engine(Trouble::None)
        .create_volume(request("stuck", GIB))
        .await
        .unwrap();
    let err = setup
        .engine(Trouble::Fail("destroy brick".into()))
        .delete_volume("stuck")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("marked deleting"), "{err}");
    assert_eq!(setup.store.read().unwrap().operations.len(), 1);
    let report = setup.engine(Trouble::None).recover().await.unwrap();
    assert_eq!(report.unfinished, 0, "{report:?}");
    assert!(report.outcomes[0].contains("deleted"), "{report:?}");
    setup.assert_consistent();
    assert!(setup.store.read().unwrap().volumes.is_empty());
}

#[tokio::test]
async fn asking_again_finishes_a_delete_that_failed() {
    let setup = Setup::new().await;
    setup
        .engine(Trouble::None)
        .create_volume(request("stuck", GIB))
        .await
        .unwrap();
    let err = setup
        .engine(Trouble::Fail("destroy brick".into()))
        .delete_volume("stuck")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("marked deleting"), "{err}");
    // The same request, as a controller's retry makes it, rolls it forward.
    setup
        .engine(Trouble::None)
        .delete_volume("stuck")
        .await
        .unwrap();
    setup.assert_consistent();
    let store = setup.store.read().unwrap();
    assert!(store.volumes.is_empty() && store.operations.is_empty());
}

/// Run `work` with a driver that stops forever at effect `n`; return
/// whether it stopped (false when the work finished before effect `n`).
async fn interrupted<F>(setup: &Setup, n: usize, work: impl FnOnce(Arc<Engine>) -> F) -> bool
where
    F: std::future::Future<Output = Result<(), EngineError>> + Send + 'static,
{
    let reached = Arc::new(tokio::sync::Notify::new());
    let engine = Arc::new(setup.engine(Trouble::Hang(n, reached.clone())));
    let mut task = tokio::spawn(work(engine));
    // The driver says when the work reaches effect `n`; a work with fewer
    // effects finishes instead. No guess from the clock: a busy machine
    // only makes this slower.
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::select! {
            () = reached.notified() => None,
            done = &mut task => Some(done),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("effect {n}: the work neither reached it nor ended in 120 s"));
    match outcome {
        Some(done) => {
            done.unwrap().unwrap();
            false
        }
        None => {
            task.abort();
            let _ = task.await;
            true
        }
    }
}

/// More effects than any one operation here has: the crash-point searches
/// stop with a failure instead of running on.
const MAX_EFFECTS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_effect_of_create_expand_or_delete_ends_whole_or_nothing() {
    type Work = fn(
        Arc<Engine>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), EngineError>> + Send>,
    >;
    let create: Work =
        |e| Box::pin(async move { e.create_volume(request("v", 60 * GIB)).await.map(|_| ()) });
    let grow: Work = |e| Box::pin(async move { e.expand_volume("v", 70 * GIB).await.map(|_| ()) });
    let add: Work = |e| Box::pin(async move { e.expand_volume("v", 150 * GIB).await.map(|_| ()) });
    let delete: Work = |e| Box::pin(async move { e.delete_volume("v").await });
    for (label, needs_volume, work) in [
        ("create", false, create),
        ("grow", true, grow),
        ("add sets", true, add),
        ("delete", true, delete),
    ] {
        let mut crashes = 0;
        for n in 0..=MAX_EFFECTS {
            assert!(
                n < MAX_EFFECTS,
                "more than {MAX_EFFECTS} effects: the search does not end"
            );
            let setup = Setup::new().await;
            if needs_volume {
                setup
                    .engine(Trouble::None)
                    .create_volume(request("v", 60 * GIB))
                    .await
                    .unwrap();
                setup.world.lock().unwrap().applied.clear();
            }
            let before = setup.store.read().unwrap();
            if !interrupted(&setup, n, work).await {
                break;
            }
            crashes += 1;
            let report = setup.engine(Trouble::None).recover().await.unwrap();
            assert_eq!(report.unfinished, 0, "{label} at effect {n}: {report:?}");
            setup.assert_consistent();
            let after = setup.store.read().unwrap();
            match label {
                // Nothing, or the whole volume.
                "create" => assert!(after.volumes.len() <= 1),
                "delete" => assert!(after.volumes.is_empty(), "a delete rolls forward"),
                _ => {
                    let (old, new) = (&before.volumes, &after.volumes);
                    assert_eq!(old.len(), new.len());
                }
            }
        }
        assert!(
            crashes >= 3,
            "{label}: only {crashes} crash points were exercised"
        );
    }
}

#[tokio::test]
async fn quota_policy_refuses_and_sets_hard_limits() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    let params = Pairs::from([
        ("quota".into(), "namespace-quota".into()),
        ("namespace-quota.max-bytes".into(), "3Gi".into()),
    ]);
    let claim = |name: &str, bytes| aplo::model::Claim {
        namespace: "team-a".into(),
        name: name.into(),
        labels: Pairs::new(),
        annotations: Pairs::new(),
        requested_bytes: bytes,
        access_modes: Vec::new(),
    };
    let req = |name: &str, bytes| CreateRequest {
        name: Some(name.into()),
        bytes,
        parameters: params.clone(),
        claim: Some(claim(name, bytes)),
        ..CreateRequest::default()
    };
    let q1 = engine.create_volume(req("q1", 2 * GIB)).await.unwrap();
    assert_eq!(q1.hard_limit, Some(2 * GIB));
    let applied = setup.world.lock().unwrap().applied.clone();
    assert!(
        applied.iter().any(|a| a == "set quota on q1"),
        "{applied:?}"
    );
    let err = engine.create_volume(req("q2", 2 * GIB)).await.unwrap_err();
    assert!(matches!(err, EngineError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("quota"), "{err}");
    // Growing q1 counts its new size against the rest of the namespace,
    // not its old size as well (2 + 3 GiB would exceed the 3 GiB cap).
    let grown = engine.expand_volume("q1", 3 * GIB).await.unwrap();
    assert_eq!(grown.hard_limit, Some(3 * GIB));
    let err = engine.expand_volume("q1", 4 * GIB).await.unwrap_err();
    assert!(err.to_string().contains("quota"), "{err}");
    setup.assert_consistent();
}

#[tokio::test]
async fn states_steer_placement_and_removals_refuse_what_is_in_use() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    // n3 offline: replica 3 has only two nodes left.
    engine
        .set_node_state("n3", aplo::model::State::Offline)
        .unwrap();
    let err = engine.create_volume(request("r3", GIB)).await.unwrap_err();
    assert!(matches!(err, EngineError::Refused { .. }), "{err}");
    let two = CreateRequest {
        parameters: Pairs::from([("classes.class".into(), "replica2".into())]),
        ..request("r2", GIB)
    };
    engine.create_volume(two).await.unwrap();
    let n3 = engine
        .snapshot()
        .nodes
        .values()
        .find(|n| n.manage == "n3")
        .unwrap()
        .id;
    assert!(engine.volume("r2").unwrap().1.iter().all(|b| b.node != n3));
    engine
        .set_node_state("n3", aplo::model::State::Online)
        .unwrap();

    // A failed device is avoided too.
    let n1_devices: Vec<String> = {
        let s = engine.snapshot();
        let n1 = s.nodes.values().find(|n| n.manage == "n1").unwrap().id;
        s.devices
            .values()
            .filter(|d| d.node == n1)
            .map(|d| d.name.clone())
            .collect()
    };
    for name in &n1_devices {
        engine
            .set_device_state("n1", name, aplo::model::State::Failed)
            .unwrap();
    }
    assert!(engine.create_volume(request("r3", GIB)).await.is_err());
    for name in &n1_devices {
        engine
            .set_device_state("n1", name, aplo::model::State::Online)
            .unwrap();
    }
    engine.create_volume(request("r3", GIB)).await.unwrap();

    // Removing what holds bricks is refused, naming the volumes.
    let (_, bricks) = engine.volume("r3").unwrap();
    let busy = engine.snapshot().devices[&bricks[0].device].clone();
    let node = engine.snapshot().nodes[&busy.node].manage.clone();
    let err = engine.remove_device(&node, &busy.name).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Conflict(_)) && err.to_string().contains("r3"),
        "{err}"
    );
    let err = engine.remove_node(&node).await.unwrap_err();
    assert!(err.to_string().contains("device(s)"), "{err}");
    // Once empty, devices and then the node go.
    engine.delete_volume("r3").await.unwrap();
    engine.delete_volume("r2").await.unwrap();
    let names: Vec<String> = engine
        .snapshot()
        .devices
        .values()
        .filter(|d| d.node == busy.node)
        .map(|d| d.name.clone())
        .collect();
    for name in names {
        engine.remove_device(&node, &name).await.unwrap();
    }
    engine.remove_node(&node).await.unwrap();
    assert_eq!(engine.snapshot().nodes.len(), 2);
    let applied = setup.world.lock().unwrap().applied.clone();
    assert!(
        applied.iter().any(|a| a.starts_with("release device")),
        "{applied:?}"
    );
    assert!(
        applied.iter().any(|a| a.starts_with("detach peer")),
        "{applied:?}"
    );
    setup.assert_consistent();
    let err = engine
        .set_node_state("nope", aplo::model::State::Online)
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
}

/// Each brick set's bricks are on distinct nodes.
fn sets_apart(engine: &Engine, volume: &str) {
    let (_, bricks) = engine.volume(volume).unwrap();
    let mut seen = BTreeSet::new();
    for b in &bricks {
        assert!(
            seen.insert((b.set, b.node)),
            "two bricks of set {} of {volume} on one node: {bricks:?}",
            b.set
        );
    }
}

#[tokio::test]
async fn failing_a_device_or_node_moves_its_bricks_and_keeps_sets_apart() {
    use aplo::model::State;
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    engine.create_volume(request("r3", 10 * GIB)).await.unwrap();
    let (_, before) = engine.volume("r3").unwrap();
    assert_eq!(before.len(), 3);

    // A device: its brick goes to the other device of the same node, the
    // only node that holds no other brick of the set.
    let leaving = before[0].clone();
    let failed = engine.fail_device(leaving.device).await.unwrap();
    assert_eq!(failed.state, State::Failed);
    let (_, after) = engine.volume("r3").unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|b| b.device != leaving.device));
    let moved = after
        .iter()
        .find(|b| b.id != leaving.id && !before.contains(b));
    let moved = moved.expect("a new brick took the old one's place");
    assert_eq!(
        (
            moved.node,
            moved.set,
            moved.position,
            moved.bytes,
            moved.role
        ),
        (
            leaving.node,
            leaving.set,
            leaving.position,
            leaving.bytes,
            leaving.role
        )
    );
    let applied = setup.world.lock().unwrap().applied.clone();
    assert!(
        applied
            .iter()
            .any(|a| a.starts_with("replace brick") && a.contains(&leaving.path)),
        "{applied:?}"
    );
    sets_apart(&engine, "r3");
    setup.assert_consistent();

    // A node, with no node free of the set: refused, nothing moved, and the
    // error names the brick and the placement policy's reason.
    let n2 = engine.find_node("n2").unwrap().id;
    let err = engine.fail_node(n2).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("r3") && text.contains("zone-spread"),
        "{text}"
    );
    assert_eq!(engine.snapshot().nodes[&n2].state, State::Offline);
    assert_eq!(engine.volume("r3").unwrap().1.len(), 3);
    setup.assert_consistent();

    // A fourth node joins: failing n2 again moves its brick there.
    let four = TOPOLOGY.replace(
        "]}]}",
        r#", {"node": {"hostnames": {"manage": ["n4"], "storage": ["10.0.0.4"]}, "zone": 2}, "devices": ["/dev/vdb"]}]}]}"#,
    );
    engine
        .load_topology(&parse_topology(&four).unwrap(), LoadOptions::default())
        .await
        .unwrap();
    let failed = engine.fail_node(n2).await.unwrap();
    assert_eq!(failed.state, State::Failed);
    let n4 = engine.find_node("n4").unwrap().id;
    let (_, after) = engine.volume("r3").unwrap();
    assert!(after.iter().all(|b| b.node != n2), "{after:?}");
    assert_eq!(after.iter().filter(|b| b.node == n4).count(), 1);
    assert!(
        engine
            .snapshot()
            .devices
            .values()
            .filter(|d| d.node == n2)
            .all(|d| d.state == State::Failed)
    );
    sets_apart(&engine, "r3");
    setup.assert_consistent();
}

#[tokio::test]
async fn a_volume_without_redundancy_keeps_its_brick() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    let none = CreateRequest {
        parameters: Pairs::from([("classes.class".into(), "none".into())]),
        ..request("solo", GIB)
    };
    engine.create_volume(none).await.unwrap();
    let (_, bricks) = engine.volume("solo").unwrap();
    let err = engine.fail_device(bricks[0].device).await.unwrap_err();
    assert!(err.to_string().contains("no redundancy"), "{err}");
    assert_eq!(engine.volume("solo").unwrap().1, bricks);
    setup.assert_consistent();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_effect_of_a_brick_move_ends_whole_or_nothing() {
    let mut crashes = 0;
    for n in 0..=MAX_EFFECTS {
        assert!(
            n < MAX_EFFECTS,
            "more than {MAX_EFFECTS} effects: the search does not end"
        );
        let setup = Setup::new().await;
        let engine = setup.engine(Trouble::None);
        engine.create_volume(request("v", 10 * GIB)).await.unwrap();
        let (_, before) = engine.volume("v").unwrap();
        let leaving = before[0].clone();
        setup.world.lock().unwrap().applied.clear();
        let device = leaving.device;
        let stopped = interrupted(&setup, n, move |e| async move {
            e.fail_device(device).await.map(|_| ())
        })
        .await;
        if !stopped {
            break;
        }
        crashes += 1;
        let engine = setup.engine(Trouble::None);
        let report = engine.recover().await.unwrap();
        assert_eq!(report.unfinished, 0, "at effect {n}: {report:?}");
        setup.assert_consistent();
        // Whole or nothing: the old brick, or a new one in its place.
        let (_, after) = engine.volume("v").unwrap();
        assert_eq!(after.len(), 3, "at effect {n}");
        sets_apart(&engine, "v");
        let kept = after.iter().any(|b| b.id == leaving.id);
        let replaced = after
            .iter()
            .any(|b| !before.contains(b) && b.set == leaving.set && b.position == leaving.position);
        assert!(kept != replaced, "at effect {n}: {after:?}");
        // Failing it again finishes the job.
        engine.fail_device(device).await.unwrap();
        assert!(
            engine
                .volume("v")
                .unwrap()
                .1
                .iter()
                .all(|b| b.device != device)
        );
        setup.assert_consistent();
    }
    assert!(crashes >= 3, "only {crashes} crash points were exercised");
}

#[tokio::test]
async fn a_replacement_gluster_took_is_finished_never_undone() {
    // The crash fell between gluster's `replace-brick` and the journal
    // marking it done: recovery must ask gluster and roll forward, since
    // destroying the new brick would destroy a brick gluster serves.
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    engine.create_volume(request("v", 10 * GIB)).await.unwrap();
    let (_, before) = engine.volume("v").unwrap();
    let leaving = before[0].clone();
    setup.world.lock().unwrap().applied.clear();
    // Effects: create brick (0), replace brick (1), destroy old brick (2).
    let device = leaving.device;
    assert!(
        interrupted(&setup, 2, move |e| async move {
            e.fail_device(device).await.map(|_| ())
        })
        .await
    );
    let mut snapshot = setup.store.read().unwrap();
    let (_, operation) = snapshot.operations.pop_first().unwrap();
    assert!(operation.has_done(Step::Replace), "{operation:?}");
    let mut unmarked = operation.clone();
    unmarked.done.retain(|d| *d != Step::Replace);
    setup
        .store
        .write(&[aplo::store::Change::PutOperation(unmarked)])
        .unwrap();
    let restarted = setup.engine(Trouble::None);
    let report = restarted.recover().await.unwrap();
    assert_eq!(report.unfinished, 0, "{report:?}");
    assert!(report.outcomes[0].contains("rolled forward"), "{report:?}");
    setup.assert_consistent();
    let (_, after) = restarted.volume("v").unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|b| b.id != leaving.id), "{after:?}");
}

/// A fourth node for the test cluster, without devices.
fn fourth_node() -> aplo::model::topology::NodeSpec {
    aplo::model::topology::NodeSpec {
        manage: "n4".into(),
        storage: "10.0.0.4".into(),
        zone: "4".into(),
        tags: Pairs::new(),
        devices: Vec::new(),
    }
}

/// The store has the fourth node exactly when gluster's pool has it, online
/// when it has it, and the journal is empty.
fn assert_node_whole_or_nothing(setup: &Setup, context: &str) -> bool {
    let snapshot = setup.store.read().unwrap();
    assert!(
        snapshot.operations.is_empty(),
        "{context}: unfinished {:?}",
        snapshot.operations
    );
    let stored = snapshot.nodes.values().find(|n| n.manage == "n4");
    let pooled = setup.world.lock().unwrap().peers.contains("10.0.0.4");
    assert_eq!(
        stored.is_some(),
        pooled,
        "{context}: store {stored:?}, pool {pooled}"
    );
    if let Some(node) = stored {
        assert_eq!(node.state, aplo::model::State::Online, "{context}");
    }
    pooled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_removing_a_node_is_journaled_and_recovered_whole_or_nothing() {
    // A probe that fails is undone: nothing of the node stays.
    let setup = Setup::new().await;
    let err = setup
        .engine(Trouble::Fail("probe peer".into()))
        .add_node(cluster_of(&setup), &fourth_node())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("injected failure") && err.to_string().contains("rolled back"),
        "{err}"
    );
    assert!(!assert_node_whole_or_nothing(&setup, "failed probe"));
    assert!(
        setup
            .world
            .lock()
            .unwrap()
            .applied
            .iter()
            .any(|a| a.starts_with("detach peer")),
        "the undo detaches what gluster may have half taken"
    );

    // A detach that fails leaves the node as it was, and no journal entry.
    let setup = Setup::new().await;
    setup
        .engine(Trouble::None)
        .add_node(cluster_of(&setup), &fourth_node())
        .await
        .unwrap();
    let err = setup
        .engine(Trouble::Fail("detach peer".into()))
        .remove_node("n4")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("injected failure") && err.to_string().contains("still in aplo"),
        "{err}"
    );
    assert!(assert_node_whole_or_nothing(&setup, "failed detach"));

    // A crash at any effect of an add or a remove: recovery ends with the
    // node in both the store and the pool, or in neither.
    let mut crashes = 0;
    for remove in [false, true] {
        for n in 0..=MAX_EFFECTS {
            assert!(
                n < MAX_EFFECTS,
                "more than {MAX_EFFECTS} effects: the search does not end"
            );
            let setup = Setup::new().await;
            if remove {
                setup
                    .engine(Trouble::None)
                    .add_node(cluster_of(&setup), &fourth_node())
                    .await
                    .unwrap();
                setup.world.lock().unwrap().applied.clear();
            }
            let cluster = cluster_of(&setup);
            let stopped = interrupted(&setup, n, move |e| async move {
                if remove {
                    e.remove_node("n4").await
                } else {
                    e.add_node(cluster, &fourth_node()).await.map(|_| ())
                }
            })
            .await;
            let context = format!("{} at effect {n}", if remove { "remove" } else { "add" });
            if !stopped {
                assert_eq!(assert_node_whole_or_nothing(&setup, &context), !remove);
                break;
            }
            crashes += 1;
            // Before recovery the journal holds the operation.
            assert_eq!(setup.store.read().unwrap().operations.len(), 1, "{context}");
            let report = setup.engine(Trouble::None).recover().await.unwrap();
            assert_eq!(report.unfinished, 0, "{context}: {report:?}");
            let pooled = assert_node_whole_or_nothing(&setup, &context);
            // An add rolls forward (the probe is asked again); a remove too.
            assert_eq!(pooled, !remove, "{context}: {report:?}");
        }
    }
    assert!(crashes >= 2, "only {crashes} crash points were exercised");
}

fn cluster_of(setup: &Setup) -> Id {
    *setup.store.read().unwrap().clusters.keys().next().unwrap()
}

/// The bundled policies and the hostile one, whose `loop` mode spins until
/// `deadline`, in a runtime of their own (so that counting its busy slots
/// counts only this test's decisions).
fn hostile_registry(deadline: Duration) -> (Arc<aplo::policy::Registry>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hostile.wasm"), common::hostile_wasm()).unwrap();
    let config = aplo::policy::RegistryConfig {
        dir: Some(dir.path().to_owned()),
        limits: BTreeMap::from([(
            "hostile".to_owned(),
            aplo::policy::Limits {
                deadline,
                ..aplo::policy::Limits::default()
            },
        )]),
        ..aplo::policy::RegistryConfig::default()
    };
    let registry = aplo::policy::Registry::open(common::runtime(), config).unwrap();
    registry.get("hostile").expect("the hostile policy loads");
    (Arc::new(registry), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_placement_delays_other_creates_by_no_more_than_one_deadline() {
    const DEADLINE: Duration = Duration::from_secs(1);
    const SLOW: usize = 3;
    let (registry, _dir) = hostile_registry(DEADLINE);
    let runtime = registry.runtime().clone();
    let setup = Setup::with_registry(registry).await;
    let engine = Arc::new(setup.engine(Trouble::None));

    // How long a good create takes here, alone.
    let mut alone = Duration::ZERO;
    for i in 0..3 {
        let started = Instant::now();
        engine
            .create_volume(request(&format!("alone-{i}"), GIB))
            .await
            .unwrap();
        alone = alone.max(started.elapsed());
    }
    assert_eq!(runtime.slots_in_use(), 0);

    // Slow creates: the hostile placement spins until its deadline.
    let slow_parameters = Pairs::from([
        ("placement".into(), "hostile".into()),
        ("hostile.mode".into(), "loop".into()),
    ]);
    let slow: Vec<_> = (0..SLOW)
        .map(|i| {
            let (engine, parameters) = (engine.clone(), slow_parameters.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let result = engine
                    .create_volume(CreateRequest {
                        parameters,
                        ..request(&format!("slow-{i}"), GIB)
                    })
                    .await;
                (started.elapsed(), result)
            })
        })
        .collect();
    // A positive signal: every slow placement runs at the same time, so
    // none waits for another (with a lock held across decisions, only one
    // could run and this would time out).
    let waited = Instant::now();
    while (runtime.slots_in_use() as usize) < SLOW {
        assert!(
            waited.elapsed() < DEADLINE * 3 / 4,
            "only {} of the {SLOW} slow placements run at once",
            runtime.slots_in_use()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Good creates beside them are not held up by them.
    let good: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = engine
                    .create_volume(request(&format!("good-{i}"), GIB))
                    .await;
                (started.elapsed(), Instant::now(), result)
            })
        })
        .collect();
    let bound = alone + DEADLINE + Duration::from_millis(100);
    for (i, task) in good.into_iter().enumerate() {
        let (took, _, result) = task.await.unwrap();
        let volume = result.unwrap_or_else(|e| panic!("good-{i}: {e}"));
        assert_eq!(volume.name, format!("good-{i}"));
        assert!(
            took <= bound,
            "good-{i} took {took:?} beside the slow placements; alone {alone:?}, bound {bound:?}"
        );
    }
    for (i, task) in slow.into_iter().enumerate() {
        let (took, result) = task.await.unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.label(), "timeout", "slow-{i}: {err}");
        assert!(err.to_string().contains("policy 'hostile'"), "{err}");
        assert!(took < DEADLINE * 2, "slow-{i} ended after {took:?}");
        assert!(
            engine.volume(&format!("slow-{i}")).is_err(),
            "slow-{i} exists"
        );
    }
    assert_eq!(runtime.slots_in_use(), 0);
    assert_eq!(engine.volumes().len(), 3 + 4);
    setup.assert_consistent();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_overcommit_a_device() {
    let setup = Setup::new().await;
    let engine = Arc::new(setup.engine(Trouble::None));
    // Each 100 GiB device holds two 40 GiB bricks, and each of the three
    // nodes two devices: four replica-3 volumes fit whole, a fifth only
    // split in sets over what is left, a sixth not at all.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .create_volume(request(&format!("big-{i}"), 40 * GIB))
                    .await
            })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => made += 1,
            // The placement policy, shown the space the others took.
            Err(err @ EngineError::Refused { .. }) => {
                assert!(err.to_string().contains("zone-spread"), "{err}")
            }
            Err(err) => panic!("neither made nor refused for want of space: {err}"),
        }
    }
    assert!((4..=5).contains(&made), "{made} of 8 made");
    let snapshot = setup.store.read().unwrap();
    for (device, (consumed, bricks)) in snapshot.device_usage() {
        let total = snapshot.devices[&device].total_bytes;
        assert!(
            consumed <= total,
            "device {device} holds {bricks} bricks, {consumed} of {total} bytes"
        );
    }
    setup.assert_consistent();
}

#[tokio::test]
async fn volumes_get_the_lowest_free_gid_of_their_range() {
    let setup = Setup::new().await;
    let engine = setup.engine(Trouble::None);
    let with_gid = |name: &str, range: (u32, u32)| CreateRequest {
        gid_range: Some(range),
        ..request(name, GIB)
    };
    let gid = |v: &aplo::model::storage::VolumeRecord| v.options[aplo::engine::OWNER_GID].clone();
    let a = engine
        .create_volume(with_gid("a", (2000, 2002)))
        .await
        .unwrap();
    let b = engine
        .create_volume(with_gid("b", (2000, 2002)))
        .await
        .unwrap();
    assert_eq!((gid(&a), gid(&b)), ("2000".into(), "2001".into()));
    // A freed gid is used again; the range runs out with a clear error.
    engine.delete_volume("a").await.unwrap();
    let c = engine
        .create_volume(with_gid("c", (2000, 2002)))
        .await
        .unwrap();
    assert_eq!(gid(&c), "2000");
    engine
        .create_volume(with_gid("d", (2000, 2002)))
        .await
        .unwrap();
    let before = setup.store.read().unwrap();
    let full = engine
        .create_volume(with_gid("e", (2000, 2002)))
        .await
        .unwrap_err();
    assert!(
        full.to_string()
            .contains("every gid from 2000 to 2002 is taken"),
        "{full}"
    );
    // An empty range, and a durability policy that sets the gid too.
    let empty = engine
        .create_volume(with_gid("e", (5, 4)))
        .await
        .unwrap_err();
    assert!(empty.to_string().contains("empty"), "{empty}");
    let twice = engine
        .create_volume(CreateRequest {
            parameters: Pairs::from([(
                "classes.replica3.options".into(),
                "storage.owner-gid=7".into(),
            )]),
            ..with_gid("e", (3000, 3999))
        })
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("storage.owner-gid"), "{twice}");
    assert_eq!(setup.store.read().unwrap(), before, "nothing was created");
    // Without a range, no gid.
    let plain = engine.create_volume(request("plain", GIB)).await.unwrap();
    assert!(!plain.options.contains_key(aplo::engine::OWNER_GID));
}

/// Journals written by an earlier aplo (`host/tests/data/journals/`, one
/// store per crash point, exported after a SIGKILL there) are read by this
/// one and recovered the way the crash tests expect: the journal's step
/// names are a format, not an implementation detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journals_written_by_an_earlier_aplo_are_recovered() {
    /// The volume left after recovery: its usable GiB and brick count.
    type Left = Option<(u64, usize)>;
    // (store, how recovery ends, the volume left)
    let rows: [(&str, &str, Left); 9] = [
        (
            "create-at-volume",
            "rolled back: nothing of the volume is left",
            None,
        ),
        (
            "create-at-start",
            "rolled forward: the volume is whole",
            Some((10, 3)),
        ),
        (
            "undo-create-at-stop",
            "rolled back: nothing of the volume is left",
            None,
        ),
        (
            "delete-at-delete",
            "rolled forward: the volume is deleted",
            None,
        ),
        (
            "expand-at-bricks",
            "rolled back: the volume has its old size",
            Some((1, 3)),
        ),
        (
            "expand-at-add-bricks",
            "rolled forward: the volume has its new size",
            Some((2, 6)),
        ),
        (
            "expand-at-grow",
            "rolled forward: the volume has its new size",
            Some((2, 3)),
        ),
        (
            "replace-at-brick",
            "rolled back: the old brick still serves",
            Some((1, 3)),
        ),
        (
            "replace-at-replace",
            "rolled forward: the new brick serves in the old one's place",
            Some((1, 3)),
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/journals");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = rows.iter().map(|r| r.0.to_owned()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every kept journal has a row, and every row a journal"
    );
    for (name, outcome, left) in rows {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let export: aplo::store::Export = serde_json::from_str(&text).unwrap();
        assert_eq!(export.data.operations.len(), 1, "{name}");
        let before = export.data.operations.values().next().unwrap().clone();
        assert_eq!(before.check(), Ok(()), "{name}: {before:?}");
        let store = Arc::new(MemoryStore::default());
        aplo::store::import(store.as_ref(), export).unwrap();
        let engine = Engine::new(
            store.clone(),
            ModelDriver::new(Arc::new(Mutex::new(World::default())), Trouble::None),
            common::registry(),
            EngineConfig::default(),
        )
        .unwrap();
        let report = engine.recover().await.unwrap();
        assert_eq!(report.unfinished, 0, "{name}: {report:?}");
        assert_eq!(report.outcomes.len(), 1, "{name}: {report:?}");
        assert!(
            report.outcomes[0].ends_with(outcome),
            "{name}: {}",
            report.outcomes[0]
        );
        let after = store.read().unwrap();
        assert!(after.operations.is_empty(), "{name}");
        let volumes: Vec<_> = after.volumes.values().collect();
        match left {
            None => {
                assert!(volumes.is_empty(), "{name}: {volumes:?}");
                assert!(after.bricks.is_empty(), "{name}: {:?}", after.bricks);
            }
            Some((gib, bricks)) => {
                assert_eq!(volumes.len(), 1, "{name}");
                assert_eq!(volumes[0].state, VolumeState::Ready, "{name}");
                assert_eq!(volumes[0].bytes, gib * GIB, "{name}");
                assert_eq!(after.bricks.len(), bricks, "{name}: {:?}", after.bricks);
            }
        }
        // What the replacement left is the brick the journal says.
        if let aplo::model::journal::Operation::ReplaceBrick { old, new, .. } = before.operation {
            let kept = if outcome.starts_with("rolled forward") {
                new
            } else {
                old
            };
            let gone = if kept == new { old } else { new };
            assert!(after.bricks.contains_key(&kept), "{name}");
            assert!(!after.bricks.contains_key(&gone), "{name}");
        }
    }
}
