//! End-to-end volume creation on the real three-node cluster: aplo's
//! engine (policies, journal, bricks, `gluster volume create`, options,
//! `start`; no mount) against a plain shell script that makes the same
//! brick directories and runs the same `gluster volume create` and `start`,
//! interleaved in the same run (rotating which goes first, with one other
//! volume started throughout). Bricks use the `dir` backend on both sides.
//!
//! A third side is the same script with the one `gluster volume set` aplo
//! makes between create and start (the durability's options and aplo's
//! `user.aplo.volume` id, which the storage engine must set): the same
//! gluster calls as aplo, so that ratio is aplo's own overhead over the raw
//! tool, apart from the extra gluster transaction the first ratio includes.
//!
//! A fourth side is aplo again, with every gluster command run as its own
//! `gluster` process instead of through the node's CLI session (what aplo
//! did before sessions): the CLI's start, ~50 ms per call, is the
//! difference.
//!
//! `cargo bench -p aplo-e2e --bench create` runs 15 rounds and writes
//! `bench-create.json` in cargo's target directory; under `cargo test` one
//! round runs as a check.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::engine::{CreateRequest, LoadOptions};
use aplo::exec::command::Transport;
use aplo::model::GIB;
use aplo::model::topology::parse_topology;
use aplo_e2e::Cluster;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn prefix(transport: &Transport) -> String {
    match transport {
        Transport::Prefix(argv) => argv.join(" "),
        other => panic!("the harness uses prefix transports, not {other:?}"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    if let Ok(filter) = std::env::var("APLO_BENCH_LOG") {
        aplo::cli::init_telemetry(aplo::cli::LogFormat::Text, &filter).unwrap();
    }
    let rounds = if benching { 15 } else { 1 };
    let cluster = Cluster::start("bn", 3)
        .await
        .expect("the three-node cluster starts (needs root)");
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(cluster.engine(&dir.path().join("aplo.redb")).unwrap());
    let one_shot = Arc::new(
        cluster
            .engine_one_shot(&dir.path().join("one-shot.redb"))
            .unwrap(),
    );
    // As a long-running aplo does: node health is watched in the
    // background, not asked before each placement.
    let _health = engine.watch_health(Duration::from_secs(2));
    let _health_one_shot = one_shot.watch_health(Duration::from_secs(2));
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let dev = n.bricks.join("aplo");
            std::fs::create_dir_all(&dev).unwrap();
            format!(
                r#"{{"node": {{"hostnames": {{"manage": ["{}"], "storage": ["{}"]}}, "zone": {}}}, "devices": [{{"name": "{}", "tags": {{"backend": "dir", "capacity": "100Gi"}}}}]}}"#,
                n.name,
                n.address,
                i + 1,
                dev.display()
            )
        })
        .collect();
    let topology = format!(r#"{{"clusters": [{{"nodes": [{}]}}]}}"#, nodes.join(", "));
    for engine in [&engine, &one_shot] {
        let report = engine
            .load_topology(&parse_topology(&topology).unwrap(), LoadOptions::default())
            .await
            .unwrap();
        assert!(report.failures.is_empty(), "{report:?}");
    }

    let first = prefix(&cluster.nodes[0].transport);
    let script = |name: &str, extra: &str| -> String {
        let mut text = String::from("set -e\n");
        let mut bricks = Vec::new();
        for node in &cluster.nodes {
            let path = node.bricks.join(format!("script/{name}/brick"));
            text.push_str(&format!(
                "{} mkdir -p {}\n",
                prefix(&node.transport),
                path.display()
            ));
            bricks.push(format!("{}:{}", node.address, path.display()));
        }
        text.push_str(&format!(
            "{first} gluster --mode=script volume create {name} replica 3 {} force >/dev/null\n",
            bricks.join(" ")
        ));
        text.push_str(&format!(
            "{extra}{first} gluster --mode=script volume start {name} >/dev/null\n"
        ));
        text
    };
    // The options aplo sets on a default (replica3) volume, in one call.
    let set_options = |name: &str| {
        format!(
            "{first} gluster --mode=script volume set {name} cluster.quorum-type auto user.aplo.volume {:032x} >/dev/null\n",
            0xa910u128
        )
    };
    let bash = |text: &str| {
        let out = Command::new("bash").arg("-c").arg(text).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A volume that stays started throughout, as on any cluster in use:
    // the first replicated volume of a cluster also starts the self-heal
    // daemons (about 2 s), which would otherwise fall on whichever side
    // happened to go first.
    bash(&script("keep", ""));

    let (mut aplo, mut plain, mut same_calls, mut aplo_one_shot) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Rotate which side goes first.
        for side in [0, 1, 2, 3].map(|s| (s + round) % 4) {
            let started = Instant::now();
            if side == 0 || side == 3 {
                // aplo: policies, journal, bricks, create, options, start;
                // side 3 with a `gluster` process per command.
                let (engine, name, samples) = if side == 0 {
                    (&engine, format!("a{round}"), &mut aplo)
                } else {
                    (&one_shot, format!("p{round}"), &mut aplo_one_shot)
                };
                engine
                    .create_volume(CreateRequest {
                        name: Some(name),
                        bytes: GIB,
                        ..CreateRequest::default()
                    })
                    .await
                    .expect("aplo creates the volume");
                samples.push(started.elapsed());
            } else if side == 1 {
                // The plain script: the same brick directories, create, start.
                bash(&script(&format!("s{round}"), ""));
                plain.push(started.elapsed());
            } else {
                // The same, with aplo's one `volume set` before the start.
                let name = format!("o{round}");
                bash(&script(&name, &set_options(&name)));
                same_calls.push(started.elapsed());
            }
        }
        // Clean up, untimed.
        engine.delete_volume(&format!("a{round}")).await.unwrap();
        one_shot.delete_volume(&format!("p{round}")).await.unwrap();
        for name in [format!("s{round}"), format!("o{round}")] {
            bash(&format!(
                "{first} gluster --mode=script volume stop {name} force >/dev/null && {first} gluster --mode=script volume delete {name} >/dev/null"
            ));
        }
    }
    let ms = |samples: &[Duration]| samples.iter().map(|d| d.as_millis()).collect::<Vec<_>>();
    let (a, s, o, p) = (
        median(aplo.clone()),
        median(plain.clone()),
        median(same_calls.clone()),
        median(aplo_one_shot.clone()),
    );
    let ratio = a.as_secs_f64() / s.as_secs_f64();
    let ratio_same_calls = a.as_secs_f64() / o.as_secs_f64();
    let ratio_one_shot = p.as_secs_f64() / s.as_secs_f64();
    println!(
        "create+start of a replica-3 volume on 3 nodes, {rounds} round(s): aplo p50 {a:?}, plain script p50 {s:?} (ratio {ratio:.2}), script with aplo's volume set p50 {o:?} (ratio {ratio_same_calls:.2}), aplo with one-shot gluster calls p50 {p:?} (ratio to the plain script {ratio_one_shot:.2})"
    );
    if benching {
        let json = format!(
            "{{\"rounds\": {rounds}, \"aplo_p50_ms\": {:.1}, \"script_p50_ms\": {:.1}, \"ratio\": {ratio:.3}, \"script_same_calls_p50_ms\": {:.1}, \"ratio_same_calls\": {ratio_same_calls:.3}, \"aplo_one_shot_p50_ms\": {:.1}, \"ratio_one_shot\": {ratio_one_shot:.3}, \"aplo_ms\": {:?}, \"script_ms\": {:?}, \"script_same_calls_ms\": {:?}, \"aplo_one_shot_ms\": {:?}}}\n",
            a.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            o.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            ms(&aplo),
            ms(&plain),
            ms(&same_calls),
            ms(&aplo_one_shot)
        );
        aplo_e2e::write_bench_results("create", &json);
    }
}
