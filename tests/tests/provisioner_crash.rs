//! `aplo serve` (the fault-injection build) killed with SIGKILL in the
//! middle of provisioning, then restarted: the claim is bound once, with
//! exactly one backend volume, and a volume whose claim went away while
//! the provisioner was down is removed, not orphaned.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aplo::engine::FaultPoint;
use aplo::model::journal::OperationKind;

use aplo_e2e::kube::{World, sim_topology};
use kube::api::DeleteParams;

const WAIT: Duration = Duration::from_secs(60);

struct Files {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    db: PathBuf,
    topology: PathBuf,
}

fn files(world: &World) -> Files {
    let dir = tempfile::tempdir().unwrap();
    // `aplo serve` as aplo's ServiceAccount, under deploy/base's RBAC.
    let kubeconfig = world.aplo_kubeconfig.clone();
    let topology = dir.path().join("topology.json");
    std::fs::write(&topology, sim_topology(3)).unwrap();
    Files {
        db: dir.path().join("aplo.redb"),
        kubeconfig,
        topology,
        _dir: dir,
    }
}

fn aplo(files: &Files, fault: Option<FaultPoint>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aplo-faulty"));
    cmd.arg("--db").arg(&files.db).args(["--log", "warn"]);
    if let Some(point) = fault {
        cmd.arg("--fault-at").arg(point.to_string());
    }
    cmd
}

fn serve(files: &Files, fault: Option<FaultPoint>) -> Child {
    aplo(files, fault)
        .args([
            "serve",
            "--driver",
            "simulate",
            "--no-leader-election",
            "--listen",
            "127.0.0.1:0",
            "--sweep-interval",
            "1",
        ])
        .arg("--kubeconfig")
        .arg(&files.kubeconfig)
        .arg("--topology")
        .arg(&files.topology)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aplo-faulty serve starts")
}

fn kill_at_fault(child: Child, point: FaultPoint) {
    aplo_e2e::kill_at_fault(child, &point.to_string(), WAIT);
}

/// Stop gracefully with SIGTERM and check the exit.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut rest);
    }
    assert!(exit.success(), "aplo serve exited with {exit}:\n{rest}");
}

/// The backend volumes in the store (the server must not be running).
fn volumes(files: &Files) -> Vec<String> {
    let out = aplo(files, None)
        .args(["volume", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn restart_and_bind(world: &World, files: &Files, uid: &str) {
    let mut child = serve(files, None);
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[aplo serve] {line}");
        }
    });
    world.wait_bound("default", &["data".into()], WAIT).await;
    let pvs = world.pvs().await;
    assert_eq!(pvs.len(), 1, "exactly one PV");
    assert_eq!(
        pvs[0].metadata.name.as_deref(),
        Some(format!("pvc-{uid}").as_str())
    );
    terminate(child);
    assert_eq!(
        volumes(files),
        vec![format!("pvc-{uid}")],
        "exactly one volume"
    );
}

async fn crash_then_bind(point: FaultPoint) {
    let world = World::start().await;
    world.class("gold", &[], "Delete").await;
    let files = files(&world);
    let child = serve(&files, Some(point));
    let uid = world.claim("default", "data", "gold", "1Gi").await;
    let killed = tokio::task::spawn_blocking(move || kill_at_fault(child, point));
    killed.await.unwrap();
    restart_and_bind(&world, &files, &uid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_after_the_volume_was_journaled_binds_once_after_restart() {
    crash_then_bind(FaultPoint::Journaled(OperationKind::CreateVolume)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_between_the_volume_and_the_pv_binds_once_after_restart() {
    crash_then_bind(FaultPoint::VolumeCreated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_volume_whose_claim_left_during_the_crash_is_removed() {
    let world = World::start().await;
    world.class("gold", &[], "Delete").await;
    let files = files(&world);
    let child = serve(&files, Some(FaultPoint::VolumeCreated));
    let uid = world.claim("default", "data", "gold", "1Gi").await;
    tokio::task::spawn_blocking(move || kill_at_fault(child, FaultPoint::VolumeCreated))
        .await
        .unwrap();
    assert_eq!(
        volumes(&files),
        vec![format!("pvc-{uid}")],
        "the crash left a volume"
    );
    world
        .claims("default")
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    // The sweep runs at start and every second. The store can be read only
    // while the server is down, so on a loaded machine look again after
    // each of up to ten runs of three seconds.
    for _ in 0..10 {
        let child = serve(&files, None);
        tokio::time::sleep(Duration::from_secs(3)).await;
        terminate(child);
        if volumes(&files).is_empty() {
            break;
        }
    }
    assert!(
        volumes(&files).is_empty(),
        "the orphaned volume was removed"
    );
    let pvs = world.pvs().await;
    assert!(
        pvs.is_empty(),
        "no PV was made for a deleted claim: {pvs:?}"
    );
}
