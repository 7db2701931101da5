//! The test fixture's Kubernetes is the real thing: the control plane and
//! a kubelet built from source run a pod from a locally imported image,
//! and the API server reaches the kubelet (logs).

use std::time::{Duration, Instant};

use aplo_e2e::k8s::{Kubernetes, Options};
use aplo_e2e::peers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_and_serves_on_the_real_kubelet() {
    let k8s = Kubernetes::start(Options {
        node: true,
        images: peers::test_images(),
        ..Options::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the cluster starts: {e}"));
    eprintln!("cluster start: {:?}", k8s.start_times);
    let www = k8s.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from a hostPath\n").unwrap();
    let ip = k8s.node_ip.clone().unwrap();
    let port = aplo_e2e::k8s::free_port();
    k8s.apply(&aplo_e2e::classic::web_pod(
        "web",
        port,
        &format!("hostPath: {{path: \"{}\", type: Directory}}", www.display()),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = aplo_e2e::k8s::curl_until(&format!("http://{ip}:{port}/"), deadline)
        .await
        .unwrap_or_else(|| {
            panic!(
                "the pod did not serve within 60 s: {}\n{}",
                k8s.kubectl(&["describe", "pod", "web"]),
                k8s.log_tail("kubelet")
            )
        });
    assert_eq!(body, "hello from a hostPath\n");
    // The API server reaches the kubelet over TLS with its client
    // certificate (what `kubectl logs` and `exec` need).
    let logs = k8s.kubectl(&["exec", "web", "--", "cat", "/srv/www/index.html"]);
    assert_eq!(logs, "hello from a hostPath\n");
}

/// The classic demo, asserted: a PVC through aplo's policies to a real
/// replica-3 gluster volume, bound by kube-controller-manager, mounted by
/// the kubelet through aplo's CSI node plugin into a web server whose
/// `curl` returns what was written into the volume; then the pod and the
/// claim are deleted and the gluster volume is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_is_served_by_a_pod_from_a_real_gluster_volume() {
    use aplo_e2e::classic::{LOVE, NodePlugin, Stack};
    let say = |s: &str| eprintln!("{s}");
    let stack = Stack::with_replica3(
        std::path::Path::new(env!("CARGO_BIN_EXE_aplo-faulty")),
        NodePlugin::Process,
        &say,
    )
    .await
    .unwrap_or_else(|e| panic!("the stack starts: {e}"));
    let port = aplo_e2e::k8s::free_port();
    let (timings, body) = stack
        .claim_to_curl("gluster-claim", "glusterfs", port, &say)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{timings:?}");
    assert_eq!(body, LOVE);
    let pv = stack.k8s.kubectl(&[
        "get",
        "pvc",
        "gluster-claim",
        "-o",
        "jsonpath={.spec.volumeName}",
    ]);
    let info = stack.cluster.volume_names().await;
    assert!(info.contains(&pv), "{pv} not in {info:?}");
    // Expansion reaches the running pod: its df shows the new size.
    let before = stack
        .k8s
        .kubectl(&["exec", "gluster-claim-web", "--", "df", "-k", "/srv/www"]);
    let kib = stack
        .expand("gluster-claim", "2Gi")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (1_900_000..=2_097_152).contains(&kib),
        "df in the pod shows {kib} KiB after the resize to 2Gi; before: {before}"
    );
    // And the pod still serves.
    let again = std::process::Command::new("curl")
        .args([
            "-sf",
            "-m",
            "2",
            &format!("http://{}:{port}/", stack.k8s.node_ip.as_deref().unwrap()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), LOVE);
    stack
        .delete("gluster-claim")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.cluster.brick_leftovers(), Vec::<String>::new());
    stack.stop().await.unwrap();
}

/// The node plugin as deployed: `deploy/base`'s DaemonSet runs aplo's CSI
/// node role from aplo's image (built locally from the Containerfile) on
/// the kubelet. Its container is killed while the web-server pod has the
/// volume mounted: the pod keeps reading and writing, with no restart of
/// its own, while the kubelet restarts the plugin; then the claim is
/// deleted through the restarted plugin. This is the failure GlusterFS CSI
/// users report most.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_keeps_its_volume_while_the_deployed_node_plugin_restarts() {
    use aplo_e2e::classic::{LOVE, NodePlugin, Stack};
    let say = |s: &str| eprintln!("{s}");
    let stack = Stack::with_replica3(
        std::path::Path::new(env!("CARGO_BIN_EXE_aplo-faulty")),
        NodePlugin::DaemonSet,
        &say,
    )
    .await
    .unwrap_or_else(|e| panic!("the stack starts: {e}"));
    let port = aplo_e2e::k8s::free_port();
    let (_, body) = stack
        .claim_to_curl("kept", "glusterfs", port, &say)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body, LOVE);
    let k8s = &stack.k8s;
    let plugin_pod = k8s.kubectl(&[
        "get",
        "pods",
        "-n",
        "aplo-system",
        "-l",
        "app.kubernetes.io/name=aplo-csi-node",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let container = |field: &str| {
        k8s.kubectl(&[
            "get",
            "pod",
            "-n",
            "aplo-system",
            &plugin_pod,
            "-o",
            &format!("jsonpath={{.status.containerStatuses[?(@.name==\"aplo\")].{field}}}"),
        ])
    };
    let id = container("containerID");
    let id = id.strip_prefix("containerd://").expect("a containerd id");
    let killed = k8s.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
    assert!(
        killed.status.success(),
        "ctr tasks kill: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    // Until the kubelet has the plugin back and ready: every read through
    // HTTP and every write through `kubectl exec` works.
    let url = format!("http://{}:{port}/", k8s.node_ip.as_deref().unwrap());
    let started = std::time::Instant::now();
    let mut rounds = 0;
    loop {
        let line = format!("write {rounds} while the plugin restarts");
        let wrote = k8s.kubectl_output(&[
            "exec",
            "kept-web",
            "--",
            "sh",
            "-c",
            &format!("echo '{line}' >> /srv/www/log.txt && tail -n 1 /srv/www/log.txt"),
        ]);
        assert!(
            wrote.status.success(),
            "write {rounds} failed: {}",
            String::from_utf8_lossy(&wrote.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&wrote.stdout).trim(), line);
        let read = std::process::Command::new("curl")
            .args(["-sf", "-m", "2", &url])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&read.stdout),
            LOVE,
            "read {rounds} failed"
        );
        rounds += 1;
        let restarts: u32 = container("restartCount").trim().parse().unwrap_or(0);
        if restarts >= 1 && container("ready").trim() == "true" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the kubelet did not restart the plugin within 120 s"
        );
    }
    assert!(
        rounds >= 2,
        "only {rounds} rounds while the plugin was down"
    );
    let web_restarts = k8s.kubectl(&[
        "get",
        "pod",
        "kept-web",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(web_restarts, "0", "the web-server pod was not restarted");
    // The restarted plugin unpublishes and unstages; the volume goes.
    stack.delete("kept").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.cluster.brick_leftovers(), Vec::<String>::new());
    stack.stop().await.unwrap();
    // The DaemonSet's hostPaths on this machine.
    let _ = std::fs::remove_dir_all("/var/lib/aplo-csi");
    let _ = std::fs::remove_dir_all("/var/log/glusterfs/aplo");
}

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The admission webhook registered for real: `aplo serve` (the binary,
/// as ServiceAccount aplo-system/aplo with a real token, holding its
/// Lease) serves HTTPS with a certificate from the cluster's CA; deploy/base's
/// ValidatingWebhookConfiguration points the API server at it (by URL, as
/// no Service reaches a host process) with that CA bundle. `kubectl apply`
/// of a claim over deploy/base's gluster-quota class's limits is denied
/// with the policy's message, the API server having called aplo over TLS;
/// a claim within them is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_calls_the_admission_webhook_over_tls() {
    use aplo_e2e::classic::deploy_base;
    // The control plane with deploy/base's RBAC, plus its StorageClasses.
    let world = aplo_e2e::kube::World::start().await;
    let k8s = &world.k8s;
    k8s.apply(&deploy_base(k8s, &["StorageClass"]));
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.json");
    std::fs::write(&topology, aplo_e2e::kube::sim_topology(3)).unwrap();
    let (cert, key) = k8s.issue_serving("aplo-webhook", &["127.0.0.1", "localhost"]);
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", aplo_e2e::k8s::free_port())
        .parse()
        .unwrap();
    let https = format!("127.0.0.1:{}", aplo_e2e::k8s::free_port());
    let kubeconfig = world.aplo_kubeconfig.clone();
    let mut serve = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_aplo-faulty"))
            .arg("--db")
            .arg(dir.path().join("aplo.db"))
            .args([
                "--log",
                "warn",
                "serve",
                "--driver",
                "simulate",
                "--topology",
            ])
            .arg(&topology)
            .args(["--listen", &http.to_string(), "--tls-listen", &https])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("KUBECONFIG", &kubeconfig)
            .env("APLO_ADMIN_KEY", "an-admin-key-of-the-test-0123456789")
            .env_remove("POD_NAME")
            .spawn()
            .expect("aplo serve starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(http).await.is_ok()
            && aplo_e2e::http::call(http, "GET", "/readyz", None, "")
                .await
                .status
                == 200
        {
            break;
        }
        if let Ok(Some(status)) = serve.0.try_wait() {
            panic!("aplo serve exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "aplo serve was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // deploy/base's webhook, its Service reference swapped for the URL.
    let rendered = deploy_base(k8s, &["ValidatingWebhookConfiguration"]);
    let mut webhook: serde_json::Value = serde_yaml::from_str(&rendered).unwrap();
    let hook = &mut webhook["webhooks"][0];
    let path = hook["clientConfig"]["service"]["path"]
        .as_str()
        .expect("the webhook names a path")
        .to_owned();
    use base64::Engine as _;
    hook["clientConfig"] = serde_json::json!({
        "url": format!("https://{https}{path}"),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(k8s.ca_pem()),
    });
    k8s.apply(&serde_json::to_string(&webhook).unwrap());
    let claim = |name: &str, size: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{storageClassName: gluster-quota, accessModes: [ReadWriteMany], resources: {{requests: {{storage: {size}}}}}}}\n"
        )
    };
    // A moment may pass before the API server uses a new webhook: apply an
    // over-quota claim until it is denied (a positive signal).
    let path_over = dir.path().join("over.yaml");
    std::fs::write(&path_over, claim("too-big", "200Gi")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let denied = loop {
        let out = k8s.kubectl_output(&["apply", "-f", &path_over.display().to_string()]);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        // Admitted before the webhook took effect: remove it and retry.
        k8s.kubectl(&["delete", "pvc", "too-big", "--wait=false"]);
        assert!(
            Instant::now() < deadline,
            "the over-quota claim was never denied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        denied.contains("admission webhook \"pvc.glusterfs.aplo.dev\" denied the request"),
        "{denied}"
    );
    assert!(
        denied.contains("100Gi") || denied.contains("max-volume-size"),
        "the policy's reason: {denied}"
    );
    // Within the limits: admitted (and left pending, WaitForFirstConsumer).
    k8s.apply(&claim("fits", "1Gi"));
    let fits = k8s.kubectl(&["get", "pvc", "fits", "-o", "jsonpath={.metadata.name}"]);
    assert_eq!(fits, "fits");
}
