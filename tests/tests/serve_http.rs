//! `aplo serve` as a process, over real HTTP: `--api-only` serves the
//! heketi-compatible API behind JWT with readiness and per-route metrics,
//! bad configuration is refused at start with a message naming it, and
//! SIGTERM stops it promptly whatever it is doing.

#[path = "support/looping.rs"]
mod looping;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aplo::http::auth::{Role, sign};
use aplo_e2e::http::{Reply, call};
use aplo_e2e::kube::sim_topology;

const ADMIN: &str = "admin-key-of-at-least-16";
const USER: &str = "user-key-of-at-least-16";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(role: Role, method: &str, path: &str) -> String {
    let key = match role {
        Role::Admin => ADMIN,
        Role::User => USER,
    };
    sign(role, key.as_bytes(), method, path, now(), 60)
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Poll `/readyz` until it answers 200 (a minute at most); its body.
async fn wait_ready(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let reply = call(addr, "GET", "/readyz", None, "").await;
            if reply.status == 200 {
                return reply.body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "aplo serve did not become ready on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn aplo(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aplo-faulty"));
    cmd.arg("--db")
        .arg(dir.join("aplo.db"))
        .args(["--log", "warn"]);
    cmd
}

/// A running `aplo serve --api-only` over three simulated nodes.
struct Served {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Served {
    /// `aplo serve --api-only` with both keys.
    async fn start() -> Served {
        Served::start_with(&[], &["--api-only"], true).await.0
    }

    /// `aplo <global> serve --driver simulate` over three simulated nodes
    /// on a free port, with `args`, the admin key and (if `user_key`) the
    /// user key; returns once `/readyz` answers 200, with its body.
    async fn start_with(global: &[&str], args: &[&str], user_key: bool) -> (Served, String) {
        let dir = tempfile::tempdir().unwrap();
        let topology = dir.path().join("topology.json");
        std::fs::write(&topology, sim_topology(3)).unwrap();
        let addr = free_port();
        let mut cmd = aplo(dir.path());
        cmd.args(global)
            .args(["serve", "--driver", "simulate", "--topology"])
            .arg(&topology)
            .args(["--listen", &addr.to_string()])
            .args(args)
            .env("APLO_ADMIN_KEY", ADMIN)
            .env_remove("APLO_USER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if user_key {
            cmd.env("APLO_USER_KEY", USER);
        }
        let child = cmd.spawn().expect("aplo serve starts");
        let served = Served {
            child: Some(child),
            addr,
            _dir: dir,
        };
        let ready = wait_ready(addr).await;
        (served, ready)
    }

