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
        kubelet_dir: None,
    })
    .await
    .unwrap_or_else(|e| panic!("the cluster starts: {e}"));
    eprintln!("cluster start: {:?}", k8s.start_times);
    let www = k8s.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from a hostPath\n").unwrap();
    let ip = k8s.node_ip.clone().unwrap();
    let port = aplo_e2e::k8s::free_port();
    k8s.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: default}}
spec:
  hostNetwork: true
  containers:
  - name: web
    image: aplo.test/web:1
    imagePullPolicy: Never
    env: [{{name: PORT, value: "{port}"}}]
    volumeMounts: [{{name: www, mountPath: /srv/www}}]
  volumes:
  - name: www
    hostPath: {{path: "{}", type: Directory}}
"#,
        www.display()
    ));
    let started = Instant::now();
    let body = loop {
        let out = std::process::Command::new("curl")
            .args(["-sf", "-m", "2", &format!("http://{ip}:{port}/")])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the pod did not serve within 60 s: {}\n{}",
            k8s.kubectl(&["describe", "pod", "web"]),
            k8s.log_tail("kubelet")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    use aplo_e2e::classic::{LOVE, Stack};
    let say = |s: &str| eprintln!("{s}");
    let stack = Stack::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_aplo-faulty")),
        &say,
    )
    .await
    .unwrap_or_else(|e| panic!("the stack starts: {e}"));
    stack.class(
        "glusterfs",
        &[("classes.class".to_owned(), "replica3".to_owned())],
    );
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
    stack
        .delete("gluster-claim")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.cluster.brick_leftovers(), Vec::<String>::new());
    stack.stop().await.unwrap();
}
