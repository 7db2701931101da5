//! The executor against real processes: status, stderr, timeouts that kill,
//! prefixes, LC_ALL and per-node serialization.

use std::time::{Duration, Instant};

use aplo::exec::command::{Cmd, ExecError, Executor, NodeExecutor, Transport};

fn sh(script: &str) -> Cmd {
    Cmd::new("sh").arg("-c").arg(script)
}

#[tokio::test]
async fn output_status_and_stderr_are_captured() {
    let node = NodeExecutor::new("local", Transport::Local);
    let out = node.run(&sh("echo hello; echo note >&2")).await.unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"note\n");
    match node
        .run(&sh("echo partial; echo 'it broke' >&2; exit 3"))
        .await
    {
        Err(ExecError::Failed {
            status: 3,
            stderr,
            stdout,
            command,
            ..
        }) => {
            assert_eq!(stderr, "it broke");
            assert_eq!(stdout, b"partial\n");
            assert!(command.starts_with("sh -c"), "{command}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_environment_is_lc_all_c_and_stdin_is_passed() {
    let node = NodeExecutor::new("local", Transport::Local);
    let out = node.run(&sh("echo $LC_ALL")).await.unwrap();
    assert_eq!(out.stdout, b"C\n");
    let mut cat = Cmd::new("cat");
    cat.stdin = Some(b"piped in".to_vec());
    assert_eq!(node.run(&cat).await.unwrap().stdout, b"piped in");
}

#[tokio::test]
async fn a_missing_program_names_itself() {
    let node = NodeExecutor::new("n1", Transport::Local);
    let err = node
        .run(&Cmd::new("no-such-program-aplo"))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Spawn { .. }));
    assert!(
        err.to_string().contains("n1") && err.to_string().contains("no-such-program-aplo"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let node = NodeExecutor::new("local", Transport::Local);
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let started = Instant::now();
    let err = node
        .run(&sh(&script).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    // The killed child is reaped shortly after; it must not live on.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(gone, "process {pid} survived its timeout");
}

#[tokio::test]
async fn a_prefix_wraps_every_command() {
    let node = NodeExecutor::new(
        "ns",
        Transport::Prefix(vec!["env".into(), "APLO_NODE=ns1".into()]),
    );
    let out = node.run(&sh("echo $APLO_NODE")).await.unwrap();
    assert_eq!(out.stdout, b"ns1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_one_node_run_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let node = NodeExecutor::new("serial", Transport::Local);
    let script = format!(
        "echo start >> {0}; sleep 0.2; echo end >> {0}",
        log.display()
    );
    let cmd = sh(&script);
    let (a, b) = tokio::join!(node.run(&cmd), node.run(&cmd));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "start\nend\nstart\nend\n"
    );
}
