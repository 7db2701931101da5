//! A real Kubernetes for end-to-end tests, built from source
//! (`tests/k8s/build.sh`): etcd, kube-apiserver (a CA of its own,
//! service-account keys, `--authorization-mode=Node,RBAC`),
//! kube-controller-manager (the PV binder, PVC protection, the garbage
//! collector, service accounts) and kube-scheduler; optionally one node:
//! containerd and a kubelet registered with the API server, running
//! host-network pods (no CNI) from images imported without a registry.
//!
//! Every process is started by this fixture, recorded by pid and stopped
//! when it is dropped; containers, mounts under its directory and the
//! kubelet's cgroups go with it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node, ServiceAccount};
use kube::{Api, Client};

use crate::{Lease, peers, sh};

/// What to start besides the control plane.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Start a node: containerd and a kubelet.
    pub node: bool,
    /// OCI archives to import into the node's containerd.
    pub images: Vec<PathBuf>,
    /// The kubelet's root directory (default: one inside the fixture's
    /// directory). Manifests that name `/var/lib/kubelet` need that.
    pub kubelet_dir: Option<PathBuf>,
    /// Have the API server write an audit log (every request, at level
    /// Metadata), read back with [`Kubernetes::audit`].
    pub audit: bool,
    /// kube-controller-manager's `--kube-api-qps` and `--kube-api-burst`
    /// (default: its own, 20 and 30), for load runs.
    pub controller_qps: Option<(u32, u32)>,
}

/// One request, from the API server's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who made it (e.g. `system:serviceaccount:aplo-system:aplo`).
    pub user: String,
    /// Its verb: get, list, watch, create, update, patch, delete, ...
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource, with its subresource after a `/` (`pods/status`).
    pub resource: String,
    /// The namespace, for a namespaced resource.
    pub namespace: Option<String>,
    /// The response's status code.
    pub code: u16,
}

/// The node's name.
pub const NODE: &str = "node-a";

/// How many fixtures may run on this machine at once.
const MAX_FIXTURES: u8 = 32;

/// How many fixtures with a node may run on this machine at once.
const MAX_NODES: u8 = 8;

/// One started process.
struct Process {
    name: &'static str,
    child: Child,
}

