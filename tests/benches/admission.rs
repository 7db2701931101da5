//! Admission reviews per second over loopback, with p50 and p99 latency,
//! against a no-op axum handler measured in the same run as the ceiling.
//!
//! The webhook runs its class's durability (`classes`) and quota
//! (`namespace-quota`) policies, each in a fresh Wasm instance, for every
//! review. Both servers run in this process on a 2-worker runtime; the load
//! generator keeps `--connections` HTTP/1.1 keep-alive connections busy
//! for `--seconds` on its own 2-worker runtime (so both halves share the
//! machine, as with any loopback load run). Results go to stdout and
//! `bench-admission.json` in cargo's target directory.
//!
//! `cargo bench -p aplo-e2e --bench admission [-- --seconds N --connections N]`;
//! under `cargo test`, a one-second run checks that the benchmark works.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::front::claim::DEFAULT_PROVISIONER;
use aplo::http::admission::{self, AdmissionOptions, AdmissionState, StaticClasses};
use aplo::model::Usage;
use axum::Router;
use axum::routing::post;
use k8s_openapi::api::storage::v1::StorageClass;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

const REVIEW: &str = include_str!("../fixtures/admission/create.json");

fn gold() -> StorageClass {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "gold"},
        "provisioner": DEFAULT_PROVISIONER,
        "parameters": {
            "durability": "classes",
            "classes.class": "replica3",
            "classes.replica3.max-size": "1Ti",
            "quota": "namespace-quota",
            "namespace-quota.max-bytes": "100Ti",
        },
    }))
    .expect("a StorageClass")
}

/// Serve `router` on a free loopback port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Read one HTTP/1.1 response (Content-Length bodies only) from `stream`;
/// returns the status and the body.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Run {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Keep `connections` connections busy for `duration`; every answer must
/// be a 200 allowing the claim.
fn load(addr: SocketAddr, connections: u64, duration: Duration) -> Run {
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let request = Arc::new(
        format!(
            "POST /admission/pvc HTTP/1.1\r\nHost: aplo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{REVIEW}",
            REVIEW.len()
        )
        .into_bytes(),
    );
    client.block_on(async move {
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let request = request.clone();
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buf = Vec::with_capacity(8192);
                    let mut latencies = Vec::with_capacity(1 << 16);
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        stream.write_all(&request).await.unwrap();
                        let (status, body) = read_response(&mut stream, &mut buf).await.unwrap();
                        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        assert!(
                            body.windows(14).any(|w| w == b"\"allowed\":true"),
                            "not allowed: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let seconds = started.elapsed().as_secs_f64();
        all.sort_unstable();
        Run {
            requests: all.len(),
            seconds,
            p50_ms: percentile(&all, 0.50),
            p99_ms: percentile(&all, 0.99),
            max_ms: percentile(&all, 1.0),
        }
    })
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds = arg("--seconds", if benching { 10 } else { 1 });
    let connections = arg("--connections", 16);
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let registry = aplo_e2e::kube::registry();
    let (webhook, noop) = server.block_on(async {
        let state = AdmissionState::new(
            registry,
            Arc::new(StaticClasses::new([gold()])),
            Arc::new(|_: &str, _: &str| Some((Usage::default(), Usage::default()))),
            AdmissionOptions::default(),
        );
        let webhook = serve(admission::router(state)).await;
        // The ceiling: the same request body read and a fixed answer.
        let noop = serve(Router::new().route(
            "/admission/pvc",
            post(|body: axum::body::Bytes| async move {
                drop(body);
                (
                    [("content-type", "application/json")],
                    r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}"#,
                )
            }),
        ))
        .await;
        (webhook, noop)
    });
    // Warm up both (policy compilation is cached by the registry).
    load(webhook, 2, Duration::from_millis(300));
    load(noop, 2, Duration::from_millis(300));
    let duration = Duration::from_secs(seconds);
    let ceiling = load(noop, connections, duration);
    let reviews = load(webhook, connections, duration);
    let ratio = reviews.rate() / ceiling.rate();
    println!("admission load run: {connections} connections, {seconds} s each, loopback");
    println!("| server | requests/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, run) in [
        ("no-op axum handler", &ceiling),
        ("admission webhook", &reviews),
    ] {
        println!(
            "| {name} | {:.0} | {:.3} | {:.3} | {:.3} |",
            run.rate(),
            run.p50_ms,
            run.p99_ms,
            run.max_ms
        );
    }
    println!("webhook / no-op throughput ratio: {ratio:.3}");
    let json = serde_json::json!({
        "connections": connections,
        "seconds": seconds,
        "noop": {"rate": ceiling.rate(), "p50_ms": ceiling.p50_ms, "p99_ms": ceiling.p99_ms},
        "webhook": {"rate": reviews.rate(), "p50_ms": reviews.p50_ms, "p99_ms": reviews.p99_ms},
        "ratio": ratio,
    });
    aplo_e2e::write_bench_results("admission", &serde_json::to_string_pretty(&json).unwrap());
    assert!(
        reviews.requests > 0 && ceiling.requests > 0,
        "no request completed"
    );
}
