//! Native golden-file tests (feature `testing`).
//!
//! Each case is a folder `tests/<case>/` with `input.json` and
//! `expected.json` (format: [`aplo_policy_types::golden`]). Register the
//! decisions your policy makes and run every case:
//!
//! ```ignore
//! #[test]
//! fn golden() {
//!     aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
//!         .policy::<MyPolicy>()
//!         .placement::<MyPolicy>()
//!         .run();
//! }
//! ```
//!
//! The same cases run through the production sandbox with
//! `aplo policy test <crate dir>`, which also rewrites them with `--bless`.

use std::path::PathBuf;

pub use aplo_policy_types::golden::{CaseInput, Outcome, diff, load_cases};

use crate::{Durability, Pairs, Placement, Policy, Quota, Settings};

type Validate = fn(&Settings) -> Result<(), String>;

/// A golden-file runner over a crate's `tests/` folder.
pub struct Golden {
    dir: PathBuf,
    validate: Option<Validate>,
    place: Option<fn(&CaseInput) -> Outcome>,
    decide: Option<fn(&CaseInput) -> Outcome>,
    check: Option<fn(&CaseInput) -> Outcome>,
}

fn settings(pairs: &Pairs) -> Settings {
    Settings::from_pairs(pairs.clone())
}

impl Golden {
    /// A runner for the cases under `<crate_dir>/tests`.
    pub fn new(crate_dir: &str) -> Golden {
        Golden {
            dir: PathBuf::from(crate_dir).join("tests"),
            validate: None,
            place: None,
            decide: None,
            check: None,
        }
    }

    /// Run `validate` cases (and check settings before each decision, as the
    /// host does) with `P`.
    pub fn policy<P: Policy>(mut self) -> Golden {
        self.validate = Some(P::validate);
        self
    }

    /// Run `placement` cases with `P`.
    pub fn placement<P: Placement>(mut self) -> Golden {
        self.place = Some(|input| match input {
            CaseInput::Placement {
                settings: s,
                request,
                topology,
            } => Outcome::of(P::place(request, topology, &settings(s))),
            _ => unreachable!("dispatched by decision"),
        });
        self
    }

    /// Run `durability` cases with `P`.
    pub fn durability<P: Durability>(mut self) -> Golden {
        self.decide = Some(|input| match input {
            CaseInput::Durability { settings: s, claim } => {
                Outcome::of(P::decide(claim, &settings(s)))
            }
            _ => unreachable!("dispatched by decision"),
        });
        self
    }

    /// Run `quota` cases with `P`.
    pub fn quota<P: Quota>(mut self) -> Golden {
        self.check = Some(|input| match input {
            CaseInput::Quota {
                settings: s,
                request,
            } => Outcome::of(P::check(request, &settings(s))),
            _ => unreachable!("dispatched by decision"),
        });
        self
    }

    /// Run every case; panic with a diff of each mismatch. Panics too when
    /// there are no cases, when a case has no `expected.json`, or when a
    /// case names a decision that was not registered: a golden test that
    /// checks nothing must not pass.
    pub fn run(self) {
        let cases =
            load_cases(&self.dir).unwrap_or_else(|err| panic!("reading golden cases: {err}"));
        assert!(
            !cases.is_empty(),
            "no golden cases under {}",
            self.dir.display()
        );
        let mut failures = Vec::new();
        for case in &cases {
            let Some(expected) = &case.expected else {
                let crate_dir = self.dir.parent().unwrap_or(&self.dir);
                failures.push(format!(
                    "{}: no expected.json (review the answer, then write it with `aplo policy test {} --bless`)",
                    case.name,
                    crate_dir.display()
                ));
                continue;
            };
            let actual = match self.evaluate(&case.input) {
                Ok(outcome) => outcome,
                Err(message) => {
                    failures.push(format!("{}: {message}", case.name));
                    continue;
                }
            };
            if let Some(diff) = diff(expected, &actual) {
                failures.push(format!("{} (- expected, + actual):\n{diff}", case.name));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} golden cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    fn evaluate(&self, input: &CaseInput) -> Result<Outcome, String> {
        let validate = self
            .validate
            .ok_or("register the policy with .policy::<P>()")?;
        let (settings_pairs, run) = match input {
            CaseInput::Validate { settings: s } => {
                return Ok(Outcome::of(
                    validate(&settings(s)).map(|()| serde_json::Value::Null),
                ));
            }
            CaseInput::Placement { settings, .. } => (settings, self.place),
            CaseInput::Durability { settings, .. } => (settings, self.decide),
            CaseInput::Quota { settings, .. } => (settings, self.check),
        };
        let run = run.ok_or_else(|| {
            format!(
                "the case is a {} decision, which was not registered",
                input.decision()
            )
        })?;
        if let Err(message) = validate(&settings(settings_pairs)) {
            return Ok(Outcome::Fault(format!("settings refused: {message}")));
        }
        Ok(run(input))
    }
}
