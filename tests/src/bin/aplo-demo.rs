//! The classic GlusterFS-on-Kubernetes demo, for real and without a
//! cluster: a PVC is submitted to the development API server (an in-memory
//! stand-in for kube-apiserver, for demos and tests only); aplo's
//! provisioner provisions it through the StorageClass's policies on three
//! gluster nodes running in namespaces on this machine (real loop bricks);
//! the PV binds; aplo's CSI node service stages and publishes it as kubelet
//! would (one FUSE mount, a bind mount into the pod's directory), and `I
//! love GlusterFS!` is written and read back through the published path. Deleting the claim deletes the volume. Everything
//! is torn down at the end (with `--keep`, after Ctrl-C).
//!
//! It needs root (namespaces, loop devices, mounts). Without root it says
//! so and runs the policy half (`aplo demo`) instead.

use std::process::ExitCode;
use std::time::Instant;

use std::sync::Arc;
use std::time::Duration;

use aplo::exec::engine::LoadOptions;
use aplo::model::format_size;
use aplo::model::topology::parse_topology;
use aplo_e2e::Cluster;
use aplo_e2e::csi::{Kubelet, PvSource};
use aplo_e2e::kube::{Provisioner, World};
use clap::Parser;
use kube::api::DeleteParams;

/// The pod the demo publishes the volume into.
const POD_UID: &str = "0f1e2d3c-demo-pod";

/// Arguments.
#[derive(Debug, Parser)]
#[command(about = "The classic GlusterFS demo, done with aplo on three local nodes")]
struct Args {
    /// Keep the cluster and the mount until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// StorageClass parameters, `key=value` (e.g. `classes.class=arbiter`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn step(started: Instant, text: &str) {
    println!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // `APLO_LOG=debug` (EnvFilter syntax) shows aplo's own log on stderr,
    // as the `aplo` binary does.
    if let Ok(filter) = std::env::var("APLO_LOG")
        && let Err(e) = aplo::cli::telemetry::init(aplo::cli::LogFormat::Text, &filter)
    {
        eprintln!("aplo-demo: {e:#}");
        return ExitCode::FAILURE;
    }
    if !is_root() {
        eprintln!(
            "aplo-demo: the storage demo needs root (network and mount namespaces, loop devices, \
             FUSE mounts); run it with sudo. Showing the Kubernetes half instead, on the \
             simulate executor:\n"
        );
        let mut argv = vec!["aplo".to_owned(), "demo".to_owned(), "--kube".to_owned()];
        for p in &args.params {
            argv.extend(["--param".to_owned(), p.clone()]);
        }
        let cli = aplo::cli::Cli::parse_from(argv);
        return match cli.run() {
            Ok(code) => code,
            Err(e) => {
                eprintln!("aplo: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aplo-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let mut parameters: Vec<(String, String)> = args
        .params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("parameter '{p}' is not key=value"))
        })
        .collect::<Result<_, _>>()?;
    if parameters.is_empty() {
        parameters.push(("classes.class".into(), "replica3".into()));
    }
    step(
        started,
        "starting the development API server (in memory: a stand-in for kube-apiserver, for demos and tests only)",
    );
    let world = World::start().await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, world.server.kubeconfig()).map_err(|e| e.to_string())?;
    println!(
        "           {} (kubeconfig {})",
        world.server.url(),
        kubeconfig.display()
    );

    step(
        started,
        "starting three gluster nodes in network and mount namespaces",
    );
    let cluster = Cluster::start("demo", 3).await?;
    for node in &cluster.nodes {
        println!(
            "           {} at {} (glusterd in its own namespaces)",
            node.name, node.address
        );
    }
    let engine = Arc::new(cluster.engine(&dir.path().join("aplo.redb"))?);
    step(
        started,
        "loading a heketi topology: three zones, one 4GiB loop device per node",
    );
    let topology = parse_topology(&cluster.topology(&["4Gi"])).map_err(|e| e.to_string())?;
    let report = engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    if !report.failures.is_empty() {
        return Err(report.failures.join("; "));
    }

