//! Mounting a volume for a pod on the real three-node cluster: aplo's CSI
//! node service (NodeStageVolume then NodePublishVolume over gRPC on a
//! unix socket, with kubelet's paths: its checks, one glusterfs FUSE mount,
//! its record, a bind mount) against a plain script doing `mount -t
//! glusterfs` with the same options plus `mount --bind`, interleaved in the
//! same run (rotating which goes first). Teardown is not timed.
//!
//! `cargo bench -p aplo-e2e --bench stage` runs 25 rounds and writes
//! `bench-stage.json` in cargo's target directory; under `cargo test` one
//! round runs as a check.

use std::process::Command;
use std::time::{Duration, Instant};

use aplo::engine::{CreateRequest, LoadOptions};
use aplo::model::GIB;
use aplo::model::topology::parse_topology;
use aplo_e2e::Cluster;
use aplo_e2e::csi::{Kubelet, PvSource};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn sh(script: &str, args: &[&str]) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .status()
        .expect("sh runs");
    assert!(status.success(), "{script} {args:?}: {status}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = if benching { 25 } else { 1 };
    let cluster = Cluster::start("bs", 3)
        .await
        .expect("the three-node cluster starts (needs root)");
    let dir = tempfile::tempdir().unwrap();
    let engine = cluster.engine(&dir.path().join("aplo.redb")).unwrap();
    let topology = parse_topology(&cluster.topology(&["4Gi"])).unwrap();
    engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    let volume = engine
        .create_volume(CreateRequest {
            name: Some("bench-stage".into()),
            bytes: GIB,
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    let hosts = engine.volume_hosts(volume.id);
    let pv = PvSource {
        handle: volume.id.to_string(),
        attributes: [
            ("hosts".to_owned(), hosts.join(",")),
            ("volume".to_owned(), volume.name.clone()),
        ]
        .into(),
        mount_options: Vec::new(),
    };
    let mut kubelet = Kubelet::start(dir.path()).await;

    // The script's paths and options: the same mount aplo makes.
    let plain = dir.path().join("plain");
    let staging = plain.join("staging");
    let target = plain.join("target");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let options = format!(
        "backup-volfile-servers={},log-file={}/plain.log,log-level=WARNING,auto_unmount",
        hosts[1..].join(":"),
        dir.path().display()
    );
    let source = format!("{}:/{}", hosts[0], volume.name);
    let script = "mount -t glusterfs -o \"$1\" \"$2\" \"$3\" && mount --bind \"$3\" \"$4\"";

    let mut aplo_times = Vec::new();
    let mut plain_times = Vec::new();
    for round in 0..rounds {
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let t = Instant::now();
                kubelet.stage(&pv).await.expect("stage");
                let published = kubelet
                    .publish(&pv, "pv-bench", "pod")
                    .await
                    .expect("publish");
                aplo_times.push(t.elapsed());
                assert!(published.join(".").exists());
                kubelet
                    .tear_down(&pv, "pv-bench", "pod")
                    .await
                    .expect("teardown");
            } else {
                let t = Instant::now();
                sh(
                    script,
                    &[
                        &options,
                        &source,
                        &staging.display().to_string(),
                        &target.display().to_string(),
                    ],
                );
                plain_times.push(t.elapsed());
                sh(
                    "umount \"$1\" && umount \"$2\"",
                    &[
                        &target.display().to_string(),
                        &staging.display().to_string(),
                    ],
                );
            }
        }
    }
    kubelet.stop().await;
    let (a, p) = (median(aplo_times), median(plain_times));
    let ratio = a.as_secs_f64() / p.as_secs_f64();
    println!(
        "stage+publish p50 over {rounds} rounds: aplo {:.1} ms, plain script {:.1} ms, ratio {ratio:.2}x",
        a.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3
    );
    if benching {
        let json = format!(
            r#"{{"rounds": {rounds}, "aplo_p50_ms": {:.2}, "script_p50_ms": {:.2}, "ratio": {ratio:.3}}}"#,
            a.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3
        );
        aplo_e2e::write_bench_results("stage", &json);
    }
    engine.delete_volume("bench-stage").await.unwrap();
}
