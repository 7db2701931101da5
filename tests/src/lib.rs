//! A real GlusterFS cluster on one machine, for end-to-end tests.
//!
//! Each node is a network namespace (a veth into a bridge, with its own
//! address) plus a mount namespace in which private directories are
//! bind-mounted over `/var/lib/glusterd`, `/var/log/glusterfs` and `/run`,
//! held open by a `sleep infinity` process. Each node runs its own glusterd
//! and is reached through a `nsenter -t PID -m -n` command prefix: the same
//! executor transport production uses for prefixed nodes.
//!
//! Only addresses inside namespaces this harness creates are used: each
//! cluster leases a `/24` of `10.213.0.0/16` of its own (a lock file held
//! while it lives), because the host reaches the nodes through the
//! cluster's bridge, and two bridges with one subnet would make the host's
//! mounts reach whichever cluster the kernel routes to. Everything started
//! is recorded by process id and torn down by process id when the cluster
//! is dropped.

pub mod classic;
pub mod csi;
pub mod http;
pub mod k8s;
pub mod kube;
pub mod peers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aplo::exec::command::{Cmd, Executor, NodeExecutor, Transport};
use aplo::exec::gluster;

/// The subnets clusters lease from: `10.213.N.0/24`.
const SUBNETS: &str = "10.213";

/// How many clusters may run on this machine at once.
const MAX_CLUSTERS: u8 = 64;

/// A numbered resource this process holds while it lives (a cluster's
/// `/24`, a Kubernetes node's address): an exclusive lock on a file named
/// after it, which the kernel releases when the process dies.
///
/// The lock file also lists the processes its holder started
/// ([`Lease::record`]): whoever takes a free lease next kills those that
/// are still running, since their owner died without stopping them.
pub(crate) struct Lease {
    pub(crate) index: u8,
    lock: std::fs::File,
}

