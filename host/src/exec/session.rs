//! A long-lived `gluster` CLI on a node, fed one command per line.
//!
//! Every `gluster` invocation spends ~40-55 ms starting before it talks to
//! glusterd (it runs `gsyncd --version`, a Python program, to decide
//! whether to offer geo-replication). Started with its standard input not a
//! terminal and no command, the CLI instead reads commands from standard
//! input, one per line, in script mode, and answers each in turn; a node's
//! executor keeps one such session and pays the start once.
//!
//! How one command is said and framed:
//!
//! ```text
//! system:: getwd        ->  /var/lib/glusterd             (the CLI is connected)
//! volume start v1       ->  <?xml …><cliOutput>…</cliOutput>
//! system:: getwd        ->  /var/lib/glusterd             (the answer is complete)
//! ```
//!
//! - `system:: getwd` is the one CLI command that waits only one second for
//!   its connection to glusterd, and then prints "Connection failed" and
//!   exits. Every other command would wait two minutes for a glusterd that
//!   is gone. The leading `getwd` is therefore a cheap (~0.5 ms) check that
//!   glusterd is there, and the command is written only once it answered.
//!   If it does not, the session is dropped before it saw the command, and
//!   the command runs as a one-shot `gluster` instead, which fails at once
//!   as it always did; the node's commands stay one-shot for
//!   [`RETRY_AFTER`].
//! - The trailing `getwd` marks the end of the answer, whatever the command
//!   prints; its line is glusterd's working directory, learnt from the
//!   first check.
//! - A command the CLI cannot parse makes it exit (script mode stops at the
//!   first such error): end of output, the exit status and standard error
//!   become the command's failure, as for a one-shot call.
//! - Output is made line-buffered with `stdbuf -oL` (coreutils): the CLI
//!   prints plain text through stdio, which a pipe would hold back.
//! - A line is at most 1,023 bytes (the CLI's `fgets` buffer) and is split
//!   on white space with no quoting, so a command that cannot be said that
//!   way is never given a line (see [`session_line`]).
//! - A session whose exchange was interrupted (its future dropped, a
//!   timeout) is killed rather than reused, so an answer is never read as
//!   the next command's.
//! - A session is replaced after 1,000 commands or ten minutes.

use std::process::Stdio;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::command::{Cmd, ExecError, Output, Transport};

/// The longest line the CLI reads whole, newline included.
const LINE_LIMIT: usize = 1023;

/// How long the connection check may take. The CLI itself gives up after
/// one second; the rest is room for a slow transport.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The command that checks the connection and marks the end of an answer.
const GETWD: &str = "system:: getwd";

/// How long a node whose session could not be used runs one-shot commands
/// before a session is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A session is replaced after this many commands or this long, so that
/// whatever a long-lived CLI might accumulate never does for long.
const MAX_COMMANDS: u32 = 1000;
const MAX_AGE: Duration = Duration::from_secs(600);

/// The banner the CLI prints on standard error when it starts reading.
const BANNER: &str = "Welcome to gluster prompt";

/// The options of a one-shot `gluster` command; a session is started with
/// them, and a command's line is what follows them.
pub const ONE_SHOT: [&str; 2] = ["--mode=script", "--xml"];

/// The line that runs `cmd` in a gluster session: for a command marked
/// for sessions, `gluster --mode=script --xml` and arguments a line can
/// carry ([`session_line`]).
pub fn line_for(cmd: &Cmd) -> Option<String> {
    let (options, words) = cmd.args.split_at_checked(ONE_SHOT.len())?;
    if options.iter().zip(ONE_SHOT).any(|(a, b)| a != b) {
        return None;
    }
    (cmd.gluster_session && cmd.program == "gluster" && cmd.stdin.is_none() && known(words))
        .then(|| session_line(words))
        .flatten()
}

