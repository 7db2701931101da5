//! The storage commands on the local store (`--db`): topology, node,
//! device, brick and volume, as parsed from their one definition
//! (`super::verbs`), and check, recover, repair. Every command that
//! changes something first finishes the journal's unfinished operations
//! (start-up recovery).

mod node;
mod topology;
mod volume;

use std::process::ExitCode;

use anyhow::Context;

use super::Config;
use super::engine::runtime;
use crate::engine::Engine;
use crate::model::{Pairs, parse_size};

pub use node::{brick, device, node};
pub use topology::topology;
pub use volume::volume;

/// Parse `key=value` parameters.
pub fn parse_params(params: &[String]) -> anyhow::Result<Pairs> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("parameter '{p}' is not key=value"))
        })
        .collect()
}

fn size(text: &str) -> anyhow::Result<u64> {
    volume_size("--size", text)
}

/// A volume size given on the command line, in bytes: a bare number is
/// GiB, as heketi-cli has it (`--size 10`), with or without a server; with
/// a unit it is that (`10Gi`, `500Mi`, `1Ti`).
pub(crate) fn volume_size(flag: &str, text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .and_then(|gib| gib.checked_mul(crate::model::GIB))
            .ok_or_else(|| anyhow::anyhow!("{flag} {text}: too large"));
    }
    parse_size(text).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {text}: {e} (a bare number is GiB, e.g. 10; or give a unit: 10Gi, 500Mi)"
        )
    })
}

/// Open the engine and finish the journal's unfinished operations.
async fn started(config: &Config) -> anyhow::Result<Engine> {
    let engine = config.open_engine()?;
    let recovery = engine.recover().await?;
    for line in &recovery.outcomes {
        eprintln!("recovered: {line}");
    }
    if recovery.unfinished > 0 {
        eprintln!(
            "aplo: {} operation(s) could not be recovered; see `aplo check`",
            recovery.unfinished
        );
    }
    Ok(engine)
}

/// `aplo check`.
pub fn check(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.check().await;
        print!("{report}");
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `aplo recover`.
pub fn recover(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.recover().await?;
        for line in &report.outcomes {
            println!("{line}");
        }
        if report.outcomes.is_empty() {
            println!("no unfinished operations");
        }
        for brick in engine.remount_bricks().await? {
            println!("{brick}: remounted");
        }
        Ok(if report.unfinished == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `aplo repair`.
pub fn repair(config: &Config) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let engine = config.open_engine()?;
        let report = engine.repair().await?;
        for line in &report.repaired {
            println!("repaired: {line}");
        }
        for line in &report.left {
            println!("left: {line}");
        }
        if report.repaired.is_empty() && report.left.is_empty() {
            println!("nothing to repair");
        }
        Ok(if report.left.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

#[cfg(test)]
mod tests {
    use super::volume_size;
    use crate::model::{GIB, MIB};

    #[test]
    fn a_bare_size_is_gib_with_or_without_a_server() {
        assert_eq!(volume_size("--size", "10").unwrap(), 10 * GIB);
        assert_eq!(volume_size("--size", " 1 ").unwrap(), GIB);
        assert_eq!(volume_size("--size", "10Gi").unwrap(), 10 * GIB);
        assert_eq!(volume_size("--size", "512Mi").unwrap(), 512 * MIB);
        let too_big = volume_size("--size", "99999999999999999999").unwrap_err();
        assert!(too_big.to_string().contains("too large"), "{too_big}");
        let bad = volume_size("--size", "ten").unwrap_err().to_string();
        assert!(bad.contains("a bare number is GiB"), "{bad}");
    }
}
