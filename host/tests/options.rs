//! Volume options in policy answers, through the real sandbox: a guest
//! that lists a key twice, a bundled policy handed flag-like values, names
//! gluster does not have. Each is a fault naming the option, and nothing
//! the answer holds gets further. (The same on a real gluster, with the
//! REST API, is `tests/tests/volume_options.rs`.)

mod common;

use std::sync::Arc;

use aplo::exec::gluster::builtin_options;
use aplo::model::testing::claim;
use aplo::model::{GIB, Pairs, Verdict};
use aplo::policy::{Bound, Fault, Limits, LoadedPolicy, PolicyError, PolicySet};
use common::{load_bundled, runtime, wat_durability_with};

fn set(policy: &Arc<LoadedPolicy>, settings: &[(&str, &str)]) -> PolicySet {
    let bound = Bound {
        policy: policy.clone(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    PolicySet {
        durability: bound.clone(),
        placement: bound,
        quota: None,
        host: Pairs::new(),
    }
}

/// The fault's rule and message, or a panic with what came instead.
fn invalid<T: std::fmt::Debug>(result: Result<T, PolicyError>) -> (String, String) {
    match result {
        Err(err @ PolicyError::Fault { .. }) => match err.fault() {
            Some(Fault::Invalid { rule, detail }) => (rule.clone(), detail.clone()),
            other => panic!("expected an invalid answer, got {other:?}"),
        },
        other => panic!("expected a fault, got {other:?}"),
    }
}

/// A durability answer with the scheme `none` and two options, both
/// `performance.cache-size` (10MB, then 20MB): the WIT answer is a list of
/// pairs, which the SDK (built on a map) cannot produce.
///
/// Layout of `result<durability-decision, string>` (8-aligned by the f64):
/// the discriminant at 256, the decision at 264: scheme (none) at 264, the
/// option list (pointer, length) at 268, the reserve 1.0 at 280. The pairs
/// (key pointer, key length, value pointer, value length) sit at 512, the
/// strings at 600, 640 and 644.
const REPEATED: &str = r#"
  (data (i32.const 256) "\00\00\00\00\00\00\00\00\00\00\00\00\00\02\00\00\02\00\00\00\00\00\00\00\00\00\00\00\00\00\f0\3f")
  (data (i32.const 512) "\58\02\00\00\16\00\00\00\80\02\00\00\04\00\00\00\58\02\00\00\16\00\00\00\84\02\00\00\04\00\00\00")
  (data (i32.const 600) "performance.cache-size")
  (data (i32.const 640) "10MB20MB")
"#;

#[test]
fn a_key_listed_twice_is_a_fault_naming_it() {
    let runtime = runtime();
    let twice = Arc::new(
        runtime
            .load(
                "twice",
                "test.wat",
                &wat_durability_with(REPEATED, "(i32.const 256)"),
                Limits::default(),
            )
            .unwrap(),
    );
    let (rule, detail) = invalid(set(&twice, &[]).durability(&claim(GIB)));
    assert_eq!(rule, "volume_options");
    assert_eq!(detail, "'performance.cache-size' is given more than once");
    let (_, detail) = invalid(set(&twice, &[]).durability_for(&claim(GIB), &builtin_options()));
    assert_eq!(detail, "'performance.cache-size' is given more than once");
}

#[test]
fn flag_like_and_unknown_options_in_a_class_are_faults_naming_them() {
    let runtime = runtime();
    let classes = load_bundled(&runtime, "classes");
    let with = |options: &str| set(&classes, &[("class", "none"), ("none.options", options)]);
    let known = builtin_options();
    for (options, needle) in [
        (
            "performance.cache-size=--log-file=/tmp/aplo-pwned",
            "the value of 'performance.cache-size' begins with '-'",
        ),
        (
            "performance.cache-size=--remote-host=10.0.0.9",
            "the value of 'performance.cache-size' begins with '-'",
        ),
        (
            "network.ping-timeout=-5",
            "the value of 'network.ping-timeout'",
        ),
        (
            "--log-file=/tmp/aplo-pwned",
            "'--log-file' is not a gluster option name",
        ),
        ("user.aplo.volume=forged", "'user.aplo.volume' is reserved"),
        ("user.smb=enable", "'user.smb' is reserved"),
    ] {
        // Refused with or without the list of gluster's options.
        for result in [
            with(options).durability(&claim(GIB)),
            with(options).durability_for(&claim(GIB), &known),
        ] {
            let (rule, detail) = invalid(result);
            assert_eq!(rule, "volume_options");
            assert!(detail.contains(needle), "{options}: {detail}");
        }
    }
    // A name gluster does not have: refused against its list.
    let (rule, detail) = invalid(with("cluster.made-up=on").durability_for(&claim(GIB), &known));
    assert_eq!(rule, "volume_options");
    assert!(
        detail.contains("'cluster.made-up' is not a volume option of this gluster")
            && detail.contains("glusterfs 10.3"),
        "{detail}"
    );
    // Real and custom options pass, with the class's own default.
    let fine = with("performance.cache-size=10MB;user.team=blue")
        .durability_for(&claim(GIB), &known)
        .unwrap();
    let Verdict::Granted(decision) = fine else {
        panic!("{fine:?}")
    };
    assert_eq!(decision.volume_options.len(), 2);
    assert_eq!(decision.volume_options["performance.cache-size"], "10MB");
}

#[test]
fn a_class_repeating_a_key_is_refused_at_its_settings() {
    let runtime = runtime();
    let classes = load_bundled(&runtime, "classes");
    let settings: Pairs = [(
        "replica3.options".to_string(),
        "performance.cache-size=10MB;performance.cache-size=20MB".to_string(),
    )]
    .into_iter()
    .collect();
    let err = classes
        .validate(&settings)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'performance.cache-size' is given more than once"),
        "{err}"
    );
}
