//! A minimal HTTP/1.1 client for the API tests: one request per
//! connection, status, headers and body returned as they came.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What came back.
#[derive(Debug)]
pub struct Reply {
    /// The status code (0 when the reply had no status line).
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request over a fresh connection, with a bearer token if given.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: aplo\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(stream, request.as_bytes()).await
}

/// Send `request`, a whole HTTP/1.1 request with `Connection: close`,
/// over `stream` (TCP or TLS), and read the reply to its end.
pub async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, request: &[u8]) -> Reply {
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after a full answer; an
    // error before any byte is a failure.
    if let Err(e) = stream.read_to_end(&mut raw).await {
        assert!(!raw.is_empty(), "reading the reply: {e}");
    }
    let raw = String::from_utf8(raw).expect("a UTF-8 reply");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A log filter for `ServerControl` that only remembers its level, for
/// tests of `/internal/logging` without a global subscriber.
#[derive(Debug)]
pub struct RememberedLevel(std::sync::Mutex<aplo::http::control::LogLevel>);

impl RememberedLevel {
    /// Starting at `level`.
    pub fn new(level: aplo::http::control::LogLevel) -> RememberedLevel {
        RememberedLevel(std::sync::Mutex::new(level))
    }
}

impl aplo::http::control::LogControl for RememberedLevel {
    fn level(&self) -> Option<aplo::http::control::LogLevel> {
        Some(*self.0.lock().unwrap())
    }

    fn set_level(
        &self,
        level: aplo::http::control::LogLevel,
    ) -> Result<(), aplo::http::control::LogLevelError> {
        *self.0.lock().unwrap() = level;
        Ok(())
    }
}

/// Serve `app` on a free loopback port, with each client's address given
/// to the handlers (the admin mode `local-client` needs it; 127.0.0.1 is
/// a local client). Returns the address.
pub async fn serve_with_peers(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}
