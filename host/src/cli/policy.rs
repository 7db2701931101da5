//! `aplo policy …`: list, inspect, test and evaluate policies, and write
//! golden cases.

mod case;
mod names;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aplo_policy_types::golden::{CaseInput, Outcome};
use clap::Subcommand;

use super::Config;
use crate::model::{Decision, PolicySelection};
use crate::policy::{
    INTERFACES, LoadedPolicy, PolicyError, Runtime, RuntimeConfig, golden, read_module_file,
};
use names::Names;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the active policies (bundled and from the policy directory).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a module exports, its WIT version, hash and settings.
    Inspect {
        /// The `.wasm` file.
        wasm: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run golden cases through the production sandbox.
    ///
    /// PATH is a policy crate (its built module is found under `target/`,
    /// its cases under `tests/`) or a `.wasm` file with `--cases`.
    Test {
        /// A policy crate directory or a `.wasm` file.
        #[arg(required_unless_present = "bundled")]
        path: Option<PathBuf>,
        /// The folder of cases (default: `<crate>/tests`).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Rewrite every `expected.json` with what the policy produced.
        #[arg(long)]
        bless: bool,
        /// Test every bundled policy against its cases in the source tree.
        #[arg(long, conflicts_with = "path")]
        bundled: bool,
        /// Print each case's blessed answer in words: sets of bricks with
        /// node and device names, roles and sizes.
        #[arg(long)]
        show: bool,
        /// Print ids without the names the case's topology gives them.
        #[arg(long)]
        ids_only: bool,
    },
    /// Evaluate one decision and print the outcome as JSON.
    Eval {
        /// The decision: durability, placement, quota or validate. May be
        /// omitted when the input names it.
        #[arg(long)]
        decision: Option<Decision>,
        /// The input, in golden-case format (`-` for stdin).
        #[arg(long)]
        input: PathBuf,
        /// The policy: a registered name or a `.wasm` file (default: the
        /// default policy for the decision).
        #[arg(long)]
        policy: Option<String>,
        /// Extra settings, `key=value`, overriding the input's.
        #[arg(long = "settings", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Print the outcome as plain JSON, without `// names` beside ids.
        #[arg(long)]
        ids_only: bool,
    },
    /// Write a placement case's `input.json` from a heketi topology file,
    /// with ids derived from the names.
    Case(case::CaseArgs),
}

/// Run a policy command.
pub fn run(config: &Config, command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::List { json } => list(config, json),
        PolicyCommand::Inspect { wasm, json } => inspect(&wasm, json),
        PolicyCommand::Test {
            path,
            cases,
            bless,
            bundled,
            show,
            ids_only,
        } => {
            let shown = test::Shown { show, ids_only };
            if bundled {
                test::test_bundled(bless, shown)
            } else {
                test::test(
                    &path.expect("clap requires a path"),
                    cases.as_deref(),
                    bless,
                    shown,
                )
            }
        }
        PolicyCommand::Eval {
            decision,
            input,
            policy,
            settings,
            ids_only,
        } => eval(
            config,
            decision,
            &input,
            policy.as_deref(),
            &settings,
            ids_only,
        ),
        PolicyCommand::Case(args) => case::run(&args).map(|()| ExitCode::SUCCESS),
    }
}

