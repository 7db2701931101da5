//! Golden-file cases run through the production sandbox.

use std::path::Path;

use aplo_policy_types::golden::{Case, CaseInput, Outcome, diff, load_cases};

use super::error::{PolicyError, Refusal};
use super::runtime::LoadedPolicy;
use super::set::{Bound, PolicySet};
use crate::model::Verdict;
use crate::model::validate::clean_reason;

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// What the policy produced.
    pub actual: Outcome,
    /// A diff against `expected.json`, `None` when they match.
    pub diff: Option<String>,
    /// Whether `expected.json` was missing.
    pub missing_expected: bool,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.diff.is_none() && !self.missing_expected
    }
}

/// Run one case through the sandbox, exactly as production would: the
/// settings are validated first, and answers are checked by the host.
pub fn evaluate(policy: &std::sync::Arc<LoadedPolicy>, input: &CaseInput) -> Outcome {
    let bound = |settings: &crate::model::Pairs| Bound {
        policy: policy.clone(),
        settings: settings.clone(),
    };
    let single = |settings: &crate::model::Pairs| PolicySet {
        durability: bound(settings),
        placement: bound(settings),
        quota: Some(bound(settings)),
        host: Default::default(),
    };
    let settings = match input {
        CaseInput::Validate { settings }
        | CaseInput::Durability { settings, .. }
        | CaseInput::Placement { settings, .. }
        | CaseInput::Quota { settings, .. } => settings,
    };
    // A refusal is the guest's text: inert, as everywhere else.
    let validated = match policy.validate(settings) {
        Err(err) => return fault(err),
        Ok(result) => result.map_err(|Refusal(message)| clean_reason(&message)),
    };
    if let CaseInput::Validate { .. } = input {
        return Outcome::of(validated.map(|()| serde_json::Value::Null));
    }
    if let Err(message) = validated {
        return Outcome::Fault(format!("settings refused: {message}"));
    }
    let set = single(settings);
    match input {
        CaseInput::Validate { .. } => unreachable!("handled above"),
        CaseInput::Durability { claim, .. } => outcome(set.durability(claim)),
        CaseInput::Placement {
            request, topology, ..
        } => outcome(set.place(request, topology).map(|v| match v {
            Verdict::Granted(placed) => Verdict::Granted(placed.layout),
            Verdict::Refused(reason) => Verdict::Refused(reason),
        })),
        CaseInput::Quota { request, .. } => outcome(set.quota(request)),
    }
}

fn outcome<T: serde::Serialize>(result: Result<Verdict<T>, PolicyError>) -> Outcome {
    match result {
        Ok(Verdict::Granted(value)) => Outcome::of(Ok::<_, String>(value)),
        Ok(Verdict::Refused(reason)) => Outcome::Refused(reason),
        Err(err) => fault(err),
    }
}

fn fault(err: PolicyError) -> Outcome {
    match err {
        PolicyError::Fault { fault, .. } => Outcome::Fault(fault.to_string()),
        other => Outcome::Fault(other.to_string()),
    }
}

/// Run every case under `tests_dir`; with `bless`, rewrite `expected.json`
/// with what the policy produced.
pub fn run_dir(
    policy: &std::sync::Arc<LoadedPolicy>,
    tests_dir: &Path,
    bless: bool,
) -> Result<Vec<CaseResult>, PolicyError> {
    let cases = load_cases(tests_dir).map_err(|e| PolicyError::Load {
        policy: policy.name().to_owned(),
        origin: e.path.display().to_string(),
        detail: e.message,
    })?;
    let mut results = Vec::new();
    for Case {
        name,
        dir,
        input,
        expected,
    } in cases
    {
        let actual = evaluate(policy, &input);
        if bless {
            let path = dir.join("expected.json");
            std::fs::write(&path, actual.to_pretty()).map_err(|source| PolicyError::Io {
                path: path.display().to_string(),
                source,
            })?;
            results.push(CaseResult {
                name,
                actual,
                diff: None,
                missing_expected: false,
            });
            continue;
        }
        let (diff, missing) = match &expected {
            Some(expected) => (diff(expected, &actual), false),
            None => (None, true),
        };
        results.push(CaseResult {
            name,
            actual,
            diff,
            missing_expected: missing,
        });
    }
    Ok(results)
}