    async fn get(&self, path: &str, role: Option<Role>) -> Reply {
        let token = role.map(|r| token(r, "GET", path));
        call(self.addr, "GET", path, token.as_deref(), "").await
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_only_serves_the_heketi_api_behind_jwt_with_metrics_per_route() {
    let served = Served::start().await;
    let ready = served.get("/readyz", None).await;
    assert_eq!(
        ready.body,
        "Leading\nstore: open\npolicies: 5 loaded\nwatches: none (API only)\n"
    );

    let anonymous = served.get("/clusters", None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let clusters = served.get("/clusters", Some(Role::Admin)).await;
    assert_eq!(clusters.status, 200, "{}", clusters.body);
    let ids = clusters.json()["clusters"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1, "{}", clusters.body);
    let cluster = ids[0].as_str().unwrap();
    assert!(
        cluster.len() == 32 && cluster.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cluster}"
    );

    // A user creates a volume and polls its own operation to the end.
    let create = call(
        served.addr,
        "POST",
        "/volumes",
        Some(&token(Role::User, "POST", "/volumes")),
        r#"{"size": 2, "durability": {"type": "replicate", "replicate": {"replica": 3}}}"#,
    )
    .await;
    assert_eq!(create.status, 202, "{}", create.body);
    let queue = create.header("Location").unwrap().to_owned();
    assert!(queue.starts_with("/queue/"), "{queue}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let location = loop {
        let poll = served.get(&queue, Some(Role::User)).await;
        match poll.status {
            200 => assert_eq!(poll.header("X-Pending"), Some("true")),
            303 => break poll.header("Location").unwrap().to_owned(),
            other => panic!("queue answered {other}: {}", poll.body),
        }
        assert!(Instant::now() < deadline, "the create never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let volume = served.get(&location, Some(Role::User)).await;
    assert_eq!(volume.status, 200, "{}", volume.body);
    let volume = volume.json();
    assert_eq!(volume["size"], 2);
    assert_eq!(volume["durability"]["type"], "replicate");
    assert_eq!(volume["durability"]["replicate"]["replica"], 3);
    assert_eq!(volume["bricks"].as_array().unwrap().len(), 3);

    let metrics = served.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    for needle in [
        "aplo_http_requests_total{route=\"/clusters\",method=\"GET\",status=\"401\"} 1",
        "aplo_http_requests_total{route=\"/clusters\",method=\"GET\",status=\"200\"} 1",
        "aplo_http_requests_total{route=\"/volumes\",method=\"POST\",status=\"202\"} 1",
        "aplo_http_requests_total{route=\"/queue/{id}\",method=\"GET\",status=\"303\"} 1",
        "aplo_http_request_duration_seconds_count{route=\"/volumes/{id}\",method=\"GET\"} 1",
        "heketi_up 1",
        "heketi_cluster_count 1",
    ] {
        assert!(
            metrics.body.contains(needle),
            "no {needle} in:\n{}",
            metrics.body
        );
    }
    // Raw ids never become label values.
    assert!(
        !metrics.body.contains(&location),
        "a volume id leaked into the metric labels"
    );
    let exit = served.stop();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
}

fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = aplo(dir.path());
    cmd.args(["serve", "--api-only", "--driver", "simulate", "--listen"])
        .arg(free_port().to_string())
        .args(args)
        .env_remove("APLO_ADMIN_KEY")
        .env_remove("APLO_USER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output { status, stderr, .. } = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(!status.success(), "{args:?} was accepted:\n{stderr}");
    stderr
}

#[test]
fn bad_serve_configuration_is_refused_at_start_with_a_named_reason() {
    let stderr = refused(&[], &[]);
    assert!(
        stderr.contains("--api-only serves the REST API: give --admin-key"),
        "{stderr}"
    );
    let stderr = refused(&["--admin-key", "short"], &[]);
    assert!(stderr.contains("--admin-key is too short"), "{stderr}");
    let stderr = refused(&[], &[("APLO_USER_KEY", USER)]);
    assert!(stderr.contains("--user-key needs --admin-key"), "{stderr}");
    let stderr = refused(
        &[
            "--tls-cert",
            "/nonexistent/tls.crt",
            "--tls-key",
            "/nonexistent/tls.key",
        ],
        &[("APLO_ADMIN_KEY", ADMIN)],
    );
    assert!(stderr.contains("/nonexistent/tls.crt"), "{stderr}");
    let stderr = refused(&["--no-auth", "--admin-key", ADMIN], &[]);
    assert!(stderr.contains("--no-auth"), "{stderr}");
}

/// A review of a CREATE of claim `name` in `team-a` for `size` of `class`.
fn review(name: &str, class: &str, size: &str) -> String {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{name}"),
            "kind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
            "resource": {"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
            "name": name,
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "someone"},
            "object": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": "team-a"},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": size}},
                    "storageClassName": class,
                },
            },
            "dryRun": false,
        },
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_the_webhook_with_its_classes_and_the_api_with_its_store() {
    let world = aplo_e2e::kube::World::start().await;
    world
        .class(
            "capped",
            &[
                ("quota", "namespace-quota"),
                ("namespace-quota.max-volume-size", "2Gi"),
            ],
            "Delete",
        )
        .await;
    let kubeconfig = world.aplo_kubeconfig.clone();
    let (served, ready) = Served::start_with(
        &[],
        &[
            "--no-leader-election",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        false,
    )
    .await;
    assert_eq!(
        ready,
        "Leading\nstore: open\npolicies: 5 loaded\nwatches: synced\n"
    );
    let addr = served.addr;

    // The webhook reads the class from the API server and asks its quota
    // policy, with the leader's usage.
    let allowed = call(
        addr,
        "POST",
        "/admission/pvc",
        None,
        &review("small", "capped", "1Gi"),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let allowed = allowed.json();
    assert_eq!(allowed["response"]["uid"], "uid-small");
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
    let denied = call(
        addr,
        "POST",
        "/admission/pvc",
        None,
        &review("big", "capped", "5Gi"),
    )
    .await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    let denied = denied.json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let message = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("namespace-quota"), "{message}");
    assert!(message.contains("at most 2GiB"), "{message}");

    // The REST API answers from the same store; with no user key, user
    // tokens are refused.
    let clusters = served.get("/clusters", Some(Role::Admin)).await;
    assert_eq!(clusters.status, 200, "{}", clusters.body);
    assert_eq!(clusters.json()["clusters"].as_array().unwrap().len(), 1);
    let user = served.get("/volumes", Some(Role::User)).await;
    assert_eq!(user.status, 401, "{}", user.body);
    let exit = served.stop();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_dropped_into_the_directory_is_served_without_a_restart() {
    let policies = tempfile::tempdir().unwrap();
    let dir = policies.path().to_str().unwrap().to_owned();
    // The directory is a global flag: before `serve`.
    let (served, _) = Served::start_with(
        &["--policy-dir", &dir],
        &["--api-only", "--policy-reload-interval", "1"],
        false,
    )
    .await;
    let names = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
            .json()
            .as_array()
            .unwrap_or_else(|| panic!("no policy list in {}", reply.body))
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let before = names(served.get("/aplo/v1/policies", Some(Role::Admin)).await);
    assert!(!before.contains(&"my-pack".to_owned()), "{before:?}");
    let (_, binpack) = aplo::policy::bundled::BUNDLED
        .iter()
        .find(|(name, _)| *name == "binpack")
        .unwrap();
    std::fs::write(policies.path().join("my-pack.wasm"), binpack).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = names(served.get("/aplo/v1/policies", Some(Role::Admin)).await);
        if now.contains(&"my-pack".to_owned()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new policy never appeared: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served.stop().success());
}

/// A kubeconfig naming `server` as the API server.
fn kubeconfig(dir: &Path, server: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

impl Served {
    /// `aplo <global> serve --driver simulate` over three simulated nodes
    /// with `args` and `env`; returns once `/readyz` reports `phase`, ready
    /// or not.
    async fn start_in(global: &[&str], args: &[&str], env: &[(&str, &str)], phase: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let topology = dir.path().join("topology.json");
        std::fs::write(&topology, sim_topology(3)).unwrap();
        let addr = free_port();
        let mut cmd = aplo(dir.path());
        cmd.args(global)
            .args(["serve", "--driver", "simulate", "--topology"])
            .arg(&topology)
            .args(["--listen", &addr.to_string()])
            .args(args)
            .env_remove("POD_NAME")
            .env_remove("APLO_ADMIN_KEY")
            .env_remove("APLO_USER_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let served = Served {
            child: Some(cmd.spawn().expect("aplo serve starts")),
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let reply = call(addr, "GET", "/readyz", None, "").await;
                if reply.body.starts_with(phase) {
                    return served;
                }
            }
            assert!(
                Instant::now() < deadline,
                "aplo serve never reached phase {phase} on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then wait for the process to exit (a minute at most): its
    /// status and how long it took to exit.
    fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().unwrap();
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("aplo serve still runs a minute after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A state to stop `aplo serve` in: how it is started, and the phase
/// `/readyz` reports once it is there.
struct Mode {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    phase: &'static str,
}

/// How soon after SIGTERM `aplo serve` must have exited.
const PROMPT_EXIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_serve_promptly_while_the_kubernetes_api_is_unreachable() {
    // One API server accepts connections and never answers (kube's client
    // has no read timeout); the other refuses them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refusing = free_port();
    let servers = [
        ("silent", format!("http://{}", silent.local_addr().unwrap())),
        ("refusing", format!("http://{refusing}")),
    ];
    for (api, server) in &servers {
        // Waiting for the lease; and leading without an election, in a
        // pod (so its role label is set on the way in and out).
        let modes = [
            Mode {
                name: "standing by",
                args: &[],
                env: &[],
                phase: "Standby",
            },
            Mode {
                name: "leading",
                args: &["--no-leader-election"],
                env: &[("POD_NAME", "aplo-0")],
                phase: "Leading",
            },
        ];
        for Mode {
            name: mode,
            args,
            env,
            phase,
        } in modes
        {
            let dir = tempfile::tempdir().unwrap();
            let config = kubeconfig(dir.path(), server);
            let mut args = args.to_vec();
            args.extend(["--kubeconfig", &config]);
            let served = Served::start_in(&[], &args, env, phase).await;
            let (status, took) = served.terminate();
            assert!(status.success(), "{api} API, {mode}: {status:?}");
            assert!(
                took < PROMPT_EXIT,
                "{api} API, {mode}: exited {took:?} after SIGTERM"
            );
        }
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_serve_promptly_while_a_slow_policy_decides() {
    let world = aplo_e2e::kube::World::start().await;
    world
        .class("slow", &[("durability", "looper")], "Delete")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("looper.wasm"), looping::policy()).unwrap();
    // It spins for a minute before its deadline stops it.
    let config = dir.path().join("aplo.yaml");
    std::fs::write(&config, "policies:\n  looper:\n    deadline: 60000\n").unwrap();
    let kubeconfig_path = world.aplo_kubeconfig.clone();
    let served = Served::start_in(
        &[
            "--policy-dir",
            policies.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            "--no-leader-election",
            "--admission-timeout",
            "120",
            "--kubeconfig",
            kubeconfig_path.to_str().unwrap(),
        ],
        &[],
        "Leading",
    )
    .await;
    // A review of a claim of `slow`, whose durability policy spins.
    let addr = served.addr;
    let review = tokio::spawn(async move {
        call(
            addr,
            "POST",
            "/admission/pvc",
            None,
            &review("c", "slow", "1Gi"),
        )
        .await
    });
    // A positive signal that the decision runs: an instance is busy.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = call(addr, "GET", "/metrics", None, "").await;
        if metrics.body.contains("aplo_policy_instances_running 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow decision never started:\n{}",
            metrics.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, took) = served.terminate();
    assert!(status.success(), "{status:?}");
    assert!(took < PROMPT_EXIT, "exited {took:?} after SIGTERM");
    review.abort();
}
