//! LVM command lines against real lvm2 on a loop device. This kernel has no
//! device-mapper, so the commands run with activation off (metadata only);
//! thin pools cannot be created at all here, so their command lines are
//! checked for shape in unit tests only.

use std::time::Duration;

use aplo::exec::command::{Cmd, Executor, NodeExecutor, Transport};
use aplo::exec::lvm::{self, LvmOptions};
use aplo::model::Id;

const OPTIONS: LvmOptions = LvmOptions {
    no_activation: true,
};

struct Loop {
    node: std::sync::Arc<NodeExecutor>,
    device: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    async fn new(size: u64) -> Loop {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        std::fs::File::create(&file).unwrap().set_len(size).unwrap();
        let node = NodeExecutor::new("local", Transport::Local);
        let out = node
            .run(&Cmd::new("losetup").args(["--find", "--show", file.to_str().unwrap()]))
            .await
            .expect("losetup works (the tests run as root, as CI does)");
        let device = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Loop {
            node,
            device,
            _dir: dir,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.device])
            .status();
    }
}

async fn run(node: &NodeExecutor, cmd: Cmd) -> Vec<u8> {
    match node.run(&cmd.timeout(Duration::from_secs(60))).await {
        Ok(out) => out.stdout,
        Err(err) => {
            panic!("{err} (is lvm2 installed? `apt-get install -y lvm2`; .ci/run installs it)")
        }
    }
}

#[tokio::test]
async fn a_device_s_volume_group_and_brick_volumes_through_real_lvm() {
    let disk = Loop::new(2 << 30).await;
    let node = &disk.node;
    let device = Id(0xd0d0);
    let (brick, volume) = (Id(0xb1), Id(0x70));
    let vg = lvm::vg_name(device);

    run(node, lvm::pvcreate(OPTIONS, &disk.device)).await;
    run(node, lvm::vgcreate(OPTIONS, device, &disk.device)).await;
    let groups = lvm::parse_vgs(&run(node, lvm::vgs(OPTIONS)).await).unwrap();
    let ours = groups
        .iter()
        .find(|g| g.name == vg)
        .expect("our volume group is listed");
    assert_eq!(ours.tags, [format!("aplo.device={device}")]);
    assert!(ours.size > (1 << 30) && ours.free == ours.size, "{ours:?}");

    run(
        node,
        lvm::plain_lv_create(OPTIONS, device, brick, volume, 100 << 20),
    )
    .await;
    let lvs = lvm::parse_lvs(&run(node, lvm::lvs(OPTIONS)).await).unwrap();
    let lv = lvs
        .iter()
        .find(|l| l.vg == vg)
        .expect("our brick volume is listed");
    assert_eq!((lv.name.clone(), lv.size), (lvm::lv_name(brick), 100 << 20));
    assert_eq!(
        lv.tags,
        [
            format!("aplo.brick={brick}"),
            format!("aplo.volume={volume}")
        ]
    );

    run(
        node,
        lvm::lvextend(OPTIONS, &vg, &lvm::lv_name(brick), 200 << 20),
    )
    .await;
    let full = lvm::parse_fullreport(&run(node, lvm::fullreport(OPTIONS)).await).unwrap();
    let lv = full.lvs.iter().find(|l| l.vg == vg).unwrap();
    assert_eq!(lv.size, 200 << 20);
    assert!(
        full.pvs
            .iter()
            .any(|p| p.name == disk.device && p.vg.as_deref() == Some(vg.as_str()))
    );

    run(node, lvm::lvremove(OPTIONS, &vg, &lvm::lv_name(brick))).await;
    run(node, lvm::vgremove(OPTIONS, &vg)).await;
    run(node, lvm::pvremove(OPTIONS, &disk.device)).await;
    let groups = lvm::parse_vgs(&run(node, lvm::vgs(OPTIONS)).await).unwrap();
    assert!(
        groups.iter().all(|g| g.name != vg),
        "nothing of ours is left: {groups:?}"
    );
    let pvs = lvm::parse_pvs(&run(node, lvm::pvs(OPTIONS)).await).unwrap();
    assert!(pvs.iter().all(|p| p.name != disk.device));
}
