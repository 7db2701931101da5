//! `aplo-dev-apiserver`: run the DEVELOPMENT-ONLY in-memory Kubernetes API
//! server on its own, for `kubectl` and manual experiments.
//!
//! ```text
//! aplo-dev-apiserver [--listen 127.0.0.1:6443] [--kubeconfig PATH]
//! ```

use std::net::SocketAddr;

use aplo_dev_apiserver::{ApiServer, Options};

const USAGE: &str = "usage: aplo-dev-apiserver [--listen ADDR] [--kubeconfig PATH]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::default();
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let addr = args.next().ok_or(USAGE)?;
                options.addr = addr.parse::<SocketAddr>()?;
            }
            "--kubeconfig" => kubeconfig = Some(args.next().ok_or(USAGE)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    let server = ApiServer::start(options).await?;
    eprintln!("******************************************************************");
    eprintln!("* aplo-dev-apiserver: a DEVELOPMENT-ONLY Kubernetes API server.  *");
    eprintln!("* In memory, no authentication, no authorization, no TLS.        *");
    eprintln!("* NOT FOR PRODUCTION. Do not expose it on a network.             *");
    eprintln!("******************************************************************");
    println!("listening on {}", server.url());
    if let Some(path) = kubeconfig {
        std::fs::write(&path, server.kubeconfig())?;
        println!("kubeconfig written to {path}");
    }
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
