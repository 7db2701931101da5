//! aplo's CSI node plugin on a real three-node gluster cluster with real
//! FUSE mounts: `aplo csi --role node` runs as its own process on a unix
//! socket and is called as kubelet calls it, with kubelet's paths.
//!
//! - kubelet's call order, every call made twice, a read-only publish,
//!   stats after writing, expansion seen by the client, teardown leaving
//!   nothing mounted;
//! - bad input refused with nothing mounted;
//! - staging with the first gluster server down (backup-volfile-servers);
//! - a SIGKILLed glusterfs client: stats report it, stage and publish
//!   mount it again in place;
//! - the plugin's "container" (a cgroup) killed while a volume is
//!   published: writes continue, and a restarted plugin unpublishes and
//!   unstages. Without `--client-cgroup` the same kill takes the client
//!   down, which shows the test can fail.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aplo::csi::proto::node_client::NodeClient;
use aplo::csi::proto::volume_usage::Unit;
use aplo::csi::proto::*;
use aplo::engine::{CreateRequest, Engine, LoadOptions};
use aplo::model::topology::parse_topology;
use aplo::model::{GIB, MIB, Pairs};
use aplo_e2e::Cluster;
use aplo_e2e::csi::{Cgroup, Plugin, PluginDirs, capability, client_pids, mounts_under};
use tonic::Code;
use tonic::transport::Channel;

const PLUGIN: &str = env!("CARGO_BIN_EXE_aplo-faulty");

/// A volume as its PV carries it.
struct Pv {
    handle: String,
    name: String,
    context: HashMap<String, String>,
}

/// Clients notice a lost server after the ping timeout (42 s by default).
fn parameters() -> Pairs {
    [("classes.replica3.options", "network.ping-timeout=5")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn cluster_with_volumes(tag: &str, dir: &Path, names: &[&str]) -> (Cluster, Engine, Vec<Pv>) {
    let cluster = Cluster::start(tag, 3)
        .await
        .expect("the three-node cluster starts");
    let engine = cluster.engine(&dir.join("aplo.redb")).unwrap();
    let topology = parse_topology(&cluster.topology(&["4Gi"])).unwrap();
    let report = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    let mut pvs = Vec::new();
    for name in names {
        let record = engine
            .create_volume(CreateRequest {
                name: Some((*name).into()),
                bytes: 512 * MIB,
                parameters: parameters(),
                ..CreateRequest::default()
            })
            .await
            .unwrap();
        let hosts = engine.volume_hosts(record.id);
        assert_eq!(hosts.len(), 3, "{hosts:?}");
        pvs.push(Pv {
            handle: record.id.to_string(),
            name: record.name.clone(),
            context: HashMap::from([
                ("hosts".into(), hosts.join(",")),
                ("volume".into(), record.name.clone()),
            ]),
        });
    }
    (cluster, engine, pvs)
}

fn stage_request(dirs: &PluginDirs, pv: &Pv) -> NodeStageVolumeRequest {
    NodeStageVolumeRequest {
        volume_id: pv.handle.clone(),
        staging_target_path: dirs.staging(&pv.handle).display().to_string(),
        volume_capability: Some(capability(&[])),
        volume_context: pv.context.clone(),
        ..Default::default()
    }
}

fn publish_request(
    dirs: &PluginDirs,
    pv: &Pv,
    target: &Path,
    readonly: bool,
) -> NodePublishVolumeRequest {
    NodePublishVolumeRequest {
        volume_id: pv.handle.clone(),
        staging_target_path: dirs.staging(&pv.handle).display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(capability(&[])),
        readonly,
        volume_context: pv.context.clone(),
        ..Default::default()
    }
}

/// Stage as kubelet does: it makes `globalmount` itself first (which
/// fails on a dead mount; kubelet retries, and the driver recovers).
async fn stage(node: &mut NodeClient<Channel>, dirs: &PluginDirs, pv: &Pv) {
    let _ = std::fs::create_dir_all(dirs.staging(&pv.handle));
    node.node_stage_volume(stage_request(dirs, pv))
        .await
        .unwrap();
}

/// Publish as kubelet does: it makes the target's parent, the driver the
/// target.
async fn publish(
    node: &mut NodeClient<Channel>,
    dirs: &PluginDirs,
    pv: &Pv,
    target: &Path,
    readonly: bool,
) {
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    node.node_publish_volume(publish_request(dirs, pv, target, readonly))
        .await
        .unwrap();
}

async fn unpublish(node: &mut NodeClient<Channel>, pv: &Pv, target: &Path) {
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: pv.handle.clone(),
        target_path: target.display().to_string(),
    })
    .await
    .unwrap();
}

