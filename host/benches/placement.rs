//! Placement over 1,000 devices (100 nodes x 10 devices, 4 zones), with a
//! fresh instance per decision, against the same algorithm compiled
//! natively, in the same run.
//!
//! Criterion measures both; then a fixed-count pass records p50 and p99 of
//! single decisions and the Wasm/native ratio, printed and written to
//! `target/bench-placement.json` (copied into docs/benchmarks.md by hand).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::model::testing::{request, topology};
use aplo::model::{GIB, Pairs, Scheme, Topology};
use aplo::policy::{Limits, PreparedTopology, Runtime, RuntimeConfig, bundled};
use aplo_policy_sdk::{Placement, Settings};
use criterion::{Criterion, criterion_group};
use zone_spread::ZoneSpread;

fn workload() -> Topology {
    let mut t = topology()
        .zones(4)
        .nodes_per_zone(25)
        .devices_per_node(10)
        .free(4000 * GIB)
        .build();
    // Uneven free space, deterministic, so sorting has real work to do.
    for (i, device) in t.clusters[0]
        .nodes
        .iter_mut()
        .flat_map(|n| n.devices.iter_mut())
        .enumerate()
    {
        device.free_bytes = ((i * 7919) % 3500 + 100) as u64 * GIB;
        device.brick_count = (i % 13) as u32;
    }
    t
}

const SCHEME: Scheme = Scheme::Replicate {
    count: 3,
    arbiter: false,
};

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn bench(c: &mut Criterion) {
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            perf_map: std::env::var_os("APLO_POLICY_PERF_MAP").is_some(),
            ..RuntimeConfig::default()
        })
        .expect("runtime"),
    );
    let wasm = bundled::BUNDLED
        .iter()
        .find(|(n, _)| *n == "zone-spread")
        .unwrap()
        .1;
    let policy = runtime
        .load("zone-spread", "bundled", wasm, Limits::default())
        .expect("loads");
    // The floor: a policy that decodes the same input through the SDK and
    // refuses at once. It costs what every decision over this topology pays
    // before the algorithm runs: the store and fresh instance, lowering the
    // topology into the guest, the SDK's decoding, and the answer.
    let hostile =
        std::fs::read(env!("APLO_HOSTILE_WASM")).expect("build.rs built the hostile policy");
    let floor = runtime
        .load("hostile", "test", &hostile, Limits::default())
        .expect("loads");
    let refuse: Pairs = [("mode".to_owned(), "refuse".to_owned())]
        .into_iter()
        .collect();
    let topology = workload();
    // The storage engine encodes a topology once per version; so does this.
    let prepared = PreparedTopology::new(Arc::new(topology.clone()));
    let req = request(500 * GIB, SCHEME);
    let settings = Pairs::new();
    let native_settings = Settings::default();

    // Both must agree before their speed means anything.
    let sandboxed = policy.place(&req, &prepared, &settings).unwrap().unwrap();
    let native = ZoneSpread::place(&req, &topology, &native_settings).unwrap();
    assert_eq!(
        sandboxed, native,
        "the sandboxed and native policies disagree"
    );

    // The floor must really stop before any algorithm: a refusal.
    assert!(
        floor.place(&req, &prepared, &refuse).unwrap().is_err(),
        "the floor policy should refuse"
    );

    let mut group = c.benchmark_group("placement-1000-devices");
    for (name, sandboxed, settings) in [
        ("wasm-fresh-instance", &policy, &settings),
        ("wasm-floor-decode-and-refuse", &floor, &refuse),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    sandboxed
                        .place(black_box(&req), black_box(&prepared), settings)
                        .unwrap(),
                )
            })
        });
    }
    // Where the floor's topology cost lies: the same 1,000 devices on one
    // node (one node record, two strings), and the 100 node records with
    // no devices.
    let one_node = PreparedTopology::new(Arc::new(
        aplo::model::testing::topology()
            .zones(1)
            .nodes_per_zone(1)
            .devices_per_node(1000)
            .build(),
    ));
    let no_devices = PreparedTopology::new(Arc::new(
        aplo::model::testing::topology()
            .zones(4)
            .nodes_per_zone(25)
            .devices_per_node(0)
            .build(),
    ));
    for (name, shape) in [
        ("wasm-floor-1-node-1000-devices", &one_node),
        ("wasm-floor-100-nodes-0-devices", &no_devices),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(floor.place(black_box(&req), shape, &refuse).unwrap()))
        });
    }
    // A call that carries nothing: the store, WASI context, fresh
    // instance and call every decision pays.
    let no_settings = Pairs::new();
    group.bench_function("wasm-empty-call-validate", |b| {
        b.iter(|| black_box(policy.validate(black_box(&no_settings)).unwrap()))
    });
    group.bench_function("native", |b| {
        b.iter(|| {
            black_box(
                ZoneSpread::place(black_box(&req), black_box(&topology), &native_settings).unwrap(),
            )
        })
    });
    group.finish();

    // Interleaved fixed-count pass for percentiles and the ratio; only under
    // `cargo bench` (cargo test runs benches once, as a smoke test).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = 2000;
    let (mut wasm_samples, mut native_samples, mut floor_samples, mut call_samples) = (
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
    );
    for _ in 0..rounds {
        let t = Instant::now();
        let _ = black_box(policy.place(&req, &prepared, &settings).unwrap());
        wasm_samples.push(t.elapsed());
        let t = Instant::now();
        black_box(ZoneSpread::place(&req, &topology, &native_settings).unwrap());
        native_samples.push(t.elapsed());
        let t = Instant::now();
        let _ = black_box(floor.place(&req, &prepared, &refuse).unwrap());
        floor_samples.push(t.elapsed());
        let t = Instant::now();
        let _ = black_box(policy.validate(&no_settings).unwrap());
        call_samples.push(t.elapsed());
    }
    let (wasm_p50, wasm_p99) = percentiles(wasm_samples);
    let (native_p50, native_p99) = percentiles(native_samples);
    let (floor_p50, floor_p99) = percentiles(floor_samples);
    let (call_p50, call_p99) = percentiles(call_samples);
    let ratio = wasm_p50.as_secs_f64() / native_p50.as_secs_f64();
    let report = serde_json::json!({
        "workload": "zone-spread placement, replica 3, 500 GiB, 100 nodes x 10 devices, 4 zones",
        "rounds": rounds,
        "wasm_fresh_instance": { "p50_us": wasm_p50.as_secs_f64() * 1e6, "p99_us": wasm_p99.as_secs_f64() * 1e6 },
        "native": { "p50_us": native_p50.as_secs_f64() * 1e6, "p99_us": native_p99.as_secs_f64() * 1e6 },
        "floor_decode_and_refuse": { "p50_us": floor_p50.as_secs_f64() * 1e6, "p99_us": floor_p99.as_secs_f64() * 1e6 },
        "empty_call_validate": { "p50_us": call_p50.as_secs_f64() * 1e6, "p99_us": call_p99.as_secs_f64() * 1e6 },
        "ratio_p50": ratio,
        "algorithm_in_wasm_p50_us": (wasm_p50.as_secs_f64() - floor_p50.as_secs_f64()) * 1e6,
        // The ratio a decision would have if the topology cost nothing to
        // cross: the fresh instance and call, plus the algorithm in the
        // sandbox. No change to how the topology crosses can go below it.
        "ratio_p50_if_the_topology_were_free": (call_p50.as_secs_f64()
            + wasm_p50.as_secs_f64() - floor_p50.as_secs_f64())
            / native_p50.as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-placement.json");
    let _ = std::fs::write(out, serde_json::to_string_pretty(&report).unwrap());
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
