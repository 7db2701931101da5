//! The storage engine's costs (issue #3), in one run so that ratios compare
//! like with like.
//!
//! 1. Planning one volume on 1,000 nodes x 24 devices (10 zones, 1 TiB
//!    each): `Engine::create_volume` with the simulation driver and the
//!    memory store (durability, placement, validation, journal; no quota
//!    policy), against its parts measured alone: the bare placement
//!    decision (`PolicySet::place_prepared` on a `PreparedTopology`), the
//!    sandboxed policy call without the host's validation, the durability
//!    decision, and the host's own steps (building the policy topology from
//!    the store, encoding it for the sandbox, validating the layout).
//! 2. The store at 10,000 volumes x 3 bricks in a redb file (100 nodes x 10
//!    devices): one create's write transactions, `read()` of everything, and
//!    the engine's create + delete cycle on top, against the same cycle on
//!    an empty store and on memory stores; the snapshot scans the engine
//!    makes per operation; the file's size, and the resident memory of a
//!    process that starts an engine on the file.
//!
//! Criterion measures each; under `cargo bench` a fixed-count pass then
//! records p50s and ratios, printed and written to
//! `target/bench-storage.json` (copied into docs/benchmarks.md by hand).
//! Under `cargo test --benches` everything runs once on a small workload,
//! as a smoke test.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::engine::driver::SimDriver;
use aplo::engine::{CreateRequest, Engine, EngineConfig};
use aplo::model::journal::{Operation, OperationRecord};
use aplo::model::storage::{
    Backend, BrickRecord, ClusterRecord, DeviceRecord, NodeRecord, VolumeRecord, VolumeState,
};
use aplo::model::validate::validate_layout;
use aplo::model::{Claim, GIB, Id, Pairs, PlacementRequest, State, TIB, Verdict};
use aplo::plan::volume::brick_dir;
use aplo::policy::{PolicySet, PreparedTopology, Registry, RegistryConfig, Runtime, RuntimeConfig};
use aplo::store::{Change, MemoryStore, RedbStore, Store};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, measurement::WallTime};

/// How big each workload is: the real sizes under `cargo bench`, small ones
/// for the smoke test.
struct Scale {
    /// Planning: nodes and devices per node.
    plan_nodes: usize,
    plan_devices: usize,
    /// The store: nodes, devices per node, volumes.
    store_nodes: usize,
    store_devices: usize,
    volumes: usize,
    /// Rounds of the fixed-count pass.
    rounds: usize,
}

const FULL: Scale = Scale {
    plan_nodes: 1000,
    plan_devices: 24,
    store_nodes: 100,
    store_devices: 10,
    volumes: 10_000,
    rounds: 60,
};

const SMOKE: Scale = Scale {
    plan_nodes: 20,
    plan_devices: 24,
    store_nodes: 10,
    store_devices: 10,
    volumes: 200,
    rounds: 0,
};

const ZONES: usize = 10;
const CLUSTER: Id = Id(1);
/// What each benchmarked create asks for.
const VOLUME_BYTES: u64 = 100 * GIB;
/// The size of each of the 10,000 volumes in the store: 30 bricks of it
/// leave each 1 TiB device about two thirds free.
const TEMPLATE_BYTES: u64 = 10 * GIB;
/// Run as a child process: start an engine on the redb file that follows
/// and report its resident memory.
const RSS_CHILD: &str = "--engine-rss-of";

fn node_id(n: usize) -> Id {
    Id((1 << 64) | n as u128)
}

fn device_id(n: usize, d: usize) -> Id {
    Id((2 << 64) | ((n as u128) << 16) | d as u128)
}

