//! Crash recovery on a real cluster: `aplo` (built with fault-injection
//! points) is SIGKILLed at each journaled step of create, delete, expand
//! and a brick move (`replace-brick`), and of removing and adding a node,
//! then started again. Every time the outcome is whole or nothing:
//! `aplo check` reports no drift, and no brick, loop device or gluster
//! volume is left that the store does not know.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aplo::engine::FaultPoint;
use aplo::exec::command::{Cmd, Executor};
use aplo::model::journal::{OperationKind, Step};
use aplo_e2e::Cluster;

struct Aplo {
    config: PathBuf,
    db: PathBuf,
    cache: PathBuf,
    /// The fault points crashed at so far.
    crashed: RefCell<BTreeSet<FaultPoint>>,
}

impl Aplo {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aplo-faulty"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(["--log", "warn"])
            .args(args);
        cmd
    }

    /// Run to the end; return (success, stdout + stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.command(args).output().expect("aplo-faulty runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "aplo {args:?} failed:\n{text}");
        text
    }

    /// Run with `--fault-at point`, wait until it stops there, SIGKILL it.
    fn crash_at(&self, point: FaultPoint, args: &[&str]) {
        self.crashed.borrow_mut().insert(point);
        let point = point.to_string();
        let child = self
            .command(&[&["--fault-at", point.as_str()], args].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aplo-faulty starts");
        aplo_e2e::kill_at_fault(child, &point, Duration::from_secs(180));
    }

    /// The store's volumes and brick ids, from `aplo db export`.
    fn store(&self) -> (Vec<String>, Vec<String>, usize) {
        let text = self.ok(&["db", "export"]);
        let export: serde_json::Value = serde_json::from_str(&text).unwrap();
        let data = &export["data"];
        let mut volumes: Vec<String> = data["volumes"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        volumes.sort();
        let bricks = data["bricks"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let operations = data["operations"].as_object().unwrap().len();
        (volumes, bricks, operations)
    }
}

/// Restart, then check that the store and the world agree exactly.
async fn assert_whole_or_nothing(aplo: &Aplo, cluster: &Cluster, context: &str) -> Vec<String> {
    let recovered = aplo.ok(&["recover"]);
    let (clean, report) = aplo.run(&["check"]);
    assert!(
        clean,
        "{context}: drift after recovery:\n{report}\nrecovery said:\n{recovered}"
    );
    let (volumes, bricks, operations) = aplo.store();
    assert_eq!(operations, 0, "{context}: the journal is empty");
    let mut gluster = cluster.volume_names().await;
    gluster.sort();
    assert_eq!(
        gluster, volumes,
        "{context}: gluster's volumes are the store's"
    );
    for leftover in cluster.brick_leftovers() {
        assert!(
            bricks.iter().any(|b| leftover.contains(b.as_str())),
            "{context}: {leftover} belongs to no brick in the store"
        );
    }
    let images = cluster
        .brick_leftovers()
        .iter()
        .filter(|l| l.starts_with('/') && l.contains("/images/"))
        .count();
    assert_eq!(images, bricks.len(), "{context}: one image per brick");
    volumes
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_journaled_step_leaves_whole_or_nothing() {
    let cluster = Cluster::start("cr", 3)
        .await
        .expect("the three-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let aplo = Aplo {
        config: write(&dir.path().join("aplo.yaml"), &cluster.config_yaml()),
        db: dir.path().join("aplo.redb"),
        cache: dir.path().join("cache"),
        crashed: RefCell::default(),
    };
    let topology = write(
        &dir.path().join("topology.json"),
        &cluster.topology(&["2Gi", "2Gi"]),
    );
    let load = [
        "topology",
        "load",
        topology.to_str().unwrap(),
        "--backend",
        "loop",
    ];
    aplo.ok(&load);
    let create = ["volume", "create", "--name", "v", "--size", "1Gi"];

    // Every step of a create (no quota policy here: no quota step).
    let create_volume = OperationKind::CreateVolume;
    for fault in FaultPoint::forward(create_volume)
        .into_iter()
        .filter(|p| *p != FaultPoint::Done(create_volume, Step::Quota))
    {
        let point = fault.to_string();
        aplo.crash_at(fault, &create);
        let volumes = assert_whole_or_nothing(&aplo, &cluster, &point).await;
        // Before the volume started, the create is undone; after, finished.
        let whole = fault == FaultPoint::Done(create_volume, Step::Start);
        assert_eq!(volumes.len(), usize::from(whole), "{point}: {volumes:?}");
        if whole {
            aplo.ok(&["volume", "delete", "v"]);
        }
    }

    for fault in FaultPoint::forward(OperationKind::DeleteVolume) {
        let point = fault.to_string();
        aplo.ok(&create);
        aplo.crash_at(fault, &["volume", "delete", "v"]);
        let volumes = assert_whole_or_nothing(&aplo, &cluster, &point).await;
        assert!(volumes.is_empty(), "{point}: a delete rolls forward");
    }

    // Growing in place (the device has room) rolls forward.
    let expand_volume = OperationKind::ExpandVolume;
    for fault in [
        FaultPoint::Journaled(expand_volume),
        FaultPoint::Done(expand_volume, Step::Grow),
    ] {
        let point = fault.to_string();
        aplo.ok(&create);
        aplo.crash_at(fault, &["volume", "expand", "v", "--size", "1536Mi"]);
        assert_whole_or_nothing(&aplo, &cluster, &point).await;
        let info = aplo.ok(&["volume", "info", "v"]);
        assert!(info.contains("1.5GiB usable"), "{point}: {info}");
        aplo.ok(&["volume", "delete", "v"]);
    }

    // Past the device (2 GiB, 1 GiB used): a new brick set of 1.5 GiB. Undone until
    // gluster has the bricks, finished after.
    for step in [
        None,
        Some(Step::Bricks),
        Some(Step::AddBricks),
        Some(Step::Rebalance),
    ] {
        let fault = step.map_or(FaultPoint::Journaled(expand_volume), |s| {
            FaultPoint::Done(expand_volume, s)
        });
        let point = fault.to_string();
        aplo.ok(&create);
        aplo.crash_at(fault, &["volume", "expand", "v", "--size", "2560Mi"]);
        assert_whole_or_nothing(&aplo, &cluster, &point).await;
        let info = aplo.ok(&["volume", "info", "v"]);
        let sets = info.lines().filter(|l| l.contains("set 1 ")).count();
        if matches!(step, None | Some(Step::Bricks)) {
            assert!(info.contains("1GiB usable") && sets == 0, "{point}: {info}");
        } else {
            assert!(
                info.contains("2.5GiB usable") && sets == 3,
                "{point}: {info}"
            );
        }
        aplo.ok(&["volume", "delete", "v"]);
    }

    // Moving a brick off a failed device (to the node's other device, the
    // only place its set allows): undone until gluster has the new brick,
    // finished after.
    for fault in FaultPoint::forward(OperationKind::ReplaceBrick) {
        let point = fault.to_string();
        aplo.ok(&create);
        let export: serde_json::Value = serde_json::from_str(&aplo.ok(&["db", "export"])).unwrap();
        let data = &export["data"];
        let (old, brick) = data["bricks"].as_object().unwrap().iter().next().unwrap();
        let device = brick["device"].as_str().unwrap().to_owned();
        let node = brick["node"].as_str().unwrap().to_owned();
        aplo.crash_at(fault, &["device", "state", &node, &device, "failed"]);
        assert_whole_or_nothing(&aplo, &cluster, &point).await;
        let (volumes, bricks, _) = aplo.store();
        assert_eq!(volumes, ["v"], "{point}");
        assert_eq!(bricks.len(), 3, "{point}: {bricks:?}");
        let moved = !bricks.contains(old);
        assert_eq!(
            moved,
            matches!(fault, FaultPoint::Done(_, Step::Replace | Step::Teardown)),
            "{point}: {bricks:?}"
        );
        aplo.ok(&["volume", "delete", "v"]);
        aplo.ok(&["device", "state", &node, &device, "online"]);
    }

    let (volumes, bricks, _) = aplo.store();
    assert!(volumes.is_empty() && bricks.is_empty());
    assert!(
        cluster.brick_leftovers().is_empty(),
        "{:?}",
        cluster.brick_leftovers()
    );

    // Removing a node (its devices first) rolls forward; adding it back
    // (`topology load` adds what is missing) rolls forward from its
    // journal entry and from its probe. Each time the pool and the store
    // agree on the nodes.
    for d in 0..2 {
        let device = cluster.nodes[2].bricks.join(format!("dev{d}"));
        aplo.ok(&["device", "remove", "node3", device.to_str().unwrap()]);
    }
    aplo.crash_at(
        FaultPoint::Journaled(OperationKind::RemoveNode),
        &["node", "remove", "node3"],
    );
    assert_whole_or_nothing(&aplo, &cluster, "remove-node:journaled").await;
    assert_nodes(&aplo, &cluster, 2, "remove-node:journaled").await;
    for fault in [
        FaultPoint::Journaled(OperationKind::AddNode),
        FaultPoint::Probed,
    ] {
        let point = fault.to_string();
        aplo.crash_at(fault, &load);
        assert_whole_or_nothing(&aplo, &cluster, &point).await;
        assert_nodes(&aplo, &cluster, 3, &point).await;
        aplo.ok(&["node", "remove", "node3"]);
        assert_nodes(&aplo, &cluster, 2, &point).await;
    }
    aplo.ok(&load);
    assert_whole_or_nothing(&aplo, &cluster, "node3 back").await;
    assert_nodes(&aplo, &cluster, 3, "node3 back").await;

    // Every fault point is crashed at here but these, each for its reason;
    // a step added to an operation fails this until a crash covers it.
    let mut untested: Vec<String> = FaultPoint::all()
        .into_iter()
        .filter(|p| !aplo.crashed.borrow().contains(p))
        .map(|p| p.to_string())
        .collect();
    untested.sort();
    assert_eq!(
        untested,
        [
            // Devices: journaled, then one idempotent prepare or release (covered
            // by the engine's crash-point search on the model, host/tests/engine.rs).
            "add-device:journaled",
            // The undo of a create is a teardown (stop, delete, bricks), crashed at
            // as delete-volume's; its `bricks` is also the create's first step.
            "create-volume:delete",
            // No quota policy in this cluster: no quota step runs.
            "create-volume:quota",
            "create-volume:stop",
            "expand-volume:quota",
            // The provisioner's point, crashed at in tests/tests/provisioner_crash.rs.
            "provision:volume-created",
            "remove-device:journaled",
        ]
        .map(String::from),
        "fault points no crash here covers"
    );
}

/// The store has `count` nodes, all online, and node1's gluster pool has
/// the same `count` members, all connected.
async fn assert_nodes(aplo: &Aplo, cluster: &Cluster, count: usize, context: &str) {
    let export: serde_json::Value = serde_json::from_str(&aplo.ok(&["db", "export"])).unwrap();
    let nodes = export["data"]["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), count, "{context}: the store's nodes");
    assert!(
        nodes.values().all(|n| n["state"] == "online"),
        "{context}: {nodes:?}"
    );
    let out = cluster.nodes[0]
        .exec
        .run(&Cmd::new("gluster").args(["--mode=script", "pool", "list"]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let members = text.lines().skip(1).filter(|l| !l.trim().is_empty());
    assert_eq!(
        members.clone().count(),
        count,
        "{context}: node1's pool:\n{text}"
    );
    assert!(
        members.clone().all(|l| l.contains("Connected")),
        "{context}: node1's pool:\n{text}"
    );
}