/// Whether a session is known to answer this command as a one-shot CLI
/// does: the commands aplo makes, each run through sessions by the tests
/// on a real cluster. Others run one-shot; `volume quota V list`, for one,
/// ends a session with no answer.
fn known(words: &[String]) -> bool {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    matches!(
        words.as_slice(),
        ["pool", "list"]
            | ["peer", "probe" | "detach", _]
            | [
                "volume",
                "create"
                    | "set"
                    | "start"
                    | "stop"
                    | "delete"
                    | "info"
                    | "status"
                    | "add-brick"
                    | "replace-brick",
                ..
            ]
            | ["volume", "rebalance", _, "start"]
            | ["volume", "heal", _, "info"]
            | ["volume", "quota", _, "enable" | "limit-usage", ..]
    )
}

/// `args` as one line for a session, if the CLI would split that line back
/// into exactly `args`: no empty argument, no white space inside one, no
/// line longer than the CLI reads.
pub fn session_line(args: &[String]) -> Option<String> {
    let sayable = !args.is_empty()
        && args
            .iter()
            .all(|a| !a.is_empty() && !a.bytes().any(|b| b.is_ascii_whitespace() || b == 0));
    let line = args.join(" ");
    (sayable && line.len() < LINE_LIMIT).then_some(line)
}

/// Why a session could not carry a command (it then runs one-shot).
#[derive(Debug)]
pub enum Unavailable {
    /// The session could not be started.
    Spawn(std::io::Error),
    /// The connection check did not answer with glusterd's directory.
    Check(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Spawn(e) => write!(f, "cannot start a gluster session: {e}"),
            Unavailable::Check(why) => write!(f, "gluster session not connected: {why}"),
        }
    }
}

/// What happened to one command given to a session.
pub enum Outcome {
    /// The session did not take it; nothing was sent to glusterd.
    Unavailable(Unavailable),
    /// It ran (or was killed for its timeout); this is its result.
    Ran(Result<Output, ExecError>),
}

/// One running CLI session.
pub struct GlusterSession {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<SyncMutex<Vec<u8>>>,
    /// glusterd's working directory, the answer to `getwd`.
    workdir: Option<String>,
    /// False between sending a command and reading its whole answer.
    in_step: bool,
    /// Commands given so far, and when the session started.
    commands: u32,
    born: Instant,
}

impl GlusterSession {
    /// The command that starts a session (a transport puts its prefix or
    /// ssh in front).
    pub fn command() -> Cmd {
        Cmd::new("stdbuf").args(["-oL", "gluster"]).args(ONE_SHOT)
    }

