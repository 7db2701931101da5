//! Volume options cannot steer the gluster CLI, on a real one-node gluster
//! (a network namespace with its own glusterd, a loop brick): a value
//! `--log-file=PATH` or `--remote-host=ADDR`, from a policy's answer or a
//! REST request, never reaches a command. The test first shows that each
//! would work if it did (the file appears, the listener is called), then
//! that through aplo no file appears, nobody connects and nothing is
//! created. Unknown and repeated names are refused by name, and a real
//! option still ends up on the volume.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aplo::engine::{CreateRequest, Engine, LoadOptions};
use aplo::exec::command::{Cmd, Executor};
use aplo::exec::gluster;
use aplo::http::api::{ApiState, KEEP_RESULTS, router};
use aplo::http::auth::{Keys, Role, sign};
use aplo::http::queue::Queue;
use aplo::model::topology::parse_topology;
use aplo::model::{GIB, Pairs};
use aplo_e2e::Cluster;
use aplo_e2e::http::{Reply, call};

const TAG: &str = "vo";
const ADMIN: &[u8] = b"admin-key-for-options";
const USER: &[u8] = b"user-key-for-options";

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP listener on gluster's port at an address of the cluster's subnet,
/// in a network namespace of its own (the root namespace's port 24007 may
/// be another test's glusterd), that writes the address of every caller to
/// a file: a gluster CLI sent there by `--remote-host` shows up in it.
struct Listener {
    address: String,
    calls: PathBuf,
    child: Child,
    netns: String,
    veth: String,
}

impl Listener {
    fn start(dir: &Path, subnet: &str) -> Listener {
        let netns = format!("aplo{TAG}lsn");
        let veth = format!("aplo{TAG}lv");
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        let _ = Command::new("ip").args(["link", "del", &veth]).output();
        let address = format!("{subnet}.200");
        sh("ip", &["netns", "add", &netns]);
        sh(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        );
        sh(
            "ip",
            &[
                "link",
                "set",
                &veth,
                "master",
                &format!("aplo{TAG}br"),
                "up",
            ],
        );
        for args in [
            &["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"][..],
            &["ip", "link", "set", "eth0", "up"],
            &["ip", "link", "set", "lo", "up"],
        ] {
            let mut all = vec!["netns", "exec", &netns];
            all.extend_from_slice(args);
            sh("ip", &all);
        }
        let calls = dir.join("listener-calls");
        let ready = dir.join("listener-ready");
        // python3 comes with glusterfs (gsyncd needs it).
        let script = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 24007))
s.listen(16)
open(sys.argv[2], "w").close()
while True:
    c, a = s.accept()
    with open(sys.argv[1], "a") as f:
        f.write(a[0] + "\n")
    c.close()
