//! The storage engine on a real three-node gluster cluster in namespaces,
//! with real loop bricks (sparse file, loop device, XFS, mount): volumes
//! are created through the default policies, mounted with FUSE, written
//! and read back, expanded (in place, then by a new brick set), deleted
//! without leftovers, checked for drift, and placed around a lost node.
//! Bad input is refused with nothing created.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aplo::engine::{CreateRequest, EngineError, LoadOptions};
use aplo::exec::command::Executor;
use aplo::model::storage::Backend;
use aplo::model::topology::{DeviceSpec, parse_topology};
use aplo::model::{GIB, MIB, Pairs, Scheme};
use aplo_e2e::{Cluster, FuseMount};

fn params(pairs: &[(&str, &str)]) -> Pairs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn create(name: &str, bytes: u64, parameters: Pairs) -> CreateRequest {
    CreateRequest {
        name: Some(name.into()),
        bytes,
        parameters,
        ..CreateRequest::default()
    }
}

/// Clients notice a lost node after the ping timeout (42 s by default).
const FAST_FAILOVER: (&str, &str) = ("classes.replica3.options", "network.ping-timeout=5");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volumes_through_the_engine_on_three_real_nodes() {
    let cluster = Cluster::start("se", 3)
        .await
        .expect("the three-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let engine = cluster.engine(&dir.path().join("aplo.redb")).unwrap();

    // Topology: heketi's format, three capped loop devices per node.
    let file = cluster.topology(&["3Gi", "3Gi", "2Gi"]);
    let topology = parse_topology(&file).unwrap();

    // First without node3, which is in the trusted pool all the same: what
    // a `node add` interrupted between its probe and its record leaves.
    // `aplo check` reports the peer the store does not know.
    let mut partial: serde_json::Value = serde_json::from_str(&file).unwrap();
    partial["clusters"][0]["nodes"]
        .as_array_mut()
        .unwrap()
        .truncate(2);
    let report = engine
        .load_topology(
            &parse_topology(&partial.to_string()).unwrap(),
            LoadOptions::default(),
        )
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        (report.nodes_added.len(), report.devices_added.len()),
        (2, 6)
    );
    let check = engine.check().await;
    let text = check.to_string();
    assert_eq!(check.drift.len(), 1, "{text}");
    assert!(
        text.contains("its trusted pool has 3 members but the store knows 2 node(s)")
            && text.contains(&cluster.nodes[2].address),
        "{text}"
    );
    // Adding the node (again) clears it.
    let report = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        (report.nodes_added.len(), report.devices_added.len()),
        (1, 3)
    );
    let check = engine.check().await;
    assert!(check.is_clean(), "{check}");
    let again = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (again.nodes_present.len(), again.devices_present.len()),
        (3, 9)
    );
    assert!(again.nodes_added.is_empty() && again.devices_added.is_empty());
    assert!(
        engine
            .snapshot()
            .devices
            .values()
            .all(|d| d.total_bytes >= 2 * GIB && d.backend == Backend::Loop)
    );

    // Bad input: refused with a reason, nothing created.
    let node1 = engine
        .snapshot()
        .nodes
        .values()
        .find(|n| n.manage == "node1")
        .unwrap()
        .id;
    let err = engine
        .add_device(
            node1,
            &DeviceSpec {
                name: "/no/such/directory".into(),
                destroy_data: false,
                tags: Pairs::new(),
            },
            Backend::Loop,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(
        engine.snapshot().devices.len(),
        9,
        "the bad device was not kept"
    );
    for (request, expected) in [
        (create("../../etc", GIB, Pairs::new()), "volume name"),
        (create("zero", 0, Pairs::new()), "zero"),
        (create("absurd", u64::MAX / 2, Pairs::new()), "larger than"),
        (create("huge", 50 * GIB, Pairs::new()), "refused"),
        (
            create("unknown", GIB, params(&[("durability", "no-such-policy")])),
            "no policy named",
        ),
    ] {
        let err = engine.create_volume(request).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert!(cluster.volume_names().await.is_empty());
    assert!(
        cluster.brick_leftovers().is_empty(),
        "{:?}",
        cluster.brick_leftovers()
    );
    assert!(engine.snapshot().operations.is_empty());

    // Replica 3 through the default policies, on three nodes.
    let r3 = engine
        .create_volume(create("r3", GIB, params(&[FAST_FAILOVER])))
        .await
        .unwrap();
    assert_eq!(
        r3.scheme,
        Scheme::Replicate {
            count: 3,
            arbiter: false
        }
    );
    let (_, bricks) = engine.volume("r3").unwrap();
    let nodes: BTreeSet<_> = bricks.iter().map(|b| b.node).collect();
    assert_eq!(nodes.len(), 3, "the bricks are on three different nodes");
    let mount = FuseMount::new(&cluster.nodes[0].address, "r3").expect("FUSE mount");
    std::fs::write(mount.path.join("hello.txt"), "I love GlusterFS!\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(mount.path.join("hello.txt")).unwrap(),
        "I love GlusterFS!\n"
    );

    // Expand in place: the loop files, the loop devices and XFS grow.
    let before = mount.size();
    let grown = engine.expand_volume("r3", 2 * GIB).await.unwrap();
    assert!(grown.bytes >= 2 * GIB);
    assert_eq!(engine.volume("r3").unwrap().1.len(), 3, "grown in place");
    let after = mount.size();
    assert!(after > before + 900 * MIB, "df grows: {before} -> {after}");

    // Expand past the devices: a second brick set, then a rebalance.
    engine.expand_volume("r3", 7 * GIB / 2).await.unwrap();
    let sets: BTreeSet<u32> = engine
        .volume("r3")
        .unwrap()
        .1
        .iter()
        .map(|b| b.set)
        .collect();
    assert_eq!(sets.len(), 2, "a new brick set");
    let expanded = mount.size();
    assert!(
        expanded > after + GIB,
        "df grows again: {after} -> {expanded}"
    );
    assert_eq!(
        std::fs::read_to_string(mount.path.join("hello.txt")).unwrap(),
        "I love GlusterFS!\n"
    );

    // The other durabilities, through the same policies.
    let arbiter = engine
        .create_volume(create("arb", GIB, params(&[("classes.class", "arbiter")])))
        .await
        .unwrap();
    assert_eq!(
        arbiter.scheme,
        Scheme::Replicate {
            count: 3,
            arbiter: true
        }
    );
    let ec = engine
        .create_volume(create(
            "ec",
            GIB,
            params(&[("classes.class", "disperse-2-1")]),
        ))
        .await
        .unwrap();
    assert_eq!(
        ec.scheme,
        Scheme::Disperse {
            data: 2,
            redundancy: 1
        }
    );
    for name in ["arb", "ec"] {
        let m = FuseMount::new(&cluster.nodes[1].address, name).expect("FUSE mount");
        std::fs::write(m.path.join("f"), "I love GlusterFS!").unwrap();
        assert_eq!(
            std::fs::read_to_string(m.path.join("f")).unwrap(),
            "I love GlusterFS!"
        );
    }

    // A quota policy's hard limit becomes a gluster quota on the volume.
    let quota = engine
        .create_volume(CreateRequest {
            name: Some("q".into()),
            bytes: 400 * MIB,
            parameters: params(&[
                ("quota", "namespace-quota"),
                ("namespace-quota.max-bytes", "10Gi"),
            ]),
            claim: Some(aplo::model::Claim {
                namespace: "team-a".into(),
                name: "q".into(),
                labels: Pairs::new(),
                annotations: Pairs::new(),
                requested_bytes: 400 * MIB,
                access_modes: Vec::new(),
            }),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(quota.hard_limit, Some(400 * MIB));
    let out = cluster.nodes[0]
        .exec
        .run(&aplo::exec::gluster::gluster([
            "volume", "quota", "q", "list",
        ]))
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("<path>/</path>") && listed.contains("<hard_limit>419430400</hard_limit>"),
        "{listed}"
    );

    // The store and the world agree.
    let check = engine.check().await;
    assert!(check.is_clean(), "{check}");

    // Drift made behind aplo's back is found; the safe part is repaired.
    cluster.nodes[0]
        .exec
        .run(&aplo::exec::gluster::volume_stop("ec"))
        .await
        .unwrap();
    let (stray, device) = {
        let snapshot = engine.snapshot();
        let device = snapshot.devices.values().next().unwrap().clone();
        let node = &snapshot.nodes[&device.node];
        let exec = &cluster
            .nodes
            .iter()
            .find(|n| n.name == node.manage)
            .unwrap()
            .exec;
        let stray = aplo::model::Id(0x5ca1ab1e);
        aplo::exec::brick::create_loop_brick(
            &**exec,
            &aplo::exec::brick::BrickRoot::new(&device.name).unwrap(),
            stray,
            stray,
            GIB,
        )
        .await
        .unwrap();
        (stray, device)
    };
    let check = engine.check().await;
    let text = check.to_string();
    assert_eq!(check.drift.len(), 2, "{text}");
    assert!(text.contains("volume ec: is Stopped in gluster"), "{text}");
    assert!(
        text.contains(&format!("brick {stray}: is an orphan")),
        "{text}"
    );
    let repaired = engine.repair().await.unwrap();
    assert_eq!(repaired.repaired.len(), 2, "{repaired:?}");
    assert!(repaired.left.is_empty(), "{repaired:?}");
    let check = engine.check().await;
    assert!(check.is_clean(), "{check}");
    assert!(
        cluster
            .brick_leftovers()
            .iter()
            .all(|l| !l.contains(&stray.to_string())),
        "the orphan on {} is gone",
        device.name
    );

    // A brick filesystem that is not mounted (as after a reboot) is
    // mounted again at start.
    let (brick, brick_node) = {
        let (_, bricks) = engine.volume("ec").unwrap();
        let snapshot = engine.snapshot();
        (
            bricks[0].clone(),
            snapshot.nodes[&bricks[0].node].manage.clone(),
        )
    };
    let exec = &cluster
        .nodes
        .iter()
        .find(|n| n.name == brick_node)
        .unwrap()
        .exec;
    let brick_mount = std::path::Path::new(&brick.path)
        .parent()
        .unwrap()
        .display()
        .to_string();
    exec.run(&aplo::exec::command::Cmd::new("umount").args(["-l", &brick_mount]))
        .await
        .unwrap();
    let check = engine.check().await;
    assert!(check.to_string().contains("is not mounted"), "{check}");
    let remounted = engine.remount_bricks().await.unwrap();
    assert_eq!(remounted, [format!("brick {}", brick.id)]);
    let check = engine.check().await;
    assert!(check.is_clean(), "{check}");

    // Delete leaves no loop file, loop device, brick directory or volume.
    let arb_bricks: Vec<String> = engine
        .volume("arb")
        .unwrap()
        .1
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    engine.delete_volume("arb").await.unwrap();
    engine.delete_volume("ec").await.unwrap();
    engine.delete_volume("q").await.unwrap();
    let names = cluster.volume_names().await;
    assert_eq!(names, ["r3"]);
    let leftovers = cluster.brick_leftovers();
    assert!(
        leftovers
            .iter()
            .all(|l| !arb_bricks.iter().any(|b| l.contains(b))),
        "{leftovers:?}"
    );
    let r3_bricks = engine.volume("r3").unwrap().1.len();
    assert_eq!(
        leftovers
            .iter()
            .filter(|l| l.starts_with('/') && l.contains("/images/"))
            .count(),
        r3_bricks,
        "only r3's images remain: {leftovers:?}"
    );

    // Node loss: the mounted replica-3 volume keeps serving.
    cluster.nodes[2].disconnect().unwrap();
    let started = Instant::now();
    std::fs::write(mount.path.join("after-loss.txt"), "still here").unwrap();
    assert_eq!(
        std::fs::read_to_string(mount.path.join("after-loss.txt")).unwrap(),
        "still here"
    );
    assert_eq!(
        std::fs::read_to_string(mount.path.join("hello.txt")).unwrap(),
        "I love GlusterFS!\n"
    );
    eprintln!(
        "reads and writes served {:?} after the link went down",
        started.elapsed()
    );

    // The pool notices; new volumes go to the healthy nodes when the
    // durability allows it, and are refused with a reason when not.
    let node3 = engine
        .snapshot()
        .nodes
        .values()
        .find(|n| n.manage == "node3")
        .unwrap()
        .id;
    let noticed = loop {
        engine.refresh_health().await;
        let offline = engine
            .policy_topology()
            .clusters
            .iter()
            .flat_map(|c| &c.nodes)
            .any(|n| n.id == node3 && n.state != aplo::model::State::Online);
        if offline || started.elapsed() > Duration::from_secs(180) {
            break offline;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        noticed,
        "gluster did not report node3 disconnected within 180 s"
    );
    eprintln!(
        "the pool reported node3 disconnected after {:?}",
        started.elapsed()
    );
    let r2 = engine
        .create_volume(create("r2", GIB, params(&[("classes.class", "replica2")])))
        .await
        .unwrap();
    let r2_nodes: BTreeSet<_> = engine
        .volume("r2")
        .unwrap()
        .1
        .iter()
        .map(|b| b.node)
        .collect();
    assert_eq!(r2_nodes.len(), 2);
    assert!(!r2_nodes.contains(&node3), "placed on the healthy nodes");
    assert_eq!(
        r2.scheme,
        Scheme::Replicate {
            count: 2,
            arbiter: false
        }
    );
    let err = engine
        .create_volume(create("r3b", GIB, Pairs::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Refused { .. }), "{err}");
    eprintln!("replica 3 with a node lost: {err}");
    drop(mount);
}