/// A running Kubernetes.
pub struct Kubernetes {
    /// The fixture's directory: PKI, configs, logs, data.
    pub dir: tempfile::TempDir,
    /// The API server's URL.
    pub url: String,
    /// An admin (`system:masters`) kubeconfig.
    pub admin: PathBuf,
    /// The node's address, when there is a node.
    pub node_ip: Option<String>,
    /// The kubelet's root directory, when there is a node.
    pub kubelet_dir: Option<PathBuf>,
    /// How long the start took, by component, in order.
    pub start_times: Vec<(&'static str, Duration)>,
    kubectl: PathBuf,
    ca: Ca,
    processes: Vec<Process>,
    containerd_socket: Option<PathBuf>,
    node_net: Option<(String, Lease)>,
    cgroup_root: Option<String>,
    kubelet_lease: Option<Lease>,
    remove_kubelet_dir: bool,
    processes_lease: Lease,
    apiserver: Option<(PathBuf, Vec<String>)>,
}

/// The fixture's CA: it signs every serving and client certificate.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    cert: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aplo test cluster CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
        let cert = dir.join("ca.crt");
        std::fs::write(&cert, issuer.pem()).unwrap();
        std::fs::write(dir.join("ca.key"), issuer.key().serialize_pem()).unwrap();
        Ca { issuer, cert }
    }

    /// Issue `name.crt` and `name.key` in `dir` for `cn` in `groups`, with
    /// `sans` (DNS names or IP addresses) when it serves.
    fn issue(
        &self,
        dir: &Path,
        name: &str,
        cn: &str,
        groups: &[&str],
        sans: &[&str],
    ) -> (PathBuf, PathBuf) {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        for group in groups {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (crt, pem) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        (crt, pem)
    }

    /// The CA's certificate, PEM.
    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A kubeconfig for `server` as the holder of a client certificate.
fn kubeconfig(path: &Path, server: &str, ca: &Path, user: (&Path, &Path)) {
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: test, cluster: {{server: \"{server}\", certificate-authority: \"{}\"}}}}]\n\
         users: [{{name: user, user: {{client-certificate: \"{}\", client-key: \"{}\"}}}}]\n\
         contexts: [{{name: test, context: {{cluster: test, user: user}}}}]\ncurrent-context: test\n",
        ca.display(),
        user.0.display(),
        user.1.display()
    );
    std::fs::write(path, text).unwrap();
}

impl Kubernetes {
    /// Start the control plane, and a node when asked. Needs root; the
    /// binaries are built on first use (about 10 minutes, once).
    pub async fn start(options: Options) -> Result<Kubernetes, String> {
        for tool in ["ip", "mount", "umount"] {
            sh("sh", &["-c", &format!("command -v {tool}")])
                .map_err(|_| format!("{tool} is missing"))?;
        }
        let build = peers::kubernetes();
        // The processes of a fixture whose test was killed are stopped here.
        let processes_lease = Lease::take("k8s", MAX_FIXTURES)?;
        let dir = tempfile::Builder::new()
            .prefix("aplo-k8s-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let root = dir.path().to_owned();
        for sub in ["pki", "logs", "etcd"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| e.to_string())?;
        }
        let pki = root.join("pki");
        let ca = Ca::new(&pki);
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let admin = root.join("admin.kubeconfig");
        let admin_cert = ca.issue(&pki, "admin", "aplo-test-admin", &["system:masters"], &[]);
        kubeconfig(&admin, &url, &ca.cert, (&admin_cert.0, &admin_cert.1));
        let mut k8s = Kubernetes {
            url,
            admin,
            node_ip: None,
            kubelet_dir: None,
            start_times: Vec::new(),
            kubectl: build.kubernetes.join("kubectl"),
            ca,
            processes: Vec::new(),
            containerd_socket: None,
            node_net: None,
            cgroup_root: None,
            kubelet_lease: None,
            remove_kubelet_dir: false,
            processes_lease,
            apiserver: None,
            dir,
        };
        let started = Instant::now();
        k8s.start_etcd(&build.etcd.join("etcd"))?;
        k8s.start_apiserver(
            &build.kubernetes.join("kube-apiserver"),
            port,
            options.audit,
        )
        .await?;
        k8s.start_times
            .push(("etcd and kube-apiserver", started.elapsed()));
        let step = Instant::now();
        k8s.start_controllers(&build.kubernetes, options.controller_qps)
            .await?;
        k8s.start_times
            .push(("kube-controller-manager and kube-scheduler", step.elapsed()));
        if options.node {
            let step = Instant::now();
            k8s.start_node(&build.kubernetes.join("kubelet"), &options)
                .await?;
            k8s.start_times
                .push(("containerd and kubelet", step.elapsed()));
        }
        k8s.start_times.push(("total", started.elapsed()));
        Ok(k8s)
    }

    /// A component's log, appended to (a restarted component keeps its
    /// earlier lines).
    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("logs").join(format!("{name}.log")))
            .unwrap()
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> Result<(), String> {
        let log = self.log(name);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        self.processes_lease.record(child.id(), &program);
        self.processes.push(Process { name, child });
        Ok(())
    }

    /// The last lines of a component's log, for a failure message.
    pub fn log_tail(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("logs").join(format!("{name}.log")))
                .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Fail, with the log's tail, if a component has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        for process in &mut self.processes {
            if let Ok(Some(status)) = process.child.try_wait() {
                let name = process.name;
                return Err(format!(
                    "{name} exited ({status}):\n{}",
                    self.log_tail(name)
                ));
            }
        }
        Ok(())
    }

    fn start_etcd(&mut self, etcd: &Path) -> Result<(), String> {
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let data = self.dir.path().join("etcd");
        self.spawn(
            "etcd",
            Command::new(etcd)
                .arg("--data-dir")
                .arg(&data)
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &format!("default={peer}")])
                // A test cluster's data dies with it: no fsync.
                .arg("--unsafe-no-fsync"),
        )?;
        std::fs::write(self.dir.path().join("etcd.url"), &client).unwrap();
        Ok(())
    }

    async fn start_apiserver(
        &mut self,
        binary: &Path,
        port: u16,
        audit: bool,
    ) -> Result<(), String> {
        let pki = self.dir.path().join("pki");
        let (crt, key) = self.ca.issue(
            &pki,
            "apiserver",
            "kube-apiserver",
            &[],
            &[
                "127.0.0.1",
                "10.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ],
        );
        let (kubelet_crt, kubelet_key) = self.ca.issue(
            &pki,
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            &["system:masters"],
            &[],
        );
        // The service-account signing key (ECDSA P-256, PKCS#8).
        let sa = rcgen::KeyPair::generate().unwrap();
        std::fs::write(pki.join("sa.key"), sa.serialize_pem()).unwrap();
        std::fs::write(pki.join("sa.pub"), sa.public_key_pem()).unwrap();
        let etcd = std::fs::read_to_string(self.dir.path().join("etcd.url")).unwrap();
        let mut args = vec![
            format!("--etcd-servers={etcd}"),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--tls-cert-file={}", crt.display()),
            format!("--tls-private-key-file={}", key.display()),
            format!("--client-ca-file={}", self.ca.cert.display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!(
                "--service-account-key-file={}",
                pki.join("sa.pub").display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.join("sa.key").display()
            ),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            format!("--kubelet-client-certificate={}", kubelet_crt.display()),
            format!("--kubelet-client-key={}", kubelet_key.display()),
            format!("--kubelet-certificate-authority={}", self.ca.cert.display()),
            "--kubelet-preferred-address-types=InternalIP".into(),
            // One API server on loopback: no kubernetes Endpoints to
            // reconcile.
            "--endpoint-reconciler-type=none".into(),
        ];
        if audit {
            let policy = self.dir.path().join("audit-policy.yaml");
            std::fs::write(
                &policy,
                "apiVersion: audit.k8s.io/v1\nkind: Policy\n\
                 omitStages: [RequestReceived, ResponseStarted]\n\
                 rules: [{level: Metadata}]\n",
            )
            .unwrap();
            args.push(format!("--audit-policy-file={}", policy.display()));
            args.push(format!("--audit-log-path={}", self.audit_log().display()));
            // Written as each request completes, not batched.
            args.push("--audit-log-mode=blocking".into());
        }
        self.apiserver = Some((binary.to_owned(), args));
        self.spawn_apiserver().await
    }

    fn audit_log(&self) -> PathBuf {
        self.dir.path().join("logs").join("audit.jsonl")
    }

    /// Every request the API server has finished, in order, from its audit
    /// log (the fixture must start with [`Options::audit`]).
    pub fn audit(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(self.audit_log())
            .expect("the API server writes an audit log (Options::audit)");
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["stage"] == "ResponseComplete")
            .map(|event| {
                let object = &event["objectRef"];
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                let mut resource = text(&object["resource"]);
                if let Some(sub) = object["subresource"].as_str() {
                    resource = format!("{resource}/{sub}");
                }
                Request {
                    user: text(&event["user"]["username"]),
                    verb: text(&event["verb"]),
                    group: text(&object["apiGroup"]),
                    resource,
                    namespace: object["namespace"].as_str().map(str::to_owned),
                    code: event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                }
            })
            .collect()
    }

    async fn spawn_apiserver(&mut self) -> Result<(), String> {
        let (binary, args) = self
            .apiserver
            .clone()
            .expect("the API server was configured");
        self.spawn("kube-apiserver", Command::new(binary).args(args))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive()?;
            let out = self.kubectl_output(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver was not ready within 60 s: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail("kube-apiserver")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kill the API server (SIGKILL, as a crash) and start it again on the
    /// same port and etcd. Every watch is cut, and its watch cache starts
    /// over, so a client that resumes from an older resourceVersion gets
    /// 410 Gone and must list again.
    pub async fn restart_apiserver(&mut self) -> Result<(), String> {
        let at = self
            .processes
            .iter()
            .position(|p| p.name == "kube-apiserver")
            .expect("the API server runs");
        let mut old = self.processes.remove(at);
        let _ = old.child.kill();
        let _ = old.child.wait();
        self.spawn_apiserver().await
    }

    async fn start_controllers(
        &mut self,
        bin: &Path,
        qps: Option<(u32, u32)>,
    ) -> Result<(), String> {
        let pki = self.dir.path().join("pki");
        for (name, cn) in [
            ("kube-controller-manager", "system:kube-controller-manager"),
            ("kube-scheduler", "system:kube-scheduler"),
        ] {
            let (crt, key) = self.ca.issue(&pki, name, cn, &[], &[]);
            let config = self.dir.path().join(format!("{name}.kubeconfig"));
            kubeconfig(&config, &self.url, &self.ca.cert, (&crt, &key));
            let mut command = Command::new(bin.join(name));
            command
                .arg(format!("--kubeconfig={}", config.display()))
                .arg(format!("--authentication-kubeconfig={}", config.display()))
                .arg(format!("--authorization-kubeconfig={}", config.display()))
                .arg("--leader-elect=false")
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--secure-port={}", free_port()));
            if name == "kube-controller-manager" {
                command
                    .arg(format!(
                        "--service-account-private-key-file={}",
                        pki.join("sa.key").display()
                    ))
                    .arg(format!("--root-ca-file={}", self.ca.cert.display()))
                    .arg("--use-service-account-credentials=true")
                    .arg(format!(
                        "--cluster-signing-cert-file={}",
                        self.ca.cert.display()
                    ))
                    .arg(format!(
                        "--cluster-signing-key-file={}",
                        pki.join("ca.key").display()
                    ))
                    // The PV binder, PVC protection, the garbage collector,
                    // service accounts and the rest of the defaults.
                    .arg("--controllers=*");
                if let Some((qps, burst)) = qps {
                    command
                        .arg(format!("--kube-api-qps={qps}"))
                        .arg(format!("--kube-api-burst={burst}"));
                }
            }
            self.spawn(name, &mut command)?;
        }
        // Pods need the namespace's default ServiceAccount and the CA's
        // ConfigMap, which the controllers make.
        let client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive()?;
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
            let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
            if accounts.get_opt("default").await.ok().flatten().is_some()
                && maps
                    .get_opt("kube-root-ca.crt")
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-controller-manager made no default ServiceAccount within 60 s:\n{}",
                    self.log_tail("kube-controller-manager")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn start_node(&mut self, kubelet: &Path, options: &Options) -> Result<(), String> {
        for tool in ["containerd", "runc", "ctr"] {
            sh("sh", &["-c", &format!("command -v {tool}")]).map_err(|_| {
                format!("{tool} is missing: apt-get install -y containerd runc containernetworking-plugins (.ci/run does)")
            })?;
        }
        // The node's address: a bridge of its own (the kubelet refuses a
        // loopback node IP).
        let lease = Lease::take("k8s-node", MAX_NODES)?;
        let bridge = format!("aplok8s{}", lease.index);
        let ip = format!("10.214.{}.1", lease.index);
        let _ = sh("ip", &["link", "del", &bridge]);
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        self.node_net = Some((bridge.clone(), lease));
        sh("ip", &["addr", "add", &format!("{ip}/24"), "dev", &bridge])?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        self.node_ip = Some(ip.clone());
        self.cgroup_root = Some(format!("/{bridge}"));
        // Containers a killed run's kubelet left in this cgroup root.
        for pid in cgroup_pids(&format!("/{bridge}")) {
            let _ = sh("kill", &["-9", &pid.to_string()]);
        }
        make_cgroups(&bridge)?;

        let root = self.dir.path().to_owned();
        let containerd = root.join("containerd");
        let cni = root.join("cni");
        for dir in [&containerd, &cni] {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        // hostNetwork pods never call CNI, but containerd reports the
        // network ready only with a configuration.
        std::fs::write(
            cni.join("10-aplo-test.conflist"),
            r#"{"cniVersion": "1.0.0", "name": "aplo-test", "plugins": [{"type": "loopback"}]}"#,
        )
        .unwrap();
        let socket = containerd.join("containerd.sock");
        // restrict_oom_score_adj: this machine forbids lowering a
        // process's OOM score (the sandbox asks for -998), as rootless
        // setups do; containers get at least containerd's own.
        let config = format!(
            r#"version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "aplo.test/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
            root = containerd.display(),
            socket = socket.display(),
            cni = cni.display(),
        );
        std::fs::write(containerd.join("config.toml"), config).unwrap();
        self.spawn(
            "containerd",
            Command::new("containerd")
                .arg("--config")
                .arg(containerd.join("config.toml")),
        )?;
        self.containerd_socket = Some(socket.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ctr(&["version"]).status.success() {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "containerd did not answer within 30 s:\n{}",
                    self.log_tail("containerd")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for image in &options.images {
            let out = self.ctr(&["images", "import", &image.display().to_string()]);
            if !out.status.success() {
                return Err(format!(
                    "importing {}: {}",
                    image.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }

        let pki = root.join("pki");
        let (client_crt, client_key) = self.ca.issue(
            &pki,
            "kubelet-client",
            &format!("system:node:{NODE}"),
            &["system:nodes"],
            &[],
        );
        let (serve_crt, serve_key) =
            self.ca
                .issue(&pki, "kubelet", NODE, &[], &[&ip, "127.0.0.1", NODE]);
        let node_config = root.join("kubelet.kubeconfig");
        kubeconfig(
            &node_config,
            &self.url,
            &self.ca.cert,
            (&client_crt, &client_key),
        );
        let kubelet_dir = match &options.kubelet_dir {
            Some(dir) => {
                // A shared path (e.g. /var/lib/kubelet, which manifests
                // name): one fixture at a time, and it must be fresh.
                self.kubelet_lease = Some(
                    Lease::take("k8s-kubelet-dir", 1)
                        .map_err(|e| format!("another fixture uses {}: {e}", dir.display()))?,
                );
                if dir.exists() {
                    for point in mounts_under(dir) {
                        let _ = sh("umount", &["-l", &point]);
                    }
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| format!("clearing {}: {e}", dir.display()))?;
                }
                self.remove_kubelet_dir = true;
                dir.clone()
            }
            None => root.join("kubelet"),
        };
        std::fs::create_dir_all(&kubelet_dir).map_err(|e| e.to_string())?;
        let config = format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: "{ca}"}}
authorization: {{mode: Webhook}}
address: {ip}
port: {port}
readOnlyPort: 0
healthzPort: 0
tlsCertFile: "{crt}"
tlsPrivateKeyFile: "{key}"
# cgroup v1 on this machine: Kubernetes 1.34 still runs on it when asked.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: "{cgroup_root}"
failSwapOn: false
containerRuntimeEndpoint: "unix://{socket}"
# Images are imported, not pulled: never collect them, never evict.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
enforceNodeAllocatable: []
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
volumeStatsAggPeriod: 5s
"#,
            ca = self.ca.cert.display(),
            port = free_port(),
            crt = serve_crt.display(),
            key = serve_key.display(),
            cgroup_root = self.cgroup_root.as_deref().unwrap(),
            socket = socket.display(),
        );
        std::fs::write(root.join("kubelet.yaml"), config).unwrap();
        self.spawn(
            "kubelet",
            Command::new(kubelet)
                .arg(format!("--config={}", root.join("kubelet.yaml").display()))
                .arg(format!("--kubeconfig={}", node_config.display()))
                .arg(format!("--hostname-override={NODE}"))
                .arg(format!("--node-ip={ip}"))
                .arg(format!("--root-dir={}", kubelet_dir.display()))
                .arg(format!("--cert-dir={}", pki.join("kubelet").display())),
        )?;
        self.kubelet_dir = Some(kubelet_dir);
        let client = self.client().await;
        let nodes: Api<Node> = Api::all(client);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.check_alive()?;
            if let Ok(Some(node)) = nodes.get_opt(NODE).await
                && node
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the node was not Ready within 90 s:\n{}",
                    self.log_tail("kubelet")
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `ctr` in the node's containerd, namespace `k8s.io`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let socket = self.containerd_socket.as_ref().expect("a node is running");
        Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("ctr runs")
    }

    /// kubectl (the same release) as admin.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.admin.display()))
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl as admin; panics with its output when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl apply of a manifest given as text.
    pub fn apply(&self, manifest: &str) -> String {
        let path = self
            .dir
            .path()
            .join(format!("manifest-{}.yaml", rand_suffix()));
        std::fs::write(&path, manifest).unwrap();
        let out = self.kubectl(&["apply", "-f", &path.display().to_string()]);
        let _ = std::fs::remove_file(path);
        out
    }

    /// The path of kubectl.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// A client as admin.
    pub async fn client(&self) -> Client {
        client_from(&self.admin).await
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name`
    /// with a real token from the API server (TokenRequest, one day), so
    /// that RBAC applies as in a pod.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.kubectl(&["create", "token", name, "-n", namespace, "--duration=24h"]);
        let path = self
            .dir
            .path()
            .join(format!("sa-{namespace}-{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: test, cluster: {{server: \"{}\", certificate-authority: \"{}\"}}}}]\n\
             users: [{{name: sa, user: {{token: \"{}\"}}}}]\n\
             contexts: [{{name: test, context: {{cluster: test, user: sa, namespace: {namespace}}}}}]\n\
             current-context: test\n",
            self.url,
            self.ca.cert.display(),
            token.trim()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The CA bundle (PEM) that signs the API server's and every other
    /// certificate of the fixture.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Issue a serving certificate for `sans` from the fixture's CA (e.g.
    /// for a webhook the API server calls); returns (cert, key) paths.
    pub fn issue_serving(&self, name: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        self.ca
            .issue(&self.dir.path().join("pki"), name, name, &[], sans)
    }

    /// Processes of containers the node's containerd runs (their shims),
    /// by pid.
    fn shim_pids(&self) -> Vec<i32> {
        let Some(socket) = &self.containerd_socket else {
            return Vec::new();
        };
        let needle = socket.display().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("containerd-shim") && cmdline.contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// `curl` `url` every 20 ms until it answers with success (its body) or
/// `deadline` passes (None).
pub async fn curl_until(url: &str, deadline: Instant) -> Option<String> {
    loop {
        let out = Command::new("curl")
            .args(["-sf", "-m", "2", url])
            .output()
            .expect("curl runs");
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a client configuration");
    Client::try_from(config).expect("a client")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Every mount point at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    points
}

/// Make the kubelet's cgroup root under every cgroup v1 hierarchy (the
/// kubelet checks that it exists); cpuset's needs its parent's CPUs and
/// memory nodes before anything can join it.
fn make_cgroups(name: &str) -> Result<(), String> {
    let hierarchies =
        std::fs::read_dir("/sys/fs/cgroup").map_err(|e| format!("/sys/fs/cgroup: {e}"))?;
    for hierarchy in hierarchies.flatten() {
        let base = hierarchy.path();
        if !base.join("cgroup.procs").exists() || base.ends_with("unified") {
            continue;
        }
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if base.ends_with("cpuset") {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = std::fs::read_to_string(base.join(file)).unwrap_or_default();
                std::fs::write(dir.join(file), value.trim())
                    .map_err(|e| format!("{}: {e}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

/// The processes in a cgroup tree (the `pids` hierarchy, or v2's).
fn cgroup_pids(root: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for base in [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup",
    ] {
        let top = Path::new(base).join(root.trim_start_matches('/'));
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(entry.path());
                }
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Remove a cgroup tree (under every hierarchy), deepest first.
fn remove_cgroups(root: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let top = hierarchy.path().join(root.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(entry.path());
                }
            }
            dirs.push(dir);
        }
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        // The kubelet first (it would restart containers), then the
        // containers' shims, then the rest in reverse order of start.
        let shims = self.shim_pids();
        for process in self.processes.iter_mut().rev() {
            if process.name == "kubelet" {
                let _ = process.child.kill();
                let _ = process.child.wait();
            }
        }
        // Every container's processes: they live in the kubelet's cgroups
        // and outlive their shims.
        if let Some(root) = &self.cgroup_root {
            for pid in cgroup_pids(root) {
                let _ = sh("kill", &["-9", &pid.to_string()]);
            }
        }
        for pid in shims {
            let _ = sh("kill", &["-9", &pid.to_string()]);
        }
        for process in self.processes.iter_mut().rev() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        self.processes_lease.clear();
        let mut dirs = vec![self.dir.path().to_owned()];
        if let Some(kubelet) = &self.kubelet_dir {
            dirs.push(kubelet.clone());
        }
        for dir in &dirs {
            for point in mounts_under(dir) {
                let _ = sh("umount", &["-l", &point]);
            }
        }
        if self.remove_kubelet_dir
            && let Some(kubelet) = &self.kubelet_dir
        {
            let _ = std::fs::remove_dir_all(kubelet);
        }
        if let Some(root) = &self.cgroup_root {
            // Killed processes leave their cgroups a moment later.
            for _ in 0..50 {
                remove_cgroups(root);
                if cgroup_pids(root).is_empty() {
                    remove_cgroups(root);
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some((bridge, _lease)) = &self.node_net {
            let _ = sh("ip", &["link", "del", bridge]);
        }
    }
}