impl Lease {
    /// The lowest free `kind` below `max`.
    pub(crate) fn take(kind: &str, max: u8) -> Result<Lease, String> {
        let dir = Path::new("/run/aplo-e2e");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for index in 0..max {
            let path = dir.join(format!("{kind}-{index}.lock"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if file.try_lock().is_ok() {
                // "pid program" lines; a pid is killed only if it still runs
                // that program (pids are reused).
                let left = std::fs::read_to_string(&path).unwrap_or_default();
                for (pid, program) in left.lines().filter_map(|l| l.split_once(' ')) {
                    let cmdline = std::fs::read(Path::new("/proc").join(pid).join("cmdline"))
                        .unwrap_or_default();
                    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                    if !program.is_empty() && String::from_utf8_lossy(argv0).ends_with(program) {
                        eprintln!(
                            "killing {program} ({pid}), left running by a killed run ({})",
                            path.display()
                        );
                        let _ = sh("kill", &["-9", pid]);
                    }
                }
                file.set_len(0)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                return Ok(Lease { index, lock: file });
            }
        }
        Err(format!(
            "all {max} {kind} leases are in use (locks in {})",
            dir.display()
        ))
    }
}

impl Lease {
    /// Note a process this holder started, for the next holder to stop if
    /// this one dies first.
    pub(crate) fn record(&mut self, pid: u32, program: &str) {
        use std::io::Write;
        let _ = writeln!(self.lock, "{pid} {program}");
    }

    /// Its holder stopped everything it recorded.
    pub(crate) fn clear(&mut self) {
        use std::io::Seek;
        let _ = self.lock.set_len(0);
        let _ = self.lock.rewind();
    }
}

/// A `/24` of the cluster's own.
struct SubnetLease {
    prefix: String,
    _lease: Lease,
}

impl SubnetLease {
    fn take() -> Result<SubnetLease, String> {
        let lease = Lease::take("subnet", MAX_CLUSTERS)?;
        let prefix = format!("{SUBNETS}.{}", lease.index);
        remove_leftovers_on(&prefix);
        Ok(SubnetLease {
            prefix,
            _lease: lease,
        })
    }
}

/// A cluster of a run that was killed (no Drop ran) still holds `prefix`:
/// its bridge keeps the address, so the host's mounts would reach its
/// glusterds (which know none of this run's volumes) instead of this run's.
/// The free lease proves its owner is dead: stop its processes and remove
/// its namespaces, veths and bridge, saying so.
fn remove_leftovers_on(prefix: &str) {
    let gateway = format!("{prefix}.254/");
    let Ok(listing) = sh("ip", &["-o", "-4", "addr", "show"]) else {
        return;
    };
    for line in listing.lines().filter(|l| l.contains(&gateway)) {
        let Some(bridge) = line.split_whitespace().nth(1) else {
            continue;
        };
        eprintln!("removing {bridge}, a cluster left by a killed run on {prefix}.0/24");
        match bridge
            .strip_prefix("aplo")
            .and_then(|b| b.strip_suffix("br"))
        {
            Some(tag) => remove_tag_leftovers(tag),
            None => {
                let _ = sh("ip", &["link", "del", bridge]);
            }
        }
    }
}

/// Remove what a killed run left under cluster tag `tag`: the processes in
/// its nodes' network namespaces (glusterd, bricks, the holders), the
/// namespaces, veths and bridge.
fn remove_tag_leftovers(tag: &str) {
    for n in 1..=9 {
        let netns = format!("aplo{tag}n{n}");
        if let Ok(pids) = sh("ip", &["netns", "pids", &netns]) {
            for pid in pids.split_whitespace() {
                let _ = sh("kill", &["-9", pid]);
            }
        }
        let _ = sh("ip", &["netns", "del", &netns]);
        let _ = sh("ip", &["link", "del", &format!("aplo{tag}v{n}")]);
    }
    let _ = sh("ip", &["link", "del", &format!("aplo{tag}br")]);
}

/// One gluster node.
pub struct GlusterNode {
    /// Its address, which is also its gluster hostname.
    pub address: String,
    /// Its name (what a topology file calls its manage hostname).
    pub name: String,
    /// How commands reach it (`nsenter` into its namespaces).
    pub transport: Transport,
    /// The executor that reaches it.
    pub exec: Arc<NodeExecutor>,
    /// A directory for its bricks.
    pub bricks: PathBuf,
    /// The process holding its namespaces.
    holder: Child,
    netns: String,
    veth: String,
    state: PathBuf,
}

/// A cluster of nodes, torn down when dropped.
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<GlusterNode>,
    bridge: String,
    subnet: SubnetLease,
    _dir: tempfile::TempDir,
}

pub(crate) fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Cluster {
    /// Start `count` nodes (at most 9), each with its own glusterd, and
    /// join them into one trusted pool. `tag` keeps names apart when
    /// several clusters run at once.
    pub async fn start(tag: &str, count: usize) -> Result<Cluster, String> {
        assert!((1..=9).contains(&count), "1 to 9 nodes");
        for tool in ["ip", "unshare", "nsenter", "glusterd"] {
            sh("sh", &["-c", &format!("command -v {tool}")])
                .map_err(|_| format!("{tool} is missing: apt-get install -y iproute2 util-linux glusterfs-server (.ci/run does)"))?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bridge = format!("aplo{tag}br");
        let subnet = SubnetLease::take()?;
        // Leftovers of a run that was killed before it could clean up: only
        // names this harness owns.
        remove_tag_leftovers(tag);
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        let mut cluster = Cluster {
            nodes: Vec::new(),
            bridge: bridge.clone(),
            subnet,
            _dir: dir,
        };
        let gateway = format!("{}.254/24", cluster.subnet());
        sh("ip", &["addr", "add", &gateway, "dev", &bridge])?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        // Each glusterd takes about a second to start: start them together.
        // Every node that did start joins the cluster, so that dropping it
        // on an error cleans them all up.
        let started = futures::future::join_all(
            (1..=count)
                .map(|n| Self::start_node(cluster._dir.path(), tag, &bridge, cluster.subnet(), n)),
        )
        .await;
        let mut failure = None;
        for result in started {
            match result {
                Ok(node) => cluster.nodes.push(node),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let first = &cluster.nodes[0];
        for other in &cluster.nodes[1..] {
            let out = first
                .exec
                .run(&gluster::gluster(["peer", "probe", other.address.as_str()]))
                .await
                .map_err(|e| e.to_string())?;
            gluster::parse_outcome(&out.stdout)
                .map_err(|e| format!("peer probe {}: {e}", other.address))?;
        }
        // Wait until every node sees every other as connected.
        for _ in 0..300 {
            let mut all = true;
            for node in &cluster.nodes {
                let out = node
                    .exec
                    .run(&Cmd::new("gluster").args(["--mode=script", "pool", "list"]))
                    .await
                    .map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&out.stdout);
                all &= text.lines().filter(|l| l.contains("Connected")).count() == count;
            }
            if all {
                return Ok(cluster);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the peers did not all connect within 30 s".into())
    }

    async fn start_node(
        dir: &Path,
        tag: &str,
        bridge: &str,
        subnet: &str,
        n: usize,
    ) -> Result<GlusterNode, String> {
        let netns = format!("aplo{tag}n{n}");
        let veth = format!("aplo{tag}v{n}");
        let address = format!("{subnet}.{n}");
        let state = dir.join(format!("node{n}"));
        for sub in ["glusterd", "log", "run", "bricks"] {
            std::fs::create_dir_all(state.join(sub)).map_err(|e| e.to_string())?;
        }
        sh("ip", &["netns", "add", &netns])?;
        sh(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        )?;
        sh("ip", &["link", "set", &veth, "master", bridge, "up"])?;
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &netns,
                "ip",
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ],
        )?;
        sh(
            "ip",
            &["netns", "exec", &netns, "ip", "link", "set", "eth0", "up"],
        )?;
        sh(
            "ip",
            &["netns", "exec", &netns, "ip", "link", "set", "lo", "up"],
        )?;
        let s = state.display();
        let script = format!(
            "mount --bind {s}/glusterd /var/lib/glusterd && mount --bind {s}/log /var/log/glusterfs && mount --bind {s}/run /run && exec sleep infinity"
        );
        let holder = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        // `ip netns exec` execs unshare, which execs bash, which execs sleep:
        // the pid stays the same throughout.
        let pid = holder.id().to_string();
        let transport = Transport::Prefix(vec![
            "nsenter".into(),
            "-t".into(),
            pid.clone(),
            "-m".into(),
            "-n".into(),
        ]);
        let exec = NodeExecutor::new(format!("node{n}"), transport.clone());
        let node = GlusterNode {
            address,
            name: format!("node{n}"),
            transport,
            exec,
            bricks: state.join("bricks"),
            holder,
            netns,
            veth,
            state,
        };
        // Wait for the bind mounts, then start glusterd.
        for _ in 0..100 {
            if sh(
                "nsenter",
                &[
                    "-t",
                    &pid,
                    "-m",
                    "-n",
                    "sh",
                    "-c",
                    "grep -q ' /run ' /proc/self/mountinfo",
                ],
            )
            .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node.exec
            .run(
                &Cmd::new("glusterd")
                    .args(["-LINFO"])
                    .arg(format!("--pid-file={}", node.pidfile().display())),
            )
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..100 {
            if node.exec.run(&gluster::volume_info(None)).await.is_ok() {
                return Ok(node);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("glusterd on {} did not answer", node.address))
    }
}

impl GlusterNode {
    fn pidfile(&self) -> PathBuf {
        self.state.join("glusterd.pid")
    }

    /// Cut the node off the network (its link goes down).
    pub fn disconnect(&self) -> Result<(), String> {
        sh("ip", &["link", "set", &self.veth, "down"]).map(|_| ())
    }

    /// SIGKILL the node's glusterd, brick and daemon processes (by the pid
    /// files gluster keeps under the node's private /run): the node's
    /// storage service is gone, while commands still reach the node.
    pub fn kill_gluster(&self) {
        let mut pids: Vec<String> = Vec::new();
        if let Ok(pid) = std::fs::read_to_string(self.pidfile()) {
            pids.push(pid.trim().to_owned());
        }
        let run = self.state.join("run/gluster");
        if let Ok(out) = sh("find", &[&run.display().to_string(), "-name", "*.pid"]) {
            for file in out.lines() {
                if let Ok(pid) = std::fs::read_to_string(file) {
                    pids.push(pid.trim().to_owned());
                }
            }
        }
        for pid in pids.iter().filter(|p| !p.is_empty()) {
            let _ = sh("kill", &["-9", pid]);
        }
    }

    /// Bring the node's link back up.
    pub fn reconnect(&self) -> Result<(), String> {
        sh("ip", &["link", "set", &self.veth, "up"]).map(|_| ())
    }
}

/// Detach every loop device whose backing file is under `dir`.
pub(crate) fn detach_loops_under(dir: &Path) {
    let Ok(list) = sh("losetup", &["-n", "-l", "-O", "NAME,BACK-FILE"]) else {
        return;
    };
    let prefix = dir.display().to_string();
    for line in list.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(device), Some(file)) = (fields.next(), fields.next())
            && file.starts_with(&prefix)
        {
            let _ = sh("umount", &["-l", device]);
            let _ = sh("losetup", &["-d", device]);
        }
    }
}

impl Cluster {
    /// The first three octets of this cluster's `/24` (its nodes are
    /// `.1` to `.9`, the host's end of its bridge `.254`).
    pub fn subnet(&self) -> &str {
        &self.subnet.prefix
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = sh("ip", &["link", "del", &self.bridge]);
    }
}

/// A node cleans up after itself, also one whose glusterd failed to start.
impl Drop for GlusterNode {
    fn drop(&mut self) {
        self.kill_gluster();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // Loop bricks: their mounts went with the node's mount namespace;
        // the loop devices are global and must be detached.
        detach_loops_under(&self.state);
        let _ = sh("ip", &["link", "del", &self.veth]);
        let _ = sh("ip", &["netns", "del", &self.netns]);
    }
}

/// A FUSE mount of a gluster volume on this machine, lazily unmounted
/// when dropped (a node may be unreachable by then).
pub struct FuseMount {
    /// Where the volume is mounted.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl FuseMount {
    /// Mount `volume` from `server`.
    pub fn new(server: &str, volume: &str) -> Result<FuseMount, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_path_buf();
        sh(
            "mount",
            &[
                "-t",
                "glusterfs",
                &format!("{server}:/{volume}"),
                &path.display().to_string(),
            ],
        )?;
        Ok(FuseMount { path, _dir: dir })
    }

    /// The filesystem's size in bytes, as `df` reports it.
    pub fn size(&self) -> u64 {
        sh(
            "df",
            &["--output=size", "-B1", &self.path.display().to_string()],
        )
        .ok()
        .and_then(|out| out.lines().nth(1).and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", &self.path.display().to_string()]);
    }
}

impl Cluster {
    /// A heketi topology file for the cluster: node `n` is `node<n>` with
    /// its address as storage hostname, in zone `n`; each node gets one
    /// `loop` device per entry of `capacities` (a directory under its brick
    /// directory, capped at that size).
    pub fn topology(&self, capacities: &[&str]) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let devices: Vec<String> = capacities
                    .iter()
                    .enumerate()
                    .map(|(d, capacity)| {
                        let dir = node.bricks.join(format!("dev{d}"));
                        std::fs::create_dir_all(&dir).expect("a device directory");
                        format!(
                            r#"{{"name": "{}", "tags": {{"backend": "loop", "capacity": "{capacity}"}}}}"#,
                            dir.display()
                        )
                    })
                    .collect();
                format!(
                    r#"{{"node": {{"hostnames": {{"manage": ["{}"], "storage": ["{}"]}}, "zone": {}}}, "devices": [{}]}}"#,
                    node.name,
                    node.address,
                    i + 1,
                    devices.join(", ")
                )
            })
            .collect();
        format!(r#"{{"clusters": [{{"nodes": [{}]}}]}}"#, nodes.join(", "))
    }

    /// The `nodes:` section of an aplo configuration file reaching each
    /// node through `nsenter`.
    pub fn config_yaml(&self) -> String {
        let mut text = String::from("nodes:\n  transports:\n");
        for node in &self.nodes {
            if let Transport::Prefix(argv) = &node.transport {
                text.push_str(&format!(
                    "    {}:\n      prefix: [{}]\n",
                    node.name,
                    argv.join(", ")
                ));
            }
        }
        text
    }

    /// The command driver reaching every node.
    pub fn driver(&self) -> aplo::engine::driver::CommandDriver {
        self.driver_with(self.connections())
    }

    fn connections(&self) -> aplo::engine::driver::Connections {
        aplo::engine::driver::Connections::new(
            aplo::engine::driver::Reach::Local,
            self.nodes
                .iter()
                .map(|n| (n.name.clone(), n.transport.clone()))
                .collect(),
        )
    }

    fn driver_with(
        &self,
        connections: aplo::engine::driver::Connections,
    ) -> aplo::engine::driver::CommandDriver {
        use aplo::engine::driver::{CommandConfig, CommandDriver};
        CommandDriver::new(connections, CommandConfig::default())
    }

    /// An engine over a redb store at `db`, with the bundled policies and
    /// the command driver reaching every node.
    pub fn engine(&self, db: &Path) -> Result<aplo::engine::Engine, String> {
        self.engine_with(db, self.driver())
    }

    /// The same, with a driver that starts a `gluster` process for every
    /// gluster command (no CLI sessions).
    pub fn engine_one_shot(&self, db: &Path) -> Result<aplo::engine::Engine, String> {
        self.engine_with(db, self.driver_with(self.connections().one_shot()))
    }

    fn engine_with(
        &self,
        db: &Path,
        driver: aplo::engine::driver::CommandDriver,
    ) -> Result<aplo::engine::Engine, String> {
        let store = aplo::store::RedbStore::open(db).map_err(|e| e.to_string())?;
        aplo::engine::Engine::new(
            Arc::new(store),
            Arc::new(driver),
            kube::registry(),
            aplo::engine::EngineConfig::default(),
        )
        .map_err(|e| e.to_string())
    }

    /// Every gluster volume name the cluster has.
    pub async fn volume_names(&self) -> Vec<String> {
        let out = self.nodes[0]
            .exec
            .run(&gluster::volume_info(None))
            .await
            .expect("volume info runs");
        gluster::parse_volume_info(&out.stdout)
            .map(|v| v.into_iter().map(|v| v.name).collect())
            .unwrap_or_default()
    }

    /// Every file and directory under the nodes' brick directories that a
    /// brick could leave behind (loop images and brick mounts), and every
    /// loop device backed by a file there.
    pub fn brick_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for node in &self.nodes {
            if let Ok(out) = sh(
                "find",
                &[
                    &node.bricks.display().to_string(),
                    "-mindepth",
                    "3",
                    "-maxdepth",
                    "3",
                    "(",
                    "-path",
                    "*/images/*",
                    "-o",
                    "-path",
                    "*/mounts/*",
                    ")",
                ],
            ) {
                found.extend(out.lines().map(str::to_owned));
            }
            if let Ok(list) = sh("losetup", &["-n", "-l", "-O", "NAME,BACK-FILE"]) {
                let prefix = node.bricks.display().to_string();
                found.extend(
                    list.lines()
                        .filter(|l| {
                            l.split_whitespace()
                                .nth(1)
                                .is_some_and(|f| f.starts_with(&prefix))
                        })
                        .map(|l| format!("loop device {l}")),
                );
            }
        }
        found
    }
}

/// Wait until `child` (an `aplo-faulty` run with `--fault-at point` and
/// stderr piped) says it stopped at its fault point, then SIGKILL it.
/// Panics with what it printed if it ends first or takes longer than
/// `timeout`.
pub fn kill_at_fault(mut child: Child, point: &str, timeout: Duration) {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let reached = line.contains("fault point");
            seen.push(line);
            if reached {
                let _ = tx.send(Ok(()));
                return;
            }
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => {}
        Ok(Err(output)) => panic!("aplo ended before {point}:\n{output}"),
        Err(_) => panic!("aplo did not reach {point} in {timeout:?}"),
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    let status = child.wait().expect("the killed process is reaped");
    assert!(!status.success(), "killed at {point}");
}

/// Write a benchmark's results as `bench-NAME.json` in cargo's target
/// directory (`CARGO_TARGET_DIR`, else the workspace's `target/`), and say
/// where.
pub fn write_bench_results(name: &str, json: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(format!("bench-{name}.json"));
    std::fs::write(&path, json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("results: {}", path.display());
}