/// One cluster of `nodes` nodes in ten zones, `devices` devices of 1 TiB on
/// each, as the store keeps them.
fn topology_changes(nodes: usize, devices: usize) -> Vec<Change> {
    let mut changes = vec![Change::PutCluster(ClusterRecord {
        id: CLUSTER,
        file: true,
        block: false,
    })];
    for n in 0..nodes {
        changes.push(Change::PutNode(NodeRecord {
            id: node_id(n),
            cluster: CLUSTER,
            manage: format!("node-{n:04}.storage.example"),
            storage: format!("10.0.{}.{}", n / 250, n % 250 + 1),
            zone: format!("zone-{}", n % ZONES),
            state: State::Online,
            tags: Pairs::new(),
        }));
        for d in 0..devices {
            changes.push(Change::PutDevice(DeviceRecord {
                id: device_id(n, d),
                node: node_id(n),
                name: format!("/dev/disk/by-id/wwn-0x5000c500{n:04x}{d:04x}"),
                backend: Backend::LvmThin,
                state: State::Online,
                tags: Pairs::new(),
                total_bytes: TIB,
            }));
        }
    }
    changes
}

/// `count` volumes shaped like `template` (a volume the engine created,
/// with its three bricks), spread over the topology: volume `v` has its
/// bricks on three consecutive nodes (three zones).
fn volume_changes(
    template: &(VolumeRecord, Vec<BrickRecord>),
    count: usize,
    nodes: usize,
    devices: usize,
) -> Vec<Change> {
    let root = EngineConfig::default().lvm_root;
    let mut changes = Vec::with_capacity(count * 4);
    for v in 0..count {
        let volume = Id((3 << 64) | v as u128);
        changes.push(Change::PutVolume(VolumeRecord {
            id: volume,
            name: format!("pvc-{v:08}-bench"),
            state: VolumeState::Ready,
            ..template.0.clone()
        }));
        for (k, brick) in template.1.iter().enumerate() {
            let n = (v * 3 + k) % nodes;
            let d = (v / nodes) % devices;
            let id = Id((4 << 64) | (v * 3 + k) as u128);
            let device = DeviceRecord {
                id: device_id(n, d),
                node: node_id(n),
                name: String::new(),
                backend: Backend::LvmThin,
                state: State::Online,
                tags: Pairs::new(),
                total_bytes: TIB,
            };
            changes.push(Change::PutBrick(BrickRecord {
                id,
                volume,
                device: device.id,
                node: device.node,
                path: brick_dir(&device, id, &root).expect("a brick directory"),
                ..brick.clone()
            }));
        }
    }
    changes
}

fn registry() -> Arc<Registry> {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    Arc::new(Registry::open(runtime, RegistryConfig::default()).expect("the registry opens"))
}

fn engine(store: Arc<dyn Store>, registry: &Arc<Registry>) -> Engine {
    Engine::new(
        store,
        Arc::new(SimDriver::new(TIB)),
        registry.clone(),
        EngineConfig::default(),
    )
    .expect("the engine starts")
}

fn request(name: &str, bytes: u64) -> CreateRequest {
    CreateRequest {
        name: Some(name.to_owned()),
        bytes,
        ..CreateRequest::default()
    }
}

/// A line of /proc/self/status (`VmRSS`, `VmHWM`), in bytes.
fn status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Time `f` once.
fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Create and delete one volume, returning the time each took.
fn cycle(rt: &tokio::runtime::Runtime, engine: &Engine, name: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let volume = rt
        .block_on(engine.create_volume(request(name, VOLUME_BYTES)))
        .expect("the volume is created");
    let created = t.elapsed();
    let t = Instant::now();
    rt.block_on(engine.delete_volume(&volume.name))
        .expect("the volume is deleted");
    (created, t.elapsed())
}

/// Slow benchmarks: ten samples, flat sampling, short warm-up.
fn slow_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group
}

