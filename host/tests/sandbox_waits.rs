//! Hostile guests that wait or ask the host for bytes: sleeps of 5 s, for
//! ever and until the largest instant, a poll on 2,000 clocks, floods of
//! random bytes and of output. wasmtime's epoch deadline interrupts guest
//! code, never a host call, so each of these once held a host thread. In
//! every export (`describe` at load, `validate`, and each decision) each must
//! now end with a typed fault within twice the deadline, and the next good
//! decision must work.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::model::testing::claim;
use aplo::model::{GIB, Pairs, QuotaRequest, Usage, Verdict};
use aplo::policy::{Fault, Limits, LoadedPolicy, PolicyError, PolicySet, Runtime};
use common::{R3, hostile, hostile_wasm, load_bundled, runtime, six_nodes};

const DEADLINE: Duration = Duration::from_millis(200);

/// The tests here time decisions against the deadline: they run one at a
/// time, so that they do not take each other's cores (two on CI).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn limits() -> Limits {
    Limits {
        deadline: DEADLINE,
        ..Limits::default()
    }
}

/// The attacks, and whether each ends as a timeout (`true`) or as a
/// hostcall-limit fault (`false`).
const ATTACKS: [(&str, bool); 7] = [
    ("sleep-5s", true),
    ("sleep-forever", true),
    ("sleep-max-instant", true),
    ("poll-2000", true),
    ("random-flood", false),
    ("random-60mib", false),
    ("print-flood", false),
];

