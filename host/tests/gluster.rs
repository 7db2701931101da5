//! gluster command lines against a real glusterd: create, set, start,
//! info, status, stop and delete a replica-3 volume, with bricks in
//! directories (so `force`), and read every answer with the parsers.
//!
//! Each test starts a glusterd of its own, in namespaces of its own, and
//! stops it at the end; a glusterd already running on this machine is never
//! asked anything.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aplo::exec::command::{Cmd, ExecError, Executor, NodeExecutor, Transport};
use aplo::exec::gluster::{self, Failure, GlusterError};
use aplo::model::Scheme;

/// A glusterd of a test's own. It runs in a network namespace (its own
/// port 24007, and an address on a veth pair inside the namespace for its
/// bricks: gluster refuses loopback brick hosts) and a mount namespace in
/// which private directories are bind-mounted over `/var/lib/glusterd`,
/// `/var/log/glusterfs` and `/run` (its socket, pid files and bricks'
/// state). A `sleep infinity` holds the namespaces; commands reach them
/// through `nsenter -t PID -m -n`, as the end-to-end harness (`tests/src`)
/// reaches its nodes. Dropping it kills, by pid, every process in its
/// network namespace (glusterd, bricks, self-heal daemon) and the holder.
struct Glusterd {
    holder: Child,
    /// The brick host: the namespace's own address.
    address: String,
    dir: tempfile::TempDir,
}

impl Glusterd {
    /// The address, inside the namespace only (TEST-NET-1, routed nowhere).
    const ADDRESS: &'static str = "192.0.2.1";

