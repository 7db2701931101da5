//! The sandbox against hostile policies: loops, memory bombs, panics, lies,
//! malformed answers and broken files. After each, good decisions still work.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::model::testing::claim;
use aplo::model::{Decision, GIB, Pairs, PlacementRequest, QuotaRequest, Usage, Verdict};
use aplo::policy::{Blame, Fault, Limits, LoadedPolicy, PolicyError, PolicySet, Runtime};
use common::{
    R3, bundled, hostile, load_bundled, runtime, six_nodes, wat_component, wat_durability,
    wat_durability_with,
};

fn mode(mode: &str) -> Pairs {
    [("mode".to_string(), mode.to_string())]
        .into_iter()
        .collect()
}

fn set(policy: &Arc<LoadedPolicy>, settings: Pairs) -> PolicySet {
    common::policy_set(policy, settings)
}

fn request(bytes: u64) -> PlacementRequest {
    aplo::model::testing::request(bytes, R3)
}

fn expect_fault(result: Result<impl std::fmt::Debug, PolicyError>) -> (Fault, String) {
    match result {
        Err(err @ PolicyError::Fault { .. }) => {
            (err.fault().cloned().expect("a fault"), err.to_string())
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

/// The next good decisions, from the same hostile module and from a bundled
/// policy, both work normally.
fn still_healthy(runtime: &Arc<Runtime>, hostile: &Arc<LoadedPolicy>) {
    let good = set(hostile, mode("ok"));
    assert!(matches!(
        good.place(&request(10 * GIB), &six_nodes()),
        Ok(Verdict::Granted(_))
    ));
    assert!(matches!(
        good.durability(&claim(GIB)),
        Ok(Verdict::Granted(_))
    ));
    let zone_spread = load_bundled(runtime, "zone-spread");
    let placed = set(&zone_spread, Pairs::new())
        .place(&request(10 * GIB), &six_nodes())
        .unwrap()
        .granted()
        .unwrap();
    assert_eq!(placed.summary.usable_bytes, 10 * GIB);
}

#[test]
fn an_infinite_loop_times_out_within_twice_the_deadline() {
    let runtime = runtime();
    let deadline = Duration::from_millis(200);
    let policy = hostile(
        &runtime,
        Limits {
            deadline,
            ..Limits::default()
        },
    );
    let started = Instant::now();
    let (fault, message) =
        expect_fault(set(&policy, mode("loop")).place(&request(GIB), &six_nodes()));
    let took = started.elapsed();
    assert_eq!(fault, Fault::Timeout { deadline });
    assert!(
        took < deadline * 2,
        "stopped after {took:?}, more than twice the {deadline:?} deadline"
    );
    assert!(
        message.contains("'hostile'")
            && message.contains("placement")
            && message.contains("200 ms"),
        "{message}"
    );
    assert_eq!(fault.blame(), Blame::Guest);
    still_healthy(&runtime, &policy);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let runtime = runtime();
    let limit = 16 << 20;
    let policy = hostile(
        &runtime,
        Limits {
            memory_bytes: limit,
            deadline: Duration::from_secs(5),
            ..Limits::default()
        },
    );
    let (fault, message) = expect_fault(set(&policy, mode("bomb")).durability(&claim(GIB)));
    assert_eq!(fault, Fault::MemoryLimit { limit });
    assert!(
        message.contains("durability") && message.contains("16 MiB"),
        "{message}"
    );
    still_healthy(&runtime, &policy);
}

#[test]
fn a_panic_carries_its_message() {
    let runtime = runtime();
    let policy = hostile(&runtime, Limits::default());
    let quota = QuotaRequest {
        claim: claim(GIB),
        current_bytes: 0,
        namespace_usage: Usage::default(),
        cluster_usage: Usage::default(),
    };
    let (fault, message) = expect_fault(set(&policy, mode("panic")).quota(&quota));
    match &fault {
        Fault::Trap {
            panic: Some(text), ..
        } => assert_eq!(text, "hostile policy panicked on purpose"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(
        message.contains("quota decision") && message.contains("panicked"),
        "{message}"
    );
    still_healthy(&runtime, &policy);
}

#[test]
fn a_refusal_is_an_answer_not_a_fault() {
    let runtime = runtime();
    let policy = hostile(&runtime, Limits::default());
    let refused = set(&policy, mode("refuse"))
        .place(&request(GIB), &six_nodes())
        .unwrap();
    assert_eq!(
        refused,
        Verdict::Refused("hostile policy refuses politely".into())
    );
}

#[test]
fn every_lying_layout_is_refused_with_its_rule() {
    let runtime = runtime();
    let policy = hostile(&runtime, Limits::default());
    let mut two_clusters = aplo::model::testing::topology()
        .zones(3)
        .clusters(2)
        .build();
    two_clusters.clusters[0].nodes[0].devices[0].free_bytes = 100 * GIB;
    let cases = [
        ("lie-unknown-device", "known-device"),
        ("lie-offline-device", "device-online"),
        ("lie-no-space", "device-space"),
        ("lie-same-node", "distinct-nodes"),
        ("lie-same-zone", "distinct-zones"),
        ("lie-shape", "set-shape"),
        ("lie-arbiter-role", "set-shape"),
        ("lie-sizes", "brick-sizes"),
        ("lie-too-small", "usable-size"),
        ("lie-empty", "set-count"),
        ("lie-clusters", "one-cluster"),
    ];
    for (lie, rule) in cases {
        let topology = if lie == "lie-clusters" {
            two_clusters.clone()
        } else {
            six_nodes()
        };
        let (fault, message) =
            expect_fault(set(&policy, mode(lie)).place(&request(10 * GIB), &topology));
        match &fault {
            Fault::Invalid { rule: found, .. } => assert_eq!(found, rule, "{lie}: {message}"),
            other => panic!("{lie}: expected rule {rule}, got {other:?}"),
        }
        assert!(message.contains(rule), "{lie}: {message}");
    }
    still_healthy(&runtime, &policy);
}

#[test]
fn lying_durability_and_quota_answers_are_refused() {
    let runtime = runtime();
    let policy = hostile(&runtime, Limits::default());
    for (lie, field) in [
        ("lie-scheme", "scheme"),
        ("lie-options", "volume_options"),
        ("lie-reserve", "snapshot_reserve"),
    ] {
        let (fault, _) = expect_fault(set(&policy, mode(lie)).durability(&claim(GIB)));
        assert!(
            matches!(&fault, Fault::Invalid { rule, .. } if rule == field),
            "{lie}: {fault:?}"
        );
    }
    let quota = QuotaRequest {
        claim: claim(10 * GIB),
        current_bytes: 0,
        namespace_usage: Usage::default(),
        cluster_usage: Usage::default(),
    };
    let (fault, _) = expect_fault(set(&policy, mode("lie-limit")).quota(&quota));
    assert!(
        matches!(&fault, Fault::Invalid { rule, .. } if rule == "hard_limit"),
        "{fault:?}"
    );
    // A limit above the storage's raw capacity is no limit: refused where
    // the capacity is known, as the engine knows it.
    let huge = set(&policy, mode("lie-limit-huge"));
    let (fault, message) = expect_fault(huge.quota_within(&quota, Some(600 * GIB)));
    assert!(
        matches!(&fault, Fault::Invalid { rule, .. } if rule == "hard_limit"),
        "{fault:?}"
    );
    assert!(message.contains("raw capacity"), "{message}");
    assert!(matches!(
        huge.quota_within(&quota, None),
        Ok(Verdict::Granted(_))
    ));
    still_healthy(&runtime, &policy);
}

#[test]
fn malformed_answers_and_tiny_hostile_guests_are_contained() {
    let runtime = runtime();
    let load = |body: &str| {
        Arc::new(
            runtime
                .load("wat", "test.wat", &wat_durability(body), Limits::default())
                .unwrap(),
        )
    };
    // A bad result discriminant (7 for a two-case result).
    let bad_variant = load("(i32.store8 (i32.const 128) (i32.const 7)) (i32.const 128)");
    let (fault, _) = expect_fault(set(&bad_variant, Pairs::new()).durability(&claim(GIB)));
    assert!(matches!(fault, Fault::Malformed { .. }), "{fault:?}");
    // An error string that is not UTF-8 (the payload sits at offset 8:
    // durability-decision holds an f64, so the result is 8-aligned).
    let bad_utf8 = load(
        "(i32.store8 (i32.const 128) (i32.const 1))
         (i32.store (i32.const 136) (i32.const 200)) (i32.store (i32.const 140) (i32.const 2))
         (i32.store16 (i32.const 200) (i32.const 0xfeff)) (i32.const 128)",
    );
    let (fault, _) = expect_fault(set(&bad_utf8, Pairs::new()).durability(&claim(GIB)));
    assert!(matches!(fault, Fault::Malformed { .. }), "{fault:?}");
    // A string pointer far outside memory.
    let out_of_bounds = load(
        "(i32.store8 (i32.const 128) (i32.const 1))
         (i32.store (i32.const 136) (i32.const 0x7fff0000)) (i32.store (i32.const 140) (i32.const 64)) (i32.const 128)",
    );
    let (fault, _) = expect_fault(set(&out_of_bounds, Pairs::new()).durability(&claim(GIB)));
    assert!(matches!(fault, Fault::Malformed { .. }), "{fault:?}");
    // Four lines of WAT that never return.
    let spin = load("(loop $spin (br $spin)) (unreachable)");
    let (fault, _) = expect_fault(set(&spin, Pairs::new()).durability(&claim(GIB)));
    assert!(matches!(fault, Fault::Timeout { .. }), "{fault:?}");
    // Growing memory until refused, then trapping.
    let grow = load(
        "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 64)) (i32.const -1)))) (unreachable)",
    );
    let (fault, _) = expect_fault(set(&grow, Pairs::new()).durability(&claim(GIB)));
    assert!(matches!(fault, Fault::MemoryLimit { .. }), "{fault:?}");
    let hostile = hostile(&runtime, Limits::default());
    still_healthy(&runtime, &hostile);
}

#[test]
fn malformed_and_truncated_files_are_refused_at_load_naming_the_file() {
    let runtime = runtime();
    let good = bundled("zone-spread");
    let attempts: [(&str, Vec<u8>); 4] = [
        ("truncated.wasm", good[..good.len() / 2].to_vec()),
        ("garbage.wasm", b"this is not wasm".to_vec()),
        ("empty.wasm", Vec::new()),
        // A valid core module, but not a component.
        ("core.wasm", wat::parse_str("(module)").unwrap()),
    ];
    for (file, bytes) in attempts {
        match runtime.load(
            "broken",
            &format!("/policies/{file}"),
            &bytes,
            Limits::default(),
        ) {
            Err(err @ PolicyError::Load { .. }) => {
                assert!(err.to_string().contains(file), "{file}: {err}");
                assert_eq!(err.blame(), Blame::Guest);
            }
            other => panic!("{file}: expected a load error, got {other:?}"),
        }
    }
    // A component that does not follow the contract: no settings export.
    let stranger = wat::parse_str("(component)").unwrap();
    let err = runtime
        .load("stranger", "stranger.wasm", &stranger, Limits::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("aplo:policy/settings@0.1.0"),
        "{err}"
    );
    let hostile = hostile(&runtime, Limits::default());
    still_healthy(&runtime, &hostile);
}

#[test]
fn exports_with_the_right_names_and_wrong_types_are_refused_at_load() {
    let runtime = runtime();
    let contract =
        "decide: func(claim: claim, settings: list<pair>) -> result<durability-decision, string>;";
    let wrong = wat_component("", "(param i64) (result i32)", "(i32.const 0)", |wit| {
        assert!(
            wit.contains(contract),
            "the contract's decide signature moved"
        );
        wit.replace(contract, "decide: func(requested: u64) -> u32;")
    });
    let err = runtime
        .load("wrong-types", "wrong-types.wasm", &wrong, Limits::default())
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PolicyError::Load { .. }), "{err:?}");
    assert!(
        message.contains("wrong-types.wasm")
            && message.contains("aplo:policy/durability@0.1.0")
            && message.contains("decide: func(requested: u64) -> u32"),
        "the error names the file, the interface and the function: {message}"
    );
    assert_eq!(err.blame(), Blame::Guest);
    // The same module with the contract's types loads.
    assert!(
        runtime
            .load(
                "right",
                "right.wasm",
                &wat_durability("(i32.const 96)"),
                Limits::default()
            )
            .is_ok()
    );
}

#[test]
fn tables_beyond_the_cap_are_refused() {
    let runtime = runtime();
    // A table of 100,000 elements: over the 10,000-element cap.
    let big_table = wat_durability_with("(table 100000 funcref)", "(i32.const 96)");
    let err = runtime
        .load("tables", "tables.wasm", &big_table, Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::Load { .. }) && err.to_string().contains("tables.wasm"),
        "{err}"
    );
    assert!(
        err.to_string().contains("table"),
        "the message names the table: {err}"
    );
    let hostile = hostile(&runtime, Limits::default());
    still_healthy(&runtime, &hostile);
}

#[test]
fn a_decision_the_policy_does_not_make_is_refused_before_running() {
    let runtime = runtime();
    let classes = load_bundled(&runtime, "classes");
    assert_eq!(classes.decisions(), vec![Decision::Durability]);
    let err = set(&classes, Pairs::new())
        .place(&request(GIB), &six_nodes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::NotExported {
                decision: Decision::Placement,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn instances_are_fresh_and_deterministic() {
    let runtime = runtime();
    let zone_spread = load_bundled(&runtime, "zone-spread");
    let policies = set(&zone_spread, Pairs::new());
    let first = policies.place(&request(10 * GIB), &six_nodes()).unwrap();
    for _ in 0..20 {
        assert_eq!(
            policies.place(&request(10 * GIB), &six_nodes()).unwrap(),
            first
        );
    }
}

/// Memory slots are reused, and only the pages a decision wrote are reset
/// (the pooling allocator's dirty-page scan): a guest that leaves marks in
/// its memory, low (kept resident) and high (grown), never finds one on its
/// next decision.
#[test]
fn a_reused_memory_slot_shows_nothing_of_the_last_decision() {
    let runtime = runtime();
    let policy = Arc::new(
        runtime
            .load(
                "marks",
                "test.wat",
                &wat_durability(
                    "(if (i32.load (i32.const 60000)) (then (unreachable)))
                     (i32.store (i32.const 60000) (i32.const 0xdead))
                     (if (i32.eq (memory.grow (i32.const 24)) (i32.const -1)) (then (unreachable)))
                     (if (i32.load (i32.const 1310720)) (then (unreachable)))
                     (i32.store (i32.const 1310720) (i32.const 0xbeef))
                     (i32.store8 (i32.const 128) (i32.const 1))
                     (i32.store (i32.const 136) (i32.const 64)) (i32.store (i32.const 140) (i32.const 3))
                     (i32.const 128)",
                ),
                Limits::default(),
            )
            .unwrap(),
    );
    let policies = set(&policy, Pairs::new());
    for round in 0..50 {
        // The guest refuses with the string at 64 ("wat") when memory was
        // clean, and traps when it finds a mark.
        match policies.durability(&claim(GIB)) {
            Ok(Verdict::Refused(reason)) => assert!(reason.contains("wat"), "{reason}"),
            other => panic!("round {round}: the guest saw a previous decision's memory: {other:?}"),
        }
    }
}

#[test]
fn many_threads_share_the_pool() {
    let runtime = runtime();
    let zone_spread = load_bundled(&runtime, "zone-spread");
    let policies = set(&zone_spread, Pairs::new());
    let topology = six_nodes();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert!(matches!(
                        policies.place(&request(GIB), &topology),
                        Ok(Verdict::Granted(_))
                    ));
                }
            });
        }
    });
}

