//! `aplo policy …`: list, inspect, test and evaluate policies, and write
//! golden cases.

mod case;
mod names;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aplo_policy_types::golden::{Case, CaseInput, Outcome, load_cases};
use clap::Subcommand;

use super::Config;
use crate::model::{Decision, PolicySelection};
use crate::policy::{
    INTERFACES, LoadedPolicy, PolicyError, Runtime, RuntimeConfig, bundled, golden,
    read_module_file,
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
            let shown = Shown { show, ids_only };
            if bundled {
                test_bundled(bless, shown)
            } else {
                test(
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

/// How `aplo policy test` shows answers.
#[derive(Debug, Clone, Copy)]
struct Shown {
    /// Render each case's blessed answer in words.
    show: bool,
    /// No names beside ids.
    ids_only: bool,
}

/// Report results; `N passed, M failed` closes the output. `cases` are the
/// cases as they are on disk after the run (blessed answers included);
/// `bless_command` is the command that writes missing answers.
fn report(
    label: &str,
    results: &[golden::CaseResult],
    cases: &[Case],
    bless: bool,
    shown: Shown,
    bless_command: &str,
) -> (usize, usize) {
    let mut failed = 0;
    for r in results {
        let case = cases.iter().find(|c| c.name == r.name);
        let names = match case {
            Some(case) if !shown.ids_only => Names::of(&case.input),
            _ => Names::default(),
        };
        if bless {
            println!("blessed {label}/{}", r.name);
        } else if r.passed() {
            println!("ok      {label}/{}", r.name);
        } else if r.missing_expected {
            failed += 1;
            println!(
                "FAILED  {label}/{}: no expected.json (review the answer, then write it with `{bless_command}`)",
                r.name
            );
        } else {
            failed += 1;
            println!("FAILED  {label}/{} (- expected, + actual):", r.name);
            let diff = names.annotate(r.diff.as_deref().unwrap_or_default());
            for line in diff.lines() {
                println!("        {line}");
            }
        }
        if shown.show
            && let Some(case) = case
        {
            let blessed = case.expected.as_ref();
            if let Some(expected) = blessed {
                for line in names.render(&case.input, expected) {
                    println!("        {line}");
                }
            }
            if blessed != Some(&r.actual) && !bless {
                println!("        now:");
                for line in names.render(&case.input, &r.actual) {
                    println!("          {line}");
                }
            }
        }
    }
    (results.len() - failed, failed)
}

/// The cases of a folder as they are on disk now.
fn reread(dir: &Path) -> Vec<Case> {
    load_cases(dir).unwrap_or_default()
}

fn finish(passed: usize, failed: usize) -> anyhow::Result<ExitCode> {
    if passed + failed == 0 {
        bail!("no golden cases were found: a test that checks nothing does not pass");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test(path: &Path, cases: Option<&Path>, bless: bool, shown: Shown) -> anyhow::Result<ExitCode> {
    let bless_command = match cases {
        Some(dir) => format!(
            "aplo policy test {} --cases {} --bless",
            path.display(),
            dir.display()
        ),
        None => format!("aplo policy test {} --bless", path.display()),
    };
    let (wasm, cases) = if path.is_dir() {
        (
            find_built_module(path)?,
            cases
                .map(Path::to_path_buf)
                .unwrap_or_else(|| path.join("tests")),
        )
    } else {
        let cases = cases.context("testing a .wasm file needs --cases <dir>")?;
        (path.to_path_buf(), cases.to_path_buf())
    };
    let runtime = standalone_runtime()?;
    let policy = load_file(&runtime, &wasm)?;
    let results = golden::run_dir(&policy, &cases, bless)?;
    let (passed, failed) = report(
        policy.name(),
        &results,
        &reread(&cases),
        bless,
        shown,
        &bless_command,
    );
    finish(passed, failed)
}

fn test_bundled(bless: bool, shown: Shown) -> anyhow::Result<ExitCode> {
    let runtime = standalone_runtime()?;
    let (mut passed, mut failed) = (0, 0);
    for (name, wasm) in bundled::BUNDLED {
        let policy = Arc::new(runtime.load(name, "bundled", wasm, Default::default())?);
        let cases = Path::new(bundled::SOURCE_DIR).join(name).join("tests");
        let results = golden::run_dir(&policy, &cases, bless)?;
        let (p, f) = report(
            name,
            &results,
            &reread(&cases),
            bless,
            shown,
            "aplo policy test --bundled --bless",
        );
        passed += p;
        failed += f;
    }
    finish(passed, failed)
}

/// The module `cargo build --target wasm32-wasip2 --release` made for a
/// policy crate: under the crate's or an enclosing workspace's `target/`,
/// or under `CARGO_TARGET_DIR` when cargo was told to build there.
fn find_built_module(crate_dir: &Path) -> anyhow::Result<PathBuf> {
    find_built_module_in(
        crate_dir,
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from),
    )
}

fn find_built_module_in(
    crate_dir: &Path,
    cargo_target_dir: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).with_context(|| {
        format!(
            "{} is not a policy crate (no Cargo.toml)",
            crate_dir.display()
        )
    })?;
    let name = manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")
                .and_then(|r| r.trim().strip_prefix('='))
        })
        .map(|v| v.trim().trim_matches('"').replace('-', "_"))
        .with_context(|| format!("{}/Cargo.toml has no package name", crate_dir.display()))?;
    let file = format!("{name}.wasm");
    let dir = crate_dir.canonicalize()?;
    let found = dir
        .ancestors()
        .map(|a| a.join("target"))
        .chain(cargo_target_dir)
        .map(|target| target.join("wasm32-wasip2/release").join(&file))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(wasm) = found else {
        bail!(
            "no built module {file} for {}; build it with `cargo build --target wasm32-wasip2 --release` in that directory",
            crate_dir.display()
        );
    };
    let built = std::fs::metadata(&wasm)?.modified()?;
    if newest_source(&dir.join("src")).is_some_and(|src| src > built) {
        eprintln!(
            "warning: {} is older than the crate's sources; rebuild it first",
            wasm.display()
        );
    }
    Ok(wasm)
}

fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_source(&path)
        } else {
            entry.metadata().ok()?.modified().ok()
        };
        newest = newest.max(time);
    }
    newest
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

#[cfg(test)]
mod tests {
    use super::find_built_module_in;

    #[test]
    fn a_module_built_into_cargo_target_dir_is_found() {
        let root = tempfile::tempdir().unwrap();
        let crate_dir = root.path().join("rack-aware");
        std::fs::create_dir_all(crate_dir.join("src")).unwrap();
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            "[package]\nname = \"rack-aware\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        std::fs::write(crate_dir.join("src/lib.rs"), "").unwrap();
        let missing = find_built_module_in(&crate_dir, None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("no built module rack_aware.wasm"),
            "{missing}"
        );
        // `CARGO_TARGET_DIR=/elsewhere cargo build …` puts it there.
        let elsewhere = root.path().join("shared-target");
        let release = elsewhere.join("wasm32-wasip2/release");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("rack_aware.wasm"), b"\0asm").unwrap();
        assert_eq!(
            find_built_module_in(&crate_dir, Some(elsewhere)).unwrap(),
            release.join("rack_aware.wasm")
        );
    }
}