    async fn start() -> Glusterd {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["glusterd", "log", "run"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let d = dir.path().display();
        let script = format!(
            "set -e; ip link set lo up; \
             ip link add aplo0 type veth peer name aplo1; \
             ip addr add {}/24 dev aplo0; ip link set aplo1 up; ip link set aplo0 up; \
             mount --bind {d}/glusterd /var/lib/glusterd; \
             mount --bind {d}/log /var/log/glusterfs; \
             mount --bind {d}/run /run; \
             touch /run/ready; exec sleep infinity",
            Self::ADDRESS
        );
        // unshare execs bash, which execs sleep: the pid stays the holder's.
        let holder = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private"])
            .args(["bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare runs (util-linux; the tests run as root, as CI does)");
        let glusterd = Glusterd {
            holder,
            address: Self::ADDRESS.to_owned(),
            dir,
        };
        let ready = glusterd.dir.path().join("run/ready");
        for _ in 0..500 {
            if ready.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ready.exists(), "the namespaces were not set up within 10 s");
        let node = glusterd.node();
        let pidfile = glusterd.dir.path().join("glusterd.pid");
        node.run(
            &Cmd::new("glusterd")
                .arg("-LINFO")
                .arg(format!("--pid-file={}", pidfile.display())),
        )
        .await
        .unwrap_or_else(|e| {
            panic!("cannot start glusterd ({e}); `apt-get install -y glusterfs-server`, as .ci/run does")
        });
        for _ in 0..100 {
            if node.run(&gluster::volume_info(None)).await.is_ok() {
                return glusterd;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("our glusterd did not answer within 10 s");
    }

    /// The command prefix that enters its namespaces.
    fn prefix(&self) -> Vec<String> {
        ["nsenter", "-t", &self.holder.id().to_string(), "-m", "-n"]
            .map(str::to_owned)
            .to_vec()
    }

    /// Commands in its namespaces, one `gluster` process per command.
    fn node(&self) -> std::sync::Arc<NodeExecutor> {
        NodeExecutor::one_shot("ours", Transport::Prefix(self.prefix()))
    }

    /// The processes in its network namespace other than the holder.
    fn processes(&self) -> Vec<u32> {
        let holder = self.holder.id();
        let ns = |pid: &str| std::fs::read_link(Path::new("/proc").join(pid).join("ns/net")).ok();
        let Some(ours) = ns(&holder.to_string()) else {
            return Vec::new();
        };
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != holder && ns(&pid.to_string()).as_ref() == Some(&ours))
            .collect()
    }
}

impl Drop for Glusterd {
    fn drop(&mut self) {
        for pid in self.processes() {
            // It may have ended since it was listed.
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

async fn ok(node: &NodeExecutor, cmd: Cmd) -> Vec<u8> {
    let cmd = cmd.timeout(Duration::from_secs(120));
    let out = node.run(&cmd).await.unwrap_or_else(|e| panic!("{e}"));
    gluster::parse_outcome(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", cmd.display()));
    out.stdout
}

#[tokio::test]
async fn a_replica_3_volume_through_real_gluster() {
    let glusterd = Glusterd::start().await;
    // The same commands through a gluster process per command and through
    // the node's CLI session.
    let one_shot = glusterd.node();
    replica_3_volume(&one_shot, &glusterd.address, "one_shot").await;
    assert_eq!(one_shot.sessions_started(), 0);
    let session = NodeExecutor::new("ours", Transport::Prefix(glusterd.prefix()));
    replica_3_volume(&session, &glusterd.address, "session").await;
    assert_eq!(session.sessions_started(), 1);
    // A host the pool does not have is no peer to detach.
    let detach = session
        .run(&gluster::peer_detach("192.0.2.77"))
        .await
        .unwrap();
    let not_a_peer = gluster::parse_outcome(&detach.stdout).unwrap_err();
    assert_eq!(not_a_peer.kind(), Failure::NotAPeer, "{not_a_peer}");
}

async fn replica_3_volume(node: &NodeExecutor, host: &str, kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    // gluster creates the brick directory itself, but not its parent (in
    // production, the mounted brick filesystem).
    let bricks: Vec<(String, String)> = (1..=3)
        .map(|i| {
            std::fs::create_dir(dir.path().join(format!("b{i}"))).unwrap();
            (
                host.to_owned(),
                dir.path().join(format!("b{i}/brick")).display().to_string(),
            )
        })
        .collect();
    let name = format!("aplo_test_{kind}_{}", std::process::id());
    let scheme = Scheme::Replicate {
        count: 3,
        arbiter: false,
    };

    ok(node, gluster::volume_create(&name, &scheme, &bricks, true)).await;
    ok(
        node,
        gluster::volume_set(
            &name,
            "user.aplo.volume-id",
            "0000000000000000000000000000abcd",
        )
        .unwrap(),
    )
    .await;
    // Creating it again fails, and says why.
    let again = node
        .run(&gluster::volume_create(&name, &scheme, &bricks, true))
        .await
        .unwrap();
    let refused = gluster::parse_outcome(&again.stdout).unwrap_err();
    assert!(refused.to_string().contains("already exists"), "{refused}");
    assert_eq!(refused.kind(), Failure::AlreadyExists, "{refused}");

    ok(node, gluster::volume_start(&name, false)).await;
    // Starting it again fails too, as a volume already started.
    let again = node
        .run(&gluster::volume_start(&name, false))
        .await
        .unwrap();
    let started = gluster::parse_outcome(&again.stdout).unwrap_err();
    assert_eq!(started.kind(), Failure::AlreadyStarted, "{started}");
    let info =
        gluster::parse_volume_info(&ok(node, gluster::volume_info(Some(&name))).await).unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(
        (
            info[0].status.as_str(),
            info[0].replica_count,
            info[0].bricks.len()
        ),
        ("Started", 3, 3)
    );
    assert_eq!(info[0].bricks[2].path, bricks[2].1);
    assert_eq!(
        info[0]
            .options
            .get("user.aplo.volume-id")
            .map(String::as_str),
        Some("0000000000000000000000000000abcd")
    );
    let status =
        gluster::parse_volume_status(&ok(node, gluster::volume_status(&name)).await).unwrap();
    assert_eq!(status.len(), 3);
    assert!(status.iter().all(|b| b.online), "{status:?}");

    ok(node, gluster::volume_stop(&name)).await;
    ok(node, gluster::volume_delete(&name)).await;
    let gone = node.run(&gluster::volume_info(Some(&name))).await;
    let missing = match gone {
        Ok(out) => gluster::parse_volume_info(&out.stdout).unwrap_err(),
        Err(ExecError::Failed { stdout, .. }) => gluster::parse_volume_info(&stdout).unwrap_err(),
        Err(other) => panic!("{other}"),
    };
    assert!(
        matches!(missing, GlusterError::Failed { .. }) && missing.is_missing_volume(),
        "{missing}"
    );
}

/// The node's gluster session through ssh, as production reaches nodes:
/// one session for several commands, answers byte for byte those of a
/// one-shot `gluster` through the same ssh.
#[tokio::test]
async fn a_gluster_session_through_ssh() {
    let glusterd = Glusterd::start().await;
    // Every command that comes in through this sshd runs in our glusterd's
    // namespaces, as if ssh reached the node it runs on.
    let sshd = common::Sshd::start_with(&format!(
        "ForceCommand {} sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
        glusterd.prefix().join(" ")
    ));
    let session = NodeExecutor::new("ssh-local", sshd.transport());
    let one_shot = NodeExecutor::one_shot("ssh-local", sshd.transport());
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(ok(&session, gluster::pool_list()).await);
    }
    assert_eq!(session.sessions_started(), 1);
    let direct = ok(&one_shot, gluster::pool_list()).await;
    for answer in answers {
        assert_eq!(
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&direct)
        );
    }
    let peers = gluster::parse_pool_list(&direct).unwrap();
    assert!(peers.iter().any(|p| p.connected), "{peers:?}");
}
