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
//!    the store, encoding it for the sandbox).
//! 2. The store at 10,000 volumes x 3 bricks in a redb file (100 nodes x 10
//!    devices): one create's write transactions, `read()` of everything, and
//!    the engine's create + delete cycle on top; the same cycle on an empty
//!    redb store and on a memory store holding the same 10,000 volumes; the
//!    file's size and the process's resident memory.
//!
//! Criterion measures each; under `cargo bench` a fixed-count pass then
//! records p50s and ratios, printed and written to
//! `target/bench-storage.json` (copied into docs/benchmarks.md by hand).
//! Under `cargo test --benches` everything runs once on a small workload,
//! as a smoke test.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::exec::driver::SimDriver;
use aplo::exec::engine::{CreateRequest, Engine, EngineConfig};
use aplo::model::storage::{
    Backend, BrickRecord, ClusterRecord, DeviceRecord, NodeRecord, Operation, OperationRecord,
    VolumeRecord, VolumeState,
};
use aplo::model::{Claim, GIB, Id, Pairs, PlacementRequest, State, TIB, Verdict};
use aplo::plan::volume::brick_dir;
use aplo::policy::{PolicySet, PreparedTopology, Registry, RegistryConfig, Runtime, RuntimeConfig};
use aplo::store::{Change, MemoryStore, RedbStore, Store};
use criterion::{Criterion, SamplingMode, criterion_group};

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
    plan_rounds: usize,
    store_rounds: usize,
}

const FULL: Scale = Scale {
    plan_nodes: 1000,
    plan_devices: 24,
    store_nodes: 100,
    store_devices: 10,
    volumes: 10_000,
    plan_rounds: 60,
    store_rounds: 60,
};

const SMOKE: Scale = Scale {
    plan_nodes: 20,
    plan_devices: 24,
    store_nodes: 10,
    store_devices: 10,
    volumes: 200,
    plan_rounds: 0,
    store_rounds: 0,
};

const ZONES: usize = 10;
const CLUSTER: Id = Id(1);
const VOLUME_BYTES: u64 = 100 * GIB;
const TEMPLATE_BYTES: u64 = 10 * GIB;

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
        Arc::new(SimDriver::new(TIB, HashMap::new())),
        registry.clone(),
        EngineConfig::default(),
    )
    .expect("the engine starts")
}

fn create_request(name: &str) -> CreateRequest {
    sized_request(name, VOLUME_BYTES)
}

