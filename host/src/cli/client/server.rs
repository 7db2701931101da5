//! heketi-cli's server commands against the REST API: `server mode
//! get|set`, `server operations info|list`, `loglevel get|set`, and the
//! server side of `db dump|check`. Outputs follow heketi-cli's.

use std::process::ExitCode;

use clap::Subcommand;
use hyper::Method;

use super::commands::{body, print_body};
use super::http::Api;
use crate::http::heketi::{
    AdminStatus, LOGGER, LogLevelInfo, OperationsInfo, PendingOperationDetails,
    PendingOperationInfo, PendingOperationList,
};

/// `aplo server …`: its subcommands.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ServerCommand,
}

/// Server commands (through the REST API only).
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// heketi's admin mode: `normal`, `read-only` (reads only) or
    /// `local-client` (changes only from the server's own machine).
    #[command(subcommand)]
    Mode(ModeCommand),
    /// The journal's unfinished operations.
    #[command(subcommand)]
    Operations(OperationsCommand),
}

/// `server mode …`.
#[derive(Debug, Subcommand)]
pub enum ModeCommand {
    /// Print the mode.
    Get,
    /// Set the mode (kept in the server's store). From a client on the
    /// server's own machine it can always be set back to `normal`.
    Set {
        /// The mode.
        #[arg(value_parser = ["normal", "read-only", "local-client"])]
        mode: String,
    },
}

/// `server operations …`.
#[derive(Debug, Subcommand)]
pub enum OperationsCommand {
    /// Count the operations; with an id, show that one and what it
    /// changes.
    Info {
        /// An operation id (`server operations list` shows them).
        id: Option<String>,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the unfinished operations.
    List {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `aplo loglevel …`: its subcommands.
#[derive(Debug, clap::Args)]
pub struct LogLevelArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LogLevelCommand,
}

/// Log level commands (through the REST API only).
#[derive(Debug, Subcommand)]
pub enum LogLevelCommand {
    /// Print the server's log level.
    Get,
    /// Set the server's log level until it restarts.
    Set {
        /// `none`, `critical`, `error`, `warning`, `info`, `debug` or
        /// `trace`.
        level: String,
    },
}

/// `aplo server …`.
pub async fn server(api: &Api, command: ServerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServerCommand::Mode(ModeCommand::Get) => {
            let status: AdminStatus = api.get_json("/admin").await?;
            println!("{}", status.state);
        }
        ServerCommand::Mode(ModeCommand::Set { mode }) => {
            api.call(
                Method::POST,
                "/admin",
                Some(&AdminStatus { state: mode }),
                "setting the mode",
            )
            .await?;
        }
        ServerCommand::Operations(OperationsCommand::Info { id: None, json }) => {
            let reply = api.get("/operations").await?;
            if json {
                print_body(&reply);
            } else {
                print!("{}", operation_counts(&reply.json()?));
            }
        }
        ServerCommand::Operations(OperationsCommand::Info { id: Some(id), json }) => {
            let reply = api.get(&format!("/operations/pending/{id}")).await?;
            if json {
                print_body(&reply);
            } else {
                print!("{}", operation_details(&reply.json()?));
            }
        }
        ServerCommand::Operations(OperationsCommand::List { json }) => {
            let reply = api.get("/operations/pending").await?;
            if json {
                print_body(&reply);
            } else {
                let list: PendingOperationList = reply.json()?;
                for operation in &list.pendingoperations {
                    println!("{}", operation_line(operation));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `aplo loglevel …`.
pub async fn loglevel(api: &Api, command: LogLevelCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogLevelCommand::Get => {
            let info: LogLevelInfo = api.get_json("/internal/logging").await?;
            println!("{}", level_of(&info)?);
        }
        LogLevelCommand::Set { level } => {
            let request = LogLevelInfo {
                loglevel: [(LOGGER.to_owned(), level)].into(),
            };
            let outcome = api
                .call(
                    Method::POST,
                    "/internal/logging",
                    Some(&request),
                    "setting the log level",
                )
                .await?;
            body(outcome, "loglevel set")?;
            println!("Server log level updated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET path`, printed as the server sent it (`db dump`, `db check`).
pub async fn print_get(api: &Api, path: &str) -> anyhow::Result<ExitCode> {
    print_body(&api.get(path).await?);
    Ok(ExitCode::SUCCESS)
}

fn level_of(info: &LogLevelInfo) -> anyhow::Result<&str> {
    info.loglevel
        .get(LOGGER)
        .map(String::as_str)
        .ok_or_else(|| anyhow::anyhow!("the server did not say its log level"))
}

/// heketi's status words: an empty status is a new (or running) one.
fn status(operation: &PendingOperationInfo) -> String {
    let status = if operation.status.is_empty() {
        "New"
    } else {
        &operation.status
    };
    format!("{status} {}", operation.sub_status)
        .trim_end()
        .to_owned()
}

/// `server operations info`.
fn operation_counts(info: &OperationsInfo) -> String {
    format!(
        "Operation Counts:\n  Total: {}\n  In-Flight: {}\n  New: {}\n  Failed: {}\n  Stale: {}\n",
        info.total, info.in_flight, info.new, info.failed, info.stale
    )
}

/// One line of `server operations list`.
fn operation_line(operation: &PendingOperationInfo) -> String {
    format!(
        "Id:{}  Type:{}  Status:{}",
        operation.id,
        operation.type_name,
        status(operation)
    )
}

/// `server operations info ID`.
fn operation_details(details: &PendingOperationDetails) -> String {
    let mut out = format!(
        "Id: {}\nType: {}\nStatus: {}\nChanges:\n",
        details.info.id,
        details.info.type_name,
        status(&details.info)
    );
    for change in &details.changes {
        out.push_str(&format!("    {}: {}\n", change.description, change.id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::heketi::PendingChangeInfo;

    fn info(status: &str, sub_status: &str) -> PendingOperationInfo {
        PendingOperationInfo {
            id: "ab".into(),
            type_name: "create-volume".into(),
            status: status.into(),
            sub_status: sub_status.into(),
        }
    }

    #[test]
    fn operations_print_as_heketi_cli_prints_them() {
        let counts = OperationsInfo {
            total: 3,
            in_flight: 1,
            stale: 1,
            failed: 1,
            new: 1,
        };
        assert_eq!(
            operation_counts(&counts),
            "Operation Counts:\n  Total: 3\n  In-Flight: 1\n  New: 1\n  Failed: 1\n  Stale: 1\n"
        );
        assert_eq!(
            operation_line(&info("", "in-flight")),
            "Id:ab  Type:create-volume  Status:New in-flight"
        );
        assert_eq!(
            operation_line(&info("stale", "")),
            "Id:ab  Type:create-volume  Status:stale"
        );
        let details = PendingOperationDetails {
            info: info("failed", ""),
            changes: vec![PendingChangeInfo {
                id: "cd".into(),
                description: "Add volume".into(),
            }],
            done: Vec::new(),
        };
        assert_eq!(
            operation_details(&details),
            "Id: ab\nType: create-volume\nStatus: failed\nChanges:\n    Add volume: cd\n"
        );
    }
}
