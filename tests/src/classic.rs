//! The classic GlusterFS-on-Kubernetes flow on the real thing: a
//! Kubernetes built from source (`k8s`), three gluster nodes in namespaces
//! (`Cluster`), aplo's provisioner under `deploy/base`'s ServiceAccount and
//! RBAC with a real token, and aplo's CSI node plugin registered with the
//! kubelet. A PVC goes in; the class's policies decide; the claim binds; a
//! web-server pod mounts it through the kubelet and aplo's node plugin;
//! `I love GlusterFS!` goes into the volume and comes back over HTTP.
//!
//! The demo (`examples/demo.sh`), the end-to-end test and the claim-to-curl
//! benchmark all run this one flow.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::engine::{Engine, LoadOptions};
use aplo::model::topology::parse_topology;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::CSINode;
use kube::api::DeleteParams;
use kube::{Api, Client};

use crate::Cluster;
use crate::csi::{Plugin, PluginDirs};
use crate::k8s::{Kubernetes, NODE, Options, client_from};
use crate::kube::Provisioner;

/// The driver (and provisioner) name.
pub const DRIVER: &str = aplo::front::claim::DEFAULT_PROVISIONER;

/// What the web server serves.
pub const LOVE: &str = "I love GlusterFS!\n";

/// Where each phase of one claim's trip went.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// PVC created to its PV created (aplo's policies and the gluster
    /// volume).
    pub provision: Duration,
    /// Of `provision`, aplo's own time: its provisioning histogram's sum
    /// over the round (policies, bricks, gluster create and start, the PV).
    /// The rest is kubectl, the API server, kube-controller-manager's
    /// annotation of the claim and the watches.
    pub aplo_provision: Duration,
    /// PV created to the claim Bound (kube-controller-manager's binder).
    pub bind: Duration,
    /// Claim Bound to the pod Running (scheduling, the kubelet's stage and
    /// publish through aplo's node plugin, the container's start).
    pub mount_and_start: Duration,
    /// Pod Running to the first successful `curl` of the file written into
    /// the volume.
    pub serve: Duration,
    /// PVC created to the first successful `curl`.
    pub total: Duration,
}

/// Everything the flow runs on.
///
/// Dropped in field order: the provisioner and the node plugin, then
/// Kubernetes (its pods and their mounts), then the gluster nodes.
pub struct Stack {
    provisioner: Option<Provisioner>,
    _plugin: Option<Plugin>,
    /// The Kubernetes fixture.
    pub k8s: Kubernetes,
    _dirs: PluginDirs,
    /// The gluster nodes.
    pub cluster: Cluster,
    /// aplo's engine (the provisioner's).
    pub engine: Arc<Engine>,
    /// An admin client.
    pub admin: Client,
    _state: tempfile::TempDir,
}

/// Manifests of `deploy/base` the provisioner and the node plugin need
/// from the API server: the namespace, ServiceAccounts, RBAC and the
/// CSIDriver (the Deployment and DaemonSet themselves are run as host
/// processes here).
pub const DEPLOY_KINDS: [&str; 7] = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "CSIDriver",
];

/// A host-network busybox httpd pod serving `/srv/www` on `port`, with
/// `source` (a volume source, e.g. `persistentVolumeClaim: {...}`) there.
pub fn web_pod(name: &str, port: u16, source: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: aplo.test/web:1
    imagePullPolicy: Never
    env: [{{name: PORT, value: "{port}"}}]
    volumeMounts: [{{name: www, mountPath: /srv/www}}]
  volumes:
  - name: www
    {source}
"#
    )
}

