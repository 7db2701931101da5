//! The golden-file case format.
//!
//! A case is a folder `tests/<case>/` in a policy crate holding:
//! - `input.json`: a [`CaseInput`], naming the decision and its input;
//! - `expected.json`: the [`Outcome`] the policy must produce.
//!
//! The same files are run natively against the policy's pure functions
//! (`cargo test` in `policies/`) and through the production sandbox
//! (`aplo policy test`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Claim, Pairs, PlacementRequest, QuotaRequest, Topology};

/// The input of one golden case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseInput {
    /// `settings.validate`.
    Validate {
        /// Settings to check.
        #[serde(default)]
        settings: Pairs,
    },
    /// `durability.decide`.
    Durability {
        /// The policy's settings.
        #[serde(default)]
        settings: Pairs,
        /// The claim.
        claim: Claim,
    },
    /// `placement.place`.
    Placement {
        /// The policy's settings.
        #[serde(default)]
        settings: Pairs,
        /// What to place.
        request: PlacementRequest,
        /// Where it may go.
        topology: Topology,
    },
    /// `quota.check`.
    Quota {
        /// The policy's settings.
        #[serde(default)]
        settings: Pairs,
        /// What to check.
        request: QuotaRequest,
    },
}

impl CaseInput {
    /// The decision's name: `validate`, `durability`, `placement` or `quota`.
    pub fn decision(&self) -> &'static str {
        match self {
            CaseInput::Validate { .. } => "validate",
            CaseInput::Durability { .. } => "durability",
            CaseInput::Placement { .. } => "placement",
            CaseInput::Quota { .. } => "quota",
        }
    }
}

/// What a decision produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The decision's answer as JSON (`null` for a successful `validate`).
    Ok(serde_json::Value),
    /// The policy refused, with this reason.
    Refused(String),
    /// The host refused the answer or the call failed (only through the
    /// sandbox: a trap, a timeout, or an answer that broke a rule).
    Fault(String),
}

impl Outcome {
    /// The outcome of a typed decision.
    pub fn of<T: Serialize>(result: Result<T, String>) -> Outcome {
        match result {
            Ok(value) => match serde_json::to_value(value) {
                Ok(json) => Outcome::Ok(json),
                Err(err) => Outcome::Fault(format!("answer does not serialize: {err}")),
            },
            Err(reason) => Outcome::Refused(reason),
        }
    }

    /// Pretty JSON, ending in a newline, as written to `expected.json`.
    pub fn to_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{err}"));
        text.push('\n');
        text
    }
}

/// One case on disk.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's folder name.
    pub name: String,
    /// The case's folder.
    pub dir: PathBuf,
    /// The parsed `input.json`.
    pub input: CaseInput,
    /// The parsed `expected.json`; `None` when the file does not exist yet.
    pub expected: Option<Outcome>,
}

/// Why a case could not be read.
#[derive(Debug)]
pub struct CaseError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for CaseError {}

/// Read every case below `tests_dir` (each sub-folder with an `input.json`),
/// sorted by name. Folders without `input.json` are ignored.
pub fn load_cases(tests_dir: &Path) -> Result<Vec<Case>, CaseError> {
    let io = |path: &Path, err: std::io::Error| CaseError {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(tests_dir).map_err(|e| io(tests_dir, e))? {
        let dir = entry.map_err(|e| io(tests_dir, e))?.path();
        let input_path = dir.join("input.json");
        if !input_path.is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let input = parse(&input_path)?;
        let expected_path = dir.join("expected.json");
        let expected = if expected_path.exists() {
            Some(parse(&expected_path)?)
        } else {
            None
        };
        cases.push(Case {
            name,
            dir,
            input,
            expected,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaseError {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| CaseError {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A unified diff of expected against actual, or `None` when they match.
pub fn diff(expected: &Outcome, actual: &Outcome) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (want, got) = (expected.to_pretty(), actual.to_pretty());
    let mut out = String::new();
    for line in unified_lines(&want, &got) {
        out.push_str(&line);
        out.push('\n');
    }
    Some(out)
}

/// A minimal line diff: lines only in `want` get `-`, only in `got` get `+`,
/// common lines a space. Based on the longest common subsequence; cases are
/// small, so the quadratic table is fine.
fn unified_lines(want: &str, got: &str) -> Vec<String> {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}