async fn unstage(node: &mut NodeClient<Channel>, dirs: &PluginDirs, pv: &Pv) {
    node.node_unstage_volume(NodeUnstageVolumeRequest {
        volume_id: pv.handle.clone(),
        staging_target_path: dirs.staging(&pv.handle).display().to_string(),
    })
    .await
    .unwrap();
}

async fn stats(node: &mut NodeClient<Channel>, pv: &Pv, path: &Path) -> NodeGetVolumeStatsResponse {
    node.node_get_volume_stats(NodeGetVolumeStatsRequest {
        volume_id: pv.handle.clone(),
        volume_path: path.display().to_string(),
        staging_target_path: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn usage(reply: &NodeGetVolumeStatsResponse, unit: Unit) -> &VolumeUsage {
    reply
        .usage
        .iter()
        .find(|u| u.unit == unit as i32)
        .unwrap_or_else(|| panic!("no {unit:?} usage in {reply:?}"))
}

fn abnormal(reply: &NodeGetVolumeStatsResponse) -> bool {
    reply
        .volume_condition
        .as_ref()
        .expect("a volume condition")
        .abnormal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubelet_calls_mount_and_unmount_a_real_volume() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, engine, pvs) = cluster_with_volumes("csa", dir.path(), &["csi-a"]).await;
    let pv = &pvs[0];
    let dirs = PluginDirs::under(dir.path());
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &[], None);
    let mut node = plugin.ready().await;

    // kubelet first asks what the node service offers.
    let capabilities = node
        .node_get_capabilities(NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capabilities.capabilities.len(), 5, "{capabilities:?}");
    let info = node
        .node_get_info(NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.node_id, "node-a");

    // Stage twice: one FUSE mount.
    stage(&mut node, &dirs, pv).await;
    stage(&mut node, &dirs, pv).await;
    let staging = dirs.staging(&pv.handle);
    assert_eq!(mounts_under(&staging), vec![staging.display().to_string()]);
    assert_eq!(
        client_pids(&staging).len(),
        2,
        "a client and its auto_unmount helper"
    );
    let log = dirs.logs.join(format!("{}.log", pv.name));
    assert!(log.exists(), "the client logs to {}", log.display());

    // Publish read-write to one pod and read-only to another, each twice.
    let rw = dirs.target("pod-rw", "pv-a");
    let ro = dirs.target("pod-ro", "pv-a");
    for _ in 0..2 {
        publish(&mut node, &dirs, pv, &rw, false).await;
        publish(&mut node, &dirs, pv, &ro, true).await;
    }
    assert_eq!(mounts_under(&rw), vec![rw.display().to_string()]);
    assert_eq!(mounts_under(&ro), vec![ro.display().to_string()]);
    std::fs::write(rw.join("index.html"), "I love GlusterFS!\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(ro.join("index.html")).unwrap(),
        "I love GlusterFS!\n"
    );
    let refused = std::fs::write(ro.join("nope"), "x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");
    // Publishing the same target read-write now is a conflict.
    let conflict = node
        .node_publish_volume(publish_request(&dirs, pv, &ro, false))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists, "{conflict:?}");

    // Stats after writing: the volume's size, more used than before.
    let before = stats(&mut node, pv, &rw).await;
    assert!(!abnormal(&before), "{before:?}");
    let total = usage(&before, Unit::Bytes).total;
    // At least what was asked (a brick's filesystem may hold more).
    assert!(total >= 480 * MIB as i64, "{before:?}");
    std::fs::write(rw.join("blob"), vec![7u8; 64 * MIB as usize]).unwrap();
    let after = stats(&mut node, pv, &rw).await;
    let grown = usage(&after, Unit::Bytes).used - usage(&before, Unit::Bytes).used;
    assert!(
        grown >= 60 * MIB as i64,
        "used grew by {grown}: {before:?} then {after:?}"
    );
    assert!(
        usage(&after, Unit::Inodes).used > usage(&before, Unit::Inodes).used
            || usage(&after, Unit::Inodes).total > 0
    );

    // Expansion: the engine grows the volume, the mounted client sees it.
    let bigger = engine.volume(&pv.name).unwrap().0.bytes + GIB;
    engine.expand_volume(&pv.name, bigger).await.unwrap();
    let expanded = node
        .node_expand_volume(NodeExpandVolumeRequest {
            volume_id: pv.handle.clone(),
            volume_path: rw.display().to_string(),
            capacity_range: Some(CapacityRange {
                required_bytes: bigger as i64,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expanded.capacity_bytes, bigger as i64);
    let seen = usage(&stats(&mut node, pv, &rw).await, Unit::Bytes).total;
    assert!(
        seen > total,
        "the client sees {seen} bytes after the expansion, {total} before"
    );

    // Teardown, every call twice: nothing left mounted, targets removed.
    for _ in 0..2 {
        unpublish(&mut node, pv, &rw).await;
        unpublish(&mut node, pv, &ro).await;
    }
    assert!(!rw.exists() && !ro.exists());
    for _ in 0..2 {
        unstage(&mut node, &dirs, pv).await;
    }
    assert_eq!(mounts_under(&dirs.kubelet), Vec::<String>::new());
    assert!(client_pids(&staging).is_empty(), "the client exited");
    // Stats on a path no longer published: NotFound.
    let gone = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: pv.handle.clone(),
            volume_path: rw.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    // Staging with the first server down: the client fetches the volume
    // file from a backup server.
    cluster.nodes[0].disconnect().unwrap();
    let first = pv.context["hosts"].split(',').next().unwrap().to_owned();
    assert_eq!(
        first, cluster.nodes[0].address,
        "the first host is the one cut off"
    );
    stage(&mut node, &dirs, pv).await;
    std::fs::create_dir_all(rw.parent().unwrap()).unwrap();
    publish(&mut node, &dirs, pv, &rw, false).await;
    assert_eq!(
        std::fs::read_to_string(rw.join("index.html")).unwrap(),
        "I love GlusterFS!\n"
    );
    unpublish(&mut node, pv, &rw).await;
    unstage(&mut node, &dirs, pv).await;
    cluster.nodes[0].reconnect().unwrap();
    assert_eq!(mounts_under(&dirs.kubelet), Vec::<String>::new());
    assert!(plugin.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_refused_with_nothing_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, _engine, pvs) = cluster_with_volumes("csb", dir.path(), &["csi-b"]).await;
    let pv = &pvs[0];
    let dirs = PluginDirs::under(dir.path());
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &[], None);
    let mut node = plugin.ready().await;
    let staging = dirs.staging(&pv.handle);
    std::fs::create_dir_all(&staging).unwrap();

    let refused = |request: NodeStageVolumeRequest| {
        let mut node = node.clone();
        async move { node.node_stage_volume(request).await.unwrap_err() }
    };
    let expect = |status: tonic::Status, code: Code, words: &str| {
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(words),
            "'{words}' not in: {}",
            status.message()
        );
    };

    // A missing volume_context key.
    for key in ["hosts", "volume"] {
        let mut request = stage_request(&dirs, pv);
        request.volume_context.remove(key);
        expect(
            refused(request).await,
            Code::InvalidArgument,
            &format!("volume_context has no '{key}'"),
        );
    }
    // Relative paths, '..', and a path outside the kubelet directory.
    for (path, words) in [
        ("relative/globalmount".to_owned(), "absolute"),
        (format!("{}/../../etc", dirs.kubelet.display()), ".."),
        ("/tmp/elsewhere".to_owned(), "outside the kubelet directory"),
    ] {
        let mut request = stage_request(&dirs, pv);
        request.staging_target_path = path;
        expect(refused(request).await, Code::InvalidArgument, words);
    }
    // A volume name with shell characters, and a host that is an option.
    let mut request = stage_request(&dirs, pv);
    request
        .volume_context
        .insert("volume".into(), "csi-b;touch /tmp/pwned".into());
    expect(refused(request).await, Code::InvalidArgument, "volume");
    let mut request = stage_request(&dirs, pv);
    request.volume_context.insert(
        "hosts".into(),
        format!(
            "-oremount,{}",
            pv.context["hosts"].split(',').nth(1).unwrap()
        ),
    );
    expect(refused(request).await, Code::InvalidArgument, "hosts[0]");
    // A block capability and a missing capability.
    let mut request = stage_request(&dirs, pv);
    request.volume_capability = Some(VolumeCapability {
        access_type: Some(volume_capability::AccessType::Block(
            volume_capability::BlockVolume {},
        )),
        access_mode: None,
    });
    expect(refused(request).await, Code::InvalidArgument, "block");
    let mut request = stage_request(&dirs, pv);
    request.volume_capability = None;
    expect(
        refused(request).await,
        Code::InvalidArgument,
        "volume_capability",
    );
    // A mount flag that is an injection attempt.
    let mut request = stage_request(&dirs, pv);
    request.volume_capability = Some(capability(&["ro,remount"]));
    expect(
        refused(request).await,
        Code::InvalidArgument,
        "mount_flags[0]",
    );

    // An unknown volume: NotFound, with the client's own words.
    let mut request = stage_request(&dirs, pv);
    request
        .volume_context
        .insert("volume".into(), "no-such-volume".into());
    let status = refused(request).await;
    expect(status.clone(), Code::NotFound, "no-such-volume");
    assert!(
        status.message().contains("last lines of"),
        "{}",
        status.message()
    );
    // Stats for an unknown volume, and for a relative path: NotFound.
    for path in [
        "some/path".to_owned(),
        dirs.target("pod", "pv").display().to_string(),
    ] {
        let status = node
            .node_get_volume_stats(NodeGetVolumeStatsRequest {
                volume_id: "unknown".into(),
                volume_path: path,
                staging_target_path: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // Publishing outside the kubelet directory.
    let status = node
        .node_publish_volume(publish_request(
            &dirs,
            pv,
            Path::new("/tmp/evil/mount"),
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Unpublishing and unstaging what was never there: success.
    unpublish(&mut node, pv, &dirs.target("never", "pv")).await;
    unstage(&mut node, &dirs, pv).await;

    assert_eq!(mounts_under(&dirs.kubelet), Vec::<String>::new());
    assert!(!Path::new("/tmp/pwned").exists());
    assert!(!Path::new("/tmp/evil").exists());
    assert!(plugin.running());
}

/// SIGKILL the glusterfs client of a staged, published volume: the main
/// client only (as the OOM killer would; its `auto_unmount` helper then
/// detaches the staging mount), or with its helper too (the staging mount
/// stays, dead).
fn kill_client(staging: &Path, with_helper: bool) {
    let pids = client_pids(staging);
    assert!(!pids.is_empty(), "no client for {}", staging.display());
    let parent = |pid: i32| -> i32 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    };
    for pid in &pids {
        // The helper is the main client's child.
        let main = !pids.contains(&parent(*pid));
        if main || with_helper {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// Whether a read failed as reads through a dead FUSE connection fail:
/// ENOTCONN (107) or ECONNABORTED (103).
fn dead(read: &Result<String, i32>) -> bool {
    matches!(read, Err(107 | 103))
}

/// Whether `path` answers a read of `file`, or what it says instead.
fn read(path: &Path, file: &str) -> Result<String, i32> {
    std::fs::read_to_string(path.join(file)).map_err(|e| e.raw_os_error().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_clients_are_reported_and_remounted_and_clients_outlive_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, _engine, pvs) =
        cluster_with_volumes("csc", dir.path(), &["csi-c", "csi-d"]).await;
    let dirs = PluginDirs::under(dir.path());
    let clients = Cgroup::new("clients");
    // The clients' cgroup is made by the plugin under every hierarchy
    // (`--client-cgroup-root`), with the name of the test's `clients`
    // cgroup, so that the test sees and cleans up the pids one.
    let survive = vec![
        "--client-cgroup-root".to_owned(),
        "/sys/fs/cgroup".to_owned(),
        "--client-cgroup-name".to_owned(),
        clients
            .dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ];

    // --- A SIGKILLed client: reported, then mounted again in place. ---
    let container = Cgroup::new("plugin");
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &survive, Some(&container));
    let mut node = plugin.ready().await;
    let pv = &pvs[0];
    let target = dirs.target("pod-c", "pv-c");
    stage(&mut node, &dirs, pv).await;
    publish(&mut node, &dirs, pv, &target, false).await;
    std::fs::write(target.join("index.html"), "I love GlusterFS!\n").unwrap();
    let staging = dirs.staging(&pv.handle);
    kill_client(&staging, false);
    // The pod's bind mount now fails with ENOTCONN (107).
    let mut seen = Ok(String::new());
    for _ in 0..100 {
        seen = read(&target, "index.html");
        if seen.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead(&seen), "the dead client's mount: {seen:?}");
    // Stats report it, and mount it again in place: staged mount from the
    // node's record, the target bound anew.
    let reply = stats(&mut node, pv, &target).await;
    assert!(abnormal(&reply), "{reply:?}");
    let message = &reply.volume_condition.as_ref().unwrap().message;
    assert!(
        message.contains("client of this mount is gone")
            && message.contains("mounted again in place"),
        "{message}"
    );
    assert!(
        !reply.usage.is_empty(),
        "usage after the remount: {reply:?}"
    );
    assert_eq!(
        read(&target, "index.html"),
        Ok("I love GlusterFS!\n".into())
    );
    let reply = stats(&mut node, pv, &target).await;
    assert!(!abnormal(&reply), "{reply:?}");

    // The client and its helper killed: the staged mount stays, dead.
    // kubelet retries stage and publish: both mount again in place.
    kill_client(&staging, true);
    while !client_pids(&staging).is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead(&read(&target, "index.html")));
    stage(&mut node, &dirs, pv).await;
    publish(&mut node, &dirs, pv, &target, false).await;
    assert_eq!(
        read(&target, "index.html"),
        Ok("I love GlusterFS!\n".into())
    );

    // Publish alone also recovers: the record on the node says how to
    // mount it.
    kill_client(&staging, false);
    while !dead(&read(&target, "index.html")) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&mut node, &dirs, pv, &target, false).await;
    assert_eq!(
        read(&target, "index.html"),
        Ok("I love GlusterFS!\n".into())
    );

    // --- The plugin's container is killed while the volume is published. ---
    assert!(
        !clients.pids().is_empty(),
        "the client runs in the clients' cgroup"
    );
    container.kill_all();
    assert!(!plugin.running());
    plugin.reap();
    std::fs::write(target.join("after-kill.txt"), "still writing").unwrap();
    assert_eq!(read(&target, "after-kill.txt"), Ok("still writing".into()));
    // A new plugin (an upgrade) unpublishes and unstages.
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &survive, Some(&container));
    let mut node = plugin.ready().await;
    assert!(!abnormal(&stats(&mut node, pv, &target).await));
    unpublish(&mut node, pv, &target).await;
    unstage(&mut node, &dirs, pv).await;
    assert_eq!(mounts_under(&dirs.kubelet), Vec::<String>::new());
    drop(node);
    drop(plugin);
    container.kill_all();

    // --- The control: without --client-cgroup the client is in the
    // container's cgroup and dies with it. ---
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &[], Some(&container));
    let mut node = plugin.ready().await;
    let pv = &pvs[1];
    let target = dirs.target("pod-d", "pv-d");
    stage(&mut node, &dirs, pv).await;
    publish(&mut node, &dirs, pv, &target, false).await;
    std::fs::write(target.join("x"), "x").unwrap();
    container.kill_all();
    plugin.reap();
    let after = read(&target, "x");
    assert!(
        dead(&after),
        "the client died with the container: {after:?}"
    );
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &survive, None);
    let mut node = plugin.ready().await;
    assert!(abnormal(&stats(&mut node, pv, &target).await));
    unpublish(&mut node, pv, &target).await;
    unstage(&mut node, &dirs, pv).await;
    assert_eq!(mounts_under(&dirs.kubelet), Vec::<String>::new());
    assert!(plugin.running());
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The plugin registers itself as kubelet's plugin watcher expects (the
/// real kubelet is in the Kubernetes tests), answers its liveness probe,
/// fails it after kubelet refuses the registration, and removes its
/// registration socket when stopped, which is how kubelet learns it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_registers_itself_and_answers_its_health_probe() {
    use aplo::csi::registration::proto::registration_client::RegistrationClient;
    use aplo::csi::registration::proto::{InfoRequest, RegistrationStatus};

    let dir = tempfile::tempdir().unwrap();
    let dirs = PluginDirs::under(dir.path());
    let registry = dir.path().join("plugins_registry");
    std::fs::create_dir_all(&registry).unwrap();
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let extra = [
        "--registration-dir".to_owned(),
        registry.display().to_string(),
        "--kubelet-endpoint".to_owned(),
        "/var/lib/kubelet/plugins/glusterfs.aplo.dev/csi.sock".to_owned(),
        "--health-address".to_owned(),
        health.to_string(),
    ];
    let mut plugin = Plugin::start(Path::new(PLUGIN), &dirs, &extra, None);
    plugin.ready().await;
    let socket = registry.join("glusterfs.aplo.dev-reg.sock");
    let mut registration = RegistrationClient::connect(format!("unix://{}", socket.display()))
        .await
        .expect("the registration socket answers");
    let info = registration
        .get_info(InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, "CSIPlugin");
    assert_eq!(info.name, "glusterfs.aplo.dev");
    assert_eq!(
        info.endpoint,
        "/var/lib/kubelet/plugins/glusterfs.aplo.dev/csi.sock"
    );
    assert_eq!(info.supported_versions, vec!["1.0.0"]);

    let healthz = || aplo_e2e::http::call(health, "GET", "/healthz", None, "");
    let reply = healthz().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: false,
            error: "plugin name in use".into(),
        })
        .await
        .unwrap();
    let reply = healthz().await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(
        reply
            .body
            .contains("kubelet refused the registration: plugin name in use"),
        "{reply:?}"
    );

    // SIGTERM: both sockets go.
    let pid = plugin.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = plugin.wait();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the registration socket is removed");
    assert!(!plugin_socket_exists(&dirs));
}

fn plugin_socket_exists(dirs: &PluginDirs) -> bool {
    dirs.socket_dir.join("csi.sock").exists()
}