/// Planning one volume on 1,000 nodes x 24 devices.
fn plan(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    registry: &Arc<Registry>,
    scale: &Scale,
) -> serde_json::Value {
    let store = Arc::new(MemoryStore::default());
    store
        .write(&topology_changes(scale.plan_nodes, scale.plan_devices))
        .expect("the topology is written");
    let engine = engine(store, registry);

    // The pieces create_volume is made of, prepared as it prepares them.
    let set: PolicySet = registry.resolve(&Pairs::new()).expect("default policies");
    let claim = Claim {
        namespace: String::new(),
        name: "bench".into(),
        labels: Pairs::new(),
        annotations: Pairs::new(),
        requested_bytes: VOLUME_BYTES,
        access_modes: Vec::new(),
    };
    let Verdict::Granted(decision) = set.durability(&claim).expect("durability decides") else {
        panic!("durability refused")
    };
    let snapshot = engine.snapshot();
    let topology = Arc::new(engine.policy_topology());
    let prepared = PreparedTopology::new(topology.clone());
    let placement = PlacementRequest {
        volume_name: "bench".into(),
        bytes: VOLUME_BYTES,
        scheme: decision.scheme,
        snapshot_reserve: decision.snapshot_reserve,
        preferred_zone: None,
        preferred_node: None,
    };
    let Verdict::Granted(placed) = set
        .place_prepared(&placement, &prepared)
        .expect("placement decides")
    else {
        panic!("placement refused")
    };
    assert_eq!(placed.layout.sets.len(), 1);
    // The engine makes the same kind of decision: three bricks, three zones.
    let volume = rt
        .block_on(engine.create_volume(request("check", VOLUME_BYTES)))
        .expect("the volume is created");
    let (_, bricks) = engine.volume(&volume.name).expect("the volume is there");
    let zones: BTreeSet<&str> = bricks
        .iter()
        .map(|b| snapshot.nodes[&b.node].zone.as_str())
        .collect();
    assert_eq!((bricks.len(), zones.len()), (3, 3), "{bricks:?}");
    rt.block_on(engine.delete_volume(&volume.name))
        .expect("the volume is deleted");

    let mut group = slow_group(c, "plan-1000x24");
    let mut n = 0u64;
    group.bench_function("engine-create-volume", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                total += cycle(rt, &engine, &format!("bench-{n}")).0;
            }
            total
        })
    });
    group.bench_function("place-prepared", |b| {
        b.iter(|| {
            black_box(
                set.place_prepared(black_box(&placement), &prepared)
                    .unwrap(),
            )
        })
    });
    group.bench_function("policy-place-unvalidated", |b| {
        b.iter(|| {
            black_box(
                set.placement
                    .policy
                    .place(black_box(&placement), &prepared, &set.placement.settings)
                    .unwrap(),
            )
        })
    });
    group.bench_function("durability", |b| {
        b.iter(|| black_box(set.durability(black_box(&claim)).unwrap()))
    });
    group.bench_function("host-policy-topology", |b| {
        b.iter(|| black_box(engine.policy_topology()))
    });
    group.bench_function("host-encode-topology", |b| {
        b.iter(|| black_box(PreparedTopology::new(topology.clone())))
    });
    group.bench_function("host-validate-layout", |b| {
        b.iter(|| black_box(validate_layout(&placement, &topology, &placed.layout).unwrap()))
    });
    group.finish();

    if !bench_mode() {
        return serde_json::Value::Null;
    }
    // Fixed-count pass: the parts one after another, round by round.
    let mut samples: [Vec<Duration>; 7] = Default::default();
    for round in 0..scale.rounds {
        samples[0].push(cycle(rt, &engine, &format!("round-{round}")).0);
        samples[1].push(timed(|| {
            black_box(set.place_prepared(&placement, &prepared).unwrap());
        }));
        samples[2].push(timed(|| {
            let _ = black_box(
                set.placement
                    .policy
                    .place(&placement, &prepared, &set.placement.settings)
                    .unwrap(),
            );
        }));
        samples[3].push(timed(|| {
            black_box(set.durability(&claim).unwrap());
        }));
        samples[4].push(timed(|| {
            black_box(engine.policy_topology());
        }));
        samples[5].push(timed(|| {
            black_box(PreparedTopology::new(topology.clone()));
        }));
        samples[6].push(timed(|| {
            black_box(validate_layout(&placement, &topology, &placed.layout).unwrap());
        }));
    }
    let [
        create,
        place_prepared,
        policy_place,
        durability,
        policy_topology,
        encode,
        validate,
    ] = samples.map(p50);
    let policy = policy_place + durability;
    serde_json::json!({
        "workload": format!(
            "one 100 GiB volume, default policies (classes, zone-spread, no quota), {} nodes x {} devices, {ZONES} zones, 1 TiB each",
            scale.plan_nodes, scale.plan_devices
        ),
        "rounds": scale.rounds,
        "p50_us": {
            "engine_create_volume": us(create),
            "place_prepared": us(place_prepared),
            "policy_place_unvalidated": us(policy_place),
            "durability": us(durability),
            "host_policy_topology": us(policy_topology),
            "host_encode_topology": us(encode),
            "host_validate_layout": us(validate),
        },
        "policy_share_of_create": policy.as_secs_f64() / create.as_secs_f64(),
        "policy_topology_share_of_create": policy_topology.as_secs_f64() / create.as_secs_f64(),
        "ratio_create_to_place_prepared": create.as_secs_f64() / place_prepared.as_secs_f64(),
    })
}