    /// Start a session through `transport`.
    pub fn start(transport: &Transport) -> Result<GlusterSession, Unavailable> {
        let (program, args) = transport.argv(&Self::command());
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(Unavailable::Spawn)?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Unavailable::Spawn(std::io::Error::other(
                "the session's pipes were not opened",
            )));
        };
        // Standard error is drained as it comes, so that the CLI never
        // blocks on a full pipe; each answer takes what arrived with it.
        let stderr = Arc::new(SyncMutex::new(Vec::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Ok(GlusterSession {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            workdir: None,
            in_step: false,
            commands: 0,
            born: Instant::now(),
        })
    }

    /// Whether the session can take another command: not in the middle of
    /// an exchange, still running, and neither too old nor too used.
    pub fn usable(&mut self) -> bool {
        !self.in_step
            && self.commands < MAX_COMMANDS
            && self.born.elapsed() < MAX_AGE
            && matches!(self.child.try_wait(), Ok(None))
    }

    fn take_stderr(&self) -> String {
        let bytes = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|e| e.into_inner()));
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.starts_with(BANNER))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    }

    /// One line of standard output, newline included, as the CLI wrote it.
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        match self.stdout.read_until(b'\n', &mut line).await? {
            0 => Ok(None),
            _ => Ok(Some(line)),
        }
    }

    /// Run `line` (the command `cmd` as one line). The caller drops the
    /// session after anything but a clean answer.
    pub async fn run(&mut self, node: &str, cmd: &Cmd, line: &str) -> Outcome {
        let command = cmd.display();
        self.in_step = true;
        self.commands += 1;
        let started = Instant::now();
        if let Err(e) = self.stdin.write_all(format!("{GETWD}\n").as_bytes()).await {
            return Outcome::Unavailable(Unavailable::Check(format!("cannot write to it: {e}")));
        }
        // The connection check.
        let first = match tokio::time::timeout(CHECK_TIMEOUT, self.read_line()).await {
            Err(_) => return Outcome::Unavailable(Unavailable::Check("no answer".into())),
            Ok(Err(e)) => return Outcome::Unavailable(Unavailable::Check(e.to_string())),
            Ok(Ok(None)) => {
                return Outcome::Unavailable(Unavailable::Check(format!(
                    "it exited: {}",
                    self.take_stderr()
                )));
            }
            Ok(Ok(Some(l))) => l,
        };
        let first = String::from_utf8_lossy(&first);
        let dir = first.trim_end_matches('\n');
        match &self.workdir {
            _ if !dir.starts_with('/') => {
                return Outcome::Unavailable(Unavailable::Check(dir.trim().to_owned()));
            }
            Some(known) if known != dir => {
                return Outcome::Unavailable(Unavailable::Check(format!(
                    "glusterd's directory changed from {known} to {dir}"
                )));
            }
            _ => self.workdir = Some(dir.to_owned()),
        }
        let workdir = format!("{dir}\n").into_bytes();
        // Only now is the command sent: a session that failed its check
        // never saw it, so running it one-shot instead cannot run it twice.
        if let Err(source) = self
            .stdin
            .write_all(format!("{line}\n{GETWD}\n").as_bytes())
            .await
        {
            return Outcome::Ran(Err(ExecError::Spawn {
                node: node.to_owned(),
                command,
                source,
            }));
        }
        // The command's answer, up to the closing check.
        let mut stdout = Vec::new();
        let answer = async {
            loop {
                match self.read_line().await? {
                    None => return Ok::<bool, std::io::Error>(false),
                    // The closing check's line; an answer that did not
                    // end its last line shares it.
                    Some(l) if l.ends_with(&workdir) => {
                        stdout.extend_from_slice(&l[..l.len() - workdir.len()]);
                        return Ok(true);
                    }
                    Some(l) => stdout.extend_from_slice(&l),
                }
            }
        };
        let finished = tokio::time::timeout(cmd.timeout, answer).await;
        let duration = started.elapsed();
        match finished {
            Err(_) => {
                tracing::warn!(%node, %command, ?duration, "command timed out in the gluster session");
                Outcome::Ran(Err(ExecError::Timeout {
                    node: node.to_owned(),
                    command,
                    timeout: cmd.timeout,
                }))
            }
            Ok(Err(source)) => Outcome::Ran(Err(ExecError::Spawn {
                node: node.to_owned(),
                command,
                source,
            })),
            Ok(Ok(true)) => {
                self.in_step = false;
                tracing::debug!(%node, %command, ?duration, "command ran in the gluster session");
                Outcome::Ran(Ok(Output {
                    stdout,
                    stderr: self.take_stderr().into_bytes(),
                    duration,
                }))
            }
            Ok(Ok(false)) if complete_xml(&mut stdout) => {
                // The answer is whole; only the closing check failed (the
                // connection was lost after the command ran). The session
                // has exited and is not reused.
                tracing::debug!(%node, %command, ?duration, "command ran; its gluster session then lost glusterd");
                Outcome::Ran(Ok(Output {
                    stdout,
                    stderr: self.take_stderr().into_bytes(),
                    duration,
                }))
            }
            Ok(Ok(false)) => {
                // The CLI exited: a command it refused, or the connection
                // lost after the check.
                let status = match tokio::time::timeout(CHECK_TIMEOUT, self.child.wait()).await {
                    Ok(Ok(s)) => s.code().unwrap_or(-1),
                    _ => -1,
                };
                // Let the drain catch the last of standard error.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let mut stderr = self.take_stderr();
                if stderr.is_empty() {
                    stderr = String::from_utf8_lossy(&stdout).trim().to_owned();
                }
                tracing::debug!(%node, %command, status, ?duration, "command ended the gluster session");
                Outcome::Ran(Err(ExecError::Failed {
                    node: node.to_owned(),
                    command,
                    status: if status == 0 { 1 } else { status },
                    stderr,
                    stdout,
                }))
            }
        }
    }
}

