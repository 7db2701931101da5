//! The `aplo` command line as a client of the REST API: the real binary
//! (as `aplo-faulty`, the same entry point, which Cargo builds fresh for
//! this crate's tests) runs as a child process against the API served in
//! this process on the simulate executor. Output, exit codes and the
//! server's answers are asserted; without a server the commands keep
//! acting on the local store. heketi-cli's server commands (`server mode`,
//! `server operations`, `loglevel`, `db dump|check`) also run against a
//! real `aplo serve --api-only` process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::engine::Engine;
use aplo::http::api::{ApiState, KEEP_RESULTS, router_with};
use aplo::http::auth::Keys;
use aplo::http::control::{LogLevel, ServerControl};
use aplo::http::queue::Queue;
use aplo::model::storage::AdminMode;
use aplo::store::{MemoryStore, Store};
use aplo_e2e::http::RememberedLevel;
use aplo_e2e::kube::{BreakableDriver, engine_on, sim_engine, sim_topology};

const ADMIN: &str = "admin-key";
const USER: &str = "user-key";

/// The binary under test: `aplo::cli::main()`. `CARGO_BIN_EXE_*` exists
/// only for this crate's own binaries, so the fault-injection build stands
/// in for `aplo` (it behaves the same unless `--fault-at` is given), and
/// Cargo guarantees it is up to date, unlike a `target/debug/aplo` left by
/// an earlier build.
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aplo-faulty"))
}

/// The API on the simulate executor with six nodes, on a free port.
async fn start() -> String {
    start_with(sim_engine(6).await, ServerControl::default()).await
}

/// The API over `engine` with `control`'s admin mode and log level, on a
/// free port; clients see their address (127.0.0.1: local).
async fn start_with(engine: Arc<Engine>, control: ServerControl) -> String {
    let state = ApiState {
        engine,
        keys: Some(Keys {
            admin: ADMIN.as_bytes().to_vec(),
            user: USER.as_bytes().to_vec(),
            iat_leeway: 120,
        }),
        queue: Queue::new(8, KEEP_RESULTS),
    };
    let addr = aplo_e2e::http::serve_with_peers(router_with(state, control)).await;
    format!("http://{addr}")
}

/// What a run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }

    #[track_caller]
    fn failed(self) -> Run {
        assert_ne!(self.code, 0, "{self:#?}");
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }

    /// The value of a `Key: value` line.
    #[track_caller]
    fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no '{key}:' line in {self:#?}"))
            .trim()
            .to_owned()
    }
}