/// A redb store at `path` holding `changes`, written in transactions of at
/// most 4,000 changes, then closed.
fn fill_redb(path: &Path, changes: &[Change]) {
    let store = RedbStore::open(path).expect("the store opens");
    for chunk in changes.chunks(4000) {
        store.write(chunk).expect("the store takes the records");
    }
}

/// Start this binary again to open an engine on `path` alone, and return
/// what it reports about its memory.
fn engine_rss(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .arg(RSS_CHILD)
        .arg(path)
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the child reports JSON")
}

/// The child: load the policies, start an engine on the store, report
/// resident memory before and after, and the peak.
fn engine_rss_child(path: &Path) {
    let registry = registry();
    let before = status("VmRSS");
    let t = Instant::now();
    let engine = engine(
        Arc::new(RedbStore::open(path).expect("the store opens")),
        &registry,
    );
    let start = t.elapsed();
    let after = status("VmRSS");
    let in_mib = |b: Option<u64>| b.map(mib);
    let report = serde_json::json!({
        "volumes": engine.volumes().len(),
        "engine_start_ms": start.as_secs_f64() * 1e3,
        "rss_mib_policies_loaded": in_mib(before),
        "rss_mib_engine_started": in_mib(after),
        "rss_mib_engine_delta": after.zip(before).map(|(a, b)| mib(a.saturating_sub(b))),
        "peak_rss_mib": in_mib(status("VmHWM")),
    });
    println!("{report}");
}