/// Whether `stdout` holds a whole `--xml` answer; if so, whatever the CLI
/// printed after it is cut off.
fn complete_xml(stdout: &mut Vec<u8>) -> bool {
    const END: &[u8] = b"</cliOutput>\n";
    match stdout.windows(END.len()).position(|w| w == END) {
        Some(at) => {
            stdout.truncate(at + END.len());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn lines_only_for_what_the_cli_splits_back_exactly() {
        assert_eq!(
            session_line(&words("volume start v1 force")).as_deref(),
            Some("volume start v1 force")
        );
        assert_eq!(session_line(&[]), None);
        assert_eq!(
            session_line(&[
                "volume".into(),
                "set".into(),
                "v".into(),
                "k".into(),
                "a b".into()
            ]),
            None
        );
        assert_eq!(session_line(&["volume".into(), String::new()]), None);
        assert_eq!(session_line(&["volume".into(), "a\tb".into()]), None);
        assert_eq!(session_line(&["volume".into(), "a\nb".into()]), None);
        let long = vec!["x".repeat(600), "y".repeat(600)];
        assert_eq!(session_line(&long), None);
        let fits = vec!["x".repeat(500), "y".repeat(500)];
        assert_eq!(session_line(&fits).map(|l| l.len()), Some(1001));
    }

    #[test]
    fn a_command_s_line_is_built_from_all_its_arguments() {
        use crate::exec::gluster;
        use crate::model::Scheme;
        let bricks = [
            ("n1".to_owned(), "/b1/brick".to_owned()),
            ("n2".to_owned(), "/b2/brick".to_owned()),
        ];
        let create = gluster::volume_create(
            "v",
            &Scheme::Replicate {
                count: 2,
                arbiter: false,
            },
            &bricks,
            true,
        );
        assert_eq!(
            line_for(&create).as_deref(),
            Some("volume create v replica 2 n1:/b1/brick n2:/b2/brick force")
        );
        // Not marked for sessions, not gluster, or not the one-shot form.
        let mut unmarked = create.clone();
        unmarked.gluster_session = false;
        assert_eq!(line_for(&unmarked), None);
        assert_eq!(line_for(&Cmd::new("lvs").arg("--xml")), None);
        let mut bare = Cmd::new("gluster").args(["volume", "list"]);
        bare.gluster_session = true;
        assert_eq!(line_for(&bare), None);
        assert_eq!(
            line_for(&gluster::volume_set("v", "k", "a b").unwrap()),
            None
        );
        // Only the commands aplo makes, which the tests run in sessions.
        for made in [
            gluster::pool_list(),
            gluster::peer_probe("n2"),
            gluster::volume_heal_info("v"),
            gluster::rebalance_start("v"),
            gluster::quota_enable("v"),
            gluster::quota_limit("v", 1 << 30),
            gluster::volume_status("v"),
        ] {
            assert!(line_for(&made).is_some(), "{}", made.display());
        }
        assert_eq!(
            line_for(&gluster::gluster(["volume", "quota", "v", "list"])),
            None
        );
        assert_eq!(line_for(&gluster::gluster(["snapshot", "list"])), None);
    }

    #[test]
    fn a_whole_answer_is_kept_and_what_follows_it_cut() {
        let mut out =
            b"<cliOutput>\n  <opRet>0</opRet>\n</cliOutput>\nConnection failed.\n".to_vec();
        assert!(complete_xml(&mut out));
        assert_eq!(out, b"<cliOutput>\n  <opRet>0</opRet>\n</cliOutput>\n");
        let mut cut = b"<cliOutput>\n  <opRet>0</opRet>\n".to_vec();
        assert!(!complete_xml(&mut cut));
        assert_eq!(cut, b"<cliOutput>\n  <opRet>0</opRet>\n");
    }
}
