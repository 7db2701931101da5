//! `aplo db export|import`: move the store to and from JSON; `aplo db
//! dump|check` (heketi-cli's): the store as JSON and the reconcile report,
//! from the server when one is given.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::{Config, client, storage};
use crate::store::{self, Export, RedbStore};

/// Database commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Write the whole store as JSON (to stdout, or --out).
    Export {
        /// The file to write.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load a JSON export into a new, empty store.
    Import {
        /// The export file (`-` for stdin).
        file: PathBuf,
    },
    /// Print the whole store as JSON (heketi-cli's `db dump`): the
    /// server's (`GET /db/dump`) with --server, else the local store's (as
    /// `export`). aplo's export format, not heketi's.
    Dump,
    /// Compare the store with gluster and the nodes (heketi-cli's `db
    /// check`): the server's report in heketi's JSON (`GET /db/check`)
    /// with --server, else `aplo check` on the local store.
    Check,
}

/// Run a database command.
pub fn run(config: &Config, command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Dump => {
            if let Some(code) = client::from_server(config, "/db/dump")? {
                return Ok(code);
            }
            return run(config, DbCommand::Export { out: None });
        }
        DbCommand::Check => {
            if let Some(code) = client::from_server(config, "/db/check")? {
                return Ok(code);
            }
            return storage::check(config);
        }
        DbCommand::Export { .. } | DbCommand::Import { .. } => {}
    }
    let store = RedbStore::open(&config.db)?;
    match command {
        DbCommand::Export { out } => {
            let mut text = serde_json::to_string_pretty(&store::export(&store)?)?;
            text.push('\n');
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        DbCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let export: Export = serde_json::from_str(&text)
                .with_context(|| format!("{} is not an aplo export", file.display()))?;
            store::import(&store, export)?;
            eprintln!("imported into {}", config.db.display());
        }
        DbCommand::Dump | DbCommand::Check => unreachable!("answered above"),
    }
    Ok(ExitCode::SUCCESS)
}