/// The store at 10,000 volumes.
fn store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    registry: &Arc<Registry>,
    scale: &Scale,
) -> serde_json::Value {
    let topology = topology_changes(scale.store_nodes, scale.store_devices);
    // A volume as the engine makes it, as the template for the rest.
    let template = {
        let store = Arc::new(MemoryStore::default());
        store.write(&topology).expect("the topology is written");
        let engine = engine(store, registry);
        let volume = rt
            .block_on(engine.create_volume(request("template", TEMPLATE_BYTES)))
            .expect("the template is created");
        engine.volume(&volume.name).expect("the template is there")
    };
    assert_eq!(template.1.len(), 3);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let (full_path, empty_path) = (dir.path().join("full.redb"), dir.path().join("empty.redb"));
    let mut changes = topology.clone();
    changes.extend(volume_changes(
        &template,
        scale.volumes,
        scale.store_nodes,
        scale.store_devices,
    ));
    fill_redb(&full_path, &changes);
    drop(changes);
    fill_redb(&empty_path, &topology);
    let file_bytes = std::fs::metadata(&full_path).map(|m| m.len()).unwrap_or(0);
    let memory = engine_rss(&full_path);
    assert_eq!(memory["volumes"], scale.volumes);

    let full = Arc::new(RedbStore::open(&full_path).expect("the store opens"));
    let empty = Arc::new(RedbStore::open(&empty_path).expect("the store opens"));
    let snapshot = full.read().expect("the store reads");
    let engines = [
        engine(full.clone(), registry),
        engine(empty.clone(), registry),
        engine(Arc::new(MemoryStore::new(snapshot.clone())), registry),
        engine(
            Arc::new(MemoryStore::new(empty.read().expect("the store reads"))),
            registry,
        ),
    ];
    let labels = ["redb-10k", "redb-empty", "memory-10k", "memory-empty"];
    assert_eq!(engines[0].volumes().len(), scale.volumes);

    // The two transactions of a create, on records of their own (removed
    // again, untimed, so the store stays at its size).
    let mut next = 0u128;
    let mut records = || {
        next += 1;
        let volume = VolumeRecord {
            id: Id((5 << 64) | next),
            name: format!("txn-{next}"),
            state: VolumeState::Creating,
            ..template.0.clone()
        };
        let bricks: Vec<BrickRecord> = template
            .1
            .iter()
            .enumerate()
            .map(|(k, b)| BrickRecord {
                id: Id((6 << 64) | (next << 2) | k as u128),
                volume: volume.id,
                ..b.clone()
            })
            .collect();
        let operation = OperationRecord::new(
            Id((7 << 64) | next),
            Operation::CreateVolume { volume: volume.id },
        );
        let mut journal = vec![Change::PutVolume(volume.clone())];
        journal.extend(bricks.iter().cloned().map(Change::PutBrick));
        journal.push(Change::PutOperation(operation.clone()));
        let finish = vec![
            Change::PutVolume(VolumeRecord {
                state: VolumeState::Ready,
                ..volume.clone()
            }),
            Change::DeleteOperation(operation.id),
        ];
        let mut cleanup: Vec<Change> = bricks.iter().map(|b| Change::DeleteBrick(b.id)).collect();
        cleanup.push(Change::DeleteVolume(volume.id));
        (journal, finish, cleanup)
    };
    let mut transactions = |store: &RedbStore, iters: u64, both: bool| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let (journal, finish, cleanup) = records();
            let t = Instant::now();
            store.write(&journal).unwrap();
            if both {
                store.write(&finish).unwrap();
            }
            total += t.elapsed();
            if !both {
                store.write(&finish).unwrap();
            }
            store.write(&cleanup).unwrap();
        }
        total
    };

    let mut group = slow_group(c, "store-10k-volumes");
    group.bench_function("redb-write-journal-txn", |b| {
        b.iter_custom(|iters| transactions(&full, iters, false))
    });
    group.bench_function("redb-write-journal-and-finish", |b| {
        b.iter_custom(|iters| transactions(&full, iters, true))
    });
    group.bench_function("redb-write-journal-txn-empty-store", |b| {
        b.iter_custom(|iters| transactions(&empty, iters, false))
    });
    group.bench_function("redb-read-all", |b| {
        b.iter(|| black_box(full.read().unwrap()))
    });
    group.bench_function("redb-read-all-empty-store", |b| {
        b.iter(|| black_box(empty.read().unwrap()))
    });
    let mut n = 0u64;
    for (label, engine) in labels.iter().zip(&engines) {
        group.bench_function(format!("engine-cycle-{label}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let (created, deleted) = cycle(rt, engine, &format!("cycle-{n}"));
                    total += created + deleted;
                }
                total
            })
        });
    }
    // The scans of the whole snapshot the engine makes per operation.
    let some = snapshot.volumes.values().nth(scale.volumes / 2).unwrap();
    group.bench_function("host-policy-topology-10k", |b| {
        b.iter(|| black_box(snapshot.policy_topology()))
    });
    group.bench_function("host-device-usage-10k", |b| {
        b.iter(|| black_box(snapshot.device_usage()))
    });
    group.bench_function("host-bricks-of-10k", |b| {
        b.iter(|| black_box(snapshot.bricks_of(black_box(some.id))))
    });
    group.bench_function("host-volume-named-10k", |b| {
        b.iter(|| black_box(snapshot.volume_named(black_box(&some.name))))
    });
    group.finish();
    assert_eq!(engines[0].volumes().len(), scale.volumes);
    assert_eq!(full.read().unwrap(), snapshot, "the store is as filled");

    if !bench_mode() {
        return serde_json::Value::Null;
    }
    let mut cycles: [Vec<(Duration, Duration)>; 4] = Default::default();
    let mut samples: [Vec<Duration>; 6] = Default::default();
    for round in 0..scale.rounds {
        for (i, engine) in engines.iter().enumerate() {
            cycles[i].push(cycle(rt, engine, &format!("round-{round}")));
        }
        samples[0].push(transactions(&full, 1, true));
        samples[1].push(timed(|| {
            black_box(full.read().unwrap());
        }));
        samples[2].push(timed(|| {
            black_box(snapshot.policy_topology());
        }));
        samples[3].push(timed(|| {
            black_box(snapshot.device_usage());
        }));
        samples[4].push(timed(|| {
            black_box(snapshot.bricks_of(some.id));
        }));
        samples[5].push(timed(|| {
            black_box(snapshot.volume_named(&some.name));
        }));
    }
    let cycles = cycles.map(|c| {
        let (create, delete): (Vec<_>, Vec<_>) = c.into_iter().unzip();
        (p50(create), p50(delete))
    });
    let [
        write_pair,
        read_all,
        policy_topology,
        device_usage,
        bricks_of,
        volume_named,
    ] = samples.map(p50);
    let total = |i: usize| (cycles[i].0 + cycles[i].1).as_secs_f64();
    let engine_us: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .zip(&cycles)
        .flat_map(|(label, (create, delete))| {
            [
                (format!("create_{label}"), us(*create).into()),
                (format!("delete_{label}"), us(*delete).into()),
            ]
        })
        .collect();
    serde_json::json!({
        "workload": format!(
            "{} volumes x 3 bricks (10 GiB, replica 3) on {} nodes x {} devices, redb file in {}",
            scale.volumes, scale.store_nodes, scale.store_devices, dir.path().display()
        ),
        "rounds": scale.rounds,
        "engine_p50_us": engine_us,
        "p50_us": {
            "redb_write_journal_and_finish": us(write_pair),
            "redb_read_all": us(read_all),
            "host_policy_topology_10k": us(policy_topology),
            "host_device_usage_10k": us(device_usage),
            "host_bricks_of_10k": us(bricks_of),
            "host_volume_named_10k": us(volume_named),
        },
        "ratio_cycle_redb_10k_to_empty": total(0) / total(1),
        "ratio_cycle_memory_10k_to_empty": total(2) / total(3),
        "ratio_cycle_redb_to_memory_10k": total(0) / total(2),
        "redb_file_mib_after_fill": mib(file_bytes),
        "redb_file_mib_after_bench": mib(std::fs::metadata(&full_path).map(|m| m.len()).unwrap_or(0)),
        "engine_process": memory,
    })
}

fn bench(c: &mut Criterion) {
    let scale = if bench_mode() { &FULL } else { &SMOKE };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = registry();
    let plan = plan(c, &rt, &registry, scale);
    let store = store(c, &rt, &registry, scale);
    if !bench_mode() {
        return;
    }
    let report = serde_json::json!({ "plan": plan, "store": store });
    let text = serde_json::to_string_pretty(&report).unwrap();
    println!("{text}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-storage.json");
    let _ = std::fs::write(out, text);
}

criterion_group!(benches, bench);

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == RSS_CHILD) {
        engine_rss_child(Path::new(args.get(2).expect("a store path")));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