"#;
        let child = Command::new("ip")
            .args(["netns", "exec", &netns, "python3", "-c", script])
            .arg(&calls)
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Dropped (killed and waited for) if it does not get ready.
        let listener = Listener {
            address,
            calls,
            child,
            netns,
            veth,
        };
        for _ in 0..100 {
            if ready.exists() {
                return listener;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the listener did not start");
    }

    /// The callers so far.
    fn calls(&self) -> usize {
        std::fs::read_to_string(&self.calls)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn serve(engine: Arc<Engine>) -> SocketAddr {
    let state = ApiState {
        engine,
        keys: Some(Keys {
            admin: ADMIN.to_vec(),
            user: USER.to_vec(),
            iat_leeway: 120,
        }),
        queue: Queue::new(4, KEEP_RESULTS),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// A request with the `user` role, which may create volumes.
async fn as_user(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let token = sign(Role::User, USER, method, path, now(), 60);
    call(addr, method, path, Some(&token), body).await
}

fn classes(options: &str) -> Pairs {
    [
        ("durability", "classes"),
        ("classes.class", "none"),
        ("classes.none.options", options),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn request(name: &str, parameters: Pairs) -> CreateRequest {
    CreateRequest {
        name: Some(name.into()),
        bytes: GIB,
        parameters,
        ..CreateRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_never_reach_the_gluster_cli_as_flags() {
    let cluster = Cluster::start(TAG, 1)
        .await
        .expect("the one-node cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start(dir.path(), cluster.subnet());
    let node = &cluster.nodes[0];
    let remote = format!("--remote-host={}", listener.address);

    // What the attacks do when they reach the CLI, so that the checks
    // below can see them: gluster (root) writes the log file, and sends
    // the command to the listener.
    let control = dir.path().join("control.log");
    let _ = node
        .exec
        .run(
            &Cmd::new("gluster")
                .args(["--mode=script", "volume", "set", "nosuch"])
                .args(["performance.cache-size", "10MB"])
                .arg(format!("--log-file={}", control.display()))
                .timeout(Duration::from_secs(20)),
        )
        .await;
    assert!(control.exists(), "the CLI wrote {}", control.display());
    let _ = node
        .exec
        .run(
            &Cmd::new("gluster")
                .args(["--mode=script", "volume", "set", "nosuch"])
                .args(["performance.cache-size", "10MB"])
                .arg(&remote)
                .timeout(Duration::from_secs(5)),
        )
        .await;
    for _ in 0..50 {
        if listener.calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let called = listener.calls();
    assert!(called > 0, "the CLI called the listener");

    // One gluster process per command: that is where a flag would bite (a
    // session line is not parsed for flags, but a value with a space, or
    // a node whose session is down, runs one-shot).
    let engine = Arc::new(
        cluster
            .engine_one_shot(&dir.path().join("aplo.redb"))
            .unwrap(),
    );
    let topology = parse_topology(&cluster.topology(&["3Gi"])).unwrap();
    engine
        .load_topology(&topology, LoadOptions::default())
        .await
        .unwrap();
    // The node was asked for its option list.
    let known = engine.option_names().await;
    assert_eq!(known.source(), "the gluster on node1");
    assert!(known.contains("performance.cache-size") && known.len() > 200);

    // A policy's answer: the bundled `classes` policy passes its
    // `<class>.options` on; the host refuses the answer, naming the option.
    let pwned = dir.path().join("pwned.log");
    for (i, value) in [format!("--log-file={}", pwned.display()), remote.clone()]
        .into_iter()
        .enumerate()
    {
        let options = format!("performance.cache-size={value}");
        let err = engine
            .create_volume(request(&format!("flag{i}"), classes(&options)))
            .await
            .unwrap_err()
            .to_string();
        assert!(!pwned.exists(), "{} appeared: {err}", pwned.display());
        assert_eq!(
            listener.calls(),
            called,
            "the CLI called the listener: {err}"
        );
        assert!(
            err.contains("volume_options") && err.contains("'performance.cache-size'"),
            "{err}"
        );
        // A name that is a flag is refused by its shape.
        let err = engine
            .create_volume(request(
                &format!("name{i}"),
                classes(&format!("{value}=on")),
            ))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a gluster option name"), "{err}");
    }
    let unknown = engine
        .create_volume(request("unknown", classes("cluster.made-up=on")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("'cluster.made-up' is not a volume option of this gluster")
            && unknown.contains("the gluster on node1"),
        "{unknown}"
    );
    let twice = engine
        .create_volume(request(
            "twice",
            classes("performance.cache-size=10MB;performance.cache-size=20MB"),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        twice.contains("'performance.cache-size' is given more than once"),
        "{twice}"
    );

    // The REST API, as the `user` role: refused before anything is queued.
    let addr = serve(engine.clone()).await;
    for (options, needle) in [
        (
            format!(
                r#"["performance.cache-size --log-file={}"]"#,
                pwned.display()
            ),
            "'performance.cache-size'".to_owned(),
        ),
        (
            format!(r#"["performance.cache-size {remote}"]"#),
            "'performance.cache-size'".to_owned(),
        ),
        (
            format!(r#"["--log-file={} on"]"#, pwned.display()),
            format!("'--log-file={}'", pwned.display()),
        ),
        (format!(r#"["{remote} on"]"#), format!("'{remote}'")),
        (
            r#"["cluster.made-up on"]"#.to_owned(),
            "'cluster.made-up' is not a volume option".to_owned(),
        ),
        (
            r#"["performance.cache-size 10MB", "performance.cache-size 20MB"]"#.to_owned(),
            "'performance.cache-size' is given more than once".to_owned(),
        ),
    ] {
        let body = format!(
            r#"{{"size": 1, "durability": {{"type": "none"}}, "glustervolumeoptions": {options}}}"#
        );
        let reply = as_user(addr, "POST", "/volumes", &body).await;
        assert_eq!(reply.status, 400, "{options}: {}", reply.body);
        assert!(
            reply.body.starts_with("glustervolumeoptions: ") && reply.body.contains(&needle),
            "{options}: {}",
            reply.body
        );
    }

    // Nothing of any of it: no file, no call, no volume, no brick.
    assert!(!pwned.exists(), "{} appeared", pwned.display());
    assert_eq!(
        listener.calls(),
        called,
        "the CLI called the listener again"
    );
    assert_eq!(cluster.volume_names().await, Vec::<String>::new());
    assert_eq!(cluster.brick_leftovers(), Vec::<String>::new());
    assert!(engine.volumes().is_empty());

    // A real option works end to end, through the REST API.
    let accepted = as_user(
        addr,
        "POST",
        "/volumes",
        r#"{"size": 1, "name": "fine", "durability": {"type": "none"},
            "glustervolumeoptions": ["performance.cache-size 10MB", "user.team blue"]}"#,
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let location = accepted.header("Location").unwrap().to_owned();
    let mut done = None;
    for _ in 0..1200 {
        let reply = as_user(addr, "GET", &location, "").await;
        if reply.status != 200 {
            done = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = done.expect("the create finished within a minute");
    assert_eq!(done.status, 303, "{}", done.body);
    let out = node
        .exec
        .run(&gluster::volume_info(Some("fine")))
        .await
        .unwrap();
    let info = gluster::parse_volume_info(&out.stdout).unwrap();
    let options = &info[0].options;
    assert_eq!(
        options.get("performance.cache-size").map(String::as_str),
        Some("10MB")
    );
    assert_eq!(options.get("user.team").map(String::as_str), Some("blue"));
    assert!(options.contains_key("user.aplo.volume"), "{options:?}");
    engine.delete_volume("fine").await.unwrap();
    assert_eq!(cluster.volume_names().await, Vec::<String>::new());
    assert!(!pwned.exists());
    assert_eq!(listener.calls(), called);
}
