//! The CSI node plugin as kubelet meets it: `aplo csi` started as its own
//! process on a unix socket, optionally inside a cgroup standing in for its
//! container, and a gRPC client calling it with kubelet's paths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use aplo::csi::proto::identity_client::IdentityClient;
use aplo::csi::proto::node_client::NodeClient;
use aplo::csi::proto::volume_capability::{AccessMode, AccessType, MountVolume, access_mode};
use aplo::csi::proto::{ProbeRequest, VolumeCapability};
use tonic::transport::Channel;

/// The driver name aplo's PVs carry.
pub const DRIVER: &str = "glusterfs.aplo.dev";

/// A cgroup v1 `pids` (or v2) cgroup made for a test, standing in for a
/// container's cgroup: a container runtime stops a container by killing
/// every process in it. Removed when dropped, after its processes are
/// killed.
pub struct Cgroup {
    /// The cgroup's directory.
    pub dir: PathBuf,
}

impl Cgroup {
    /// A fresh cgroup named `name` (with this process's id, so parallel
    /// runs do not meet).
    pub fn new(name: &str) -> Cgroup {
        let root = if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            PathBuf::from("/sys/fs/cgroup/pids")
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        let dir = root.join(format!("aplo-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot make cgroup {}: {e} (the test needs root)",
                dir.display()
            )
        });
        Cgroup { dir }
    }

    /// The processes in it.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGKILL every process in it, as a runtime stopping the container
    /// does, and wait until it is empty.
    pub fn kill_all(&self) {
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "cgroup {} did not empty: {:?}",
            self.dir.display(),
            self.pids()
        );
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir(&self.dir);
        // Cgroups of the same name a plugin made in other hierarchies
        // (`--client-cgroup-root`); empty by now.
        if let (Some(name), Ok(hierarchies)) =
            (self.dir.file_name(), std::fs::read_dir("/sys/fs/cgroup"))
        {
            for hierarchy in hierarchies.flatten() {
                let _ = std::fs::remove_dir(hierarchy.path().join(name));
            }
        }
    }
}

/// A running `aplo csi` process.
pub struct Plugin {
    /// Its socket.
    pub socket: PathBuf,
    child: Child,
}

/// Where a node plugin keeps its files, as a DaemonSet's hostPaths would.
/// When dropped, whatever is still mounted under its kubelet directory (a
/// test that failed half-way) is lazily unmounted, which ends the clients.
pub struct PluginDirs {
    /// Kubelet's root directory.
    pub kubelet: PathBuf,
    /// The socket's directory.
    pub socket_dir: PathBuf,
    /// The staged-volume records.
    pub state: PathBuf,
    /// The glusterfs client logs.
    pub logs: PathBuf,
}

impl PluginDirs {
    /// The directories under `root`.
    pub fn under(root: &Path) -> PluginDirs {
        let dirs = PluginDirs {
            kubelet: root.join("kubelet"),
            socket_dir: root.join("plugin"),
            state: root.join("state"),
            logs: root.join("logs"),
        };
        std::fs::create_dir_all(&dirs.kubelet).unwrap();
        dirs
    }

    /// The staging path kubelet passes for a volume handle.
    pub fn staging(&self, handle: &str) -> PathBuf {
        use sha2::Digest;
        let hex = hex::encode(sha2::Sha256::digest(handle.as_bytes()));
        self.kubelet
            .join("plugins/kubernetes.io/csi")
            .join(DRIVER)
            .join(hex)
            .join("globalmount")
    }

    /// The publish target kubelet passes for a pod and PV; kubelet makes
    /// the parent, the driver the target.
    pub fn target(&self, pod_uid: &str, pv: &str) -> PathBuf {
        self.kubelet
            .join("pods")
            .join(pod_uid)
            .join("volumes/kubernetes.io~csi")
            .join(pv)
            .join("mount")
    }
}

impl Drop for PluginDirs {
    fn drop(&mut self) {
        for mount in mounts_under(&self.kubelet).iter().rev() {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
    }
}

impl Plugin {
    /// Start `aplo csi --role node` from `binary` with `dirs`, plus `extra`
    /// arguments; inside `cgroup` when given (its container).
    pub fn start(
        binary: &Path,
        dirs: &PluginDirs,
        extra: &[String],
        cgroup: Option<&Cgroup>,
    ) -> Plugin {
        Self::start_with(binary, dirs, &[], extra, cgroup)
    }

