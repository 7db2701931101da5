//! `aplo db export|import`: move the store to and from JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::Config;
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
}

/// Run a database command.
pub fn run(config: &Config, command: DbCommand) -> anyhow::Result<ExitCode> {
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
    }
    Ok(ExitCode::SUCCESS)
}
