//! Moving bricks on a real four-node gluster cluster in namespaces, under
//! a FUSE-mounted replica-3 volume:
//! - a device is failed while every node is up: its brick moves with
//!   gluster's `replace-brick`, and `aplo check` finds nothing amiss;
//! - node3's gluster dies (glusterd and its brick process killed); a write
//!   then lands on the other two bricks only, so moving one of them is
//!   refused (the new brick would start without what node3's lacks);
//! - node3 is failed (heketi's node removal): its unreachable brick moves
//!   to node4. The volume keeps serving, gluster lists the new brick in the
//!   old one's place, and new writes land on it.
//!
//! (A node whose link is down is the same move once gluster reports the
//! peer disconnected, which can take minutes; until then glusterd may
//! answer "another transaction is in progress", and aplo rolls the move
//! back. The link-down case is in `storage_engine.rs`.)

use std::time::Duration;

use aplo::engine::{CreateRequest, LoadOptions};
use aplo::exec::command::{Cmd, Executor};
use aplo::exec::gluster;
use aplo::model::topology::parse_topology;
use aplo::model::{GIB, Pairs, State};
use aplo_e2e::{Cluster, FuseMount};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_nodes_brick_moves_to_a_spare_node_and_serves() {
    let started = std::time::Instant::now();
    let cluster = Cluster::start("mv", 4)
        .await
        .expect("the four-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let engine = cluster.engine(&dir.path().join("aplo.redb")).unwrap();
    let topology = parse_topology(&cluster.topology(&["2Gi", "2Gi"])).unwrap();
    let report = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    let id = |manage: &str| engine.find_node(manage).unwrap().id;
    let (node3, node4) = (id("node3"), id("node4"));

    // node4 is the spare: the volume goes on nodes 1-3.
    engine.set_node_state("node4", State::Offline).unwrap();
    engine
        .create_volume(CreateRequest {
            name: Some("r3".into()),
            bytes: GIB,
            parameters: Pairs::from([(
                "classes.replica3.options".into(),
                "network.ping-timeout=5".into(),
            )]),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    let mount = FuseMount::new(&cluster.nodes[0].address, "r3").expect("FUSE mount");
    std::fs::write(mount.path.join("hello.txt"), "I love GlusterFS!\n").unwrap();

    // Every node alive: failing a device moves its brick (to node1's other
    // device: node4 is still out of service), and `aplo check` finds the
    // volume as it should be. The move waits for the new brick's process.
    let (_, before) = engine.volume("r3").unwrap();
    let on = |bricks: &[aplo::model::storage::BrickRecord], n: &str| {
        bricks.iter().find(|b| b.node == id(n)).unwrap().clone()
    };
    let first = on(&before, "node1");
    engine.fail_device(first.device).await.unwrap();
    let (_, after) = engine.volume("r3").unwrap();
    assert!(after.iter().all(|b| b.device != first.device), "{after:?}");
    assert_eq!(on(&after, "node1").set, first.set);
    let check = engine.check().await;
    assert!(check.is_clean(), "after a device move: {check}");

    // node3's gluster dies (glusterd and its brick process killed). A write
    // now lands on node1 and node2 only, so their bricks hold what node3's
    // has not got: moving one of them would lose it, and is refused.
    cluster.nodes[2].kill_gluster();
    std::fs::write(mount.path.join("after-loss.txt"), "still here").unwrap();
    let (_, before) = engine.volume("r3").unwrap();
    let healthy = on(&before, "node2");
    let err = engine.fail_device(healthy.device).await.unwrap_err();
    assert!(err.to_string().contains("has not healed yet"), "{err}");
    assert_eq!(engine.volume("r3").unwrap().1, before);
    let node2 = &engine.snapshot().nodes[&healthy.node].manage.clone();
    let device = engine.snapshot().devices[&healthy.device].name.clone();
    engine
        .set_device_state(node2, &device, State::Online)
        .unwrap();

    // Failing node3 moves its unreachable brick to the spare, node4.
    engine.set_node_state("node4", State::Online).unwrap();
    let old = on(&before, "node3");
    eprintln!("{:?}: failing node3", started.elapsed());
    let failed = engine.fail_node(node3).await.unwrap();
    eprintln!("{:?}: node3 failed, its brick moved", started.elapsed());
    assert_eq!(failed.state, State::Failed);
    let (_, after) = engine.volume("r3").unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|b| b.node != node3), "{after:?}");
    let new = after.iter().find(|b| b.node == node4).unwrap().clone();
    assert_eq!((new.set, new.position), (old.set, old.position));

    // gluster has the new brick in the old one's place.
    let info = cluster.nodes[0]
        .exec
        .run(&gluster::volume_info(Some("r3")))
        .await
        .unwrap();
    let info = gluster::parse_volume_info(&info.stdout).unwrap();
    let bricks: Vec<String> = info[0]
        .bricks
        .iter()
        .map(|b| format!("{}:{}", b.host, b.path))
        .collect();
    let at = |node: usize, path: &str| format!("{}:{path}", cluster.nodes[node].address);
    assert!(bricks.contains(&at(3, &new.path)), "{bricks:?}");
    assert!(!bricks.contains(&at(2, &old.path)), "{bricks:?}");
    assert_eq!(bricks.len(), 3, "{bricks:?}");

    // The volume keeps serving, and a new write lands on the new brick.
    assert_eq!(
        std::fs::read_to_string(mount.path.join("hello.txt")).unwrap(),
        "I love GlusterFS!\n"
    );
    std::fs::write(mount.path.join("after-move.txt"), "on node4 too").unwrap();
    let on_node4 = async {
        for _ in 0..150 {
            let read = cluster.nodes[3]
                .exec
                .run(&Cmd::new("cat").arg(format!("{}/after-move.txt", new.path)))
                .await;
            if let Ok(out) = read
                && String::from_utf8_lossy(&out.stdout) == "on node4 too"
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    let reached = on_node4.await;
    eprintln!("{:?}: write checked on node4", started.elapsed());
    if !reached {
        for cmd in [
            gluster::gluster(["volume", "status", "r3"]),
            Cmd::new("ls").args(["-la", &new.path]),
        ] {
            let out = cluster.nodes[3].exec.run(&cmd).await;
            eprintln!("{out:?}");
        }
    }
    assert!(reached, "the write did not reach node4's new brick");

    // node3 was reachable, so its old brick was torn down.
    let leftovers = cluster.brick_leftovers();
    assert!(
        leftovers.iter().all(|l| !l.contains(&old.id.to_string())),
        "{leftovers:?}"
    );

    drop(mount);
}
