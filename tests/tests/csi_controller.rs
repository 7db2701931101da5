//! aplo's CSI controller service on a real three-node gluster cluster, as
//! external-provisioner and external-resizer call it: the StorageClass's
//! parameters choose the policies, `--extra-create-metadata` names the
//! claim (so quota works), retries are idempotent, the volume's topology
//! is its bricks' zones, and bad requests are refused with nothing made.

use std::collections::HashMap;
use std::path::Path;

use aplo::csi::proto::controller_client::ControllerClient;
use aplo::csi::proto::*;
use aplo::exec::command::Executor;
use aplo_e2e::Cluster;
use aplo_e2e::csi::{Plugin, PluginDirs, capability};
use tonic::Code;
use tonic::transport::Channel;

const APLO: &str = env!("CARGO_BIN_EXE_aplo-faulty");
const GIB: i64 = 1 << 30;

fn create(name: &str, gib: i64, parameters: &[(&str, &str)]) -> CreateVolumeRequest {
    CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: gib * GIB,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![capability(&[])],
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// The parameters external-provisioner sends for a claim with
/// `--extra-create-metadata`, on top of the class's.
fn for_claim<'a>(
    namespace: &'a str,
    claim: &'a str,
    class: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = class.to_vec();
    all.extend([
        ("csi.storage.k8s.io/pvc/name", claim),
        ("csi.storage.k8s.io/pvc/namespace", namespace),
        ("csi.storage.k8s.io/pv/name", "pvc-ignored"),
    ]);
    all
}