#[test]
fn a_call_that_finds_the_pool_full_fails_busy_within_its_deadline() {
    // One slot, held by a loop with a long deadline.
    let runtime = Arc::new(
        Runtime::new(aplo::policy::RuntimeConfig {
            pool_slots: 1,
            ..Default::default()
        })
        .unwrap(),
    );
    let slow = hostile(
        &runtime,
        Limits {
            deadline: Duration::from_secs(3),
            ..Limits::default()
        },
    );
    let zone_spread = load_bundled(&runtime, "zone-spread");
    let deadline = zone_spread.limits().deadline;
    std::thread::scope(|s| {
        let looping = s.spawn(|| slow.decide(&claim(GIB), &mode("loop")));
        // A positive signal that the loop holds the only slot.
        let waited = Instant::now();
        while runtime.slots_in_use() == 0 {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the loop never started"
            );
            std::thread::yield_now();
        }
        let started = Instant::now();
        let (fault, message) = expect_fault(zone_spread.validate(&Pairs::new()));
        let took = started.elapsed();
        assert!(took < 2 * deadline, "busy after {took:?}");
        assert_eq!(
            fault,
            Fault::Busy {
                slots: 1,
                waited: deadline
            }
        );
        assert_eq!(fault.label(), "busy");
        assert_eq!(fault.blame(), Blame::Host);
        assert!(message.contains("'zone-spread'"), "{message}");
        assert!(message.contains("all 1 policy instance slots"), "{message}");
        assert!(message.contains("try again later"), "{message}");
        // The loop still ends at its own deadline, with its own fault.
        let (fault, _) = expect_fault(looping.join().unwrap());
        assert!(matches!(fault, Fault::Timeout { .. }), "{fault:?}");
    });
    assert_eq!(runtime.slots_in_use(), 0);
    assert_eq!(zone_spread.validate(&Pairs::new()).unwrap(), Ok(()));
    still_healthy(&runtime, &slow);
}
