//! The ssh transport, which production uses to reach its nodes, against a
//! real sshd on 127.0.0.1: arguments arrive exactly as given (the remote
//! shell interprets nothing), standard input is passed, and exit status and
//! standard error come back as the failure.

mod common;

use aplo::exec::command::{Cmd, ExecError, Executor, NodeExecutor};

#[tokio::test]
async fn commands_through_ssh_arrive_exactly_and_report_failures() {
    let sshd = common::Sshd::start();
    let node = NodeExecutor::new("ssh-local", sshd.transport());

    let awkward = ["it's; rm -rf /", "$HOME", "a  b", "*", "`id`", ""];
    let out = node
        .run(&Cmd::new("printf").arg("<%s>\\n").args(awkward))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: String = awkward.iter().map(|a| format!("<{a}>\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let mut cat = Cmd::new("cat");
    cat.stdin = Some(b"through ssh\n".to_vec());
    let out = node.run(&cat).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.stdout, b"through ssh\n");

    match node
        .run(&Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]))
        .await
    {
        Err(ExecError::Failed { status, stderr, .. }) => {
            assert_eq!(status, 3);
            assert_eq!(stderr, "oops");
        }
        other => panic!("a failing command must fail: {other:?}"),
    }
}

/// A node whose ssh port accepts connections but never answers (a listener
/// that never accepts: the kernel completes the handshake, no banner ever
/// comes). Without a connect timeout ssh would wait forever.
#[tokio::test]
async fn a_node_that_never_answers_fails_within_the_connect_timeout() {
    use std::time::{Duration, Instant};

    use aplo::exec::command::Transport;
    use aplo::exec::gluster;

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let transport = |extra: &[&str]| Transport::Ssh {
        destination: "root@127.0.0.1".into(),
        options: ["-p", &port, "-o", "StrictHostKeyChecking=no"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect(),
    };
    let unreachable = |result: Result<_, ExecError>| match result {
        Err(ExecError::Failed { status: 255, .. }) => {}
        other => panic!("ssh to a silent node must fail with status 255: {other:?}"),
    };

    // aplo's default (ConnectTimeout=10): ssh gives up by itself.
    let node = NodeExecutor::one_shot("silent", transport(&[]));
    let ran = tokio::time::timeout(Duration::from_secs(60), node.run(&Cmd::new("true")))
        .await
        .expect("ssh must give up by itself");
    unreachable(ran);

    // The admin's own value wins over the default (ssh keeps the first).
    let node = NodeExecutor::one_shot("silent", transport(&["-o", "ConnectTimeout=1"]));
    let started = Instant::now();
    unreachable(node.run(&Cmd::new("true")).await);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "ConnectTimeout=1 should end it long before the default's 10 s: {took:?}"
    );

    // A gluster command through a session: the session's check gets no
    // answer, and the command runs one-shot and fails as unreachable.
    let node = NodeExecutor::new("silent", transport(&["-o", "ConnectTimeout=1"]));
    let ran = tokio::time::timeout(Duration::from_secs(60), node.run(&gluster::pool_list()))
        .await
        .expect("a session to a silent node must not hang");
    unreachable(ran);
    drop(silent);
}
