//! # aplo-dev-apiserver — DEVELOPMENT ONLY
//!
//! An in-memory Kubernetes API server for aplo's controller tests,
//! benchmarks and `aplo demo`. **It is a development server: it has no
//! authentication, no authorization, no persistence, no admission webhooks,
//! no OpenAPI, no protobuf, no TLS. Never run it in production or expose it
//! on a network.**
//!
//! It speaks the Kubernetes HTTP/JSON protocol faithfully enough for a real
//! `kube::Client` (`Api`, `runtime::watcher`, reflectors, `Controller`,
//! `events::Recorder`) and for `kubectl`:
//!
//! - discovery (`/version`, `/api`, `/apis`, per-group resource lists);
//! - get, list (label and field selectors, `limit`/`continue` with
//!   consistent pages, `resourceVersion`/`resourceVersionMatch`), watch
//!   (bookmarks, `sendInitialEvents` streaming lists, `timeoutSeconds`,
//!   410 `Expired` for history it no longer has);
//! - create, update, patch (JSON, merge, strategic-ish, server-side apply
//!   with managed fields and conflicts), delete with finalizers and
//!   preconditions, deletecollection, `dryRun=All`, status subresources;
//! - a binder standing in for kube-controller-manager's PV controller
//!   ([`Options::binder`]).
//!
//! Served resources: core/v1 namespaces, nodes, persistentvolumeclaims,
//! persistentvolumes, pods, events; storage.k8s.io/v1 storageclasses;
//! coordination.k8s.io/v1 leases; events.k8s.io/v1 events (one storage
//! with core/v1 events, converted field by field).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = aplo_dev_apiserver::ApiServer::start(Default::default()).await?;
//! println!("talk to {}", server.url());
//! # Ok(()) }
//! ```

mod binder;
mod discovery;
mod error;
mod events;
mod http;
mod list;
mod managed;
mod object;
mod ops;
mod patch;
mod resources;
mod selector;
mod store;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ops::WriteOpts;
use crate::resources::storage;
use crate::store::Store;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free port. Default
    /// `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// How many changes are kept for watch resumption, `Exact` lists and
    /// continue tokens. Default 10 000.
    pub history: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    /// Default 1 s.
    pub bookmark_interval: Duration,
    /// Run the PV binder (the part of kube-controller-manager that binds
    /// claims to volumes) and the pv/pvc protection finalizers. Default
    /// true.
    pub binder: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            binder: true,
        }
    }
}

/// One served request, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection (`unknown` for other methods). Non-resource paths
    /// (discovery, health) are not recorded.
    pub verb: String,
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name as requested.
    pub resource: String,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// Namespace from the URL, if any.
    pub namespace: Option<String>,
    /// Object name from the URL, if any.
    pub name: Option<String>,
    /// HTTP status code answered (for watches: the status the stream
    /// started with).
    pub status: u16,
    /// Who asked: the bearer token, as a token authenticator would map it
    /// to a user (there is no authentication; this is for audits only).
    pub user: Option<String>,
}

/// State shared by every request.
pub(crate) struct App {
    pub(crate) store: Store,
    pub(crate) addr: SocketAddr,
    pub(crate) bookmark_interval: Duration,
    /// Bumped by `drop_watches` (and on shutdown): every watch ends.
    pub(crate) drops: tokio::sync::watch::Sender<u64>,
    audit: Mutex<Vec<Request>>,
}

impl App {
    fn record(&self, r: Request) {
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

/// A running development API server. Dropping it shuts it down: the
/// listener, every connection, every watch and the binder end.
pub struct ApiServer {
    app: Arc<App>,
    tasks: JoinSet<()>,
}

impl ApiServer {
    /// Start serving. Namespaces `default`, `kube-system` and `aplo-system`
    /// exist from the start.
    pub async fn start(options: Options) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(options.addr).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            store: Store::new(options.history, options.binder),
            addr,
            bookmark_interval: options.bookmark_interval,
            drops: tokio::sync::watch::channel(0).0,
            audit: Mutex::new(Vec::new()),
        });
        {
            let mut s = app.store.lock();
            let def = resources::native(storage::NAMESPACES);
            let opts = WriteOpts {
                manager: "aplo-dev-apiserver".into(),
                dry_run: false,
            };
            for ns in ["default", "kube-system", "aplo-system"] {
                ops::create(&mut s, def, None, json!({"metadata": {"name": ns}}), &opts)
                    .expect("fresh namespace");
            }
        }
        let mut tasks = JoinSet::new();
        if options.binder {
            tasks.spawn(binder::run(app.clone()));
        }
        let router = axum::Router::new()
            .fallback(http::handle)
            .with_state(app.clone());
        tasks.spawn(accept(listener, router));
        tracing::info!(%addr, "aplo-dev-apiserver (DEVELOPMENT ONLY) listening");
        Ok(ApiServer { app, tasks })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    /// A kubeconfig (YAML) whose current context points at [`url`](Self::url),
    /// for kubectl.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: aplo-dev\n  cluster:\n    server: {}\ncontexts:\n- name: aplo-dev\n  context:\n    cluster: aplo-dev\n    user: aplo-dev\n    namespace: default\ncurrent-context: aplo-dev\nusers:\n- name: aplo-dev\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// End every open watch stream now, as an API server restart or a load
    /// balancer timeout would. Clients resume from their last
    /// resourceVersion.
    pub fn drop_watches(&self) {
        self.app.drops.send_modify(|g| *g += 1);
    }

    /// Compact the history: every resourceVersion issued before this call
    /// is now too old, so resuming a watch from one, an `Exact` list at one
    /// and every outstanding continue token get 410 `Expired`.
    pub fn expire_history(&self) {
        self.app.store.lock().expire();
    }

    /// Every resource request served so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.app
            .audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forget the audit log.
    pub fn clear_requests(&self) {
        self.app
            .audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Shut down and wait until every task has ended.
    pub async fn shutdown(mut self) {
        self.drop_watches();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.drop_watches();
        self.tasks.abort_all();
    }
}

/// Accept connections until aborted; aborting drops (and so aborts) every
/// connection task too.
async fn accept(listener: TcpListener, router: axum::Router) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