/// A scratch directory for the local store and files.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Run `aplo` with `args` and a clean environment for the client's
/// variables (`env` sets some).
async fn aplo_env(scratch: &Scratch, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(binary());
    for var in [
        "APLO_SERVER",
        "APLO_USER",
        "APLO_KEY",
        "HEKETI_CLI_SERVER",
        "HEKETI_CLI_USER",
        "HEKETI_CLI_KEY",
        "APLO_DB",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .arg("--db")
        .arg(scratch.path("aplo.redb"))
        .args(["--log", "warn"])
        .args(args)
        .stdin(Stdio::null());
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("aplo finishes within two minutes")
        .expect("aplo runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `aplo --server URL --secret ADMIN args…` (admin by default).
async fn admin(scratch: &Scratch, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--server", url, "--secret", ADMIN];
    all.extend_from_slice(args);
    aplo_env(scratch, &[], &all).await
}

fn is_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_lives_its_whole_life_through_the_client() {
    let url = start().await;
    let s = Scratch::new();

    // Create: the 202 is polled to its end, the result printed as heketi-cli.
    let created = admin(
        &s,
        &url,
        &["volume", "create", "--size", "1", "--name", "vol_cli"],
    )
    .await
    .ok();
    assert_eq!(created.field("Name"), "vol_cli");
    assert_eq!(created.field("Size"), "1");
    assert_eq!(created.field("Durability Type"), "replicate");
    assert_eq!(created.field("Replica Count"), "3");
    assert!(created.field("Mount").ends_with(":vol_cli"), "{created:#?}");
    let id = created.field("Volume Id");
    assert!(is_id(&id), "{created:#?}");
    // stderr is no terminal here: no spinner, nothing at all.
    assert_eq!(created.stderr, "", "{created:#?}");

    // Info by id and by name; the list shows it.
    let info = admin(&s, &url, &["volume", "info", &id]).await.ok();
    assert_eq!(info.field("Name"), "vol_cli");
    let by_name = admin(&s, &url, &["volume", "info", "vol_cli"]).await.ok();
    assert_eq!(by_name.field("Volume Id"), id);
    let list = admin(&s, &url, &["volume", "list"]).await.ok();
    let line = list
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{list:#?}"));
    assert!(
        line.starts_with("Id:") && line.ends_with("Name:vol_cli"),
        "{line}"
    );

    // Expand heketi-cli's way (GiB to add), then to a new total.
    let grown = admin(
        &s,
        &url,
        &["volume", "expand", "--volume", &id, "--expand-size", "2"],
    )
    .await
    .ok();
    assert_eq!(grown.field("Size"), "3");
    let grown = admin(&s, &url, &["volume", "expand", "vol_cli", "--size", "4Gi"])
        .await
        .ok();
    assert_eq!(grown.field("Size"), "4");
    let shrink = admin(&s, &url, &["volume", "expand", &id, "--size", "2"])
        .await
        .failed();
    assert!(shrink.stderr.contains("only grows"), "{shrink:#?}");

    // --json prints the API's JSON.
    let listed = admin(&s, &url, &["volume", "list", "--json"]).await.ok();
    let ids = listed.json()["volumes"].as_array().unwrap().clone();
    assert!(ids.contains(&serde_json::json!(id)), "{listed:#?}");
    let shown = admin(&s, &url, &["volume", "--json", "info", &id])
        .await
        .ok();
    let v = shown.json();
    assert_eq!(
        (v["id"].as_str(), v["size"].as_i64()),
        (Some(&*id), Some(4))
    );
    assert_eq!(v["durability"]["replicate"]["replica"], 3);

    // heketi-cli's brick evict: the brick is replaced, the volume keeps
    // three; an unknown brick is the server's 404.
    let brick = v["bricks"][0]["id"].as_str().unwrap().to_owned();
    let evicted = admin(&s, &url, &["brick", "evict", &brick]).await.ok();
    assert_eq!(evicted.stdout.trim(), format!("Brick {brick} evicted"));
    let v = admin(&s, &url, &["volume", "--json", "info", &id])
        .await
        .ok()
        .json();
    let bricks = v["bricks"].as_array().unwrap();
    assert_eq!(bricks.len(), 3, "{v}");
    assert!(bricks.iter().all(|b| b["id"] != brick.as_str()), "{v}");
    let unknown = admin(&s, &url, &["brick", "evict", &"0".repeat(32)])
        .await
        .failed();
    assert!(unknown.stderr.contains("Id not found"), "{unknown:#?}");

    let dispersed = admin(
        &s,
        &url,
        &[
            "volume",
            "create",
            "--size",
            "2",
            "--durability",
            "disperse",
            "--disperse-data",
            "2",
            "--redundancy",
            "1",
            "--json",
        ],
    )
    .await
    .ok();
    let d = dispersed.json();
    assert_eq!(d["durability"]["type"], "disperse", "{dispersed:#?}");
    assert_eq!(d["durability"]["disperse"]["data"], 2);
    let bricks = d["bricks"].as_array().unwrap().len();
    assert!(bricks > 0 && bricks % 3 == 0, "{dispersed:#?}");

    // A queued operation that fails: the server's reason, exit 1.
    let too_big = admin(&s, &url, &["volume", "create", "--size", "100000"])
        .await
        .failed();
    assert_eq!(too_big.code, 1);
    assert!(
        too_big.stderr.contains("creating the volume failed:"),
        "{too_big:#?}"
    );
    // A request the server refuses at once: its text.
    let refused = admin(
        &s,
        &url,
        &["volume", "create", "--size", "1", "--replica", "5"],
    )
    .await
    .failed();
    assert!(
        refused.stderr.contains("replica: 5 is not offered"),
        "{refused:#?}"
    );

    // Delete, then it is gone.
    let deleted = admin(&s, &url, &["volume", "delete", "vol_cli"]).await.ok();
    assert_eq!(deleted.stdout.trim(), format!("Volume {id} deleted"));
    let gone = admin(&s, &url, &["volume", "info", &id]).await.failed();
    assert!(gone.stderr.contains("Id not found"), "{gone:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_nodes_and_devices_read_back() {
    let url = start().await;
    let s = Scratch::new();

    let list = admin(&s, &url, &["cluster", "list", "--json"]).await.ok();
    let clusters = list.json()["clusters"].as_array().unwrap().clone();
    assert_eq!(clusters.len(), 1, "{list:#?}");
    let cid = clusters[0].as_str().unwrap().to_owned();
    let human = admin(&s, &url, &["cluster", "list"]).await.ok();
    assert_eq!(human.stdout, format!("Clusters:\nId:{cid} [file]\n"));

    let info = admin(&s, &url, &["cluster", "info", &cid]).await.ok();
    assert_eq!(info.field("Cluster id"), cid);
    assert_eq!(info.field("File"), "true");
    let info = admin(&s, &url, &["cluster", "info", &cid, "--json"])
        .await
        .ok();
    assert_eq!(info.json()["nodes"].as_array().unwrap().len(), 6);

    let nodes = admin(&s, &url, &["node", "list"]).await.ok();
    assert_eq!(nodes.stdout.lines().count(), 6, "{nodes:#?}");
    assert!(
        nodes
            .stdout
            .lines()
            .all(|l| l.starts_with("Id:") && l.ends_with(&format!("Cluster:{cid}"))),
        "{nodes:#?}"
    );
    // A node by manage hostname, as locally.
    let node = admin(&s, &url, &["node", "info", "node0"]).await.ok();
    assert_eq!(node.field("Management Hostname"), "node0");
    assert_eq!(node.field("Storage Hostname"), "10.0.0.1");
    assert_eq!(node.field("Cluster Id"), cid);
    assert_eq!(
        node.stdout
            .lines()
            .filter(|l| l.contains("Name:/dev/sd"))
            .count(),
        2,
        "{node:#?}"
    );
    // A device by NODE DEVICE, and by its id.
    let device = admin(&s, &url, &["device", "info", "node0", "/dev/sdb"])
        .await
        .ok();
    assert_eq!(device.field("Name"), "/dev/sdb");
    let device_id = device.field("Device Id");
    let again = admin(&s, &url, &["device", "info", &device_id, "--json"])
        .await
        .ok();
    assert_eq!(again.json()["name"], "/dev/sdb");
    let missing = admin(&s, &url, &["node", "info", "nowhere"]).await.failed();
    assert!(
        missing
            .stderr
            .contains("no node has the id or manage hostname 'nowhere'"),
        "{missing:#?}"
    );
}

/// The simulated cluster's topology file plus one node more.
fn topology_with_a_new_node(path: &Path) {
    let mut topology: serde_json::Value = serde_json::from_str(&sim_topology(6)).unwrap();
    topology["clusters"][0]["nodes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "node": {"hostnames": {"manage": ["node6"], "storage": ["10.0.0.7"]}, "zone": 1},
            "devices": ["/dev/sdb", {"name": "/dev/sdc", "tags": {"disk": "ssd"}}]
        }));
    std::fs::write(path, topology.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_file_loads_through_the_api_and_reads_back() {
    let url = start().await;
    let s = Scratch::new();
    let file = s.path("topology.json");
    topology_with_a_new_node(&file);
    let file = file.to_str().unwrap();

    let loaded = admin(&s, &url, &["topology", "load", "--json", file])
        .await
        .ok();
    let out = &loaded.stdout;
    for i in 0..6 {
        assert!(
            out.contains(&format!("\tFound node node{i} on cluster ")),
            "{out}"
        );
    }
    assert_eq!(out.matches("\t\tFound device ").count(), 12, "{out}");
    assert!(out.contains("\tCreating node node6 ... ID: "), "{out}");
    assert!(out.contains("\t\tAdding device /dev/sdb ... OK"), "{out}");
    assert!(out.contains("\t\tAdding device /dev/sdc ... OK"), "{out}");
    assert!(!out.contains("Creating cluster"), "{out}");

    // Loading again finds everything.
    let again = admin(&s, &url, &["topology", "load", file]).await.ok();
    assert!(
        again.stdout.contains("\tFound node node6 on cluster "),
        "{again:#?}"
    );
    assert!(!again.stdout.contains("Adding"), "{again:#?}");

    let info = admin(&s, &url, &["topology", "info"]).await.ok();
    assert!(
        info.stdout.contains("\tManagement Hostnames: node6\n"),
        "{info:#?}"
    );
    assert!(info.stdout.contains("\t\t\tTags: disk:ssd\n"), "{info:#?}");
    assert_eq!(info.stdout.matches("\tNode Id: ").count(), 7, "{info:#?}");
    let json = admin(&s, &url, &["topology", "info", "--json"]).await.ok();
    let t = json.json();
    let nodes = t["clusters"][0]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 7);
    let node6 = nodes
        .iter()
        .find(|n| n["hostnames"]["manage"][0] == "node6")
        .unwrap();
    assert_eq!(node6["devices"].as_array().unwrap().len(), 2);

    // A file that is not a topology: the path of what is wrong, nothing sent.
    let bad = s.path("bad.json");
    std::fs::write(
        &bad,
        r#"{"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["x"]}, "zone": 1}}]}]}"#,
    )
    .unwrap();
    let refused = admin(&s, &url, &["topology", "load", bad.to_str().unwrap()])
        .await
        .failed();
    assert!(
        refused.stderr.contains("bad.json") && refused.stderr.contains("storage"),
        "{refused:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_judges_the_credentials() {
    let url = start().await;
    let s = Scratch::new();
    let wrong = aplo_env(
        &s,
        &[],
        &["volume", "list", "--server", &url, "--secret", "wrong"],
    )
    .await
    .failed();
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("signature is invalid") && wrong.stderr.contains("401"),
        "{wrong:#?}"
    );
    let none = aplo_env(&s, &[("APLO_SERVER", &url)], &["volume", "list"])
        .await
        .failed();
    assert!(
        none.stderr
            .contains("Required authorization token not found"),
        "{none:#?}"
    );
    // The user role may use volumes, not clusters' details.
    let env = [
        ("APLO_SERVER", url.as_str()),
        ("APLO_USER", "user"),
        ("APLO_KEY", USER),
    ];
    aplo_env(&s, &env, &["volume", "list"]).await.ok();
    let list = aplo_env(&s, &env, &["cluster", "list", "--json"])
        .await
        .ok();
    let cid = list.json()["clusters"][0].as_str().unwrap().to_owned();
    let denied = aplo_env(&s, &env, &["cluster", "info", &cid])
        .await
        .failed();
    assert!(
        denied.stderr.contains("Administrator access required"),
        "{denied:#?}"
    );
    // heketi-cli's variables, for people migrating.
    let heketi = [
        ("HEKETI_CLI_SERVER", url.as_str()),
        ("HEKETI_CLI_USER", "admin"),
        ("HEKETI_CLI_KEY", ADMIN),
    ];
    let node = aplo_env(&s, &heketi, &["node", "info", "node1"]).await.ok();
    assert_eq!(node.field("Management Hostname"), "node1");
    // APLO_* wins over HEKETI_CLI_*.
    let mixed = [
        ("HEKETI_CLI_SERVER", url.as_str()),
        ("HEKETI_CLI_KEY", ADMIN),
        ("APLO_KEY", "wrong"),
    ];
    let lost = aplo_env(&s, &mixed, &["volume", "list"]).await.failed();
    assert!(lost.stderr.contains("signature is invalid"), "{lost:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_the_local_store_answers() {
    let s = Scratch::new();
    let volumes = aplo_env(&s, &[], &["volume", "list", "--json"]).await.ok();
    assert_eq!(volumes.json(), serde_json::json!([]));
    assert!(s.path("aplo.redb").exists(), "the local store was opened");
    let topology = aplo_env(&s, &[], &["topology", "show"]).await.ok();
    assert_eq!(topology.stdout, "");
    let missing = aplo_env(&s, &[], &["volume", "info", "nope"])
        .await
        .failed();
    assert!(!missing.stderr.contains("server"), "{missing:#?}");
    let bad = aplo_env(&s, &[], &["brick", "evict", "nope"])
        .await
        .failed();
    assert!(bad.stderr.contains("'nope' is not a brick id"), "{bad:#?}");
    let unknown = aplo_env(&s, &[], &["brick", "evict", &"0".repeat(32)])
        .await
        .failed();
    assert!(unknown.stderr.contains("not found"), "{unknown:#?}");
    // heketi-only commands and flags say they need a server.
    let cluster = aplo_env(&s, &[], &["cluster", "list"]).await.failed();
    assert!(cluster.stderr.contains("needs a server"), "{cluster:#?}");
    let durability = aplo_env(
        &s,
        &[],
        &["volume", "create", "--size", "1Gi", "--durability", "none"],
    )
    .await
    .failed();
    assert!(
        durability.stderr.contains("--durability needs a server"),
        "{durability:#?}"
    );
    // An empty APLO_SERVER counts as none.
    aplo_env(&s, &[("APLO_SERVER", "")], &["volume", "list"])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named() {
    let s = Scratch::new();
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = admin(&s, &url, &["volume", "list"]).await.failed();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("cannot connect to the server at {url}")),
        "{run:#?}"
    );
    let scheme = admin(&s, "ftp://127.0.0.1", &["volume", "list"])
        .await
        .failed();
    assert!(scheme.stderr.contains("not http or https"), "{scheme:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_nodes_and_devices_change_through_the_client() {
    let url = start().await;
    let s = Scratch::new();

    // A cluster of its own: create, flags, delete.
    let created = admin(&s, &url, &["cluster", "create"]).await.ok();
    let spare = created.field("Cluster id");
    assert!(is_id(&spare), "{created:#?}");
    let set = admin(&s, &url, &["cluster", "setflags", &spare, "--file=false"])
        .await
        .ok();
    assert!(set.stdout.contains("file volumes not allowed"), "{set:#?}");
    let info = admin(&s, &url, &["cluster", "info", &spare]).await.ok();
    assert_eq!(info.field("File"), "false");
    let deleted = admin(&s, &url, &["cluster", "delete", &spare]).await.ok();
    assert_eq!(deleted.stdout.trim(), format!("Cluster {spare} deleted"));
    let listed = admin(&s, &url, &["cluster", "list", "--json"]).await.ok();
    assert_eq!(listed.json()["clusters"].as_array().unwrap().len(), 1);
    let cid = listed.json()["clusters"][0].as_str().unwrap().to_owned();

    // Node states and tags.
    let off = admin(&s, &url, &["node", "disable", "node5"]).await.ok();
    assert!(off.stdout.ends_with("is now offline\n"), "{off:#?}");
    let node = admin(&s, &url, &["node", "info", "node5"]).await.ok();
    assert_eq!(node.field("State"), "offline");
    admin(&s, &url, &["node", "enable", "node5"]).await.ok();
    admin(
        &s,
        &url,
        &["node", "settags", "node5", "rack:r1", "ssd:yes"],
    )
    .await
    .ok();
    admin(&s, &url, &["node", "rmtags", "node5", "ssd"])
        .await
        .ok();
    let node = admin(&s, &url, &["node", "info", "node5"]).await.ok();
    assert_eq!(node.field("State"), "online");
    assert!(
        node.stdout.contains("Tags:\n  rack: r1\nDevices:"),
        "{node:#?}"
    );

    // Device states, tags, resync, add and delete.
    let off = admin(&s, &url, &["device", "disable", "node5", "/dev/sdc"])
        .await
        .ok();
    assert!(off.stdout.ends_with("is now offline\n"), "{off:#?}");
    let device = admin(&s, &url, &["device", "info", "node5", "/dev/sdc"])
        .await
        .ok();
    assert_eq!(device.field("State"), "offline");
    let device_id = device.field("Device Id");
    admin(&s, &url, &["device", "enable", &device_id])
        .await
        .ok();
    admin(&s, &url, &["device", "settags", &device_id, "disk:ssd"])
        .await
        .ok();
    let device = admin(&s, &url, &["device", "info", &device_id]).await.ok();
    assert_eq!(device.field("State"), "online");
    assert!(
        device.stdout.contains("Tags:\n  disk: ssd\n"),
        "{device:#?}"
    );
    let resync = admin(&s, &url, &["device", "resync", "node5", "/dev/sdb"])
        .await
        .ok();
    assert!(resync.stdout.ends_with("updated\n"), "{resync:#?}");
    let added = admin(
        &s,
        &url,
        &["device", "add", "--node", "node5", "--name", "/dev/sdd"],
    )
    .await
    .ok();
    assert!(
        added
            .stdout
            .starts_with("Device added successfully: /dev/sdd (id "),
        "{added:#?}"
    );
    // heketi's order: offline, then removed (failed), then deleted.
    let early = admin(&s, &url, &["device", "remove", "node5", "/dev/sdd"])
        .await
        .failed();
    assert!(early.stderr.contains("must be offline"), "{early:#?}");
    admin(&s, &url, &["device", "disable", "node5", "/dev/sdd"])
        .await
        .ok();
    let removed = admin(&s, &url, &["device", "remove", "node5", "/dev/sdd"])
        .await
        .ok();
    assert!(removed.stdout.contains("is now removed"), "{removed:#?}");
    let deleted = admin(&s, &url, &["device", "delete", "node5", "/dev/sdd"])
        .await
        .ok();
    assert!(deleted.stdout.ends_with(" deleted\n"), "{deleted:#?}");
    let node = admin(&s, &url, &["node", "info", "node5"]).await.ok();
    assert!(!node.stdout.contains("/dev/sdd"), "{node:#?}");

    // A node added and deleted heketi-cli's way.
    let added = admin(
        &s,
        &url,
        &[
            "node",
            "add",
            "--zone",
            "2",
            "--cluster",
            &cid,
            "--management-host-name",
            "node9",
            "--storage-host-name",
            "10.0.0.10",
        ],
    )
    .await
    .ok();
    assert_eq!(added.field("Management Hostname"), "node9");
    assert_eq!(added.field("Zone"), "2");
    let gone = admin(&s, &url, &["node", "delete", "node9"]).await.ok();
    assert!(gone.stdout.ends_with(" deleted\n"), "{gone:#?}");
    let nodes = admin(&s, &url, &["node", "list"]).await.ok();
    assert_eq!(nodes.stdout.lines().count(), 6, "{nodes:#?}");
    // The server's refusal, as it says it.
    let bad = admin(
        &s,
        &url,
        &["device", "add", "--node", "node5", "--name", "sdz"],
    )
    .await
    .failed();
    assert!(bad.stderr.contains("not a device path"), "{bad:#?}");
}

/// A server whose delete stays pending for a while: `202`, then `200` with
/// `X-Pending: true` for 1.5 s, then `204`.
async fn slow_server() -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::routing::{delete, get};
    let started = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let at = started.clone();
    let app = axum::Router::new()
        .route(
            "/volumes/{id}",
            delete(move || {
                let at = at.clone();
                async move {
                    *at.lock().unwrap() = Some(std::time::Instant::now());
                    let mut h = HeaderMap::new();
                    h.insert(header::LOCATION, "/queue/op1".parse().unwrap());
                    (StatusCode::ACCEPTED, h)
                }
            }),
        )
        .route(
            "/queue/op1",
            get(move || {
                let started = started.clone();
                async move {
                    let since = started.lock().unwrap().map(|t| t.elapsed());
                    let mut h = HeaderMap::new();
                    if since.is_some_and(|d| d.as_millis() < 1500) {
                        h.insert("X-Pending", "true".parse().unwrap());
                        (StatusCode::OK, h)
                    } else {
                        (StatusCode::NO_CONTENT, h)
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_operation_is_polled_with_a_spinner_only_on_a_terminal() {
    let url = slow_server().await;
    let s = Scratch::new();
    let id = "ab".repeat(16);
    // Not a terminal: polled to the end, nothing on stderr.
    let plain = aplo_env(&s, &[], &["--server", &url, "volume", "delete", &id])
        .await
        .ok();
    assert_eq!(plain.stdout, format!("Volume {id} deleted\n"));
    assert_eq!(plain.stderr, "");
    // On a terminal (util-linux `script` gives the child one): a spinner
    // with the seconds elapsed, erased at the end.
    // `script` is in bsdutils, an essential Debian package: its absence is
    // a broken machine, not a reason to check less.
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .expect("util-linux `script` (Debian's essential bsdutils) runs the terminal half");
    let line = format!(
        "{} --db {} --server {url} volume delete {id}",
        binary().display(),
        s.path("aplo.redb").display()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env_remove("APLO_SERVER")
        .env_remove("APLO_KEY")
        .env_remove("HEKETI_CLI_SERVER")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("deleting the volume… 0s"), "{text:?}");
    assert!(text.contains("deleting the volume… 1s"), "{text:?}");
    assert!(text.contains("\r\x1b[2K"), "{text:?}");
    assert!(text.contains(&format!("Volume {id} deleted")), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heketi_clis_server_commands_work_through_the_client() {
    let store = Arc::new(MemoryStore::default());
    let driver = Arc::new(BreakableDriver::new());
    let engine = engine_on(store.clone(), driver.clone(), 6).await;
    let control = ServerControl {
        logging: Some(Arc::new(RememberedLevel::new(LogLevel::Info))),
        ..ServerControl::default()
    };
    control.mode.attach(store.clone()).unwrap();
    let url = start_with(engine, control).await;
    let s = Scratch::new();

    // server mode get|set: a read-only server reads and refuses changes.
    let mode = admin(&s, &url, &["server", "mode", "get"]).await.ok();
    assert_eq!(mode.stdout, "normal\n");
    let set = admin(&s, &url, &["server", "mode", "set", "read-only"])
        .await
        .ok();
    assert_eq!(set.stdout, "", "{set:#?}");
    assert_eq!(store.admin_mode().unwrap(), AdminMode::ReadOnly);
    let mode = admin(&s, &url, &["server", "mode", "get"]).await.ok();
    assert_eq!(mode.stdout, "read-only\n");
    let refused = admin(&s, &url, &["volume", "create", "--size", "1"])
        .await
        .failed();
    assert!(
        refused.stderr.contains("Service disabled for maintenance")
            && refused.stderr.contains("503"),
        "{refused:#?}"
    );
    admin(&s, &url, &["volume", "list"]).await.ok();
    // This client is on the server's machine: it may set the mode back.
    admin(&s, &url, &["server", "mode", "set", "normal"])
        .await
        .ok();
    assert_eq!(store.admin_mode().unwrap(), AdminMode::Normal);
    let bad = admin(&s, &url, &["server", "mode", "set", "sideways"])
        .await
        .failed();
    assert!(bad.stderr.contains("sideways"), "{bad:#?}");

    // loglevel get|set, heketi's names.
    let level = admin(&s, &url, &["loglevel", "get"]).await.ok();
    assert_eq!(level.stdout, "info\n");
    let set = admin(&s, &url, &["loglevel", "set", "debug"]).await.ok();
    assert_eq!(set.stdout, "Server log level updated\n");
    let level = admin(&s, &url, &["loglevel", "get"]).await.ok();
    assert_eq!(level.stdout, "debug\n");
    let loud = admin(&s, &url, &["loglevel", "set", "loud"]).await.failed();
    assert!(loud.stderr.contains("invalid log level: loud"), "{loud:#?}");

    // server operations info|list: nothing pending, then a delete that
    // failed half-way.
    let counts = admin(&s, &url, &["server", "operations", "info"])
        .await
        .ok();
    assert_eq!(
        counts.stdout,
        "Operation Counts:\n  Total: 0\n  In-Flight: 0\n  New: 0\n  Failed: 0\n  Stale: 0\n"
    );
    let created = admin(&s, &url, &["volume", "create", "--size", "1"])
        .await
        .ok();
    let volume = created.field("Volume Id");
    driver
        .fail_deletes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    admin(&s, &url, &["volume", "delete", &volume])
        .await
        .failed();
    let counts = admin(&s, &url, &["server", "operations", "info"])
        .await
        .ok();
    assert!(
        counts.stdout.contains("  Total: 1\n") && counts.stdout.contains("  Stale: 1\n"),
        "{counts:#?}"
    );
    let list = admin(&s, &url, &["server", "operations", "list"])
        .await
        .ok();
    let line = list.stdout.trim();
    assert!(
        line.starts_with("Id:") && line.ends_with("  Type:delete-volume  Status:stale"),
        "{list:#?}"
    );
    let op = line
        .trim_start_matches("Id:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(is_id(&op), "{op}");
    let details = admin(&s, &url, &["server", "operations", "info", &op])
        .await
        .ok();
    assert_eq!(details.field("Type"), "delete-volume");
    assert_eq!(details.field("Status"), "stale");
    assert!(
        details
            .stdout
            .contains(&format!("Changes:\n    Delete volume: {volume}\n")),
        "{details:#?}"
    );
    let json = admin(&s, &url, &["server", "operations", "list", "--json"])
        .await
        .ok();
    assert_eq!(json.json()["pendingoperations"][0]["id"], op.as_str());

    // db dump|check: the server's store and its reconcile report.
    let dump = admin(&s, &url, &["db", "dump"]).await.ok();
    let dump = dump.json();
    assert_eq!(dump["schema"], 2);
    assert_eq!(dump["admin_mode"], "normal");
    assert_eq!(dump["data"]["volumes"].as_object().unwrap().len(), 1);
    let check = admin(&s, &url, &["db", "check"]).await.ok();
    let check = check.json();
    assert_eq!(check["pendingoperations"]["total"], 1, "{check}");
    assert_eq!(check["nodes"]["total"], 6, "{check}");

    // Without a server: the server commands say so; db dump is the local
    // store's export.
    let local = aplo_env(&s, &[], &["server", "mode", "get"]).await.failed();
    assert!(local.stderr.contains("needs a server"), "{local:#?}");
    let local = aplo_env(&s, &[], &["loglevel", "get"]).await.failed();
    assert!(local.stderr.contains("needs a server"), "{local:#?}");
    let dump = aplo_env(&s, &[], &["db", "dump"]).await.ok();
    let dump = dump.json();
    assert_eq!(dump["schema"], 2);
    assert_eq!(dump["data"]["volumes"], serde_json::json!({}));
}

const LONG_ADMIN: &str = "an-admin-key-of-at-least-16";

/// A running `aplo serve --api-only` on three simulated nodes.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    /// Start it over the store in `dir` with `--log LEVEL`, and wait until
    /// it is ready.
    async fn start(dir: &Path, log: &str) -> Served {
        let topology = dir.join("topology.json");
        std::fs::write(&topology, sim_topology(3)).unwrap();
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = std::process::Command::new(binary())
            .arg("--db")
            .arg(dir.join("served.redb"))
            .args(["--log", log, "serve", "--api-only", "--driver", "simulate"])
            .arg("--topology")
            .arg(&topology)
            .args(["--listen", &addr.to_string()])
            .env("APLO_ADMIN_KEY", LONG_ADMIN)
            .env_remove("APLO_USER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aplo serve starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && aplo_e2e::http::call(addr, "GET", "/readyz", None, "")
                    .await
                    .status
                    == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "aplo serve never got ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Served {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `aplo --server URL --secret LONG_ADMIN args…`.
async fn long_admin(scratch: &Scratch, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--server", url, "--secret", LONG_ADMIN];
    all.extend_from_slice(args);
    aplo_env(scratch, &[], &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aplo_serve_keeps_its_admin_mode_across_a_restart_and_changes_its_log_level() {
    let s = Scratch::new();
    let served = Served::start(s.0.path(), "info").await;
    let url = served.url.clone();
    // The real log filter: the level given at start, then changed.
    let level = long_admin(&s, &url, &["loglevel", "get"]).await.ok();
    assert_eq!(level.stdout, "info\n");
    long_admin(&s, &url, &["loglevel", "set", "warning"])
        .await
        .ok();
    let level = long_admin(&s, &url, &["loglevel", "get"]).await.ok();
    assert_eq!(level.stdout, "warning\n");
    long_admin(&s, &url, &["server", "mode", "set", "read-only"])
        .await
        .ok();
    served.stop();

    // The store kept the mode: the next start refuses changes.
    let served = Served::start(s.0.path(), "warn").await;
    let url = served.url.clone();
    let mode = long_admin(&s, &url, &["server", "mode", "get"]).await.ok();
    assert_eq!(mode.stdout, "read-only\n");
    let refused = long_admin(&s, &url, &["volume", "create", "--size", "1"])
        .await
        .failed();
    assert!(
        refused.stderr.contains("Service disabled for maintenance"),
        "{refused:#?}"
    );
    let backup = long_admin(&s, &url, &["db", "dump"]).await.ok();
    assert_eq!(backup.json()["admin_mode"], "read-only");
    // From the server's own machine the mode can be set back.
    long_admin(&s, &url, &["server", "mode", "set", "normal"])
        .await
        .ok();
    long_admin(&s, &url, &["volume", "create", "--size", "1"])
        .await
        .ok();
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_admin_key_is_refused_with_how_to_make_one() {
    let s = Scratch::new();
    let out = std::process::Command::new(binary())
        .arg("--db")
        .arg(s.path("short.redb"))
        .args(["serve", "--api-only", "--driver", "simulate"])
        .args(["--listen", "127.0.0.1:0"])
        .env("APLO_ADMIN_KEY", ADMIN)
        .env_remove("APLO_USER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--admin-key is too short (9 characters): use at least 16")
            && stderr.contains("openssl rand -hex 32"),
        "{stderr}"
    );
}
