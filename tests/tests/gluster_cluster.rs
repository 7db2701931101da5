//! The storage half of the classic demo on a real three-node cluster: a
//! replica-3 volume across three nodes, FUSE-mounted from the host, written
//! and read back; arbiter and disperse 2+1 volumes beside it; then a node is
//! cut off and the replica-3 volume keeps serving.

use aplo::exec::command::{Cmd, Executor};
use aplo::exec::gluster;
use aplo::model::Scheme;
use aplo_e2e::Cluster;

/// Unmounts (lazily, as a node may be unreachable) when dropped, so that a
/// failing assertion leaves no mount behind.
struct FuseMount(std::path::PathBuf);

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

async fn ok(node: &aplo::exec::command::NodeExecutor, cmd: Cmd) {
    let out = node.run(&cmd).await.unwrap_or_else(|e| panic!("{e}"));
    gluster::parse_outcome(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", cmd.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_3_across_three_nodes_serves_through_fuse_and_survives_node_loss() {
    let cluster = Cluster::start("r3", 3)
        .await
        .expect("the three-node cluster starts");
    let bricks: Vec<(String, String)> = cluster
        .nodes
        .iter()
        .map(|n| {
            std::fs::create_dir_all(n.bricks.join("b1")).unwrap();
            (
                n.address.clone(),
                n.bricks.join("b1/brick").display().to_string(),
            )
        })
        .collect();
    let first = &cluster.nodes[0].exec;
    let scheme = Scheme::Replicate {
        count: 3,
        arbiter: false,
    };
    ok(
        first,
        gluster::volume_create("demo", &scheme, &bricks, true),
    )
    .await;
    // Clients notice a lost node after the ping timeout (42 s by default).
    ok(
        first,
        gluster::volume_set("demo", "network.ping-timeout", "5").unwrap(),
    )
    .await;
    ok(first, gluster::volume_start("demo", false)).await;
    let out = first
        .run(&gluster::volume_info(Some("demo")))
        .await
        .unwrap();
    let info = gluster::parse_volume_info(&out.stdout).unwrap();
    let hosts: std::collections::BTreeSet<&str> =
        info[0].bricks.iter().map(|b| b.host.as_str()).collect();
    assert_eq!(hosts.len(), 3, "the bricks are on three different nodes");

    // The other durabilities, from the same command lines.
    for (name, scheme, kind) in [
        (
            "demo_arbiter",
            Scheme::Replicate {
                count: 3,
                arbiter: true,
            },
            "Replicate",
        ),
        (
            "demo_disperse",
            Scheme::Disperse {
                data: 2,
                redundancy: 1,
            },
            "Disperse",
        ),
    ] {
        let bricks: Vec<(String, String)> = cluster
            .nodes
            .iter()
            .map(|n| {
                let parent = n.bricks.join(name);
                std::fs::create_dir_all(&parent).unwrap();
                (
                    n.address.clone(),
                    parent.join("brick").display().to_string(),
                )
            })
            .collect();
        ok(first, gluster::volume_create(name, &scheme, &bricks, true)).await;
        ok(first, gluster::volume_start(name, false)).await;
        let out = first.run(&gluster::volume_info(Some(name))).await.unwrap();
        let v = &gluster::parse_volume_info(&out.stdout).unwrap()[0];
        assert_eq!(
            (v.kind.as_str(), v.status.as_str(), v.bricks.len()),
            (kind, "Started", 3),
            "{name}"
        );
        match scheme {
            Scheme::Replicate { .. } => {
                assert_eq!((v.arbiter_count, v.bricks[2].arbiter), (1, true), "{name}")
            }
            _ => assert_eq!((v.disperse_count, v.redundancy_count), (3, 1), "{name}"),
        }
        let out = first.run(&gluster::volume_status(name)).await.unwrap();
        let status = gluster::parse_volume_status(&out.stdout).unwrap();
        assert!(
            status.len() == 3 && status.iter().all(|b| b.online),
            "{name}: {status:?}"
        );
    }

    let mount = tempfile::tempdir().unwrap();
    let source = format!("{}:/demo", cluster.nodes[0].address);
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "glusterfs",
            &source,
            &mount.path().display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "FUSE mount of {source} (needs glusterfs-client, as .ci/run installs)"
    );
    let _unmount = FuseMount(mount.path().to_path_buf());
    let file = mount.path().join("hello.txt");
    std::fs::write(&file, "I love GlusterFS!").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "I love GlusterFS!");
    for (_, path) in &bricks {
        let copy = std::fs::read_to_string(std::path::Path::new(path).join("hello.txt")).unwrap();
        assert_eq!(copy, "I love GlusterFS!", "every replica holds the file");
    }

    cluster.nodes[2].disconnect().unwrap();
    std::fs::write(mount.path().join("after.txt"), "still here").unwrap();
    assert_eq!(
        std::fs::read_to_string(mount.path().join("after.txt")).unwrap(),
        "still here"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "I love GlusterFS!");
}
