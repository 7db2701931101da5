//! 1,000 claims through the provisioner against a real control plane (etcd,
//! kube-apiserver and kube-controller-manager built from source),
//! on the simulate executor: claims per second, and p50/p99 time from
//! creation to Bound; the controller's own CPU time and peak memory.
//!
//! The controller runs as its own process (`aplo serve --driver simulate`,
//! release build, a redb store on disk) so that its CPU and memory are its
//! own; the claim writer runs here, the control plane in its own processes.
//! Results go to stdout and `bench-provisioner.json` in cargo's target
//! directory.
//!
//! `cargo bench -p aplo-e2e --bench provisioner [-- --claims N --writers N --kcm-qps N]`;
//! under `cargo test`, 30 claims run as a check.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplo_e2e::kube::{World, claim, sim_topology};
use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::PostParams;
use kube::runtime::watcher;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime in seconds, and peak RSS in bytes, of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of the command name: state is field 3; utime and
    // stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // /proc reports CPU time in clock ticks of 100 Hz on Linux.
    let cpu = (ticks(14) + ticks(15)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    (cpu, hwm)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // Under `cargo test` (no `--bench`), a small run checks that the
    // benchmark works.
    let benching = std::env::args().any(|a| a == "--bench");
    let claims = arg("--claims", if benching { 1000 } else { 30 });
    let writers = arg("--writers", 20);
    // kube-controller-manager's client rate (its PV binder makes about
    // four writes per claim): its default of 20/s unless `--kcm-qps N`.
    let kcm_qps = arg("--kcm-qps", 0);
    let world = World::start_with(aplo_e2e::k8s::Options {
        controller_qps: (kcm_qps > 0).then(|| (kcm_qps as u32, kcm_qps as u32 * 3 / 2)),
        ..aplo_e2e::k8s::Options::default()
    })
    .await;
    world
        .class("bench", &[("classes.class", "replica3")], "Delete")
        .await;
    let dir = tempfile::tempdir().unwrap();
    // `aplo serve` as aplo's ServiceAccount, under deploy/base's RBAC.
    let kubeconfig = world.aplo_kubeconfig.clone();
    let topology = dir.path().join("topology.json");
    std::fs::write(&topology, sim_topology(12)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_aplo-faulty"))
        .arg("--db")
        .arg(dir.path().join("aplo.redb"))
        .args([
            "--log",
            "warn",
            "serve",
            "--driver",
            "simulate",
            "--no-leader-election",
        ])
        .args(["--listen", "127.0.0.1:0", "--simulate-device-size", "4Ti"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--topology")
        .arg(&topology)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("aplo serve starts");
    let pid = child.id();

    // Bound times, from a watch of every claim.
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let bound = bound.clone();
        let api = world.claims("default");
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = stream.next().await {
                let objects: Vec<PersistentVolumeClaim> = match event {
                    watcher::Event::Apply(c) | watcher::Event::InitApply(c) => vec![c],
                    _ => Vec::new(),
                };
                for c in objects {
                    if c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
                        bound
                            .lock()
                            .unwrap()
                            .entry(c.name_any())
                            .or_insert_with(Instant::now);
                    }
                }
            }
        })
    };
    // Let the controller list and settle before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_idle, _) = usage(pid);

    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let api = world.claims("default");
        let created = created.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..claims).step_by(writers) {
                let name = format!("bench-{i:05}");
                let at = Instant::now();
                api.create(&PostParams::default(), &claim(&name, "bench", "1Gi"))
                    .await
                    .expect("create a claim");
                created.lock().unwrap().insert(name, at);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let submitted = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = bound.lock().unwrap().len();
        if n >= claims {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {claims} bound after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    let (cpu, peak_rss) = usage(pid);
    watch.abort();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let created = created.lock().unwrap();
    let bound = bound.lock().unwrap();
    let mut latencies: Vec<f64> = created
        .iter()
        .map(|(name, at)| bound[name].saturating_duration_since(*at).as_secs_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let rate = claims as f64 / total.as_secs_f64();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    let cpu_used = cpu - cpu_idle;
    println!(
        "{claims} claims, {writers} writers, kube-controller-manager QPS {}: submitted in {:.2}s, all bound in {:.2}s: {rate:.1} claims/s; \
         time to Bound p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; controller CPU {cpu_used:.2}s \
         ({:.2} ms per claim), peak RSS {:.1} MiB",
        if kcm_qps > 0 {
            kcm_qps.to_string()
        } else {
            "20 (default)".to_owned()
        },
        submitted.as_secs_f64(),
        total.as_secs_f64(),
        p50 * 1e3,
        p99 * 1e3,
        max * 1e3,
        cpu_used * 1e3 / claims as f64,
        peak_rss as f64 / (1 << 20) as f64
    );
    let json = serde_json::json!({
        "claims": claims,
        "writers": writers,
        "kube_controller_manager_qps": if kcm_qps > 0 { kcm_qps } else { 20 },
        "submitted_seconds": submitted.as_secs_f64(),
        "total_seconds": total.as_secs_f64(),
        "claims_per_second": rate,
        "p50_seconds": p50,
        "p99_seconds": p99,
        "max_seconds": max,
        "controller_cpu_seconds": cpu_used,
        "controller_peak_rss_bytes": peak_rss,
    });
    if benching {
        aplo_e2e::write_bench_results("provisioner", &serde_json::to_string_pretty(&json).unwrap());
    }
}
