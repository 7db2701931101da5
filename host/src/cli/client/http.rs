//! The client's HTTP side: one request at a time over hyper (plain HTTP or
//! HTTPS with the system's roots), heketi's JWT on every request, and
//! heketi's asynchronous operations: `202` with `Location: /queue/{id}`,
//! polled with backoff until `303` (the result), `204` (done) or `500`
//! (the error).

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::auth::{Role, sign};

/// How long a token is valid.
const TOKEN_TTL: i64 = 300;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The first and the longest pause between polls.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);
/// How often a busy server (`429`) is asked again.
const BUSY_RETRIES: u32 = 10;

/// Plain HTTP, or HTTPS with the system's trusted roots.
enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// A connection to one REST API.
pub struct Api {
    /// The server as given, for messages.
    server: String,
    /// `scheme://authority`.
    origin: String,
    /// A path prefix, without the trailing slash (usually empty).
    prefix: String,
    /// The role and key that sign requests.
    signer: Option<(Role, Vec<u8>)>,
    transport: Transport,
    /// Show a spinner on stderr while operations run.
    progress: bool,
}

/// An answer.
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }

    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the server's answer is not the expected JSON: {}",
                self.text()
            )
        })
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The server's refusal as an error: its text, and the status.
    fn refusal(&self) -> anyhow::Error {
        let text = self.text();
        if text.is_empty() {
            anyhow!("the server answered {}", self.status)
        } else {
            anyhow!("{text} ({})", self.status)
        }
    }
}

/// What a (possibly queued) operation ended with.
pub enum Outcome {
    /// A body: the direct answer, or the result a `303` pointed at.
    Body(Reply),
    /// Done, nothing to show (`204`).
    Done,
}

