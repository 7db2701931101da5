//! The storage half of the classic GlusterFS demo, for real: three gluster
//! nodes in namespaces on this machine, an example topology loaded through
//! aplo's engine, a replica-3 volume created through the default policies
//! on loop bricks, FUSE-mounted, `I love GlusterFS!` written and read back.
//! Everything is torn down at the end (with `--keep`, after Ctrl-C).
//!
//! It needs root (namespaces, loop devices, mounts). Without root it says
//! so and runs the policy half (`aplo demo`) instead.

use std::process::ExitCode;
use std::time::Instant;

use aplo::exec::engine::{CreateRequest, LoadOptions};
use aplo::model::topology::parse_topology;
use aplo::model::{GIB, format_size};
use aplo_e2e::{Cluster, FuseMount};
use clap::Parser;

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
    if !is_root() {
        eprintln!(
            "aplo-demo: the storage demo needs root (network and mount namespaces, loop devices, \
             FUSE mounts); run it with sudo. Showing the policy half instead:\n"
        );
        let mut argv = vec!["aplo".to_owned(), "demo".to_owned()];
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
    let parameters = args
        .params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("parameter '{p}' is not key=value"))
        })
        .collect::<Result<_, _>>()?;
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
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = cluster.engine(&dir.path().join("aplo.redb"))?;

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
        "creating volume 'demo' (1GiB) through the default policies",
    );
    let t = Instant::now();
    let volume = engine
        .create_volume(CreateRequest {
            name: Some("demo".into()),
            bytes: GIB,
            parameters,
            ..CreateRequest::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "           {} {}, created in {:.1}s:",
        format_size(volume.bytes),
        aplo::model::validate::describe(&volume.scheme),
        t.elapsed().as_secs_f64()
    );
    let snapshot = engine.snapshot();
    for brick in snapshot.bricks_of(volume.id) {
        let node = &snapshot.nodes[&brick.node];
        println!(
            "           brick on {} (zone {}): {}:{}",
            node.manage, node.zone, node.storage, brick.path
        );
    }

    step(started, "mounting it with the gluster FUSE client");
    let mount = FuseMount::new(&cluster.nodes[0].address, "demo")?;
    let file = mount.path.join("hello.txt");
    std::fs::write(&file, "I love GlusterFS!\n").map_err(|e| e.to_string())?;
    let back = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    step(
        started,
        &format!("wrote and read back {}: {}", file.display(), back.trim()),
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
            "\nThe cluster is up and {} is mounted. Look inside node1:\n  \
             {enter} gluster volume info demo\n\
             Press Ctrl-C to delete the volume and tear everything down.",
            mount.path.display()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    drop(mount);
    step(
        started,
        "deleting the volume: bricks, loop devices and the gluster volume go",
    );
    engine
        .delete_volume("demo")
        .await
        .map_err(|e| e.to_string())?;
    let leftovers = cluster.brick_leftovers();
    drop(cluster);
    step(
        started,
        &format!(
            "stopped the nodes and removed their namespaces; {} left behind",
            if leftovers.is_empty() {
                "nothing".to_owned()
            } else {
                format!("{leftovers:?}")
            }
        ),
    );
    println!("Nothing to clean up. Run it again with --keep to explore the cluster.");
    Ok(())
}
