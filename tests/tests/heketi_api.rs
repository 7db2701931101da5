//! The heketi-compatible REST API over real HTTP, on the simulate
//! executor: authentication (the `exp` boundary included); clusters,
//! nodes, devices and volumes; the async queue (202, pending, 303/204/500,
//! 429); `/operations`, `/operations/pending`, `/db/dump`, `/backup/db`,
//! `/db/check`; heketi's admin mode and log level; the routes aplo answers
//! `501`; and aplo's own `/aplo/v1/` endpoints, with status codes, headers
//! and JSON bodies asserted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aplo::engine::Engine;
use aplo::http::api::{ApiState, KEEP_RESULTS, router_with};
use aplo::http::auth::{Keys, Role, sign};
use aplo::http::control::{LogLevel, ServerControl};
use aplo::http::queue::Queue;
use aplo::model::storage::AdminMode;
use aplo::store::{MemoryStore, Store};
use aplo_e2e::http::RememberedLevel;
use aplo_e2e::http::{Reply, call, exchange};
use aplo_e2e::kube::{engine_on, engine_with, sim_engine, sim_engine_on};
use axum::body::Body;
use axum::extract::ConnectInfo;
use serde_json::{Value, json};
use tower::ServiceExt;

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

fn user(method: &str, path: &str) -> String {
    sign(Role::User, USER, method, path, now(), 60)
}

fn api_state(engine: Arc<Engine>, max_in_flight: usize) -> ApiState {
    ApiState {
        engine,
        keys: Some(Keys {
            admin: ADMIN.to_vec(),
            user: USER.to_vec(),
            iat_leeway: 120,
        }),
        queue: Queue::new(max_in_flight, KEEP_RESULTS),
    }
}

/// Serve the API over `engine`, running at most `max_in_flight` queued
/// operations.
async fn serve(engine: Arc<Engine>, max_in_flight: usize) -> SocketAddr {
    serve_with(engine, max_in_flight, ServerControl::default()).await
}

/// [`serve`] with the admin mode and log level of `control`; handlers see
/// the client's address (127.0.0.1: a local client).
async fn serve_with(
    engine: Arc<Engine>,
    max_in_flight: usize,
    control: ServerControl,
) -> SocketAddr {
    aplo_e2e::http::serve_with_peers(router_with(api_state(engine, max_in_flight), control)).await
}

/// The API over six simulated nodes in three zones, two 1 TiB devices
/// each.
async fn start() -> SocketAddr {
    serve(sim_engine(6).await, 8).await
}

/// A request signed for the admin.
async fn as_admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    call(addr, method, path, Some(&admin(method, path)), body).await
}

/// A request signed for the user role.
async fn as_user(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    call(addr, method, path, Some(&user(method, path)), body).await
}

/// GET as admin, expecting 200 with JSON.
async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let reply = as_admin(addr, "GET", path, "").await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

/// A queued admin request followed to its end: the final poll reply.
async fn queued(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let accepted = as_admin(addr, method, path, body).await;
    finish(addr, &accepted, |p| admin("GET", p)).await
}

/// Assert a plain-text error: its status and a piece of its text.
fn assert_error(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(
        reply.status, status,
        "wanted {status} with '{needle}': {}",
        reply.body
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        reply.headers
    );
    assert!(
        reply.body.contains(needle),
        "wanted '{needle}' in: {}",
        reply.body
    );
}

const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

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