/// Poll `phase` every 20 ms until it is `wanted` (true) or `deadline`
/// passes (false).
async fn wait_for_phase<F, Fut>(phase: F, wanted: &str, deadline: Instant) -> Result<bool, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, String>>,
{
    loop {
        if phase().await?.as_deref() == Some(wanted) {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the CSI node plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePlugin {
    /// `aplo csi --role node` as a process on the host, registering itself
    /// with the kubelet.
    Process,
    /// `deploy/base`'s DaemonSet, from aplo's image built locally.
    DaemonSet,
}

/// `deploy/base`'s node plugin DaemonSet, as shipped but for one flag:
/// this machine's PID 1 is a sandbox supervisor whose namespaces nobody
/// may enter (`nsenter: cannot open /proc/1/ns/mnt: Permission denied`),
/// so `--mount-namespace` names this process's mount namespace, which is
/// the host's and the kubelet's.
pub fn node_daemonset(k8s: &Kubernetes) -> String {
    let shipped = deploy_base(k8s, &["DaemonSet"]);
    assert!(
        shipped.contains("--mount-namespace=/proc/1/ns/mnt"),
        "the DaemonSet no longer enters PID 1's mount namespace: update the test"
    );
    shipped.replace(
        "--mount-namespace=/proc/1/ns/mnt",
        &format!("--mount-namespace=/proc/{}/ns/mnt", std::process::id()),
    )
}

/// A cluster tag no other stack uses now, in this process or another
/// (interface names allow at most 15 characters: `aplo` + tag + `br`).
fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "s{}{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed) % 10
    )
}

/// The repository's root.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

/// `deploy/base` rendered, only the documents of `kinds`.
pub fn deploy_base(k8s: &Kubernetes, kinds: &[&str]) -> String {
    let rendered = k8s.kubectl(&[
        "kustomize",
        &repository().join("deploy/base").display().to_string(),
    ]);
    rendered
        .split("\n---\n")
        .filter(|doc| {
            doc.lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .is_some_and(|kind| kinds.contains(&kind.trim()))
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

impl Stack {
    /// Start everything; `aplo` is the binary the node plugin runs from.
    /// `say` hears what is being done.
    pub async fn start(aplo: &Path, say: &dyn Fn(&str)) -> Result<Stack, String> {
        Self::start_with(aplo, NodePlugin::Process, say).await
    }

    /// [`Stack::start`], with the node plugin run as `plugin` says.
    pub async fn start_with(
        aplo: &Path,
        plugin: NodePlugin,
        say: &dyn Fn(&str),
    ) -> Result<Stack, String> {
        let mut images = crate::peers::test_images();
        let daemonset = plugin == NodePlugin::DaemonSet;
        if daemonset {
            say("building aplo's image from deploy/image/Containerfile (no registry)");
            images.push(crate::peers::aplo_image(aplo));
        }
        say(
            "building (once) and starting Kubernetes v1.34.4: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd and a kubelet",
        );
        let k8s = Kubernetes::start(Options {
            node: true,
            images,
            // The DaemonSet's hostPaths name the kubelet's usual directory.
            kubelet_dir: daemonset.then(|| PathBuf::from("/var/lib/kubelet")),
            ..Options::default()
        })
        .await?;
        let times: Vec<String> = k8s
            .start_times
            .iter()
            .map(|(what, took)| format!("{what} {:.1}s", took.as_secs_f64()))
            .collect();
        say(&format!(
            "Kubernetes is up ({}); node {NODE} at {}",
            times.join(", "),
            k8s.node_ip.as_deref().unwrap_or("?")
        ));
        say("starting three gluster nodes in network and mount namespaces");
        let cluster = Cluster::start(&unique_tag(), 3).await?;
        let state = tempfile::tempdir().map_err(|e| e.to_string())?;
        let engine = Arc::new(cluster.engine(&state.path().join("aplo.redb"))?);
        let topology = parse_topology(&cluster.topology(&["4Gi"])).map_err(|e| e.to_string())?;
        let report = engine
            .load_topology(&topology, LoadOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        if !report.failures.is_empty() {
            return Err(report.failures.join("; "));
        }
        say("applying deploy/base's namespace, ServiceAccounts, RBAC and CSIDriver");
        k8s.apply(&deploy_base(&k8s, &DEPLOY_KINDS));
        let admin = k8s.client().await;
        // The provisioner as its Deployment runs it: as ServiceAccount
        // aplo-system/aplo, with a token the API server issued.
        let token = k8s.service_account_kubeconfig("aplo-system", "aplo");
        let as_aplo = client_from(&token).await;
        let provisioner = Provisioner::start(as_aplo, engine.clone(), Provisioner::options());
        let kubelet = k8s.kubelet_dir.clone().expect("the fixture has a node");
        let dirs = PluginDirs {
            socket_dir: kubelet.join("plugins").join(DRIVER),
            kubelet: kubelet.clone(),
            state: state.path().join("csi-state"),
            logs: state.path().join("client-logs"),
        };
        let plugin = if daemonset {
            say(
                "starting aplo's provisioner as ServiceAccount aplo-system/aplo; deploying deploy/base's node plugin DaemonSet",
            );
            k8s.apply(&node_daemonset(&k8s));
            None
        } else {
            say(
                "starting aplo's provisioner as ServiceAccount aplo-system/aplo, and aplo's CSI node plugin, which registers with the kubelet",
            );
            Some(Plugin::start(
                aplo,
                &dirs,
                &[
                    "--registration-dir".into(),
                    kubelet.join("plugins_registry").display().to_string(),
                ],
                None,
            ))
        };
        let stack = Stack {
            provisioner: Some(provisioner),
            _plugin: plugin,
            k8s,
            _dirs: dirs,
            cluster,
            engine,
            admin,
            _state: state,
        };
        stack.wait_registered().await?;
        Ok(stack)
    }

    /// [`Stack::start_with`], then StorageClass `glusterfs`: replica 3
    /// across the zones through the default policies.
    pub async fn with_replica3(
        aplo: &Path,
        plugin: NodePlugin,
        say: &dyn Fn(&str),
    ) -> Result<Stack, String> {
        let stack = Self::start_with(aplo, plugin, say).await?;
        stack.class(
            "glusterfs",
            &[("classes.class".to_owned(), "replica3".to_owned())],
        );
        Ok(stack)
    }

    /// Wait until the kubelet lists aplo's driver on its CSINode.
    async fn wait_registered(&self) -> Result<(), String> {
        let nodes: Api<CSINode> = Api::all(self.admin.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(node)) = nodes.get_opt(NODE).await
                && node.spec.drivers.iter().any(|d| d.name == DRIVER)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let pods =
                    self.k8s
                        .kubectl_output(&["describe", "daemonsets,pods", "-n", "aplo-system"]);
                let logs = self.k8s.kubectl_output(&[
                    "logs",
                    "-n",
                    "aplo-system",
                    "-l",
                    "app.kubernetes.io/name=aplo-csi-node",
                    "--tail=20",
                ]);
                return Err(format!(
                    "the kubelet did not register {DRIVER} within 60 s:\n{}\n{}{}\n{}",
                    self.k8s.log_tail("kubelet"),
                    String::from_utf8_lossy(&pods.stdout),
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Create StorageClass `class` with `parameters` (Delete, expandable).
    pub fn class(&self, class: &str, parameters: &[(String, String)]) {
        let parameters: Vec<String> = parameters
            .iter()
            .map(|(k, v)| format!("  {k}: {}", serde_json::Value::String(v.clone())))
            .collect();
        self.k8s.apply(&format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {class}}}\n\
             provisioner: {DRIVER}\nreclaimPolicy: Delete\nallowVolumeExpansion: true\n\
             parameters:\n{}\n",
            parameters.join("\n")
        ));
    }

    /// The flow for one claim: PVC `claim` of `class`, a web-server pod
    /// `claim-web` mounting it at its document root on `port`, the file
    /// written into the volume (`kubectl exec`), and `curl` until it
    /// answers. Returns the phases' timings and what curl returned.
    pub async fn claim_to_curl(
        &self,
        claim: &str,
        class: &str,
        port: u16,
        say: &dyn Fn(&str),
    ) -> Result<(Timings, String), String> {
        let pod = format!("{claim}-web");
        let aplo_before = self.provision_seconds();
        let started = Instant::now();
        say(&format!(
            "1. kubectl apply: PVC '{claim}' (1Gi, ReadWriteMany, class {class}) and pod '{pod}' (busybox httpd, the claim at /srv/www)"
        ));
        self.k8s.apply(&format!(
            r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}, namespace: default}}
spec:
  storageClassName: {class}
  accessModes: [ReadWriteMany]
  resources: {{requests: {{storage: 1Gi}}}}
---
{}"#,
            web_pod(
                &pod,
                port,
                &format!("persistentVolumeClaim: {{claimName: {claim}}}")
            )
        ));
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.admin.clone(), "default");
        let volumes: Api<PersistentVolume> = Api::all(self.admin.clone());
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), "default");
        let uid = claims
            .get(claim)
            .await
            .map_err(|e| e.to_string())?
            .metadata
            .uid
            .ok_or("the claim has no uid")?;
        let pv = format!("pvc-{uid}");
        let deadline = started + Duration::from_secs(180);
        let timeout = |what: &str| -> String {
            format!(
                "{what} within 180 s; the claim:\n{}\nthe pod:\n{}",
                self.k8s.kubectl(&["describe", "pvc", claim]),
                self.k8s.kubectl(&["describe", "pod", &pod])
            )
        };
        // Provision: the PV exists.
        while volumes
            .get_opt(&pv)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            if Instant::now() > deadline {
                return Err(timeout("no PV"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let provisioned = started.elapsed();
        // The provisioner records its time just after it creates the PV:
        // wait for that record (a positive signal), then take the delta.
        let mut aplo_after = self.provision_seconds();
        while self.provisioner.is_some() && aplo_after.1 <= aplo_before.1 {
            if Instant::now() > deadline {
                return Err(timeout("the provisioner recorded no provisioning time"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            aplo_after = self.provision_seconds();
        }
        let aplo_provision = Duration::from_secs_f64((aplo_after.0 - aplo_before.0).max(0.0));
        let (volume, _) = self.engine.volume(&pv).map_err(|e| e.to_string())?;
        say(&format!(
            "2. the class's policies chose {}: gluster volume {pv} on {}",
            aplo::model::validate::describe(&volume.scheme),
            self.bricks(volume.id).join(", ")
        ));
        // Bind: kube-controller-manager's binder.
        let claim_phase = || async {
            let claim = claims.get(claim).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(claim.status.and_then(|s| s.phase))
        };
        if !wait_for_phase(claim_phase, "Bound", deadline).await? {
            return Err(timeout("the claim was not Bound"));
        }
        let bound = started.elapsed();
        say(&format!(
            "3. kube-controller-manager bound the claim to {pv} ({:.2}s after the PVC)",
            bound.as_secs_f64()
        ));
        // Mount and start: the pod runs.
        let pod_phase = || async {
            let pod = pods.get(&pod).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(pod.status.and_then(|s| s.phase))
        };
        if !wait_for_phase(pod_phase, "Running", deadline).await? {
            return Err(timeout("the pod was not Running"));
        }
        let running = started.elapsed();
        say(&format!(
            "4. the kubelet staged and published the volume through aplo's node plugin; pod {pod} is Running ({:.2}s)",
            running.as_secs_f64()
        ));
        let written = self.k8s.kubectl_output(&[
            "exec",
            &pod,
            "--",
            "sh",
            "-c",
            &format!(
                "printf '{}' > /srv/www/index.html",
                LOVE.replace('\n', "\\n")
            ),
        ]);
        if !written.status.success() {
            return Err(format!(
                "kubectl exec: {}",
                String::from_utf8_lossy(&written.stderr)
            ));
        }
        say("5. kubectl exec wrote index.html into the volume");
        let ip = self.k8s.node_ip.clone().unwrap_or_default();
        let url = format!("http://{ip}:{port}/");
        let Some(body) = crate::k8s::curl_until(&url, deadline).await else {
            return Err(timeout(&format!("{url} did not answer")));
        };
        let total = started.elapsed();
        say(&format!("6. curl {url}: {}", body.trim_end()));
        Ok((
            Timings {
                provision: provisioned,
                aplo_provision,
                bind: bound - provisioned,
                mount_and_start: running - bound,
                serve: total - running,
                total,
            },
            body,
        ))
    }

    /// The in-process provisioner's provisioning durations so far, every
    /// class: their sum in seconds, and how many.
    fn provision_seconds(&self) -> (f64, u64) {
        let Some(provisioner) = &self.provisioner else {
            return (0.0, 0);
        };
        let text = provisioner.metrics.render();
        let total = |suffix: &str| -> f64 {
            text.lines()
                .filter(|l| {
                    l.starts_with(&format!(
                        "controller_persistentvolumeclaim_provision_duration_seconds_{suffix}"
                    ))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        (total("sum"), total("count") as u64)
    }

    /// Resize `claim` to `size` (e.g. `2Gi`) and wait until its status
    /// shows it; returns the size the pod's `df` then reports for its
    /// document root, in KiB.
    pub async fn expand(&self, claim: &str, size: &str) -> Result<u64, String> {
        self.k8s.kubectl(&[
            "patch",
            "pvc",
            claim,
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"resources":{{"requests":{{"storage":"{size}"}}}}}}}}"#),
        ]);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let capacity = self.k8s.kubectl(&[
                "get",
                "pvc",
                claim,
                "-o",
                "jsonpath={.status.capacity.storage}",
            ]);
            if capacity == size {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the claim's capacity is {capacity}, not {size}, after 120 s:\n{}",
                    self.k8s.kubectl(&["describe", "pvc", claim])
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let df = self.k8s.kubectl(&[
            "exec",
            &format!("{claim}-web"),
            "--",
            "df",
            "-k",
            "/srv/www",
        ]);
        // busybox df -k: "Filesystem 1K-blocks Used Available Use% Mounted on".
        // A long source wraps onto a line of its own: the size is the
        // second field after the header, wherever the line breaks.
        df.lines()
            .skip(1)
            .flat_map(str::split_whitespace)
            .nth(1)
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| format!("cannot read df's output: {df}"))
    }

    /// Where a volume's bricks are, as `node:path (zone z)`.
    fn bricks(&self, id: aplo::model::Id) -> Vec<String> {
        let snapshot = self.engine.snapshot();
        snapshot
            .bricks_of(id)
            .into_iter()
            .map(|brick| {
                let node = &snapshot.nodes[&brick.node];
                format!("{} (zone {})", node.storage, node.zone)
            })
            .collect()
    }

    /// Delete the claim's pod and the claim, and wait until the PV and the
    /// gluster volume are gone.
    pub async fn delete(&self, claim: &str) -> Result<(), String> {
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), "default");
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.admin.clone(), "default");
        let pod = format!("{claim}-web");
        let uid = claims
            .get(claim)
            .await
            .map_err(|e| e.to_string())?
            .metadata
            .uid
            .unwrap_or_default();
        let _ = pods.delete(&pod, &DeleteParams::default()).await;
        let _ = claims.delete(claim, &DeleteParams::default()).await;
        let pv = format!("pvc-{uid}");
        let volumes: Api<PersistentVolume> = Api::all(self.admin.clone());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let pod_left = pods.get_opt(&pod).await.map_err(|e| e.to_string())?;
            let pv_left = volumes.get_opt(&pv).await.map_err(|e| e.to_string())?;
            let gluster_left = self.cluster.volume_names().await.contains(&pv);
            if pod_left.is_none() && pv_left.is_none() && !gluster_left {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "after 120 s: pod left {}, PV left {}, gluster volume left {gluster_left}",
                    pod_left.is_some(),
                    pv_left.is_some()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop the provisioner cleanly.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(provisioner) = self.provisioner.take() {
            provisioner.stop().await.map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    }
}