fn pairs(entries: &[(&str, &str)]) -> Pairs {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(policy: &Arc<LoadedPolicy>, settings: Pairs) -> PolicySet {
    common::policy_set(policy, settings)
}

fn quota_request() -> QuotaRequest {
    QuotaRequest {
        claim: claim(GIB),
        current_bytes: 0,
        namespace_usage: Usage::default(),
        cluster_usage: Usage::default(),
    }
}

/// Check that `fault` is the one `attack` must end in, and that it came
/// within twice the deadline.
fn check(attack: &str, timeout: bool, export: &str, fault: &Fault, took: Duration) {
    if timeout {
        assert_eq!(
            fault,
            &Fault::Timeout { deadline: DEADLINE },
            "{attack} in {export}"
        );
    } else {
        assert!(
            matches!(fault, Fault::HostcallLimit { limit } if *limit == Limits::default().hostcall_fuel),
            "{attack} in {export}: expected a hostcall-limit fault, got {fault:?}"
        );
        assert_eq!(fault.label(), "hostcall_limit");
    }
    assert!(
        took < DEADLINE * 2,
        "{attack} in {export} ended after {took:?}, more than twice the {DEADLINE:?} deadline"
    );
}

fn fault_of<T: std::fmt::Debug>(
    attack: &str,
    export: &str,
    result: Result<T, PolicyError>,
) -> Fault {
    match result {
        Err(err) => err
            .fault()
            .cloned()
            .unwrap_or_else(|| panic!("{attack} in {export}: not a fault: {err}")),
        Ok(answer) => panic!("{attack} in {export}: answered {answer:?}"),
    }
}

/// The next good decisions, from the same module and from a bundled policy.
fn still_healthy(runtime: &Arc<Runtime>, policy: &Arc<LoadedPolicy>) {
    let good = set(policy, Pairs::new());
    let request = aplo::model::testing::request(10 * GIB, R3);
    assert!(matches!(
        good.place(&request, &six_nodes()),
        Ok(Verdict::Granted(_))
    ));
    assert!(matches!(
        good.durability(&claim(GIB)),
        Ok(Verdict::Granted(_))
    ));
    assert_eq!(policy.validate(&Pairs::new()).unwrap(), Ok(()));
    let zone_spread = load_bundled(runtime, "zone-spread");
    assert!(matches!(
        set(&zone_spread, Pairs::new()).place(&request, &six_nodes()),
        Ok(Verdict::Granted(_))
    ));
}

#[test]
fn waits_and_floods_in_each_decision_end_within_twice_the_deadline() {
    let _serial = one_at_a_time();
    let runtime = runtime();
    let policy = hostile(&runtime, limits());
    let request = aplo::model::testing::request(10 * GIB, R3);
    for (attack, timeout) in ATTACKS {
        let set = set(&policy, pairs(&[("mode", attack)]));

        let started = Instant::now();
        let result = set.place(&request, &six_nodes());
        check(
            attack,
            timeout,
            "place",
            &fault_of(attack, "place", result),
            started.elapsed(),
        );

        let started = Instant::now();
        let result = set.durability(&claim(GIB));
        check(
            attack,
            timeout,
            "decide",
            &fault_of(attack, "decide", result),
            started.elapsed(),
        );

        let started = Instant::now();
        let result = set.quota(&quota_request());
        check(
            attack,
            timeout,
            "check",
            &fault_of(attack, "check", result),
            started.elapsed(),
        );

        still_healthy(&runtime, &policy);
    }
}

#[test]
fn waits_and_floods_in_validate_end_within_twice_the_deadline() {
    let _serial = one_at_a_time();
    let runtime = runtime();
    let policy = hostile(&runtime, limits());
    for (attack, timeout) in ATTACKS {
        let started = Instant::now();
        let result = policy.validate(&pairs(&[("validate", attack)]));
        check(
            attack,
            timeout,
            "validate",
            &fault_of(attack, "validate", result),
            started.elapsed(),
        );
        still_healthy(&runtime, &policy);
    }
}

/// The hostile module with `describe()` doing `attack`: the mode is read
/// from fixed-length bytes in its data segment (see the guest's
/// `DESCRIBE_MODE`).
fn describing(attack: &str) -> Vec<u8> {
    let mut wasm = hostile_wasm();
    let marker = b"hostile-describe:ok\0";
    let at = wasm
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the hostile module carries its describe marker");
    let mut replacement = format!("hostile-describe:{attack}").into_bytes();
    assert!(replacement.len() < 40, "{attack} fits the marker");
    replacement.resize(40, 0);
    wasm[at..at + 40].copy_from_slice(&replacement);
    wasm
}

#[test]
fn waits_and_floods_in_describe_fail_the_load_within_twice_the_deadline() {
    let _serial = one_at_a_time();
    let runtime = runtime();
    // The marker rewriting itself works: `ok` loads and `panic` does not.
    assert!(
        runtime
            .load("hostile", "test", &describing("ok"), limits())
            .is_ok()
    );
    match runtime.load("hostile", "test", &describing("panic"), limits()) {
        Err(PolicyError::Load { detail, .. }) => {
            assert!(detail.contains("panicked on purpose"), "{detail}")
        }
        other => panic!("a panicking describe() loaded: {other:?}"),
    }
    for (attack, timeout) in ATTACKS {
        let started = Instant::now();
        let result = runtime.load("hostile", "test", &describing(attack), limits());
        let took = started.elapsed();
        let detail = match result {
            Err(PolicyError::Load { detail, .. }) => detail,
            other => panic!("{attack} in describe: expected a load error, got {other:?}"),
        };
        let expected = if timeout {
            "timed out after the 200 ms deadline"
        } else {
            "more than its budget of"
        };
        assert!(
            detail.contains("describe() failed") && detail.contains(expected),
            "{attack} in describe: {detail}"
        );
        // Loading compiles the module; the deadline bounds describe() only.
        let compile = Duration::from_secs(5);
        assert!(
            took < compile + DEADLINE * 2,
            "{attack} in describe took {took:?}"
        );
        let policy = hostile(&runtime, limits());
        still_healthy(&runtime, &policy);
    }
}

#[test]
fn a_short_wait_within_the_deadline_returns_at_once_and_moves_the_virtual_clock() {
    let _serial = one_at_a_time();
    // `sleep-5s` under a 10 s deadline: the sleep is virtual, so the
    // decision answers at once instead of taking five seconds, and the
    // guest's clock shows the five seconds (it panics if not).
    let runtime = runtime();
    let policy = Arc::new(
        runtime
            .load(
                "hostile",
                "test",
                &hostile_wasm(),
                Limits {
                    deadline: Duration::from_secs(10),
                    ..Limits::default()
                },
            )
            .unwrap(),
    );
    let started = Instant::now();
    let decision = set(&policy, pairs(&[("mode", "sleep-5s")])).durability(&claim(GIB));
    let took = started.elapsed();
    assert!(
        matches!(decision, Ok(Verdict::Granted(_))),
        "after a virtual sleep the decision answers: {decision:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "a 5 s sleep took {took:?} of real time"
    );
}