    /// The same, with `global` arguments before the `csi` command.
    pub fn start_with(
        binary: &Path,
        dirs: &PluginDirs,
        global: &[String],
        extra: &[String],
        cgroup: Option<&Cgroup>,
    ) -> Plugin {
        let socket = dirs.socket_dir.join("csi.sock");
        let mut args: Vec<String> = vec!["--log".into(), "info".into()];
        args.extend(global.iter().cloned());
        args.extend([
            "csi".into(),
            "--endpoint".into(),
            format!("unix://{}", socket.display()),
            "--node-id".into(),
            "node-a".into(),
            "--kubelet-dir".into(),
            dirs.kubelet.display().to_string(),
            "--state-dir".into(),
            dirs.state.display().to_string(),
            "--client-log-dir".into(),
            dirs.logs.display().to_string(),
        ]);
        args.extend(extra.iter().cloned());
        let child = match cgroup {
            // The shell joins the cgroup, then becomes the plugin.
            Some(cgroup) => Command::new("sh")
                .arg("-c")
                .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
                .arg(&cgroup.dir)
                .arg(binary)
                .args(&args)
                .spawn(),
            None => Command::new(binary).args(&args).spawn(),
        }
        .expect("aplo csi starts");
        Plugin { socket, child }
    }

    /// Start `aplo csi --role <roles>` from `binary` against `cluster`: its
    /// config and a topology of one `brick_size` device per node are
    /// written into `dir`, with the database.
    pub fn on_cluster(
        binary: &Path,
        cluster: &crate::Cluster,
        dir: &Path,
        dirs: &PluginDirs,
        brick_size: &str,
        roles: &str,
    ) -> Plugin {
        let topology = dir.join("topology.json");
        std::fs::write(&topology, cluster.topology(&[brick_size])).unwrap();
        let config = dir.join("aplo.yaml");
        std::fs::write(&config, cluster.config_yaml()).unwrap();
        let global = [
            "--config".into(),
            config.display().to_string(),
            "--db".into(),
            dir.join("aplo.redb").display().to_string(),
        ];
        let extra = [
            "--role".into(),
            roles.into(),
            "--topology".into(),
            topology.display().to_string(),
        ];
        Self::start_with(binary, dirs, &global, &extra, None)
    }

    /// Wait until the socket answers `Probe` with ready (a positive
    /// signal, not a sleep), and return a node client.
    pub async fn ready(&mut self) -> NodeClient<Channel> {
        self.ready_identity().await;
        let url = format!("unix://{}", self.socket.display());
        NodeClient::connect(url)
            .await
            .expect("the node service answers")
    }

    /// Wait until the socket answers `Probe` with ready.
    pub async fn ready_identity(&mut self) {
        let url = format!("unix://{}", self.socket.display());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("aplo csi exited early: {status}");
            }
            if let Ok(mut identity) = IdentityClient::connect(url.clone()).await
                && let Ok(reply) = identity.probe(ProbeRequest {}).await
            {
                assert_eq!(reply.into_inner().ready, Some(true));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "aplo csi did not answer on {} within 30 s",
            self.socket.display()
        );
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for it to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("aplo csi is waited for")
    }

    /// Reap the process after something else killed it.
    pub fn reap(mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A filesystem capability, as kubelet sends it for an RWX claim.
pub fn capability(flags: &[&str]) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: String::new(),
            mount_flags: flags.iter().map(|f| f.to_string()).collect(),
            volume_mount_group: String::new(),
        })),
        access_mode: Some(AccessMode {
            mode: access_mode::Mode::MultiNodeMultiWriter as i32,
        }),
    }
}

/// The processes of the glusterfs client mounted at `mountpoint` (the
/// client and, with `auto_unmount`, its unmount helper): their command
/// line ends with the mount point.
pub fn client_pids(mountpoint: &Path) -> Vec<i32> {
    let want = mountpoint.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let is_client = args.first().is_some_and(|a| a.ends_with(b"glusterfs"))
            && args
                .windows(2)
                .any(|w| w[0] == b"--process-name" && w[1] == b"fuse");
        if is_client && args.last() == Some(&want) {
            pids.push(pid);
        }
    }
    pids
}