impl Api {
    /// A client of `server` (`http://host:port` or `https://…`), signing as
    /// `user` (`admin` when not given) with `key` (no token without one).
    pub fn new(server: &str, user: Option<&str>, key: Option<&str>) -> anyhow::Result<Api> {
        let uri: Uri = server
            .parse()
            .with_context(|| format!("--server '{server}' is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            Some(other) => bail!("--server '{server}': scheme '{other}' is not http or https"),
            None => bail!("--server '{server}' needs a scheme, e.g. http://{server}"),
        };
        let authority = uri
            .authority()
            .with_context(|| format!("--server '{server}' has no host"))?;
        let signer = match key {
            None => None,
            Some(key) => {
                let role = match user.unwrap_or("admin") {
                    "admin" => Role::Admin,
                    "user" => Role::User,
                    other => bail!("--user '{other}' is not admin or user"),
                };
                Some((role, key.as_bytes().to_vec()))
            }
        };
        let transport = if scheme == "https" {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .context("loading the system's trusted certificates for https")?
                .https_only()
                .enable_http1()
                .build();
            Transport::Tls(Client::builder(TokioExecutor::new()).build(https))
        } else {
            Transport::Plain(Client::builder(TokioExecutor::new()).build_http())
        };
        Ok(Api {
            server: server.to_owned(),
            origin: format!("{scheme}://{authority}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            signer,
            transport,
            progress: std::io::stderr().is_terminal(),
        })
    }

    /// Run a command's future on a current-thread runtime.
    pub fn run(
        &self,
        work: impl Future<Output = anyhow::Result<ExitCode>>,
    ) -> anyhow::Result<ExitCode> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(work)
    }

    /// One request; any status comes back.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Reply> {
        let full = format!("{}{path}", self.prefix);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{full}", self.origin))
            .header(header::ACCEPT, "application/json");
        if let Some((role, key)) = &self.signer {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            // The token covers the path only, never the query.
            let signed = full.split('?').next().unwrap_or(&full);
            let token = sign(*role, key, method.as_str(), signed, now, TOKEN_TTL);
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("building the request")?;
        let response = match &self.transport {
            Transport::Plain(c) => tokio::time::timeout(REQUEST_TIMEOUT, c.request(request)).await,
            Transport::Tls(c) => tokio::time::timeout(REQUEST_TIMEOUT, c.request(request)).await,
        }
        .map_err(|_| {
            anyhow!(
                "{method} {path}: the server at {} did not answer within {}s",
                self.server,
                REQUEST_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| self.unreachable(e))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn unreachable(&self, error: hyper_util::client::legacy::Error) -> anyhow::Error {
        let mut causes = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        while let Some(e) = source {
            let text = e.to_string();
            if !causes.contains(&text) {
                causes.push(text);
            }
            source = e.source();
        }
        if error.is_connect() {
            // The innermost cause says why (refused, no route, DNS).
            let why = causes.last().cloned().unwrap_or_default();
            anyhow!("cannot connect to the server at {}: {why}", self.server)
        } else {
            anyhow!(
                "the request to the server at {} failed: {}",
                self.server,
                causes.join(": ")
            )
        }
    }

    /// `GET path`, expecting 200; the reply.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        let reply = self.send(Method::GET, path, None).await?;
        if reply.status != StatusCode::OK {
            return Err(reply.refusal());
        }
        Ok(reply)
    }

    /// `GET path` as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.get(path).await?.json()
    }

    /// A request that may be queued: `200`/`201` answer at once, `202`
    /// is followed to its end (`what` names it on the spinner), `429` is
    /// retried after the server's `Retry-After`.
    pub async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        what: &str,
    ) -> anyhow::Result<Outcome> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let mut busy = 0;
        let reply = loop {
            let reply = self.send(method.clone(), path, body.clone()).await?;
            if reply.status == StatusCode::TOO_MANY_REQUESTS && busy < BUSY_RETRIES {
                busy += 1;
                let wait = reply
                    .header(header::RETRY_AFTER)
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(5u64)
                    .clamp(1, 60);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            break reply;
        };
        match reply.status {
            StatusCode::ACCEPTED => {
                let location = reply
                    .header(header::LOCATION)
                    .context("the server accepted the request but gave no Location to poll")?
                    .to_owned();
                self.wait(&location, what).await
            }
            StatusCode::NO_CONTENT => Ok(Outcome::Done),
            s if s.is_success() => Ok(Outcome::Body(reply)),
            _ => Err(reply.refusal()),
        }
    }

    /// Strip the origin and prefix off a `Location`, to request it again.
    fn relative<'a>(&self, location: &'a str) -> &'a str {
        let location = location.strip_prefix(&self.origin).unwrap_or(location);
        if self.prefix.is_empty() {
            location
        } else {
            location.strip_prefix(&self.prefix).unwrap_or(location)
        }
    }

    /// Poll `location` until the operation ends.
    async fn wait(&self, location: &str, what: &str) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let mut spinner = Spinner::new(self.progress, what);
        let mut pause = POLL_FIRST;
        let outcome = loop {
            let reply = self
                .send(Method::GET, self.relative(location), None)
                .await?;
            match reply.status {
                StatusCode::OK
                    if reply.header(header::HeaderName::from_static("x-pending"))
                        == Some("true") =>
                {
                    let until = Instant::now() + pause;
                    while Instant::now() < until {
                        spinner.tick(started.elapsed());
                        tokio::time::sleep(Duration::from_millis(100).min(pause)).await;
                    }
                    pause = (pause * 2).min(POLL_MAX);
                }
                StatusCode::SEE_OTHER => {
                    let target = reply
                        .header(header::LOCATION)
                        .context("the operation finished but the server gave no Location")?
                        .to_owned();
                    break self.get(self.relative(&target)).await.map(Outcome::Body);
                }
                StatusCode::NO_CONTENT => break Ok(Outcome::Done),
                // Finished with a body of its own (heketi's server may
                // answer 200 without X-Pending).
                StatusCode::OK => break Ok(Outcome::Body(reply)),
                StatusCode::INTERNAL_SERVER_ERROR => {
                    let text = reply.text();
                    break Err(anyhow!(
                        "{what} failed: {}",
                        if text.is_empty() {
                            "no reason given"
                        } else {
                            &text
                        }
                    ));
                }
                _ => break Err(reply.refusal()),
            }
        };
        spinner.clear();
        outcome
    }
}

/// A spinner with the elapsed seconds on stderr, shown only on a terminal.
struct Spinner<'a> {
    on: bool,
    what: &'a str,
    frame: usize,
    shown: bool,
}

impl<'a> Spinner<'a> {
    fn new(on: bool, what: &'a str) -> Spinner<'a> {
        Spinner {
            on,
            what,
            frame: 0,
            shown: false,
        }
    }

    fn tick(&mut self, elapsed: Duration) {
        if !self.on {
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} {}… {}s",
            FRAMES[self.frame],
            self.what,
            elapsed.as_secs()
        );
        let _ = err.flush();
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

impl Drop for Spinner<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}
