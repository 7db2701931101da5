//! The classic GlusterFS-on-Kubernetes demo, for real: Kubernetes v1.34.4
//! built from source (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, containerd and a kubelet) and three gluster nodes in
//! namespaces on this machine. A StorageClass and a PVC go in with kubectl;
//! the class's policies decide and aplo creates a real gluster volume on
//! loop bricks; kube-controller-manager binds the claim; the kubelet starts
//! a web-server pod with the claim at its document root, mounting it
//! through aplo's CSI node plugin; `I love GlusterFS!` goes into the
//! volume and `curl` to the pod returns it. Then the pod and the claim are
//! deleted, and the gluster volume is gone. `--keep` keeps everything up
//! until Ctrl-C and prints kubectl commands to try.
//!
//! It needs root (namespaces, loop devices, mounts, a kubelet). Without
//! root it says so and shows the policy half (`aplo demo`) instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aplo_e2e::classic::{LOVE, Stack};
use clap::Parser;

/// Arguments.
#[derive(Debug, Parser)]
#[command(about = "The classic GlusterFS-on-Kubernetes demo, with aplo, on this machine")]
struct Args {
    /// Keep the cluster, the claim and the pod until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// StorageClass parameters, `key=value` (e.g. `classes.class=arbiter`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// The `aplo` binary the CSI node plugin runs from (default: the one
    /// next to this program).
    #[arg(long)]
    aplo: Option<PathBuf>,
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
            "aplo-demo: the demo needs root: it creates network and mount namespaces for three \
             glusterds, loop devices and XFS bricks, FUSE mounts, and runs containerd and a \
             kubelet (cgroups). Run it with sudo. Showing the policy half instead (the default \
             policies decide a volume on an example topology):\n"
        );
        let mut argv = vec!["aplo".to_owned(), "demo".to_owned()];
        for p in &args.params {
            argv.extend(["--param".to_owned(), p.clone()]);
        }
        let cli = aplo::cli::Cli::parse_from(argv);
        return match cli.run() {
            Ok(_) => ExitCode::FAILURE,
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
    let say = |text: &str| println!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
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
    let aplo = match args.aplo {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("aplo"),
    };
    if !aplo.is_file() {
        return Err(format!(
            "{} does not exist: build it (cargo build -p aplo) or pass --aplo",
            aplo.display()
        ));
    }
    let stack = Stack::start(&aplo, &say).await?;
    let shown: Vec<String> = parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(&format!(
        "kubectl apply: StorageClass 'glusterfs' (provisioner glusterfs.aplo.dev; {})",
        shown.join(", ")
    ));
    stack.class("glusterfs", &parameters);
    let port = aplo_e2e::k8s::free_port();
    let (timings, body) = stack
        .claim_to_curl("gluster-claim", "glusterfs", port, &say)
        .await?;
    if body != LOVE {
        return Err(format!("curl returned {body:?}"));
    }
    say(&format!(
        "claim to served file in {:.2}s: provision {:.2}s, bind {:.2}s, mount and pod start {:.2}s, first curl {:.2}s",
        timings.total.as_secs_f64(),
        timings.provision.as_secs_f64(),
        timings.bind.as_secs_f64(),
        timings.mount_and_start.as_secs_f64(),
        timings.serve.as_secs_f64(),
    ));
    println!(
        "           (aplo's own part {:.2}s: this is the pool's first replicated volume, and \
         glusterd starts its self-heal daemons with it, once; with one in place a claim \
         is served in about 2 s, see docs/benchmarks.md)",
        timings.aplo_provision.as_secs_f64()
    );
    if args.keep {
        let kubectl = format!(
            "{} --kubeconfig {}",
            stack.k8s.kubectl_path().display(),
            stack.k8s.admin.display()
        );
        let ip = stack.k8s.node_ip.clone().unwrap_or_default();
        let gluster = match &stack.cluster.nodes[0].transport {
            aplo::exec::command::Transport::Prefix(argv) => argv.join(" "),
            other => format!("{other:?}"),
        };
        println!(
            "\nEverything is up. Try:\n  \
             {kubectl} get pvc,pv,pods -o wide\n  \
             {kubectl} describe pvc gluster-claim\n  \
             {kubectl} exec gluster-claim-web -- df -h /srv/www\n  \
             curl http://{ip}:{port}/\n  \
             {gluster} gluster volume info\n\
             Press Ctrl-C to delete the pod and the claim and tear everything down."
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    say(
        "kubectl delete: the pod (the kubelet unpublishes and unstages through aplo) and the claim (aplo deletes the gluster volume and its bricks)",
    );
    stack.delete("gluster-claim").await?;
    let leftovers = stack.cluster.brick_leftovers();
    stack.stop().await?;
    say(&format!(
        "pod, claim, PV and gluster volume gone; {}; Kubernetes and the gluster nodes stopped",
        if leftovers.is_empty() {
            "no brick left behind".to_owned()
        } else {
            format!("left behind: {leftovers:?}")
        }
    ));
    Ok(())
}