fn sized_request(name: &str, bytes: u64) -> CreateRequest {
    CreateRequest {
        name: Some(name.to_owned()),
        bytes,
        ..CreateRequest::default()
    }
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
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

/// Create and delete one volume, returning the time each took.
fn cycle(rt: &tokio::runtime::Runtime, engine: &Engine, name: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let volume = rt
        .block_on(engine.create_volume(create_request(name)))
        .expect("the volume is created");
    let created = t.elapsed();
    let t = Instant::now();
    rt.block_on(engine.delete_volume(&volume.name))
        .expect("the volume is deleted");
    (created, t.elapsed())
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
    let topology = Arc::new(engine.policy_topology());
    let prepared = PreparedTopology::new(topology.clone());
    let request = PlacementRequest {
        volume_name: "bench".into(),
        bytes: VOLUME_BYTES,
        scheme: decision.scheme,
        snapshot_reserve: decision.snapshot_reserve,
        preferred_zone: None,
        preferred_node: None,
    };
    let Verdict::Granted(placed) = set
        .place_prepared(&request, &prepared)
        .expect("placement decides")
    else {
        panic!("placement refused")
    };
    assert_eq!(placed.layout.sets.len(), 1);
    // The engine makes the same decision: three bricks in three zones.
    let volume = rt
        .block_on(engine.create_volume(create_request("check")))
        .expect("the volume is created");
    let (_, bricks) = engine.volume(&volume.name).expect("the volume is there");
    let snapshot = engine.snapshot();
    let zones: BTreeSet<&str> = bricks
        .iter()
        .map(|b| snapshot.nodes[&b.node].zone.as_str())
        .collect();
    assert_eq!((bricks.len(), zones.len()), (3, 3), "{bricks:?}");
    rt.block_on(engine.delete_volume(&volume.name))
        .expect("the volume is deleted");
    drop(snapshot);

    let mut group = c.benchmark_group("plan-1000x24");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut n = 0u64;
    group.bench_function("engine-create-volume", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let (created, _) = cycle(rt, &engine, &format!("bench-{n}"));
                total += created;
            }
            total
        })
    });
    group.bench_function("place-prepared", |b| {
        b.iter(|| black_box(set.place_prepared(black_box(&request), &prepared).unwrap()))
    });
    group.bench_function("policy-place-unvalidated", |b| {
        b.iter(|| {
            black_box(
                set.placement
                    .policy
                    .place(black_box(&request), &prepared, &set.placement.settings)
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
    group.finish();

    if !bench_mode() {
        return serde_json::Value::Null;
    }
    // Fixed-count pass: the parts one after another, round by round.
    let rounds = scale.plan_rounds;
    let mut samples: [Vec<Duration>; 6] = Default::default();
    let time = |samples: &mut Vec<Duration>, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    };
    for round in 0..rounds {
        let (created, _) = cycle(rt, &engine, &format!("round-{round}"));
        samples[0].push(created);
        time(&mut samples[1], &mut || {
            black_box(set.place_prepared(&request, &prepared).unwrap());
        });
        time(&mut samples[2], &mut || {
            let _ = black_box(
                set.placement
                    .policy
                    .place(&request, &prepared, &set.placement.settings)
                    .unwrap(),
            );
        });
        time(&mut samples[3], &mut || {
            black_box(set.durability(&claim).unwrap());
        });
        time(&mut samples[4], &mut || {
            black_box(engine.policy_topology());
        });
        time(&mut samples[5], &mut || {
            black_box(PreparedTopology::new(topology.clone()));
        });
    }
    let [
        create,
        place_prepared,
        policy_place,
        durability,
        policy_topology,
        encode,
    ] = samples.map(p50);
    let policy = policy_place + durability;
    serde_json::json!({
        "workload": format!(
            "one 100 GiB volume, default policies (classes, zone-spread, no quota), {} nodes x {} devices, {ZONES} zones, 1 TiB each",
            scale.plan_nodes, scale.plan_devices
        ),
        "rounds": rounds,
        "p50_us": {
            "engine_create_volume": us(create),
            "place_prepared": us(place_prepared),
            "policy_place_unvalidated": us(policy_place),
            "durability": us(durability),
            "host_policy_topology": us(policy_topology),
            "host_encode_topology": us(encode),
        },
        "policy_share_of_create": policy.as_secs_f64() / create.as_secs_f64(),
        "host_validate_layout_us": us(place_prepared.saturating_sub(policy_place)),
        "ratio_create_to_place_prepared": create.as_secs_f64() / place_prepared.as_secs_f64(),
    })
}

/// A fresh redb store in `dir` holding `changes`, written in transactions
/// of at most 4,000 changes.
fn redb_with(path: &Path, changes: &[Change]) -> Arc<RedbStore> {
    let store = RedbStore::open(path).expect("the store opens");
    for chunk in changes.chunks(4000) {
        store.write(chunk).expect("the store takes the records");
    }
    Arc::new(store)
}

/// The store at 10,000 volumes.
fn store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    registry: &Arc<Registry>,
    scale: &Scale,
) -> serde_json::Value {
    let topology = topology_changes(scale.store_nodes, scale.store_devices);
    // A volume as the engine makes it, as the template for the rest; 10 GiB,
    // so that 30 bricks leave each 1 TiB device about two thirds free.
    let template = {
        let store = Arc::new(MemoryStore::default());
        store.write(&topology).expect("the topology is written");
        let engine = engine(store, registry);
        let volume = rt
            .block_on(engine.create_volume(sized_request("template", TEMPLATE_BYTES)))
            .expect("the template is created");
        engine.volume(&volume.name).expect("the template is there")
    };
    assert_eq!(template.1.len(), 3);
    let volumes = volume_changes(
        &template,
        scale.volumes,
        scale.store_nodes,
        scale.store_devices,
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let full_path = dir.path().join("full.redb");
    let rss_before = rss();
    let full = redb_with(&full_path, &[topology.clone(), volumes.clone()].concat());
    let file_bytes = std::fs::metadata(&full_path).map(|m| m.len()).unwrap_or(0);
    let empty = redb_with(&dir.path().join("empty.redb"), &topology);
    let rss_store = rss();
    let engine_full = engine(full.clone(), registry);
    let rss_engine = rss();
    let engine_empty = engine(empty.clone(), registry);
    let memory = Arc::new(MemoryStore::new(full.read().expect("the store reads")));
    let engine_memory = engine(memory, registry);
    assert_eq!(engine_full.volumes().len(), scale.volumes);

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
        let operation = OperationRecord {
            id: Id((7 << 64) | next),
            operation: Operation::CreateVolume { volume: volume.id },
            done: Vec::new(),
            rolling_back: false,
        };
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

    let mut group = c.benchmark_group("store-10k-volumes");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
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
    for (label, engine) in [
        ("engine-cycle-redb", &engine_full),
        ("engine-cycle-redb-empty-store", &engine_empty),
        ("engine-cycle-memory", &engine_memory),
    ] {
        group.bench_function(label, |b| {
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
    group.finish();
    assert_eq!(engine_full.volumes().len(), scale.volumes);

    if !bench_mode() {
        return serde_json::Value::Null;
    }
    let rounds = scale.store_rounds;
    let mut samples: [Vec<Duration>; 9] = Default::default();
    for round in 0..rounds {
        for (i, engine) in [&engine_full, &engine_empty, &engine_memory]
            .into_iter()
            .enumerate()
        {
            let (created, deleted) = cycle(rt, engine, &format!("round-{round}"));
            samples[2 * i].push(created);
            samples[2 * i + 1].push(deleted);
        }
        samples[6].push(transactions(&full, 1, true));
        let t = Instant::now();
        black_box(full.read().unwrap());
        samples[7].push(t.elapsed());
        let t = Instant::now();
        black_box(engine_full.policy_topology());
        samples[8].push(t.elapsed());
    }
    let [
        full_create,
        full_delete,
        empty_create,
        empty_delete,
        memory_create,
        memory_delete,
        write_pair,
        read_all,
        policy_topology,
    ] = samples.map(p50);
    let file_after = std::fs::metadata(&full_path).map(|m| m.len()).unwrap_or(0);
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => serde_json::json!(mib(b.saturating_sub(a))),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "workload": format!(
            "{} volumes x 3 bricks (10 GiB, replica 3) on {} nodes x {} devices, redb file in {}",
            scale.volumes, scale.store_nodes, scale.store_devices, dir.path().display()
        ),
        "rounds": rounds,
        "p50_us": {
            "engine_create_redb_10k": us(full_create),
            "engine_delete_redb_10k": us(full_delete),
            "engine_create_redb_empty": us(empty_create),
            "engine_delete_redb_empty": us(empty_delete),
            "engine_create_memory_10k": us(memory_create),
            "engine_delete_memory_10k": us(memory_delete),
            "redb_write_journal_and_finish": us(write_pair),
            "redb_read_all": us(read_all),
            "host_policy_topology_10k": us(policy_topology),
        },
        "ratio_cycle_10k_to_empty_redb":
            (full_create + full_delete).as_secs_f64() / (empty_create + empty_delete).as_secs_f64(),
        "ratio_cycle_redb_to_memory_10k":
            (full_create + full_delete).as_secs_f64() / (memory_create + memory_delete).as_secs_f64(),
        "redb_file_mib_after_fill": mib(file_bytes),
        "redb_file_mib_after_bench": mib(file_after),
        "rss_mib": {
            "before_fill": rss_before.map(mib),
            "after_fill": rss_store.map(mib),
            "after_engine_start": rss_engine.map(mib),
            "engine_start_delta": delta(rss_store, rss_engine),
        },
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
    benches();
    Criterion::default().configure_from_args().final_summary();
}