/// Every mount under `dir`, from this process's mount table.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// aplo's node service served in this process on a unix socket, and a
/// gRPC client calling it as kubelet does: stage into
/// `plugins/kubernetes.io/csi/<driver>/<sha256>/globalmount`, publish into
/// `pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`, with the PV's volume
/// handle, attributes and mount options.
pub struct Kubelet {
    /// Its directories.
    pub dirs: PluginDirs,
    node: NodeClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A PV as the node service sees it.
#[derive(Debug, Clone)]
pub struct PvSource {
    /// `spec.csi.volumeHandle`.
    pub handle: String,
    /// `spec.csi.volumeAttributes`.
    pub attributes: std::collections::HashMap<String, String>,
    /// `spec.mountOptions`.
    pub mount_options: Vec<String>,
}

impl Kubelet {
    /// Serve the node service under `root` (kubelet's directory is
    /// `root/kubelet`), running its mounts on this machine.
    pub async fn start(root: &Path) -> Kubelet {
        use aplo::csi::{Identity, Node, NodeConfig};
        use aplo::exec::command::{NodeExecutor, Transport};
        let dirs = PluginDirs::under(root);
        let endpoint: aplo::csi::Endpoint =
            format!("unix://{}/csi.sock", dirs.socket_dir.display())
                .parse()
                .expect("an endpoint");
        let listener = endpoint.bind().expect("the socket binds");
        let node = Node::new(
            NodeConfig {
                node_id: "demo-node".into(),
                zone: None,
                kubelet_dir: dirs.kubelet.clone(),
                state_dir: dirs.state.clone(),
                log_dir: dirs.logs.clone(),
                log_level: "WARNING".into(),
                client_cgroups: Vec::new(),
            },
            NodeExecutor::one_shot("demo-node", Transport::Local),
        );
        let services = aplo::csi::server::Services {
            identity: Identity {
                name: DRIVER.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                controller: false,
                checks: Vec::new(),
            },
            node: Some(node),
            controller: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = aplo::csi::server::serve(&endpoint, listener, services, async {
                let _ = stopped.await;
            })
            .await;
        });
        let url = format!("unix://{}/csi.sock", dirs.socket_dir.display());
        let node = NodeClient::connect(url)
            .await
            .expect("the node service answers");
        Kubelet {
            dirs,
            node,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// NodeStageVolume, as kubelet calls it for a PV's first pod on the
    /// node; returns the staging path.
    pub async fn stage(&mut self, pv: &PvSource) -> Result<PathBuf, tonic::Status> {
        let staging = self.dirs.staging(&pv.handle);
        let _ = std::fs::create_dir_all(&staging);
        self.node
            .node_stage_volume(aplo::csi::proto::NodeStageVolumeRequest {
                volume_id: pv.handle.clone(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(capability(
                    &pv.mount_options
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )),
                volume_context: pv.attributes.clone(),
                ..Default::default()
            })
            .await?;
        Ok(staging)
    }

    /// NodePublishVolume into pod `pod_uid`'s directory for PV `pv_name`;
    /// returns the target path the pod's container sees.
    pub async fn publish(
        &mut self,
        pv: &PvSource,
        pv_name: &str,
        pod_uid: &str,
    ) -> Result<PathBuf, tonic::Status> {
        let target = self.dirs.target(pod_uid, pv_name);
        let _ = std::fs::create_dir_all(target.parent().expect("a parent"));
        self.node
            .node_publish_volume(aplo::csi::proto::NodePublishVolumeRequest {
                volume_id: pv.handle.clone(),
                staging_target_path: self.dirs.staging(&pv.handle).display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(capability(
                    &pv.mount_options
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )),
                readonly: false,
                volume_context: pv.attributes.clone(),
                ..Default::default()
            })
            .await?;
        Ok(target)
    }

    /// NodeUnpublishVolume then NodeUnstageVolume.
    pub async fn tear_down(
        &mut self,
        pv: &PvSource,
        pv_name: &str,
        pod_uid: &str,
    ) -> Result<(), tonic::Status> {
        self.node
            .node_unpublish_volume(aplo::csi::proto::NodeUnpublishVolumeRequest {
                volume_id: pv.handle.clone(),
                target_path: self.dirs.target(pod_uid, pv_name).display().to_string(),
            })
            .await?;
        self.node
            .node_unstage_volume(aplo::csi::proto::NodeUnstageVolumeRequest {
                volume_id: pv.handle.clone(),
                staging_target_path: self.dirs.staging(&pv.handle).display().to_string(),
            })
            .await?;
        Ok(())
    }

    /// Stop serving.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}
