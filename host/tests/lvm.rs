//! LVM command lines against real lvm2 on a loop device. This kernel has no
//! device-mapper, so the commands run with activation off (metadata only);
//! thin pools cannot be created at all here, so their command lines are
//! checked for shape in unit tests only.

mod common;

use std::time::Duration;

use aplo::exec::command::{Cmd, ExecError, Executor, NodeExecutor, Transport};
use aplo::exec::lvm::{self, LvmFailure, LvmOptions};
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

/// What lvm2 says when aplo's commands meet what is already there, or
/// is not, read as [`LvmFailure`]s from the live tool (the same cases
/// are captured under `tests/data/lvm/` for the unit tests).
#[tokio::test]
async fn lvm_failures_are_classified_from_the_live_tool() {
    let disk = Loop::new(1 << 30).await;
    let node = &disk.node;
    let (device, brick, volume) = (Id(0xd1d1), Id(0xb2), Id(0x71));
    let vg = lvm::vg_name(device);
    let failure = |result: Result<_, ExecError>| match result {
        Ok(_) => panic!("the command succeeded"),
        Err(e) => lvm::failure_of(&e).unwrap_or_else(|| panic!("{e}")),
    };

    assert_eq!(
        failure(node.run(&lvm::vgremove(OPTIONS, &vg)).await),
        LvmFailure::VgNotFound
    );
    run(node, lvm::pvcreate(OPTIONS, &disk.device)).await;
    run(node, lvm::vgcreate(OPTIONS, device, &disk.device)).await;
    assert_eq!(
        failure(
            node.run(&lvm::vgcreate(OPTIONS, device, &disk.device))
                .await
        ),
        LvmFailure::VgExists
    );
    assert_eq!(
        failure(node.run(&lvm::pvremove(OPTIONS, &disk.device)).await),
        LvmFailure::InVolumeGroup
    );
    let create = lvm::plain_lv_create(OPTIONS, device, brick, volume, 100 << 20);
    run(node, create.clone()).await;
    assert_eq!(failure(node.run(&create).await), LvmFailure::LvExists);
    assert_eq!(
        failure(
            node.run(&lvm::plain_lv_create(
                OPTIONS,
                device,
                Id(0xb3),
                volume,
                4 << 30
            ))
            .await
        ),
        LvmFailure::InsufficientSpace
    );
    assert_eq!(
        failure(
            node.run(&lvm::lvremove(OPTIONS, &vg, &lvm::lv_name(Id(0xb3))))
                .await
        ),
        LvmFailure::LvNotFound
    );

    run(node, lvm::lvremove(OPTIONS, &vg, &lvm::lv_name(brick))).await;
    run(node, lvm::vgremove(OPTIONS, &vg)).await;
    run(node, lvm::pvremove(OPTIONS, &disk.device)).await;
}

/// The engine adds and removes an `lvm-thin` device through real lvm2:
/// `pvcreate` and `vgcreate vg_aplo_<id>` tagged with the device id, the
/// capacity read back from `vgs` (less the thin-pool metadata reserve), then
/// `vgremove` and `pvremove`. A second add of a missing device is refused
/// with nothing kept.
#[tokio::test]
async fn the_engine_adds_and_removes_an_lvm_device() {
    use aplo::engine::driver::{CommandConfig, CommandDriver, Connections, Reach};
    use aplo::engine::{Engine, EngineConfig, EngineError};
    use aplo::model::storage::{Backend, ClusterRecord, NodeRecord};
    use aplo::model::topology::DeviceSpec;
    use aplo::store::{Change, MemoryStore, Store};

    let disk = Loop::new(1 << 30).await;
    let store = std::sync::Arc::new(MemoryStore::default());
    let (cluster, node) = (Id(1), Id(2));
    store
        .write(&[
            Change::PutCluster(ClusterRecord {
                id: cluster,
                file: true,
                block: false,
            }),
            Change::PutNode(NodeRecord {
                id: node,
                cluster,
                manage: "local".into(),
                storage: "127.0.0.1".into(),
                zone: "1".into(),
                state: aplo::model::State::Online,
                tags: Default::default(),
            }),
        ])
        .unwrap();
    let driver = CommandDriver::new(
        Connections::new(Reach::Local, Default::default()),
        CommandConfig {
            lvm: OPTIONS,
            ..CommandConfig::default()
        },
    );
    let engine = Engine::new(
        store.clone(),
        std::sync::Arc::new(driver),
        common::registry(),
        EngineConfig::default(),
    )
    .unwrap();
    let spec = |name: &str| DeviceSpec {
        name: name.into(),
        destroy_data: true,
        tags: Default::default(),
    };
    let device = engine
        .add_device(node, &spec(&disk.device), Backend::LvmThin)
        .await
        .expect("pvcreate and vgcreate on the loop device");
    assert_eq!(device.state, aplo::model::State::Online);
    let groups = lvm::parse_vgs(&run(&disk.node, lvm::vgs(OPTIONS)).await).unwrap();
    let group = groups
        .iter()
        .find(|g| g.name == lvm::vg_name(device.id))
        .expect("aplo's volume group");
    assert!(group.tags.contains(&format!("aplo.device={}", device.id)));
    assert_eq!(
        device.total_bytes,
        aplo::engine::driver::usable_vg_bytes(group.free)
    );
    assert!(device.total_bytes > 700 << 20 && device.total_bytes < 1 << 30);

    let err = engine
        .add_device(node, &spec("/dev/aplo-no-such-disk"), Backend::LvmThin)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = engine
        .add_device(node, &spec("relative/disk"), Backend::LvmThin)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("under /dev/"), "{err}");
    assert_eq!(store.read().unwrap().devices.len(), 1);
    assert!(store.read().unwrap().operations.is_empty());

    engine.remove_device("local", &disk.device).await.unwrap();
    let groups = lvm::parse_vgs(&run(&disk.node, lvm::vgs(OPTIONS)).await).unwrap();
    assert!(groups.iter().all(|g| g.name != lvm::vg_name(device.id)));
    let pvs = lvm::parse_pvs(&run(&disk.node, lvm::pvs(OPTIONS)).await).unwrap();
    assert!(
        pvs.iter().all(|p| p.name != disk.device),
        "pvremove ran: {pvs:?}"
    );
    assert!(store.read().unwrap().devices.is_empty());
}
