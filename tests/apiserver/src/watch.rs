//! watch: a chunked stream of newline-delimited JSON watch events.
//!
//! A watch subscribes to the change broadcast under the store lock, so it
//! misses nothing between its starting point and the live stream. It then
//! sends (a) synthetic ADDED events for the current objects when asked
//! (`resourceVersion` unset or `0`, or `sendInitialEvents=true`), or (b) the
//! changes after the given resourceVersion from the history, then (c) live
//! changes. A too-old resourceVersion, or a watcher too slow to keep up with
//! the broadcast, gets an `ERROR` event with a 410 `Expired` Status (HTTP
//! 200, like the real server) and the stream ends, so clients relist.
//!
//! Objects that stop matching the watch's selectors are sent as DELETED;
//! objects that start matching are sent as ADDED, as the real server does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::App;
use crate::error::ApiError;
use crate::http::{Query, Target, json_response, write_typed};
use crate::list::Filter;
use crate::resources::ResourceDef;
use crate::store::{Change, ChangeKind};

/// Where a watch starts.
enum Start {
    /// Synthetic ADDED events for these objects first.
    Snapshot(Vec<Arc<Value>>),
    /// Replay these changes first.
    Replay(Vec<Arc<Change>>),
    /// Too old: one ERROR event.
    Expired(ApiError),
}

/// Default watch duration when the client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One serialized watch event line.
fn event_line(kind: &str, def: &ResourceDef, obj: &Value) -> Bytes {
    let mut out = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
    write_typed(&mut out, def, obj);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark_line(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let ev = json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version, "metadata": meta}});
    Bytes::from(format!("{ev}\n"))
}

fn error_line(e: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": e.status()})
    ))
}

/// The event (if any) a change produces for a watcher with `filter`.
fn translate(t: &Target, filter: &Filter, c: &Change) -> Option<Bytes> {
    let def = t.def;
    match c.kind {
        ChangeKind::Added => filter
            .matches(t, &c.object)
            .then(|| event_line("ADDED", def, &c.object)),
        ChangeKind::Deleted => filter
            .matches(t, &c.object)
            .then(|| event_line("DELETED", def, &c.object)),
        ChangeKind::Modified => {
            let was = c.prev.as_ref().is_some_and(|p| filter.matches(t, p));
            let is = filter.matches(t, &c.object);
            match (was, is) {
                (true, true) => Some(event_line("MODIFIED", def, &c.object)),
                (false, true) => Some(event_line("ADDED", def, &c.object)),
                (true, false) => Some(event_line("DELETED", def, &c.object)),
                (false, false) => None,
            }
        }
    }
}

/// Serve a watch request.
pub(crate) async fn serve(app: &Arc<App>, t: &Target, query: &Query) -> Response {
    let filter = match Filter::new(t, query) {
        Ok(f) => f,
        Err(e) => return json_response(e.code(), e.status().to_string().into_bytes()),
    };
    let send_initial = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let requested = query.get("resourceVersion").unwrap_or("");
    let (start_rv, start, rx) = {
        let s = app.store.lock();
        let rx = s.subscribe();
        let start = match requested.parse::<u64>() {
            _ if send_initial || requested.is_empty() || requested == "0" => {
                let objs = s
                    .table(t.def.storage)
                    .map(|tb| {
                        tb.values()
                            .filter(|v| filter.matches(t, v))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                Start::Snapshot(objs)
            }
            Ok(rv) => match s.check_not_expired(rv) {
                Ok(()) => Start::Replay(s.changes_since(t.def.storage, rv)),
                Err(e) => Start::Expired(e),
            },
            Err(_) => Start::Expired(ApiError::BadRequest(format!(
                "invalid resourceVersion: {requested}"
            ))),
        };
        (s.rv, start, rx)
    };
    let drops = app.drops.subscribe();
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let task = Watcher {
        app: app.clone(),
        def: t.def,
        target: Target {
            def: t.def,
            namespace: t.namespace.clone(),
            name: None,
            subresource: None,
        },
        filter,
        tx,
        rx,
        drops,
        last_seen: start_rv,
        bookmarks,
    };
    tokio::spawn(task.run(start, send_initial, timeout));
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

struct Watcher {
    app: Arc<App>,
    def: &'static ResourceDef,
    target: Target,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    rx: broadcast::Receiver<Arc<Change>>,
    /// Changes when `drop_watches` is called or the server shuts down.
    drops: watch::Receiver<u64>,
    /// Every change up to this resourceVersion has been considered.
    last_seen: u64,
    bookmarks: bool,
}

impl Watcher {
    async fn send(&self, line: Bytes) -> bool {
        self.tx.send(line).await.is_ok()
    }

    async fn run(mut self, start: Start, send_initial: bool, timeout: Duration) {
        match start {
            Start::Expired(e) => {
                self.send(error_line(&e)).await;
                return;
            }
            Start::Snapshot(objs) => {
                for o in objs {
                    if !self.send(event_line("ADDED", self.def, &o)).await {
                        return;
                    }
                }
                if send_initial
                    && !self
                        .send(bookmark_line(self.def, self.last_seen, true))
                        .await
                {
                    return;
                }
            }
            Start::Replay(changes) => {
                for c in changes {
                    if let Some(line) = translate(&self.target, &self.filter, &c)
                        && !self.send(line).await
                    {
                        return;
                    }
                }
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let period = self.app.bookmark_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = self.drops.changed() => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.bookmarks => {
                    {
                        // Changes are broadcast under the lock: with nothing
                        // pending, every change up to the current version
                        // has been seen, so the bookmark can say so.
                        let s = self.app.store.lock();
                        if self.rx.is_empty() {
                            self.last_seen = self.last_seen.max(s.rv);
                        }
                    }
                    if !self.send(bookmark_line(self.def, self.last_seen, false)).await {
                        return;
                    }
                }
                msg = self.rx.recv() => match msg {
                    Ok(c) => {
                        if c.rv <= self.last_seen {
                            continue;
                        }
                        self.last_seen = c.rv;
                        if c.storage == self.def.storage
                            && let Some(line) = translate(&self.target, &self.filter, &c)
                            && !self.send(line).await
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::Expired(format!("too old resource version: {} (watcher fell behind)", self.last_seen));
                        self.send(error_line(&e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}
