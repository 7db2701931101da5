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
