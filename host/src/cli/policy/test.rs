//! `aplo policy test`: golden cases through the production sandbox, with
//! names beside ids and answers in words.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aplo_policy_types::golden::{Case, load_cases};

use super::names::Names;
use super::{load_file, standalone_runtime};
use crate::policy::{bundled, golden};

/// How `aplo policy test` shows answers.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Render each case's blessed answer in words.
    pub show: bool,
    /// No names beside ids.
    pub ids_only: bool,
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

/// Run a policy crate's (or a module's) cases.
pub fn test(
    path: &Path,
    cases: Option<&Path>,
    bless: bool,
    shown: Shown,
) -> anyhow::Result<ExitCode> {
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

/// Run every bundled policy's cases from the source tree.
pub fn test_bundled(bless: bool, shown: Shown) -> anyhow::Result<ExitCode> {
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
