//! The client's HTTP side: one request at a time over hyper (plain HTTP or
//! HTTPS with the system's roots), heketi's JWT on every request, and
//! heketi's asynchronous operations (`queue`): `202` with `Location:
//! /queue/{id}`, polled with backoff until `303` (the result), `204`
//! (done) or `500` (the error).

mod queue;
mod spinner;

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

pub use queue::Outcome;

/// How long a token is valid.
const TOKEN_TTL: i64 = 300;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

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
        queue::call(self, self.progress, method, path, body, what).await
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
}
