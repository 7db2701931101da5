//! The CSI controller makes no change while heketi's admin mode is
//! read-only: CreateVolume, ControllerExpandVolume and DeleteVolume answer
//! UNAVAILABLE (the sidecars retry) with the reason, and work again once
//! the mode is back to normal. On the simulate driver, with the bundled
//! policies.

mod common;

use std::sync::Arc;

use aplo::csi::Controller;
use aplo::csi::proto::controller_server::Controller as _;
use aplo::csi::proto::volume_capability::{AccessMode, AccessType, MountVolume, access_mode};
use aplo::csi::proto::{
    CapacityRange, ControllerExpandVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest,
    VolumeCapability,
};
use aplo::engine::driver::SimDriver;
use aplo::engine::{Engine, EngineConfig, LoadOptions};
use aplo::model::GIB;
use aplo::model::storage::AdminMode;
use aplo::model::topology::parse_topology;
use aplo::store::{Change, MemoryStore, Store};
use tonic::{Code, Request};

const TOPOLOGY: &str = r#"{"clusters": [{"nodes": [
  {"node": {"hostnames": {"manage": ["n1"], "storage": ["10.0.0.1"]}, "zone": 1}, "devices": ["/dev/sdb"]},
  {"node": {"hostnames": {"manage": ["n2"], "storage": ["10.0.0.2"]}, "zone": 2}, "devices": ["/dev/sdb"]},
  {"node": {"hostnames": {"manage": ["n3"], "storage": ["10.0.0.3"]}, "zone": 3}, "devices": ["/dev/sdb"]}
]}]}"#;

fn create(name: &str) -> Request<CreateVolumeRequest> {
    Request::new(CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: GIB as i64,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![VolumeCapability {
            access_mode: Some(AccessMode {
                mode: access_mode::Mode::MultiNodeMultiWriter as i32,
            }),
            access_type: Some(AccessType::Mount(MountVolume::default())),
        }],
        ..CreateVolumeRequest::default()
    })
}

#[tokio::test]
async fn a_read_only_aplo_creates_grows_and_deletes_no_volume() {
    let store = Arc::new(MemoryStore::default());
    let engine = Engine::new(
        store.clone(),
        Arc::new(SimDriver::new(100 * GIB)),
        common::registry(),
        EngineConfig::default(),
    )
    .unwrap();
    engine
        .load_topology(&parse_topology(TOPOLOGY).unwrap(), LoadOptions::default())
        .await
        .unwrap();
    let engine = Arc::new(engine);
    let csi = Controller::new(engine.clone());
    let made = csi.create_volume(create("pvc-one")).await.unwrap();
    let id = made.into_inner().volume.unwrap().volume_id;

    store
        .write(&[Change::SetAdminMode(AdminMode::ReadOnly)])
        .unwrap();
    let refused = [
        csi.create_volume(create("pvc-two")).await.map(|_| ()),
        csi.controller_expand_volume(Request::new(ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: 2 * GIB as i64,
                limit_bytes: 0,
            }),
            ..ControllerExpandVolumeRequest::default()
        }))
        .await
        .map(|_| ()),
        csi.delete_volume(Request::new(DeleteVolumeRequest {
            volume_id: id.clone(),
            ..DeleteVolumeRequest::default()
        }))
        .await
        .map(|_| ()),
    ];
    for (call, result) in ["create", "expand", "delete"].iter().zip(refused) {
        let status = result.expect_err(call);
        assert_eq!(status.code(), Code::Unavailable, "{call}: {status:?}");
        assert!(status.message().contains("read-only"), "{call}: {status:?}");
    }
    assert_eq!(engine.volumes().len(), 1, "nothing was made or removed");
    assert_eq!(engine.volumes()[0].bytes, GIB, "nothing grew");

    // local-client limits remote REST clients only.
    store
        .write(&[Change::SetAdminMode(AdminMode::LocalClient)])
        .unwrap();
    csi.create_volume(create("pvc-two")).await.unwrap();
    store
        .write(&[Change::SetAdminMode(AdminMode::Normal)])
        .unwrap();
    csi.delete_volume(Request::new(DeleteVolumeRequest {
        volume_id: id,
        ..DeleteVolumeRequest::default()
    }))
    .await
    .unwrap();
    assert_eq!(engine.volumes().len(), 1);
}