fn list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let registry = config.open_registry()?;
    let policies = registry.list();
    if json {
        println!("{}", serde_json::to_string_pretty(&policies)?);
        return Ok(ExitCode::SUCCESS);
    }
    for p in policies {
        let decisions: Vec<&str> = p.decisions.iter().map(|d| d.as_str()).collect();
        println!(
            "{:<18} {:<22} {:<9} {}",
            p.name,
            decisions.join(","),
            p.info.version,
            p.info.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn standalone_runtime() -> anyhow::Result<Arc<Runtime>> {
    Ok(Arc::new(Runtime::new(RuntimeConfig::default())?))
}

/// Load a module file under its file stem (or `policy` if the stem is not a
/// valid policy name).
fn load_file(runtime: &Arc<Runtime>, wasm: &Path) -> anyhow::Result<Arc<LoadedPolicy>> {
    // Opened without blocking, checked for type, size and magic first: a
    // FIFO or a huge file is refused, not waited on or read whole.
    let bytes = read_module_file(wasm)?.bytes;
    let stem = wasm
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .replace('_', "-");
    let name = crate::model::PolicyName::new(&stem)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "policy".into());
    Ok(Arc::new(runtime.load(
        &name,
        &wasm.display().to_string(),
        &bytes,
        Default::default(),
    )?))
}

fn inspect(wasm: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let runtime = standalone_runtime()?;
    let policy = load_file(&runtime, wasm)?;
    let size = std::fs::metadata(wasm)?.len();
    let wit: Vec<&str> = INTERFACES
        .iter()
        .filter(|(_, d)| d.is_none_or(|d| policy.makes(d)))
        .map(|(name, _)| *name)
        .collect();
    let report = serde_json::json!({
        "file": wasm.display().to_string(),
        "bytes": size,
        "sha256": policy.sha256(),
        "wit_package": "aplo:policy@0.1.0",
        "exports": wit,
        "decisions": policy.decisions(),
        "info": policy.info(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let info = policy.info();
    println!("file:        {} ({size} bytes)", wasm.display());
    println!("sha256:      {}", policy.sha256());
    println!("wit package: aplo:policy@0.1.0");
    println!("exports:     {}", wit.join(", "));
    println!(
        "decisions:   {}",
        policy
            .decisions()
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("version:     {}", info.version);
    println!("description: {}", info.description);
    if !info.settings.is_empty() {
        println!("settings:");
        for s in &info.settings {
            let default = s
                .default
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            println!("  {:<24} {}{default}", s.key, s.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(
    config: &Config,
    decision: Option<Decision>,
    input: &Path,
    policy: Option<&str>,
    extra: &[String],
    ids_only: bool,
) -> anyhow::Result<ExitCode> {
    let text = if input == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?
    };
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", input.display()))?;
    let object = value
        .as_object_mut()
        .with_context(|| format!("{} must hold a JSON object", input.display()))?;
    match (object.get("decision").and_then(|d| d.as_str()), decision) {
        (Some(named), Some(flag)) if named != flag.as_str() => {
            bail!("--decision {flag} contradicts the input's \"decision\": \"{named}\"")
        }
        (None, Some(flag)) => {
            object.insert("decision".into(), flag.as_str().into());
        }
        (None, None) => bail!("the input names no decision; pass --decision"),
        _ => {}
    }
    let settings = object
        .entry("settings")
        .or_insert_with(|| serde_json::json!({}));
    for pair in extra {
        let (key, val) = pair
            .split_once('=')
            .with_context(|| format!("--settings '{pair}' is not key=value"))?;
        settings
            .as_object_mut()
            .context("\"settings\" must be an object")?
            .insert(key.into(), val.into());
    }
    let case: CaseInput = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid decision input", input.display()))?;
    let policy = match policy {
        Some(p) if p.ends_with(".wasm") => load_file(&standalone_runtime()?, Path::new(p))?,
        Some(name) => config
            .open_registry()?
            .get(name)
            .map_err(|err| outside_the_registry(config, name, err))?,
        None => {
            let name = match case.decision() {
                "placement" => PolicySelection::DEFAULT_PLACEMENT,
                "quota" => "namespace-quota",
                _ => PolicySelection::DEFAULT_DURABILITY,
            };
            config.open_registry()?.get(name)?
        }
    };
    let outcome = golden::evaluate(&policy, &case);
    let text = outcome.to_pretty();
    if ids_only {
        print!("{text}");
    } else {
        print!("{}", Names::of(&case).annotate(&text));
    }
    Ok(match outcome {
        Outcome::Fault(_) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// An unknown policy name, with where a module outside the bundled set
/// comes from.
fn outside_the_registry(config: &Config, name: &str, err: PolicyError) -> anyhow::Error {
    let PolicyError::Unknown { .. } = err else {
        return err.into();
    };
    let file = format!("{}.wasm", name.replace('_', "-"));
    match &config.policy_dir {
        None => anyhow::anyhow!(
            "{err}; a policy outside the bundled set is read from a policy directory: pass --policy-dir DIR with {file} in it, or --policy path/to/{file}"
        ),
        Some(dir) => anyhow::anyhow!(
            "{err}; {} has no valid {file} (the file name is the policy's name)",
            dir.display()
        ),
    }
}
