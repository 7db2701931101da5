//! The provisioner end to end on the real three-node gluster harness: claims
//! of three classes (replica 3, arbiter, disperse 2+1) through the
//! real control plane (as aplo's ServiceAccount) become real gluster volumes on loop bricks, bind,
//! mount and hold data; deleting the claims deletes the volumes and leaves
//! no brick behind.

use std::sync::Arc;
use std::time::Duration;

use aplo::engine::LoadOptions;
use aplo::model::topology::parse_topology;
use aplo_e2e::kube::{Provisioner, World};
use aplo_e2e::{Cluster, FuseMount};
use kube::api::DeleteParams;

const WAIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_become_real_gluster_volumes_and_go_without_leftovers() {
    let cluster = Cluster::start("kg", 3)
        .await
        .expect("the three-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(cluster.engine(&dir.path().join("aplo.redb")).unwrap());
    let topology = parse_topology(&cluster.topology(&["3Gi", "3Gi"])).unwrap();
    let report = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");

    let world = World::start().await;
    world
        .class("replica3", &[("classes.class", "replica3")], "Delete")
        .await;
    world
        .class("arbiter", &[("classes.class", "arbiter")], "Delete")
        .await;
    world
        .class("disperse", &[("classes.class", "disperse-2-1")], "Delete")
        .await;
    let provisioner =
        Provisioner::start(world.aplo().await, engine.clone(), Provisioner::options());

    let claims: Vec<(String, &str)> = vec![
        ("web".into(), "replica3"),
        ("db".into(), "replica3"),
        ("logs".into(), "arbiter"),
        ("archive".into(), "disperse"),
    ];
    for (name, class) in &claims {
        world.claim("default", name, class, "300Mi").await;
    }
    let names: Vec<String> = claims.iter().map(|(n, _)| n.clone()).collect();
    world.wait_bound("default", &names, WAIT).await;

    let mut gluster = cluster.volume_names().await;
    gluster.sort();
    let pvs = world.pvs().await;
    let mut pv_names: Vec<String> = pvs.iter().filter_map(|p| p.metadata.name.clone()).collect();
    pv_names.sort();
    assert_eq!(gluster, pv_names, "each PV is a real gluster volume");

    // Each volume has a group of its own, from the in-tree default range,
    // named on its PV for kubelet (heketi's and the in-tree plugin's way
    // to let non-root pods write).
    let mut gids: Vec<u32> = pvs
        .iter()
        .map(|pv| {
            pv.metadata.annotations.as_ref().unwrap()["pv.beta.kubernetes.io/gid"]
                .parse()
                .unwrap()
        })
        .collect();
    gids.sort();
    assert_eq!(gids, vec![2000, 2001, 2002, 2003]);

    // Mount each from the hosts its PV names, and write to it: as root,
    // and as a non-root user whose only way in is the volume's group.
    for pv in &pvs {
        let gid = &pv.metadata.annotations.as_ref().unwrap()["pv.beta.kubernetes.io/gid"];
        let csi = pv.spec.as_ref().unwrap().csi.as_ref().unwrap();
        let attributes = csi.volume_attributes.as_ref().unwrap();
        let host = attributes["hosts"].split(',').next().unwrap();
        let mount = FuseMount::new(host, &attributes["volume"]).unwrap();
        let file = mount.path.join("hello.txt");
        std::fs::write(&file, "I love GlusterFS!\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "I love GlusterFS!\n"
        );
        assert!(mount.size() >= 250 << 20, "{} bytes", mount.size());
        let as_pod = |groups: &str| {
            std::process::Command::new("setpriv")
                .args([
                    "--reuid=4321",
                    "--regid=4321",
                    &format!("--groups={groups}"),
                ])
                .args(["sh", "-c", "echo from-a-pod > \"$0/pod.txt\""])
                .arg(&mount.path)
                .status()
                .expect("setpriv runs")
                .success()
        };
        assert!(!as_pod("4321"), "a user outside the group cannot write");
        assert!(as_pod(gid), "a user in the volume's group {gid} writes");
    }

    for name in &names {
        world
            .claims("default")
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    world.wait_pvs_at_most(0, WAIT).await;
    assert!(
        cluster.volume_names().await.is_empty(),
        "gluster volumes left"
    );
    assert!(engine.volumes().is_empty(), "volumes left in the store");
    assert_eq!(cluster.brick_leftovers(), Vec::<String>::new());
    provisioner.stop().await.unwrap();
}
