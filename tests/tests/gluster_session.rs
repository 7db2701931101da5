//! A node's gluster commands go through one long-lived CLI session
//! (`aplo::exec::session`) on a real glusterd (two nodes, the second
//! detached through the session): answers are byte for byte
//! what a one-shot `gluster` prints, failed operations keep the session,
//! a line the CLI cannot parse ends it with its message, arguments a line
//! cannot carry run one-shot, and a glusterd that is gone fails the command
//! at once instead of after the CLI's two-minute wait.

use std::time::Duration;

use aplo::exec::command::{ExecError, Executor, NodeExecutor};
use aplo::exec::{gluster, session};
use aplo::model::Scheme;
use aplo_e2e::Cluster;

fn outcome(result: Result<aplo::exec::command::Output, ExecError>) -> Vec<u8> {
    let out = result.unwrap_or_else(|e| panic!("{e}"));
    gluster::parse_outcome(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gluster_commands_share_one_cli_session_and_fall_back_when_it_cannot_serve() {
    let cluster = Cluster::start("gs", 2)
        .await
        .expect("the two-node cluster starts");
    let node = &cluster.nodes[0];
    let session = NodeExecutor::new("gs-session", node.transport.clone());
    let one_shot = NodeExecutor::one_shot("gs-one-shot", node.transport.clone());

    for _ in 0..5 {
        let peers =
            gluster::parse_pool_list(&outcome(session.run(&gluster::pool_list()).await)).unwrap();
        assert_eq!(peers.len(), 2, "{peers:?}");
    }
    assert_eq!(session.sessions_started(), 1, "five commands, one session");
    // The harness probed the second node; detach it through the session.
    outcome(
        session
            .run(&gluster::peer_detach(&cluster.nodes[1].address))
            .await,
    );
    let peers =
        gluster::parse_pool_list(&outcome(session.run(&gluster::pool_list()).await)).unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(session.sessions_started(), 1);

    // A volume made through the session; one option's value has a space,
    // which a session line cannot carry, so that command runs one-shot.
    std::fs::create_dir_all(node.bricks.join("s1")).unwrap();
    let bricks = [(
        node.address.clone(),
        node.bricks.join("s1/brick").display().to_string(),
    )];
    let create = gluster::volume_create("sess", &Scheme::None, &bricks, true);
    assert!(session::line_for(&create).is_some_and(|l| l.ends_with("/s1/brick force")));
    outcome(session.run(&create).await);
    let spaced = gluster::volume_set("sess", "user.aplo.note", "two words").unwrap();
    assert_eq!(session::line_for(&spaced), None);
    outcome(session.run(&spaced).await);
    outcome(
        session
            .run(&gluster::volume_set("sess", "user.aplo.plain", "one").unwrap())
            .await,
    );
    // A failed operation is an answer like any other: the session stays.
    let again = session.run(&create).await.unwrap();
    let refused = gluster::parse_outcome(&again.stdout).unwrap_err();
    assert!(refused.to_string().contains("already exists"), "{refused}");
    outcome(session.run(&gluster::volume_start("sess", false)).await);
    let info = outcome(session.run(&gluster::volume_info(Some("sess"))).await);
    let volumes = gluster::parse_volume_info(&info).unwrap();
    assert_eq!(volumes[0].status, "Started");
    assert_eq!(
        volumes[0].options.get("user.aplo.note").map(String::as_str),
        Some("two words")
    );
    assert_eq!(
        volumes[0]
            .options
            .get("user.aplo.plain")
            .map(String::as_str),
        Some("one")
    );
    // Byte for byte what a one-shot gluster prints.
    let direct = outcome(one_shot.run(&gluster::volume_info(Some("sess"))).await);
    assert_eq!(
        String::from_utf8_lossy(&info),
        String::from_utf8_lossy(&direct)
    );
    assert_eq!(session.sessions_started(), 1);
    assert_eq!(one_shot.sessions_started(), 0);

    // A line the CLI cannot parse ends the session, with the CLI's usage
    // message as the failure; the next command starts a new session.
    let bogus = gluster::gluster(["volume", "create", "lonely"]);
    assert!(session::line_for(&bogus).is_some());
    match session.run(&bogus).await {
        Err(ExecError::Failed { stderr, status, .. }) => {
            assert_ne!(status, 0);
            assert!(stderr.contains("Usage"), "{stderr}");
        }
        other => panic!("a command the CLI cannot parse must fail: {other:?}"),
    }
    outcome(session.run(&gluster::pool_list()).await);
    assert_eq!(session.sessions_started(), 2);

    // glusterd gone: the session's check fails within the CLI's one
    // second, and the command runs one-shot and fails at once, as
    // unreachable. Without the check the CLI would wait two minutes for a
    // connection; the bound here only catches that hang.
    node.kill_gluster();
    let gone = tokio::time::timeout(Duration::from_secs(60), session.run(&gluster::pool_list()))
        .await
        .expect("a command to a dead glusterd must not hang");
    match gone {
        Err(ExecError::Failed { stderr, stdout, .. }) => {
            let said = format!("{stderr} {}", String::from_utf8_lossy(&stdout));
            assert!(said.contains("Connection failed"), "{said}");
        }
        other => panic!("a dead glusterd must fail the command: {other:?}"),
    }
    // For a while the node's commands stay one-shot: no new session.
    let _ = session.run(&gluster::pool_list()).await;
    assert_eq!(session.sessions_started(), 2);
    let _ = session.run(&gluster::volume_stop("sess")).await;
}