/// The only cluster of [`start`]'s topology.
async fn first_cluster(addr: SocketAddr) -> String {
    get_json(addr, "/clusters").await["clusters"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_created_flagged_and_deleted() {
    let addr = start().await;
    let original = first_cluster(addr).await;
    // An empty body: file volumes only.
    let created = as_admin(addr, "POST", "/clusters", "").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let cluster = created.json();
    let id = cluster["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        cluster,
        json!({"id": id, "nodes": [], "volumes": [], "block": false, "file": true,
               "blockvolumes": []})
    );
    let flagged = as_admin(
        addr,
        "POST",
        "/clusters",
        r#"{"file": false, "block": true}"#,
    )
    .await
    .json();
    assert_eq!(
        (flagged["file"].as_bool(), flagged["block"].as_bool()),
        (Some(false), Some(true))
    );
    let list = get_json(addr, "/clusters").await;
    assert_eq!(list["clusters"].as_array().unwrap().len(), 3);
    assert_error(
        &as_admin(addr, "POST", "/clusters", "{file").await,
        422,
        "JSON",
    );

    // Flags: 200 with no body, then visible.
    let path = format!("/clusters/{id}/flags");
    let reply = as_admin(addr, "POST", &path, r#"{"file": true, "block": true}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.is_empty(), "{}", reply.body);
    let cluster = get_json(addr, &format!("/clusters/{id}")).await;
    assert_eq!(cluster["block"], true);
    assert_error(&as_admin(addr, "POST", &path, "[1]").await, 422, "JSON");
    let missing = format!("/clusters/{UNKNOWN}/flags");
    assert_error(
        &as_admin(addr, "POST", &missing, r#"{"file": true}"#).await,
        404,
        "Id not found",
    );

    // Delete: the empty one goes, the one with nodes stays (409).
    let path = format!("/clusters/{id}");
    let reply = as_admin(addr, "DELETE", &path, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_error(&as_admin(addr, "GET", &path, "").await, 404, "Id not found");
    assert_error(
        &as_admin(addr, "DELETE", &path, "").await,
        404,
        "Id not found",
    );
    let busy = format!("/clusters/{original}");
    assert_error(&as_admin(addr, "DELETE", &busy, "").await, 409, "6 node(s)");
    assert_eq!(
        get_json(addr, "/clusters").await["clusters"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // None of this is the user role's.
    for (method, path) in [("POST", "/clusters".to_owned()), ("DELETE", busy.clone())] {
        assert_error(
            &as_user(addr, method, &path, "").await,
            401,
            "Administrator access required",
        );
    }
}

/// Add a node to `cluster` through the queue; its id.
async fn add_node(
    addr: SocketAddr,
    cluster: &str,
    manage: &str,
    storage: &str,
    zone: u32,
) -> String {
    let body = json!({"zone": zone, "hostnames": {"manage": [manage], "storage": [storage]},
                      "cluster": cluster, "tags": {"rack": "r1"}})
    .to_string();
    let done = queued(addr, "POST", "/nodes", &body).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.header("Location").unwrap().to_owned();
    assert!(location.starts_with("/nodes/"), "{location}");
    location.trim_start_matches("/nodes/").to_owned()
}

/// Add a device to a node through the queue (204 at the end).
async fn add_device(addr: SocketAddr, node: &str, name: &str, tags: Value) {
    let body = json!({"node": node, "name": name, "tags": tags}).to_string();
    let done = queued(addr, "POST", "/devices", &body).await;
    assert_eq!(done.status, 204, "{}", done.body);
}

/// The device of a node with this name, as `GET /nodes/{id}` shows it.
async fn device_named(addr: SocketAddr, node: &str, name: &str) -> Value {
    let node = get_json(addr, &format!("/nodes/{node}")).await;
    node["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no device {name} in {node}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_added_tagged_set_offline_and_removed_through_the_queue() {
    let addr = start().await;
    let original = first_cluster(addr).await;
    let cluster = as_admin(addr, "POST", "/clusters", "").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = add_node(addr, &cluster, "extra-node", "10.0.1.1", 2).await;
    let node = get_json(addr, &format!("/nodes/{id}")).await;
    assert_eq!(
        node,
        json!({"zone": 2, "hostnames": {"manage": ["extra-node"], "storage": ["10.0.1.1"]},
               "cluster": cluster, "tags": {"rack": "r1"}, "id": id, "state": "online",
               "devices": []})
    );
    let cluster_info = get_json(addr, &format!("/clusters/{cluster}")).await;
    assert_eq!(cluster_info["nodes"], json!([id]));

    // Refusals before anything is queued.
    let add =
        |body: Value| async move { as_admin(addr, "POST", "/nodes", &body.to_string()).await };
    let base = json!({"zone": 1, "hostnames": {"manage": ["n9"], "storage": ["10.0.9.9"]},
                      "cluster": cluster});
    assert_error(
        &as_admin(addr, "POST", "/nodes", "{zone: 1}").await,
        422,
        "JSON",
    );
    let mut no_zone = base.clone();
    no_zone.as_object_mut().unwrap().remove("zone");
    assert_error(&add(no_zone).await, 400, "zone");
    let mut no_manage = base.clone();
    no_manage["hostnames"]["manage"] = json!([]);
    assert_error(&add(no_manage).await, 400, "hostnames.manage");
    // Hostnames that would become flags or split an argument are refused.
    for (field, bad) in [
        ("storage", "--remote-host=evil"),
        ("manage", "-oProxyCommand=id"),
        ("manage", "n9 n10"),
        ("storage", "10.0.9.9;id"),
    ] {
        let mut hostile = base.clone();
        hostile["hostnames"][field] = json!([bad]);
        assert_error(
            &add(hostile).await,
            400,
            &format!("hostnames.{field}[0]: '{bad}' is not a hostname or address"),
        );
    }
    let mut bad_cluster = base.clone();
    bad_cluster["cluster"] = json!("not-an-id");
    assert_error(&add(bad_cluster).await, 400, "cluster");
    let mut bad_tags = base.clone();
    bad_tags["tags"] = json!({"no spaces": "x"});
    assert_error(&add(bad_tags).await, 400, "tags");
    let mut unknown_cluster = base.clone();
    unknown_cluster["cluster"] = json!(UNKNOWN);
    assert_error(
        &add(unknown_cluster).await,
        404,
        "Cluster id does not exist",
    );
    let mut taken = base.clone();
    taken["hostnames"]["storage"] = json!(["10.0.1.1"]);
    assert_error(&add(taken).await, 409, "10.0.1.1");

    // Tags: set, update, delete; 200 with all the tags.
    let path = format!("/nodes/{id}/tags");
    let reply = as_admin(
        addr,
        "POST",
        &path,
        r#"{"change_type": "set", "tags": {"rack": "r2", "row": "7"}}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"rack": "r2", "row": "7"}));
    let reply = as_admin(
        addr,
        "POST",
        &path,
        r#"{"change_type": "update", "tags": {"rack": "r3", "pdu": "b"}}"#,
    )
    .await;
    assert_eq!(reply.json(), json!({"rack": "r3", "row": "7", "pdu": "b"}));
    let reply = as_admin(
        addr,
        "POST",
        &path,
        r#"{"change_type": "delete", "tags": {"row": "", "pdu": ""}}"#,
    )
    .await;
    assert_eq!(reply.json(), json!({"rack": "r3"}));
    assert_eq!(
        get_json(addr, &format!("/nodes/{id}")).await["tags"],
        json!({"rack": "r3"})
    );
    assert_error(
        &as_admin(
            addr,
            "POST",
            &path,
            r#"{"change_type": "merge", "tags": {}}"#,
        )
        .await,
        400,
        "change_type",
    );
    assert_error(&as_admin(addr, "POST", &path, "tags").await, 422, "JSON");
    let missing = format!("/nodes/{UNKNOWN}/tags");
    assert_error(
        &as_admin(
            addr,
            "POST",
            &missing,
            r#"{"change_type": "set", "tags": {}}"#,
        )
        .await,
        404,
        "Id not found",
    );

    // State: heketi's rules, applied by the queued operation.
    let path = format!("/nodes/{id}/state");
    let done = queued(addr, "POST", &path, r#"{"state": "failed"}"#).await;
    assert_error(&done, 500, "Node must be offline");
    let done = queued(addr, "POST", &path, r#"{"state": "offline"}"#).await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(
        get_json(addr, &format!("/nodes/{id}")).await["state"],
        "offline"
    );
    assert_error(
        &as_admin(addr, "POST", &path, r#"{"state": "asleep"}"#).await,
        400,
        "state",
    );
    assert_error(&as_admin(addr, "POST", &path, "{").await, 422, "JSON");
    let missing = format!("/nodes/{UNKNOWN}/state");
    assert_error(
        &as_admin(addr, "POST", &missing, r#"{"state": "online"}"#).await,
        404,
        "Id not found",
    );
    let done = queued(addr, "POST", &path, r#"{"state": "failed"}"#).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let done = queued(addr, "POST", &path, r#"{"state": "online"}"#).await;
    assert_error(&done, 500, "Cannot move a failed/removed node");

    // Delete: a node with devices is refused; an empty one goes.
    let full = get_json(addr, &format!("/clusters/{original}")).await["nodes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &as_admin(addr, "DELETE", &format!("/nodes/{full}"), "").await,
        409,
        "because it contains devices",
    );
    let path = format!("/nodes/{id}");
    let done = queued(addr, "DELETE", &path, "").await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_error(&as_admin(addr, "GET", &path, "").await, 404, "Id not found");
    assert_error(
        &as_admin(addr, "DELETE", &path, "").await,
        404,
        "Id not found",
    );
    assert_error(
        &as_user(addr, "POST", "/nodes", "{}").await,
        401,
        "Administrator access required",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_added_tagged_resynced_retired_and_deleted() {
    let addr = start().await;
    let cluster = get_json(addr, &format!("/clusters/{}", first_cluster(addr).await)).await;
    let node = cluster["nodes"][0].as_str().unwrap().to_owned();

    // A 2 TiB device (the simulation reads the `capacity` tag).
    add_device(addr, &node, "/dev/sdd", json!({"capacity": "2Ti"})).await;
    let device = device_named(addr, &node, "/dev/sdd").await;
    assert_eq!(device["state"], "online");
    assert_eq!(
        device["storage"],
        json!({"total": 2u64 << 30, "free": 2u64 << 30, "used": 0})
    );
    assert_eq!(device["bricks"], json!([]));
    let id = device["id"].as_str().unwrap().to_owned();
    assert_eq!(get_json(addr, &format!("/devices/{id}")).await, device);

    // Refusals before anything is queued.
    let add =
        |body: Value| async move { as_admin(addr, "POST", "/devices", &body.to_string()).await };
    assert_error(
        &as_admin(addr, "POST", "/devices", "not json").await,
        422,
        "JSON",
    );
    assert_error(
        &add(json!({"node": node, "name": "sde"})).await,
        400,
        "name",
    );
    // Names a command line could misread are refused, naming the field.
    for bad in [
        "/dev/sde;reboot",
        "/dev/sd e",
        "/dev/sde\n--force",
        "/dev/$(id)",
    ] {
        assert_error(
            &add(json!({"node": node, "name": bad})).await,
            400,
            "name: '",
        );
    }
    assert_error(
        &add(json!({"node": node, "name": "/dev/sde;reboot"})).await,
        400,
        "name: '/dev/sde;reboot' is not a device path such as /dev/vdb: it contains ';'",
    );
    assert_error(
        &add(json!({"node": "abc", "name": "/dev/sde"})).await,
        400,
        "node",
    );
    assert_error(
        &add(json!({"node": UNKNOWN, "name": "/dev/sde"})).await,
        404,
        "Node id does not exist",
    );
    assert_error(
        &add(json!({"node": node, "name": "/dev/sdd"})).await,
        409,
        "already",
    );
    // A refusal of the engine ends the operation with 500.
    let done = queued(
        addr,
        "POST",
        "/devices",
        &json!({"node": node, "name": "/dev/sdf", "tags": {"backend": "zfs"}}).to_string(),
    )
    .await;
    assert_error(&done, 500, "zfs");

    // Tags, then a resync reads the new capacity.
    let path = format!("/devices/{id}/tags");
    let reply = as_admin(
        addr,
        "POST",
        &path,
        r#"{"change_type": "update", "tags": {"capacity": "3Ti", "ssd": "yes"}}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"capacity": "3Ti", "ssd": "yes"}));
    assert_error(
        &as_admin(
            addr,
            "POST",
            &path,
            r#"{"change_type": "update", "tags": {"backend": "loop"}}"#,
        )
        .await,
        400,
        "backend",
    );
    let done = queued(addr, "GET", &format!("/devices/{id}/resync"), "").await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(
        get_json(addr, &format!("/devices/{id}")).await["storage"]["total"],
        3u64 << 30
    );
    let missing = format!("/devices/{UNKNOWN}/resync");
    assert_error(
        &as_admin(addr, "GET", &missing, "").await,
        404,
        "Id not found",
    );

    // State: online → failed is refused (offline first), then it fails.
    let state = format!("/devices/{id}/state");
    assert_error(
        &queued(addr, "POST", &state, r#"{"state": "failed"}"#).await,
        500,
        "Device must be offline",
    );
    // Not failed yet: delete is refused.
    assert_error(
        &as_admin(addr, "DELETE", &format!("/devices/{id}"), "").await,
        400,
        "is not in failed state",
    );
    for step in ["offline", "failed"] {
        let done = queued(addr, "POST", &state, &json!({"state": step}).to_string()).await;
        assert_eq!(done.status, 204, "{step}: {}", done.body);
        assert_eq!(
            get_json(addr, &format!("/devices/{id}")).await["state"],
            step
        );
    }
    assert_error(
        &queued(addr, "POST", &state, r#"{"state": "online"}"#).await,
        500,
        "Cannot move a failed/removed device to online",
    );
    assert_error(
        &as_admin(addr, "POST", &state, r#"{"state": "on"}"#).await,
        400,
        "state",
    );
    assert_error(
        &as_admin(
            addr,
            "POST",
            &state,
            r#"{"state": "offline", "healcheck": "maybe"}"#,
        )
        .await,
        400,
        "healcheck",
    );

    // Delete the failed device; forceforget is not aplo's.
    let path = format!("/devices/{id}");
    assert_error(
        &as_admin(addr, "DELETE", &path, r#"{"forceforget": true}"#).await,
        400,
        "forceforget",
    );
    assert_error(&as_admin(addr, "DELETE", &path, "{").await, 422, "JSON");
    let done = queued(addr, "DELETE", &path, "").await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_error(&as_admin(addr, "GET", &path, "").await, 404, "Id not found");

    // A device holding bricks can be neither failed, resynced nor deleted.
    let done = queued(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let volume = get_json(addr, done.header("Location").unwrap()).await;
    let busy = volume["bricks"][0]["device"].as_str().unwrap().to_owned();
    let state = format!("/devices/{busy}/state");
    assert_eq!(
        queued(addr, "POST", &state, r#"{"state": "offline"}"#)
            .await
            .status,
        204
    );
    // Its only brick holds the only copy of the data: not moved.
    assert_error(
        &queued(addr, "POST", &state, r#"{"state": "failed"}"#).await,
        500,
        "no redundancy",
    );
    assert_error(
        &queued(addr, "GET", &format!("/devices/{busy}/resync"), "").await,
        500,
        "holds bricks",
    );
    assert_error(
        &as_admin(addr, "DELETE", &format!("/devices/{busy}"), "").await,
        400,
        "not in failed state",
    );
    assert_error(
        &as_user(addr, "GET", &format!("/devices/{busy}/resync"), "").await,
        401,
        "Administrator access required",
    );

    // A replicated volume's brick is moved off a failed device (heketi's
    // device remove): the device ends failed and empty, the volume whole.
    let done = queued(
        addr,
        "POST",
        "/volumes",
        r#"{"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 3}}}"#,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.header("Location").unwrap().to_owned();
    let volume = get_json(addr, &location).await;
    let leaving = volume["bricks"][0]["device"].as_str().unwrap().to_owned();
    let state = format!("/devices/{leaving}/state");
    for to in ["offline", "failed"] {
        let done = queued(addr, "POST", &state, &format!(r#"{{"state": "{to}"}}"#)).await;
        assert_eq!(done.status, 204, "{to}: {}", done.body);
    }
    let device = get_json(addr, &format!("/devices/{leaving}")).await;
    assert_eq!(device["state"], "failed");
    assert_eq!(device["bricks"].as_array().unwrap().len(), 0, "{device}");
    let volume = get_json(addr, &location).await;
    let bricks = volume["bricks"].as_array().unwrap();
    assert_eq!(bricks.len(), 3, "{volume}");
    assert!(
        bricks.iter().all(|b| b["device"] != leaving.as_str()),
        "{volume}"
    );
    let done = queued(addr, "DELETE", &format!("/devices/{leaving}"), "").await;
    assert_eq!(done.status, 204, "{}", done.body);

    // heketi's brick evict: one brick moves, the volume keeps three.
    let evicted = bricks[1]["id"].as_str().unwrap().to_owned();
    let path = format!("/bricks/to-evict/{evicted}");
    assert_error(
        &as_admin(addr, "POST", &path, r#"{"healcheck": "maybe"}"#).await,
        400,
        "healcheck",
    );
    assert_error(&as_admin(addr, "POST", &path, "{").await, 422, "JSON");
    assert_error(
        &as_user(addr, "POST", &path, "").await,
        401,
        "Administrator access required",
    );
    assert_error(
        &as_admin(
            addr,
            "POST",
            &format!("/bricks/to-evict/{}", "0".repeat(32)),
            "",
        )
        .await,
        404,
        "Id not found",
    );
    let done = queued(addr, "POST", &path, r#"{"healcheck": "enable"}"#).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let volume = get_json(addr, &location).await;
    let bricks = volume["bricks"].as_array().unwrap();
    assert_eq!(bricks.len(), 3, "{volume}");
    assert!(
        bricks.iter().all(|b| b["id"] != evicted.as_str()),
        "{volume}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_requests_honour_durability_options_gid_snapshot_and_parameters() {
    let addr = start().await;
    let create = |body: &'static str| async move {
        let done = queued(addr, "POST", "/volumes", body).await;
        assert_eq!(done.status, 303, "{body}: {}", done.body);
        get_json(addr, done.header("Location").unwrap()).await
    };
    // No durability type: distribute-only, as heketi's server reads it.
    let plain = create(r#"{"size": 1}"#).await;
    assert_eq!(plain["durability"]["type"], "none");
    assert_eq!(plain["bricks"].as_array().unwrap().len(), 1);
    let v = create(
        r#"{"size": 2, "gid": 2000, "durability": {"type": "replicate",
        "replicate": {"replica": 3}}, "glustervolumeoptions": ["performance.cache-size 64MB",
        "user.heketi.arbiter true"], "snapshot": {"enable": true, "factor": 1.5}}"#,
    )
    .await;
    assert_eq!(v["gid"], 2000);
    assert_eq!(v["durability"]["replicate"]["replica"], 3);
    let options: Vec<&str> = v["glustervolumeoptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(
        options.contains(&"performance.cache-size 64MB"),
        "{options:?}"
    );
    assert!(options.contains(&"storage.owner-gid 2000"), "{options:?}");
    assert!(
        !options.iter().any(|o| o.starts_with("user.heketi.arbiter")),
        "{options:?}"
    );
    assert_eq!(v["snapshot"], json!({"enable": true, "factor": 1.5}));
    // An arbiter: two data bricks and one smaller one.
    let mut sizes: Vec<u64> = v["bricks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["size"].as_u64().unwrap())
        .collect();
    sizes.sort();
    assert_eq!(sizes.len(), 3);
    assert!(sizes[0] < sizes[1] && sizes[1] == sizes[2], "{sizes:?}");

    let v = create(r#"{"size": 4, "durability": {"type": "disperse"}}"#).await;
    assert_eq!(
        v["durability"]["disperse"],
        json!({"data": 4, "redundancy": 2})
    );
    assert_eq!(v["bricks"].as_array().unwrap().len(), 6);
    let v = create(r#"{"size": 1, "durability": {"type": "none"}}"#).await;
    assert_eq!(v["durability"]["type"], "none");
    assert_eq!(v["bricks"].as_array().unwrap().len(), 1);
    // The extension's durability policy wins over the request's fields.
    let v = create(
        r#"{"size": 1, "durability": {"type": "none"},
        "parameters": {"durability": "classes", "classes.class": "replica2"}}"#,
    )
    .await;
    assert_eq!(v["durability"]["type"], "replicate");
    assert_eq!(v["durability"]["replicate"]["replica"], 2);

    // Refused before anything is queued, naming the field.
    let refused = |body: &'static str, needle: &'static str| async move {
        let reply = as_admin(addr, "POST", "/volumes", body).await;
        assert_error(&reply, 400, needle);
    };
    refused(r#"{"size": 1, "gid": -1}"#, "gid").await;
    refused(r#"{"size": 1, "name": "a b"}"#, "name").await;
    refused(
        r#"{"size": 1, "glustervolumeoptions": ["nfs.disable"]}"#,
        "glustervolumeoptions",
    )
    .await;
    refused(
        r#"{"size": 1, "glustervolumeoptions": ["a.b c;d"]}"#,
        "glustervolumeoptions",
    )
    .await;
    // Options the gluster CLI could take as flags, names gluster does not
    // have and repeated names, even from the user role.
    for (body, needle) in [
        (
            r#"{"size": 1, "glustervolumeoptions": ["performance.cache-size --log-file=/tmp/x"]}"#,
            "the value of 'performance.cache-size' begins with '-'",
        ),
        (
            r#"{"size": 1, "glustervolumeoptions": ["--remote-host=10.0.0.9 on"]}"#,
            "'--remote-host=10.0.0.9' is not a gluster option name",
        ),
        (
            r#"{"size": 1, "glustervolumeoptions": ["cluster.made-up on"]}"#,
            "'cluster.made-up' is not a volume option of this gluster",
        ),
        (
            r#"{"size": 1, "glustervolumeoptions": ["user.a 1", "user.a 2"]}"#,
            "'user.a' is given more than once",
        ),
    ] {
        let reply = as_user(addr, "POST", "/volumes", body).await;
        assert_error(&reply, 400, needle);
    }
    refused(
        r#"{"size": 1, "snapshot": {"enable": true, "factor": 0.5}}"#,
        "snapshot.factor",
    )
    .await;
    refused(
        r#"{"size": 1, "durability": {"type": "disperse", "disperse": {"data": 5,
        "redundancy": 2}}}"#,
        "durability.disperse",
    )
    .await;
    refused(r#"{"size": 1, "clusters": ["zz"]}"#, "clusters").await;
    refused(
        r#"{"size": 1, "clusters": ["0123456789abcdef0123456789abcdef"]}"#,
        "not found",
    )
    .await;
    // The policy's own check of its settings: an arbiter needs replicate.
    refused(
        r#"{"size": 1, "durability": {"type": "none"},
        "glustervolumeoptions": ["user.heketi.arbiter true"]}"#,
        "arbiter",
    )
    .await;
    refused(
        r#"{"size": 1, "parameters": {"placement": "no-such-policy"}}"#,
        "no-such-policy",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_goes_only_to_the_clusters_asked_for_that_take_file_volumes() {
    let addr = start().await;
    let first = first_cluster(addr).await;
    let second = as_admin(addr, "POST", "/clusters", "").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for zone in 1..=3 {
        let node = add_node(
            addr,
            &second,
            &format!("second-{zone}"),
            &format!("10.0.2.{zone}"),
            zone,
        )
        .await;
        add_device(addr, &node, "/dev/vdb", json!({"capacity": "100Gi"})).await;
    }
    let replicated = json!({"type": "replicate"});
    let body = json!({"size": 1, "clusters": [second], "durability": replicated}).to_string();
    let done = queued(addr, "POST", "/volumes", &body).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let volume = get_json(addr, done.header("Location").unwrap()).await;
    assert_eq!(volume["cluster"], second);
    let second_info = get_json(addr, &format!("/clusters/{second}")).await;
    assert_eq!(second_info["volumes"], json!([volume["id"]]));
    // Too big for the second cluster, though the first has room.
    let big = json!({"size": 200, "clusters": [second], "durability": replicated}).to_string();
    assert_eq!(queued(addr, "POST", "/volumes", &big).await.status, 500);

    // Without the file flag, a cluster takes no volumes.
    let flags = format!("/clusters/{second}/flags");
    assert_eq!(
        as_admin(addr, "POST", &flags, r#"{"file": false}"#)
            .await
            .status,
        200
    );
    assert_error(
        &as_admin(addr, "POST", "/volumes", &body).await,
        400,
        "file",
    );
    // Any cluster: the first one then.
    let done = queued(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    let volume = get_json(addr, done.header("Location").unwrap()).await;
    assert_eq!(volume["cluster"], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_count_the_journal_and_the_queue_and_a_full_queue_answers_429() {
    let (gate, open) = tokio::sync::watch::channel(false);
    let engine = engine_with(Arc::new(aplo_e2e::kube::BreakableDriver::gated(open)), 6).await;
    let addr = serve(engine, 1).await;
    let idle = get_json(addr, "/operations").await;
    assert_eq!(
        idle,
        json!({"total": 0, "in_flight": 0, "stale": 0, "failed": 0, "new": 0})
    );

    let accepted = as_admin(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let location = accepted.header("Location").unwrap().to_owned();
    // Journaled, its bricks held back: one new operation in flight.
    let mut info = Value::Null;
    for _ in 0..200 {
        info = get_json(addr, "/operations").await;
        if info["total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        info,
        json!({"total": 1, "in_flight": 1, "stale": 0, "failed": 0, "new": 1})
    );
    let pending = get_json(addr, "/operations/pending").await;
    assert_eq!(
        pending["pendingoperations"][0]["type_name"],
        "create-volume"
    );
    assert_eq!(pending["pendingoperations"][0]["status"], "");
    assert_eq!(pending["pendingoperations"][0]["sub_status"], "in-flight");
    let pending = as_admin(addr, "GET", &location, "").await;
    assert_eq!(pending.status, 200);
    assert_eq!(pending.header("X-Pending"), Some("true"));
    assert!(pending.body.is_empty());

    // The queue holds one: the next long request is told to come back.
    let busy = as_admin(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    assert_error(&busy, 429, "too many operations");
    assert_eq!(busy.header("Retry-After"), Some("5"));

    gate.send(true).unwrap();
    let done = finish(addr, &accepted, |p| admin("GET", p)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        get_json(addr, "/operations").await,
        json!({"total": 0, "in_flight": 0, "stale": 0, "failed": 0, "new": 0})
    );
    assert_error(
        &as_user(addr, "GET", "/operations", "").await,
        401,
        "Administrator access required",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delete_leaves_a_stale_operation_and_the_dump_shows_everything() {
    let driver = Arc::new(aplo_e2e::kube::BreakableDriver::new());
    let engine = engine_with(driver.clone(), 6).await;
    let addr = serve(engine, 8).await;
    let done = queued(
        addr,
        "POST",
        "/volumes",
        r#"{"size": 1, "name": "kept", "durability": {"type": "replicate"}}"#,
    )
    .await;
    let path = done.header("Location").unwrap().to_owned();
    driver
        .fail_deletes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // A fault's answer says what failed and where, under an error id; the
    // driver's words (a command's output, its hosts) stay in aplo's log.
    let failed = queued(addr, "DELETE", &path, "").await;
    assert_error(&failed, 500, "failed at step '");
    assert_error(&failed, 500, "error id ");
    assert!(!failed.body.contains("injected failure"), "{}", failed.body);
    assert_eq!(
        get_json(addr, "/operations").await,
        json!({"total": 1, "in_flight": 0, "stale": 1, "failed": 0, "new": 0})
    );
    // The journal's entry, as heketi lists a pending operation.
    let pending = get_json(addr, "/operations/pending").await;
    let list = pending["pendingoperations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{pending}");
    assert_eq!(list[0]["type_name"], "delete-volume");
    assert_eq!(list[0]["status"], "stale");
    assert_eq!(list[0]["sub_status"], "");
    let op = list[0]["id"].as_str().unwrap().to_owned();
    let details = get_json(addr, &format!("/operations/pending/{op}")).await;
    assert_eq!(details["id"], op.as_str());
    assert_eq!(details["type_name"], "delete-volume");
    let volume_id = path.trim_start_matches("/volumes/");
    let changes = details["changes"].as_array().unwrap();
    assert_eq!(
        changes[0],
        json!({"id": volume_id, "description": "Delete volume"})
    );
    assert_eq!(
        changes
            .iter()
            .filter(|c| c["description"] == "Delete brick")
            .count(),
        3,
        "{details}"
    );
    let unknown = format!("/operations/pending/{UNKNOWN}");
    assert_error(
        &as_admin(addr, "GET", &unknown, "").await,
        404,
        "Id not found",
    );
    assert_error(
        &as_user(addr, "GET", "/operations/pending", "").await,
        401,
        "Administrator access required",
    );
    // The reconcile report in heketi's shape: the unfinished delete.
    let check = get_json(addr, "/db/check").await;
    assert_eq!(check["pendingoperations"]["total"], 1, "{check}");
    assert_eq!(check["pendingoperations"]["notok"], 1, "{check}");
    let found = check["pendingoperations"]["inconsistencies"][0]
        .as_str()
        .unwrap();
    assert!(found.contains("delete-volume is unfinished"), "{found}");
    assert_eq!(check["volumes"]["total"], 1);
    assert_eq!(check["volumes"]["pending"], 1);
    assert_eq!(check["bricks"]["pending"], 3);
    assert_eq!(check["nodes"]["total"], 6);
    assert_eq!(check["devices"]["total"], 12);
    assert_eq!(check["blockvolumes"]["total"], 0);
    assert!(
        check["totalinconsistencies"].as_u64().unwrap() >= 1,
        "{check}"
    );

    let dump = get_json(addr, "/db/dump").await;
    assert_eq!(dump["schema"], 2);
    assert_eq!(dump["admin_mode"], "normal");
    let data = &dump["data"];
    assert_eq!(data["clusters"].as_object().unwrap().len(), 1);
    assert_eq!(data["nodes"].as_object().unwrap().len(), 6);
    assert_eq!(data["devices"].as_object().unwrap().len(), 12);
    assert_eq!(data["bricks"].as_object().unwrap().len(), 3);
    assert_eq!(data["operations"].as_object().unwrap().len(), 1);
    let volume = data["volumes"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(volume["name"], "kept");
    // aplo's own export format: `aplo db import` reads it back.
    let export: aplo::store::Export = serde_json::from_value(dump.clone()).unwrap();
    assert_eq!(export.data.volumes.len(), 1);
    assert_error(
        &as_user(addr, "GET", "/db/dump", "").await,
        401,
        "Administrator access required",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_endpoints_list_policies_simulate_and_check() {
    let addr = start().await;
    let list = get_json(addr, "/aplo/v1/policies").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["classes", "zone-spread", "binpack", "requested"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let requested = get_json(addr, "/aplo/v1/policies/requested").await;
    assert_eq!(requested["name"], "requested");
    assert_eq!(requested["origin"], "bundled");
    assert_eq!(requested["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(requested["decisions"], json!(["durability"]));
    assert!(
        requested["exports"]
            .as_array()
            .unwrap()
            .contains(&json!("aplo:policy/durability@0.1.0")),
        "{requested}"
    );
    let settings: Vec<&str> = requested["info"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert!(
        settings.contains(&"replica") && settings.contains(&"options"),
        "{settings:?}"
    );
    assert_error(
        &as_admin(addr, "GET", "/aplo/v1/policies/nope", "").await,
        404,
        "nope",
    );

    // A simulation plays claims on a copy: nothing is stored.
    let body = json!({"workload": {"claims": [{"name": "db", "size": "100Gi", "count": 4}]},
                      "placement": "binpack", "seed": 7})
    .to_string();
    let reply = as_admin(addr, "POST", "/aplo/v1/simulate", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["aplo"]["claims"], 4);
    assert_eq!(report["aplo"]["succeeded"], 4);
    assert_eq!(report["aplo"]["usable_bytes"], 400u64 << 30);
    assert_eq!(report["aplo"]["raw_bytes"], 12u64 << 40);
    assert_eq!(report["volumes_before"], 0);
    assert!(report["aplo_usable_share"].as_f64().unwrap() > 0.0);
    assert_eq!(get_json(addr, "/volumes").await["volumes"], json!([]));
    // Again: the same answer (the store did not change).
    assert_eq!(
        as_admin(addr, "POST", "/aplo/v1/simulate", &body)
            .await
            .json(),
        report
    );
    let bad = json!({"workload": {"claims": [{"size": "lots"}]}}).to_string();
    assert_error(
        &as_admin(addr, "POST", "/aplo/v1/simulate", &bad).await,
        400,
        "workload",
    );
    let unknown =
        json!({"workload": {"claims": [{"size": "1Gi"}]}, "durability": "nope"}).to_string();
    assert_error(
        &as_admin(addr, "POST", "/aplo/v1/simulate", &unknown).await,
        400,
        "nope",
    );
    assert_error(
        &as_admin(addr, "POST", "/aplo/v1/simulate", "{").await,
        422,
        "JSON",
    );

    let check = get_json(addr, "/aplo/v1/check").await;
    assert!(check["clean"].is_boolean(), "{check}");
    for drift in check["drift"].as_array().unwrap() {
        assert!(
            drift["subject"].is_string() && drift["repairable"].is_boolean(),
            "{drift}"
        );
    }
    for (method, path) in [
        ("GET", "/aplo/v1/policies"),
        ("GET", "/aplo/v1/policies/requested"),
        ("POST", "/aplo/v1/simulate"),
        ("GET", "/aplo/v1/check"),
    ] {
        assert_error(
            &as_user(addr, method, path, "").await,
            401,
            "Administrator access required",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heketi_metrics_render_the_store_after_api_changes() {
    let engine = sim_engine(3).await;
    let addr = serve(engine.clone(), 8).await;
    let done = queued(
        addr,
        "POST",
        "/volumes",
        r#"{"size": 1, "durability": {"type": "replicate"}}"#,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let text = aplo::http::heketi_metrics::heketi_metrics(&engine.snapshot());
    let cluster = first_cluster(addr).await;
    assert!(text.contains("heketi_cluster_count 1\n"), "{text}");
    assert!(
        text.contains(&format!("heketi_nodes_count{{cluster=\"{cluster}\"}} 3\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "heketi_volumes_count{{cluster=\"{cluster}\"}} 1\n"
        )),
        "{text}"
    );
    let bricks: u64 = text
        .lines()
        .filter(|l| l.starts_with("heketi_device_brick_count{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(bricks, 3);
}

/// Wait until a whole second starts; that second.
async fn next_second() -> i64 {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into) + 5)).await;
    now()
}

/// `GET /clusters` with a token issued at `iat` that expires at `exp`,
/// sent and answered within one second (tried again when a second
/// boundary fell in between); the reply and the second it was checked in.
async fn clusters_within_one_second(addr: SocketAddr, exp_from_now: i64) -> (Reply, i64) {
    for _ in 0..5 {
        let second = next_second().await;
        let exp = second + exp_from_now;
        // heketi's clients sign `exp = iat + 1`.
        let token = sign(Role::Admin, ADMIN, "GET", "/clusters", exp - 1, 1);
        let reply = call(addr, "GET", "/clusters", Some(&token), "").await;
        if now() == second {
            return (reply, second);
        }
    }
    panic!("no request was answered within the second it was sent in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_accepted_through_the_second_its_exp_names_as_heketi_does() {
    let addr = start().await;
    // exp is the current second: heketi accepts it, so does aplo.
    let (reply, _) = clusters_within_one_second(addr, 0).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // exp one second in the past: refused, by exactly that second.
    let (reply, _) = clusters_within_one_second(addr, -1).await;
    assert_error(&reply, 401, "Invalid JWT token: Token is expired by 1s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_is_not_bearer_is_heketis_400() {
    let addr = start().await;
    for header in [
        "Authorization: Basic YWRtaW46a2V5\r\n",
        "Authorization: Bearer\r\n",
        "Authorization: Bearer a.b.c extra\r\n",
    ] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /clusters HTTP/1.1\r\nHost: aplo\r\nConnection: close\r\n{header}\r\n");
        let reply = exchange(stream, request.as_bytes()).await;
        assert_error(
            &reply,
            400,
            "Authorization header format must be Bearer {token}",
        );
    }
    // No header at all stays 401.
    assert_error(
        &call(addr, "GET", "/clusters", None, "").await,
        401,
        "Required authorization token not found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heketis_routes_aplo_does_not_implement_answer_501_saying_why() {
    let addr = start().await;
    let volume = format!("/volumes/{UNKNOWN}");
    let cases = [
        ("GET", "/blockvolumes".to_owned(), "gluster-block"),
        ("POST", "/blockvolumes".to_owned(), "gluster-block"),
        ("GET", format!("/blockvolumes/{UNKNOWN}"), "gluster-block"),
        (
            "DELETE",
            format!("/blockvolumes/{UNKNOWN}"),
            "gluster-block",
        ),
        (
            "POST",
            format!("/blockvolumes/{UNKNOWN}/expand"),
            "use a file volume (POST /volumes)",
        ),
        ("POST", format!("{volume}/clone"), "gluster snapshot"),
        ("POST", format!("{volume}/clone"), "thin LVM"),
        (
            "POST",
            format!("{volume}/block-restriction"),
            "block-hosting volumes are not implemented",
        ),
        (
            "POST",
            "/operations/pending/cleanup".to_owned(),
            "aplo repair",
        ),
        (
            "GET",
            "/internal/state/examine/gluster".to_owned(),
            "GET /db/check",
        ),
    ];
    for (method, path, needle) in cases {
        let reply = as_admin(addr, method, &path, "{}").await;
        assert_error(&reply, 501, needle);
    }
    // A path heketi does not have either: heketi's 404, with a body.
    assert_error(
        &as_admin(addr, "GET", "/nonsense", "").await,
        404,
        "Invalid path or request",
    );
    // Authentication still comes first.
    assert_error(
        &call(addr, "GET", "/blockvolumes", None, "").await,
        401,
        "Required authorization token not found",
    );
}

/// A request as admin from `peer`, straight into the router (no TCP):
/// the way to be a client that is not on aplo's machine.
async fn from_peer(
    app: &axum::Router,
    peer: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("Authorization", format!("Bearer {}", admin(method, path)))
        .extension(ConnectInfo::<SocketAddr>(peer.parse().unwrap()))
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn set_mode(mode: &str) -> String {
    json!({ "state": mode }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_mode_is_heketis_and_is_kept_in_the_store() {
    let store = Arc::new(MemoryStore::default());
    let engine = sim_engine_on(store.clone(), 6).await;
    let control = ServerControl::default();
    control.mode.attach(store.clone()).unwrap();
    let addr = serve_with(engine.clone(), 8, control.clone()).await;
    assert_eq!(get_json(addr, "/admin").await, json!({"state": "normal"}));

    // read-only: reads run, changes are refused with heketi's 503.
    let set = as_admin(addr, "POST", "/admin", &set_mode("read-only")).await;
    assert_eq!(set.status, 204, "{}", set.body);
    assert_eq!(store.admin_mode().unwrap(), AdminMode::ReadOnly, "kept");
    assert_eq!(
        get_json(addr, "/admin").await,
        json!({"state": "read-only"})
    );
    assert_eq!(
        get_json(addr, "/clusters").await["clusters"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for (method, path, body) in [
        ("POST", "/volumes".to_owned(), r#"{"size": 1}"#),
        ("DELETE", format!("/volumes/{UNKNOWN}"), ""),
        ("POST", "/clusters".to_owned(), "{}"),
    ] {
        assert_error(
            &as_admin(addr, method, &path, body).await,
            503,
            "Service disabled for maintenance",
        );
    }
    let user = as_user(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    assert_error(&user, 503, "Service disabled for maintenance");
    // The dump and the backup carry the mode.
    assert_eq!(get_json(addr, "/db/dump").await["admin_mode"], "read-only");
    // A server opened later over the same store starts read-only.
    let later = ServerControl::default();
    later.mode.attach(store.clone()).unwrap();
    assert_eq!(later.mode.mode(), AdminMode::ReadOnly);

    // Only a local client may leave read-only (heketi: a signal or a
    // restart on its machine); this test's client is 127.0.0.1.
    let app = router_with(api_state(engine.clone(), 8), control.clone());
    let (status, body) =
        from_peer(&app, "10.1.2.3:4000", "POST", "/admin", &set_mode("normal")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Service disabled for maintenance"), "{body}");
    let set = as_admin(addr, "POST", "/admin", &set_mode("local-client")).await;
    assert_eq!(set.status, 204, "{}", set.body);

    // local-client: changes from aplo's machine only; reads from anywhere.
    let (status, body) = from_peer(&app, "10.1.2.3:4000", "POST", "/clusters", "{}").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("changes only from aplo's own machine"),
        "{body}"
    );
    let (status, body) = from_peer(&app, "10.1.2.3:4000", "GET", "/clusters", "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = from_peer(&app, "[::1]:4000", "POST", "/clusters", "{}").await;
    assert_eq!(status, 201, "{body}");
    let created = as_admin(addr, "POST", "/clusters", "{}").await;
    assert_eq!(created.status, 201, "a local client: {}", created.body);
    let (status, body) =
        from_peer(&app, "10.1.2.3:4000", "POST", "/admin", &set_mode("normal")).await;
    assert_eq!(status, 503, "{body}");

    // normal again, from here; then anyone may change things.
    let set = as_admin(addr, "POST", "/admin", &set_mode("normal")).await;
    assert_eq!(set.status, 204, "{}", set.body);
    let (status, body) = from_peer(&app, "10.1.2.3:4000", "POST", "/clusters", "{}").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(store.admin_mode().unwrap(), AdminMode::Normal);

    // heketi's refusals of a bad body; the admin role only.
    assert_error(
        &as_admin(addr, "POST", "/admin", &set_mode("maintenance")).await,
        400,
        "validation failed: state: 'maintenance' is not one of normal, read-only, local-client",
    );
    assert_error(
        &as_admin(addr, "POST", "/admin", "read-only").await,
        400,
        "request unable to be parsed",
    );
    assert_error(
        &as_user(addr, "GET", "/admin", "").await,
        401,
        "Administrator access required",
    );
    assert_eq!(store.admin_mode().unwrap(), AdminMode::Normal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_is_a_download_of_the_export_that_imports_into_a_new_store() {
    let store = Arc::new(MemoryStore::default());
    let engine = engine_on(
        store.clone(),
        Arc::new(aplo_e2e::kube::BreakableDriver::new()),
        6,
    )
    .await;
    let control = ServerControl::default();
    control.mode.attach(store.clone()).unwrap();
    let addr = serve_with(engine.clone(), 8, control.clone()).await;
    let done = queued(
        addr,
        "POST",
        "/volumes",
        r#"{"size": 1, "name": "kept", "durability": {"type": "replicate"}}"#,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    control.mode.set(AdminMode::LocalClient).unwrap();

    let backup = as_admin(addr, "GET", "/backup/db", "").await;
    assert_eq!(backup.status, 200, "{}", backup.body);
    assert_eq!(backup.header("content-type"), Some("application/json"));
    assert_eq!(
        backup.header("content-disposition"),
        Some("attachment; filename=\"aplo-db.json\"")
    );
    let export: aplo::store::Export = serde_json::from_str(&backup.body).unwrap();
    assert_eq!(export.schema, aplo::store::SCHEMA_VERSION);
    assert_eq!(export.admin_mode, AdminMode::LocalClient);
    assert_eq!(export.data, engine.snapshot());
    assert_eq!(export.data.volumes.len(), 1);
    // What `aplo db import` does with it.
    let copy = MemoryStore::default();
    aplo::store::import(&copy, export).unwrap();
    assert_eq!(copy.read().unwrap(), store.read().unwrap());
    assert_eq!(copy.admin_mode().unwrap(), AdminMode::LocalClient);
    assert_error(
        &as_user(addr, "GET", "/backup/db", "").await,
        401,
        "Administrator access required",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_report_reads_in_heketis_buckets() {
    let addr = start().await;
    let check = get_json(addr, "/db/check").await;
    // The simulate executor has no gluster and no devices to compare
    // with: `aplo check` says so for the cluster and every device.
    let native = get_json(addr, "/aplo/v1/check").await;
    let drift = native["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 13, "{native}");
    assert_eq!(check["totalinconsistencies"], 13, "{check}");
    let clusters = &check["clusters"];
    assert_eq!(
        (&clusters["total"], &clusters["notok"], &clusters["ok"]),
        (&json!(1), &json!(1), &json!(0)),
        "{check}"
    );
    let found = clusters["inconsistencies"][0].as_str().unwrap();
    assert!(found.contains("gluster could not be asked"), "{found}");
    let devices = &check["devices"];
    assert_eq!(
        (&devices["total"], &devices["notok"], &devices["ok"]),
        (&json!(12), &json!(12), &json!(0)),
        "{check}"
    );
    assert_eq!(devices["inconsistencies"].as_array().unwrap().len(), 12);
    // Each difference is in one bucket, worded as `aplo check` words it.
    let texts: Vec<&str> = drift.iter().map(|d| d["text"].as_str().unwrap()).collect();
    for bucket in ["clusters", "devices"] {
        for text in check[bucket]["inconsistencies"].as_array().unwrap() {
            assert!(texts.contains(&text.as_str().unwrap()), "{text}");
        }
    }
    for (bucket, total) in [
        ("nodes", 6),
        ("volumes", 0),
        ("bricks", 0),
        ("blockvolumes", 0),
        ("dbattributes", 0),
        ("pendingoperations", 0),
    ] {
        assert_eq!(
            check[bucket],
            json!({"total": total, "pending": 0, "ok": total, "notok": 0, "inconsistencies": []}),
            "{bucket}"
        );
    }
    assert_error(
        &as_user(addr, "GET", "/db/check", "").await,
        401,
        "Administrator access required",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_level_is_read_and_set_as_heketi_names_it() {
    let level = Arc::new(RememberedLevel::new(LogLevel::Info));
    let control = ServerControl {
        logging: Some(level.clone()),
        ..ServerControl::default()
    };
    let addr = serve_with(sim_engine(3).await, 8, control.clone()).await;
    let logging = |name: &str| json!({"loglevel": {"glusterfs": name}});
    assert_eq!(get_json(addr, "/internal/logging").await, logging("info"));
    let set = as_admin(
        addr,
        "POST",
        "/internal/logging",
        &logging("debug").to_string(),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json(), logging("debug"));
    assert_eq!(
        aplo::http::control::LogControl::level(level.as_ref()),
        Some(LogLevel::Debug)
    );
    // heketi's `critical` is tracing's error; an empty level changes nothing.
    as_admin(
        addr,
        "POST",
        "/internal/logging",
        &logging("critical").to_string(),
    )
    .await;
    assert_eq!(get_json(addr, "/internal/logging").await, logging("error"));
    let same = as_admin(addr, "POST", "/internal/logging", &logging("").to_string()).await;
    assert_eq!(same.json(), logging("error"));
    assert_error(
        &as_admin(
            addr,
            "POST",
            "/internal/logging",
            &logging("loud").to_string(),
        )
        .await,
        422,
        "invalid log level: loud",
    );
    assert_error(
        &as_admin(
            addr,
            "POST",
            "/internal/logging",
            r#"{"loglevel": {"kube": "debug"}}"#,
        )
        .await,
        422,
        "Only \"glusterfs\" logger may be modified",
    );
    assert_error(
        &as_admin(addr, "POST", "/internal/logging", "debug").await,
        400,
        "request unable to be parsed",
    );
    // The level is not storage: a read-only server still changes it.
    control.mode.set(AdminMode::ReadOnly).unwrap();
    let set = as_admin(
        addr,
        "POST",
        "/internal/logging",
        &logging("warning").to_string(),
    )
    .await;
    assert_eq!(set.json(), logging("warning"));
    assert_error(
        &as_user(addr, "GET", "/internal/logging", "").await,
        401,
        "Administrator access required",
    );
    // An API embedded without aplo's log setup says so.
    let embedded = start().await;
    assert_error(
        &as_admin(embedded, "GET", "/internal/logging", "").await,
        501,
        "cannot be read or changed at run time",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_operation_answers_303_again_until_it_expires() {
    let addr = start().await;
    let accepted = as_admin(addr, "POST", "/volumes", r#"{"size": 1}"#).await;
    let done = finish(addr, &accepted, |p| admin("GET", p)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // heketi forgets a result once it is read; aplo keeps it for
    // KEEP_RESULTS, so a client that lost the answer polls again.
    let location = accepted.header("Location").unwrap();
    let again = as_admin(addr, "GET", location, "").await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.header("Location"), done.header("Location"));
}
