//! `cargo test` runs every golden case of every bundled policy through the
//! production sandbox.

mod common;

use std::path::Path;
use std::sync::Arc;

use aplo::policy::{bundled, golden};

#[test]
fn every_bundled_policy_passes_its_golden_cases_in_the_sandbox() {
    let runtime = common::runtime();
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, wasm) in bundled::BUNDLED {
        let policy = Arc::new(
            runtime
                .load(name, "bundled", wasm, Default::default())
                .unwrap(),
        );
        let cases = Path::new(bundled::SOURCE_DIR).join(name).join("tests");
        let results = golden::run_dir(&policy, &cases, false).unwrap();
        assert!(
            results.len() >= 3,
            "{name} has only {} golden cases",
            results.len()
        );
        total += results.len();
        for r in results.iter().filter(|r| !r.passed()) {
            failures.push(format!(
                "{name}/{}:\n{}",
                r.name,
                r.diff.as_deref().unwrap_or("no expected.json")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 30, "only {total} golden cases ran");
}

#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let runtime = common::runtime();
    let policy = Arc::new(
        runtime
            .load(
                "classes",
                "bundled",
                common::bundled("classes"),
                Default::default(),
            )
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("wrong");
    std::fs::create_dir(&case).unwrap();
    let source = Path::new(bundled::SOURCE_DIR).join("classes/tests/default-is-replica3");
    std::fs::copy(source.join("input.json"), case.join("input.json")).unwrap();
    std::fs::write(
        case.join("expected.json"),
        r#"{"refused": "not what it says"}"#,
    )
    .unwrap();
    let results = golden::run_dir(&policy, dir.path(), false).unwrap();
    assert!(!results[0].passed());
    let diff = results[0].diff.as_deref().unwrap();
    assert!(
        diff.contains("- ") && diff.contains("+ ") && diff.contains("replicate"),
        "{diff}"
    );
    // --bless rewrites it; then it passes.
    golden::run_dir(&policy, dir.path(), true).unwrap();
    assert!(golden::run_dir(&policy, dir.path(), false).unwrap()[0].passed());
}