async fn volume_info(cluster: &Cluster, name: &str) -> String {
    let out = cluster.nodes[0]
        .exec
        .run(&aplo::exec::command::Cmd::new("gluster").args(["volume", "info", name]))
        .await
        .expect("gluster volume info");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_creates_through_the_policies() {
    let cluster = Cluster::start("csk", 3)
        .await
        .expect("the three-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let dirs = PluginDirs::under(dir.path());
    let mut plugin = Plugin::on_cluster(
        Path::new(APLO),
        &cluster,
        dir.path(),
        &dirs,
        "6Gi",
        "controller",
    );
    plugin.ready_identity().await;
    let mut controller: ControllerClient<Channel> =
        ControllerClient::connect(format!("unix://{}", plugin.socket.display()))
            .await
            .unwrap();

    // A claim through the default policies: replica 3 across the zones.
    let first = controller
        .create_volume(create("pvc-aaaa", 1, &for_claim("team-a", "data", &[])))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(first.capacity_bytes, GIB);
    assert_eq!(first.volume_context["volume"], "pvc-aaaa");
    let hosts: Vec<&str> = first.volume_context["hosts"].split(',').collect();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    let zones: Vec<&str> = first
        .accessible_topology
        .iter()
        .map(|t| t.segments["topology.kubernetes.io/zone"].as_str())
        .collect();
    assert_eq!(zones, vec!["1", "2", "3"], "the bricks' zones");
    assert!(
        volume_info(&cluster, "pvc-aaaa")
            .await
            .contains("1 x 3 = 3")
    );

    // A retry finds the same volume; a bigger one by the same name is a
    // conflict.
    let again = controller
        .create_volume(create("pvc-aaaa", 1, &for_claim("team-a", "data", &[])))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(again.volume_id, first.volume_id);
    let mut bigger = create("pvc-aaaa", 2, &[]);
    bigger.capacity_range.as_mut().unwrap().limit_bytes = 2 * GIB;
    let status = controller.create_volume(bigger).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    // One StorageClass parameter swaps the durability decision.
    let arbiter = controller
        .create_volume(create(
            "pvc-bbbb",
            1,
            &for_claim("team-a", "logs", &[("classes.class", "arbiter")]),
        ))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert!(
        volume_info(&cluster, "pvc-bbbb")
            .await
            .contains("1 x (2 + 1) = 3"),
        "an arbiter volume"
    );

    // Quota sees the claim's namespace from the sidecar's metadata: one
    // volume per namespace, so team-a's next claim is refused, with the
    // policy's words, and team-b's is not.
    let quota = [
        ("quota", "namespace-quota"),
        ("namespace-quota.max-volumes", "2"),
    ];
    let status = controller
        .create_volume(create("pvc-cccc", 1, &for_claim("team-a", "more", &quota)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("namespace-quota") && status.message().contains("team-a"),
        "{}",
        status.message()
    );
    assert!(!volume_info(&cluster, "all").await.contains("pvc-cccc"));
    let team_b = controller
        .create_volume(create("pvc-dddd", 1, &for_claim("team-b", "x", &quota)))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();

    // Bad requests: nothing is made.
    for (request, code, words) in [
        (
            create("pvc-eeee", 1, &[("placement", "no-such-policy")]),
            Code::InvalidArgument,
            "no-such-policy",
        ),
        (
            create("pvc-eeee", 1, &[("volumeSource", "glusterfs")]),
            Code::InvalidArgument,
            "volumeSource",
        ),
        (
            create("pvc-eeee", 1, &[("some.vendor/key", "x")]),
            Code::InvalidArgument,
            "some.vendor/key",
        ),
        (
            CreateVolumeRequest {
                volume_capabilities: vec![],
                ..create("pvc-eeee", 1, &[])
            },
            Code::InvalidArgument,
            "volume_capabilities",
        ),
        (create("pvc-eeee", 100, &[]), Code::ResourceExhausted, ""),
    ] {
        let status = controller.create_volume(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(words), "{}", status.message());
    }
    assert!(!volume_info(&cluster, "all").await.contains("pvc-eeee"));

    // ListVolumes, one entry per page.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = controller
            .list_volumes(ListVolumesRequest {
                max_entries: 1,
                starting_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 1);
        seen.extend(
            page.entries
                .into_iter()
                .map(|e| e.volume.unwrap().volume_id),
        );
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    let mut want = vec![
        first.volume_id.clone(),
        arbiter.volume_id.clone(),
        team_b.volume_id.clone(),
    ];
    want.sort();
    assert_eq!(seen, want);
    let status = controller
        .list_volumes(ListVolumesRequest {
            max_entries: 1,
            starting_token: "garbage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    // Capacity: one zone holds a third of the pool's free space.
    let capacity = |zone: Option<&str>| GetCapacityRequest {
        volume_capabilities: vec![capability(&[])],
        parameters: HashMap::new(),
        accessible_topology: zone.map(|z| Topology {
            segments: HashMap::from([("topology.kubernetes.io/zone".into(), z.into())]),
        }),
    };
    let all = controller
        .get_capacity(capacity(None))
        .await
        .unwrap()
        .into_inner()
        .available_capacity;
    let one = controller
        .get_capacity(capacity(Some("2")))
        .await
        .unwrap()
        .into_inner()
        .available_capacity;
    assert!(one > 0 && (one - all / 3).abs() < GIB / 2, "{one} of {all}");

    // Expansion as external-resizer asks it: exact, no node step.
    let expanded = controller
        .controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: first.volume_id.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: 2 * GIB,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (expanded.capacity_bytes, expanded.node_expansion_required),
        (2 * GIB, false)
    );

    // Delete: twice, and an unknown id, are all success.
    for id in [&first.volume_id, &first.volume_id, &"unknown-id".to_owned()] {
        controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: id.clone(),
                secrets: HashMap::new(),
            })
            .await
            .unwrap();
    }
    assert!(!volume_info(&cluster, "all").await.contains("pvc-aaaa"));
    for id in [&arbiter.volume_id, &team_b.volume_id] {
        controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: id.clone(),
                secrets: HashMap::new(),
            })
            .await
            .unwrap();
    }
    assert_eq!(cluster.volume_names().await, Vec::<String>::new());
    assert!(
        cluster.brick_leftovers().is_empty(),
        "{:?}",
        cluster.brick_leftovers()
    );
    assert!(plugin.running());
}
