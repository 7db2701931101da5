//! The heketi-compatible REST API over real HTTP, on the simulate
//! executor: authentication, the read endpoints, and volume create, expand
//! and delete through the async queue, with status codes, headers and JSON
//! bodies asserted. (Work in progress for issue #5.)

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aplo::http::api::{ApiState, KEEP_RESULTS, router};
use aplo::http::auth::{Keys, Role, sign};
use aplo::http::queue::Queue;
use aplo_e2e::kube::sim_engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: aplo\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const ADMIN: &[u8] = b"admin-key";
const USER: &[u8] = b"user-key";

fn admin(method: &str, path: &str) -> String {
    sign(Role::Admin, ADMIN, method, path, now(), 60)
}

async fn start() -> SocketAddr {
    let engine = sim_engine(6).await;
    let state = ApiState {
        engine,
        keys: Some(Keys {
            admin: ADMIN.to_vec(),
            user: USER.to_vec(),
            iat_leeway: 120,
        }),
        queue: Queue::new(8, KEEP_RESULTS),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// Follow a `202` to its end: the final poll reply.
async fn finish(addr: SocketAddr, accepted: &Reply, token_for: impl Fn(&str) -> String) -> Reply {
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let location = accepted.header("Location").expect("a Location").to_owned();
    assert!(location.starts_with("/queue/"), "{location}");
    for _ in 0..400 {
        let reply = call(addr, "GET", &location, Some(&token_for(&location)), "").await;
        if reply.status == 200 {
            assert_eq!(reply.header("X-Pending"), Some("true"));
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        return reply;
    }
    panic!("{location} still pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_heketis() {
    let addr = start().await;
    let ok = call(addr, "GET", "/hello", Some(&admin("GET", "/hello")), "").await;
    assert_eq!(ok.status, 200);
    let cases = [
        (None, "Required authorization token not found"),
        (
            Some(sign(Role::Admin, b"wrong", "GET", "/clusters", now(), 60)),
            "signature is invalid",
        ),
        (
            Some(sign(
                Role::Admin,
                ADMIN,
                "GET",
                "/clusters",
                now() - 120,
                60,
            )),
            "expired",
        ),
        (Some(admin("GET", "/volumes")), "Invalid qsh claim"),
        (
            Some(sign(Role::User, USER, "GET", "/nodes/x", now(), 60)),
            "Invalid qsh",
        ),
    ];
    for (token, needle) in cases {
        let reply = call(addr, "GET", "/clusters", token.as_deref(), "").await;
        assert_eq!(reply.status, 401, "{needle}: {}", reply.body);
        assert!(reply.body.contains(needle), "{needle}: {}", reply.body);
    }
    // The user role is limited to volume operations.
    let path = format!("/nodes/{}", "0".repeat(32));
    let user = sign(Role::User, USER, "GET", &path, now(), 60);
    let reply = call(addr, "GET", &path, Some(&user), "").await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.body.contains("Administrator access required"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_nodes_and_devices_read_like_heketi() {
    let addr = start().await;
    let list = call(
        addr,
        "GET",
        "/clusters",
        Some(&admin("GET", "/clusters")),
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.header("content-type"), Some("application/json"));
    let ids = list.json()["clusters"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1);
    let id = ids[0].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let path = format!("/clusters/{id}");
    let cluster = call(addr, "GET", &path, Some(&admin("GET", &path)), "")
        .await
        .json();
    assert_eq!(cluster["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(cluster["file"], true);
    let node_id = cluster["nodes"][0].as_str().unwrap();
    let path = format!("/nodes/{node_id}");
    let node = call(addr, "GET", &path, Some(&admin("GET", &path)), "")
        .await
        .json();
    assert_eq!(node["state"], "online");
    assert_eq!(node["cluster"], id);
    assert!(
        node["hostnames"]["manage"][0]
            .as_str()
            .unwrap()
            .starts_with("node")
    );
    let device = &node["devices"][0];
    assert_eq!(
        device["storage"]["total"],
        1u64 << 30,
        "KiB of a 1 TiB device"
    );
    let path = format!("/devices/{}", device["id"].as_str().unwrap());
    let again = call(addr, "GET", &path, Some(&admin("GET", &path)), "")
        .await
        .json();
    assert_eq!(&again, device);
    let missing = format!("/clusters/{}", "f".repeat(32));
    let reply = call(addr, "GET", &missing, Some(&admin("GET", &missing)), "").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_is_created_expanded_and_deleted_through_the_queue() {
    let addr = start().await;
    let body = r#"{"size": 2, "name": "web", "durability": {"type": "replicate",
        "replicate": {"replica": 3}}, "snapshot": {"enable": false, "factor": 1}}"#;
    let accepted = call(
        addr,
        "POST",
        "/volumes",
        Some(&admin("POST", "/volumes")),
        body,
    )
    .await;
    let done = finish(addr, &accepted, |p| admin("GET", p)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.header("Location").unwrap().to_owned();
    let volume = call(addr, "GET", &location, Some(&admin("GET", &location)), "")
        .await
        .json();
    assert_eq!(volume["name"], "web");
    assert_eq!(volume["size"], 2);
    assert_eq!(volume["durability"]["type"], "replicate");
    assert_eq!(volume["durability"]["replicate"]["replica"], 3);
    assert_eq!(volume["bricks"].as_array().unwrap().len(), 3);
    assert!(
        volume["mount"]["glusterfs"]["device"]
            .as_str()
            .unwrap()
            .ends_with(":web")
    );
    let id = volume["id"].as_str().unwrap().to_owned();

    let path = format!("/volumes/{id}/expand");
    let accepted = call(
        addr,
        "POST",
        &path,
        Some(&admin("POST", &path)),
        r#"{"expand_size": 1}"#,
    )
    .await;
    let done = finish(addr, &accepted, |p| admin("GET", p)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let path = format!("/volumes/{id}");
    let volume = call(addr, "GET", &path, Some(&admin("GET", &path)), "")
        .await
        .json();
    assert_eq!(volume["size"], 3);

    let list = call(addr, "GET", "/volumes", Some(&admin("GET", "/volumes")), "")
        .await
        .json();
    assert_eq!(list["volumes"], serde_json::json!([id]));
    let accepted = call(addr, "DELETE", &path, Some(&admin("DELETE", &path)), "").await;
    let done = finish(addr, &accepted, |p| admin("GET", p)).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let gone = call(addr, "GET", &path, Some(&admin("GET", &path)), "").await;
    assert_eq!(gone.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_422_400_and_404_and_a_user_polls_its_own_operations() {
    let addr = start().await;
    let post = |body: &'static str| async move {
        call(
            addr,
            "POST",
            "/volumes",
            Some(&admin("POST", "/volumes")),
            body,
        )
        .await
    };
    let reply = post("{not json").await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let reply = post(r#"{"size": 0}"#).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("size"), "{}", reply.body);
    let reply =
        post(r#"{"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 5}}}"#)
            .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("durability.replicate.replica"),
        "{}",
        reply.body
    );
    let missing = format!("/volumes/{}", "a".repeat(32));
    let reply = call(
        addr,
        "DELETE",
        &missing,
        Some(&admin("DELETE", &missing)),
        "",
    )
    .await;
    assert_eq!(reply.status, 404);
    // A refusal by the engine ends the queued operation with 500 and text.
    let reply = post(r#"{"size": 100000}"#).await;
    let done = finish(addr, &reply, |p| admin("GET", p)).await;
    assert_eq!(done.status, 500);
    assert!(!done.body.trim().is_empty());

    // The user role creates volumes and may poll its own operation.
    let user = |m: &str, p: &str| sign(Role::User, USER, m, p, now(), 60);
    let accepted = call(
        addr,
        "POST",
        "/volumes",
        Some(&user("POST", "/volumes")),
        r#"{"size": 1}"#,
    )
    .await;
    let done = finish(addr, &accepted, |p| user("GET", p)).await;
    assert_eq!(done.status, 303, "{}", done.body);
}
