//! gluster command lines against a real glusterd on this machine: create,
//! set, start, info, status, stop and delete a replica-3 volume, with bricks
//! in directories (so `force`), and read every answer with the parsers.

mod common;

use std::time::Duration;

use aplo::exec::command::{Cmd, ExecError, Executor, NodeExecutor, Transport};
use aplo::exec::gluster::{self, GlusterError};
use aplo::model::Scheme;

/// The tests here share this machine's glusterd, which one of them may
/// start and stop: they take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A glusterd this test started (stopped when dropped), or one that was
/// already running (left alone).
struct Glusterd {
    started: Option<u32>,
}

impl Glusterd {
    async fn ensure(node: &NodeExecutor) -> Glusterd {
        if node.run(&gluster::volume_info(None)).await.is_ok() {
            return Glusterd { started: None };
        }
        let pidfile =
            std::env::temp_dir().join(format!("aplo-test-glusterd-{}.pid", std::process::id()));
        node.run(&Cmd::new("glusterd").arg("-LINFO").arg(format!("--pid-file={}", pidfile.display())))
            .await
            .unwrap_or_else(|e| panic!("cannot start glusterd ({e}); `apt-get install -y glusterfs-server`, as .ci/run does"));
        for _ in 0..100 {
            if node.run(&gluster::volume_info(None)).await.is_ok() {
                let pid = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|p| p.trim().parse().ok());
                assert!(
                    pid.is_some(),
                    "glusterd wrote no pid file at {}",
                    pidfile.display()
                );
                return Glusterd { started: pid };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("glusterd did not answer within 10 s");
    }
}

impl Drop for Glusterd {
    fn drop(&mut self) {
        if let Some(pid) = self.started {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
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
    let _turn = TURN.lock().await;
    let _glusterd = Glusterd::ensure(&NodeExecutor::one_shot("local", Transport::Local)).await;
    // The same commands through a gluster process per command and through
    // the node's CLI session.
    let one_shot = NodeExecutor::one_shot("local", Transport::Local);
    replica_3_volume(&one_shot, "one_shot").await;
    assert_eq!(one_shot.sessions_started(), 0);
    let session = NodeExecutor::new("local", Transport::Local);
    replica_3_volume(&session, "session").await;
    assert_eq!(session.sessions_started(), 1);
}

async fn replica_3_volume(node: &NodeExecutor, kind: &str) {
    let host = String::from_utf8(node.run(&Cmd::new("hostname")).await.unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    // gluster creates the brick directory itself, but not its parent (in
    // production, the mounted brick filesystem).
    let bricks: Vec<(String, String)> = (1..=3)
        .map(|i| {
            std::fs::create_dir(dir.path().join(format!("b{i}"))).unwrap();
            (
                host.clone(),
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

    ok(node, gluster::volume_start(&name, false)).await;
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
    let _turn = TURN.lock().await;
    let _glusterd = Glusterd::ensure(&NodeExecutor::one_shot("local", Transport::Local)).await;
    let sshd = common::Sshd::start();
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
