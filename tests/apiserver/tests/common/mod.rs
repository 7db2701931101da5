//! Shared helpers: a server and a real `kube::Client` talking to it.

#![allow(dead_code)]

use std::time::Duration;

use aplo_dev_apiserver::{ApiServer, Options};
use kube::Client;

/// A started server with default options (binder on).
pub async fn server() -> ApiServer {
    server_with(Options::default()).await
}

/// A started server with `options`.
pub async fn server_with(options: Options) -> ApiServer {
    ApiServer::start(options).await.expect("server starts")
}

/// A real kube client for `server`.
pub fn client(server: &ApiServer) -> Client {
    let config = kube::Config::new(server.url().parse().expect("valid url"));
    Client::try_from(config).expect("client")
}

/// The `ErrorResponse` (Status) of a kube error, or a panic.
pub fn status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Poll `check` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
