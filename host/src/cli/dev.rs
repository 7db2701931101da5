//! `aplo dev-apiserver` (feature `dev-apiserver`): the DEVELOPMENT-ONLY
//! in-memory Kubernetes API server from `tests/apiserver`, so that `aplo
//! serve` and `kubectl` can be tried without a cluster. Not for production:
//! no authentication, no authorization, no TLS, nothing persisted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::engine::runtime;

/// Arguments of `aplo dev-apiserver`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where to listen (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig for it here (for `kubectl` and `aplo serve`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// Run the development API server until Ctrl-C.
pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let server = aplo_dev_apiserver::ApiServer::start(aplo_dev_apiserver::Options {
            addr: args.listen,
            ..aplo_dev_apiserver::Options::default()
        })
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
        eprintln!(
            "aplo dev-apiserver: a DEVELOPMENT-ONLY Kubernetes API server (in memory, no \
             authentication, no TLS). NOT FOR PRODUCTION."
        );
        println!("listening on {}", server.url());
        if let Some(path) = &args.kubeconfig {
            std::fs::write(path, server.kubeconfig())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("kubeconfig written to {}", path.display());
        }
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