    step(
        started,
        "starting aplo's provisioner against the API server",
    );
    let provisioner =
        Provisioner::start(world.client.clone(), engine.clone(), Provisioner::options());
    let shown: Vec<String> = parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    step(
        started,
        &format!(
            "1. submitting StorageClass 'glusterfs' ({}) and PVC 'gluster-claim' (1Gi, ReadWriteMany)",
            shown.join(", ")
        ),
    );
    let pairs: Vec<(&str, &str)> = parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    world.class("glusterfs", &pairs, "Delete").await;
    let t = Instant::now();
    let uid = world
        .claim("default", "gluster-claim", "glusterfs", "1Gi")
        .await;
    world
        .wait_bound(
            "default",
            &["gluster-claim".into()],
            Duration::from_secs(180),
        )
        .await;
    let name = format!("pvc-{uid}");
    let (volume, _) = engine.volume(&name).map_err(|e| e.to_string())?;
    step(
        started,
        &format!(
            "2-3. provisioned and bound in {:.1}s: PV {name}, {} {}",
            t.elapsed().as_secs_f64(),
            format_size(volume.bytes),
            aplo::model::validate::describe(&volume.scheme),
        ),
    );
    if volume.scheme != aplo::model::Scheme::None {
        println!(
            "           (about 2s of it is glusterd starting its self-heal daemons, which it does \
             with a pool's first redundant volume; docs/benchmarks.md measures later ones)"
        );
    }
    for event in world.events_about("default", "gluster-claim").await {
        println!(
            "           event {}: {}",
            event.reason.unwrap_or_default(),
            event.note.unwrap_or_default()
        );
    }
    let snapshot = engine.snapshot();
    for brick in snapshot.bricks_of(volume.id) {
        let node = &snapshot.nodes[&brick.node];
        println!(
            "           brick on {} (zone {}): {}:{}",
            node.manage, node.zone, node.storage, brick.path
        );
    }
    let pv = world
        .volumes()
        .get(&name)
        .await
        .map_err(|e| e.to_string())?;
    let csi = pv
        .spec
        .as_ref()
        .and_then(|s| s.csi.clone())
        .ok_or("the PV has no CSI source")?;
    let source = PvSource {
        handle: csi.volume_handle.clone(),
        attributes: csi
            .volume_attributes
            .clone()
            .ok_or("the PV has no CSI volume attributes")?
            .into_iter()
            .collect(),
        mount_options: pv
            .spec
            .as_ref()
            .and_then(|s| s.mount_options.clone())
            .unwrap_or_default(),
    };

    step(
        started,
        &format!(
            "4. aplo's CSI node service (gRPC on a unix socket) stages {} from {} and publishes it into a pod, as kubelet calls it",
            source.attributes["volume"], source.attributes["hosts"]
        ),
    );
    let mut kubelet = Kubelet::start(dir.path()).await;
    let t = Instant::now();
    let staging = kubelet
        .stage(&source)
        .await
        .map_err(|e| e.message().to_owned())?;
    let target = kubelet
        .publish(&source, &name, POD_UID)
        .await
        .map_err(|e| e.message().to_owned())?;
    println!(
        "           staged (one FUSE mount) at {}\n           published (a bind mount) at {} in {:.2}s",
        staging.display(),
        target.display(),
        t.elapsed().as_secs_f64()
    );
    let file = target.join("index.html");
    std::fs::write(&file, "I love GlusterFS!\n").map_err(|e| e.to_string())?;
    let back = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    step(
        started,
        &format!(
            "5. the pod's volume serves index.html: {} (read back through the published path)",
            back.trim()
        ),
    );
    if back != "I love GlusterFS!\n" {
        return Err(format!("read back {back:?}"));
    }
    let check = engine.check().await;
    step(
        started,
        &format!("aplo check: {}", check.to_string().trim()),
    );

    if args.keep {
        let enter = match &cluster.nodes[0].transport {
            aplo::exec::command::Transport::Prefix(argv) => argv.join(" "),
            other => format!("{other:?}"),
        };
        println!(
            "\nEverything is up and {} is the pod's volume. Try:\n  \
             kubectl --kubeconfig {} describe pvc gluster-claim\n  \
             {enter} gluster volume info {name}\n\
             Press Ctrl-C to delete the claim and tear everything down.",
            target.display(),
            kubeconfig.display()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    kubelet
        .tear_down(&source, &name, POD_UID)
        .await
        .map_err(|e| e.message().to_owned())?;
    kubelet.stop().await;
    step(
        started,
        "the pod is gone: unpublished and unstaged, nothing mounted",
    );
    step(
        started,
        "deleting the claim: the PV is released, aplo deletes the gluster volume and its bricks",
    );
    world
        .claims("default")
        .delete("gluster-claim", &DeleteParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while world
        .volumes()
        .get_opt(&name)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        if Instant::now() > deadline {
            return Err(format!("PV {name} was not deleted within 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    provisioner.stop().await.map_err(|e| format!("{e:#}"))?;
    let leftovers = cluster.brick_leftovers();
    let gluster_left = cluster.volume_names().await;
    drop(cluster);
    step(
        started,
        &format!(
            "PV and gluster volume gone; stopped the nodes and removed their namespaces; {} left behind",
            if leftovers.is_empty() && gluster_left.is_empty() {
                "nothing".to_owned()
            } else {
                format!("{leftovers:?} {gluster_left:?}")
            }
        ),
    );
    println!("Nothing to clean up. Run it again with --keep to explore the cluster.");
    Ok(())
}
