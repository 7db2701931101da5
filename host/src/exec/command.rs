//! Running commands: argv only, `LC_ALL=C`, a timeout on every command, the
//! child killed when its future is dropped, stderr captured into errors, and
//! a trace of each command with its exit status and duration.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::session::{self, GlusterSession, Outcome, Unavailable};

/// One command: a program and its arguments, never a shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long it may run.
    pub timeout: Duration,
    /// Bytes for its standard input, if any.
    pub stdin: Option<Vec<u8>>,
    /// Whether executors may run it in the node's gluster CLI session
    /// ([`super::session`]) instead of starting `program`, when its
    /// arguments can be said as a session line ([`super::session::line_for`]).
    pub gluster_session: bool,
    /// Cgroup directories (one per hierarchy on cgroup v1, one on v2) the
    /// command moves itself into before it starts, so that it and every
    /// process it leaves behind (a daemonized FUSE client) live outside
    /// the caller's cgroup: a container runtime that kills the caller's
    /// cgroup does not kill them.
    pub cgroups: Vec<std::path::PathBuf>,
}

impl Cmd {
    /// The default timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// A command with no arguments and the default timeout.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            stdin: None,
            gluster_session: false,
            cgroups: Vec::new(),
        }
    }

    /// Add an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Start the command inside `cgroups` (see [`Cmd::cgroups`]).
    pub fn in_cgroups(mut self, cgroups: &[std::path::PathBuf]) -> Cmd {
        self.cgroups = cgroups.to_vec();
        self
    }

    /// The command as one line, for logs and errors (arguments quoted when
    /// they need it).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a command that exited 0 produced (any other status is an
/// [`ExecError::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// How long it ran.
    pub duration: Duration,
}

/// A command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started.
    #[error("{node}: cannot run `{command}`: {source}")]
    Spawn {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran past its timeout and was killed.
    #[error("{node}: `{command}` timed out after {timeout:?} and was killed")]
    Timeout {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// It exited non-zero (or was killed by a signal: status -1).
    #[error("{node}: `{command}` failed with status {status}: {stderr}")]
    Failed {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Exit status.
        status: i32,
        /// Its standard error, trimmed.
        stderr: String,
        /// Its standard output, for parsers that read failures from it.
        stdout: Vec<u8>,
    },
}

impl ExecError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ExecError::Spawn { .. } => "spawn",
            ExecError::Timeout { .. } => "timeout",
            ExecError::Failed { .. } => "failed",
        }
    }
}

/// How commands reach a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// On this machine.
    Local,
    /// On this machine behind a prefix, e.g. `nsenter -t PID -m -n` or
    /// `ip netns exec NAME` (how the test clusters reach their nodes).
    Prefix(Vec<String>),
    /// Through the OpenSSH client, non-interactively.
    Ssh {
        /// `user@host` or `host`.
        destination: String,
        /// Extra `ssh` options, e.g. `-i KEY` or `-p PORT`.
        options: Vec<String>,
    },
}

/// Options every ssh transport gets after the admin's own.
const SSH_DEFAULTS: [&str; 6] = [
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
];

impl Transport {
    /// The argv that runs `cmd` through this transport. ssh hands the
    /// remote side one string, which its shell splits: every argument is
    /// single-quoted, so nothing in it is interpreted.
    pub fn argv(&self, cmd: &Cmd) -> (String, Vec<String>) {
        match self {
            Transport::Local => (cmd.program.clone(), cmd.args.clone()),
            Transport::Prefix(prefix) => {
                let (first, rest) = prefix
                    .split_first()
                    .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
                let mut args: Vec<String> = rest.to_vec();
                args.push(cmd.program.clone());
                args.extend(cmd.args.iter().cloned());
                (first.to_owned(), args)
            }
            Transport::Ssh {
                destination,
                options,
            } => {
                let mut args = vec!["-o".into(), "BatchMode=yes".into()];
                args.extend(options.iter().cloned());
                // After the admin's options: ssh keeps the first value it
                // is given for each, so these are only defaults. A node
                // that is gone fails its commands within seconds instead
                // of after TCP's two minutes, and a kept gluster session
                // to a node that vanished ends within 15 s.
                args.extend(SSH_DEFAULTS.iter().map(|o| o.to_string()));
                args.push(destination.clone());
                args.push("--".into());
                args.push(format!("LC_ALL=C {}", cmd.display_always_quoted()));
                ("ssh".into(), args)
            }
        }
    }
}

impl Cmd {
    fn display_always_quoted(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quote for display when needed.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A boxed future, so that executors can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs commands on one node. The one narrow interface to the outside
/// world: nothing else in aplo starts processes.
pub trait Executor: Send + Sync {
    /// The node's name, for errors and traces.
    fn node(&self) -> &str;

    /// Run `cmd`; succeed only on exit status 0.
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output, ExecError>>;
}

/// Runs a node's commands one at a time through a [`Transport`], gluster
/// commands through a long-lived CLI session when they can be
/// ([`super::session`]).
pub struct NodeExecutor {
    node: String,
    transport: Transport,
    sessions: bool,
    started: std::sync::atomic::AtomicU64,
    serial: Mutex<Sessions>,
}

/// The node's gluster session, if one is running, and when to try one
/// again after a session could not be used.
#[derive(Default)]
struct Sessions {
    gluster: Option<GlusterSession>,
    retry_at: Option<Instant>,
}

impl NodeExecutor {
    /// An executor for `node` that keeps a gluster CLI session.
    pub fn new(node: impl Into<String>, transport: Transport) -> Arc<NodeExecutor> {
        Self::build(node.into(), transport, true)
    }

    /// An executor for `node` that starts a process for every command.
    pub fn one_shot(node: impl Into<String>, transport: Transport) -> Arc<NodeExecutor> {
        Self::build(node.into(), transport, false)
    }

    fn build(node: String, transport: Transport, sessions: bool) -> Arc<NodeExecutor> {
        Arc::new(NodeExecutor {
            node,
            transport,
            sessions,
            started: std::sync::atomic::AtomicU64::new(0),
            serial: Mutex::new(Sessions::default()),
        })
    }

    /// How many gluster sessions this executor has started.
    pub fn sessions_started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Run `line` in the node's gluster session, starting one if needed;
    /// `None` if no session can take it now (the caller runs it one-shot).
    async fn in_session(
        &self,
        state: &mut Sessions,
        cmd: &Cmd,
        line: &str,
    ) -> Option<Result<Output, ExecError>> {
        if state.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        if !state.gluster.as_mut().is_some_and(GlusterSession::usable) {
            state.gluster = None;
            match GlusterSession::start(&self.transport) {
                Ok(session) => {
                    self.started
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    state.gluster = Some(session);
                }
                Err(why) => return self.unavailable(state, why),
            }
        }
        let session = state.gluster.as_mut()?;
        match session.run(&self.node, cmd, line).await {
            Outcome::Ran(result) => {
                if !session.usable() {
                    state.gluster = None;
                }
                Some(result)
            }
            Outcome::Unavailable(why) => self.unavailable(state, why),
        }
    }

    fn unavailable(
        &self,
        state: &mut Sessions,
        why: Unavailable,
    ) -> Option<Result<Output, ExecError>> {
        tracing::info!(node = %self.node, %why, retry_in = ?session::RETRY_AFTER, "running gluster commands one-shot");
        state.gluster = None;
        state.retry_at = Some(Instant::now() + session::RETRY_AFTER);
        None
    }

    async fn execute(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let mut state = self.serial.lock().await;
        if let Some(line) = session::line_for(cmd).filter(|_| self.sessions)
            && let Some(result) = self.in_session(&mut state, cmd, &line).await
        {
            return result;
        }
        let (program, args) = self.transport.argv(cmd);
        let command = cmd.display();
        let mut command_line = tokio::process::Command::new(&program);
        if !cmd.cgroups.is_empty() {
            join_cgroups_before_exec(&mut command_line, &cmd.cgroups).map_err(|source| {
                ExecError::Spawn {
                    node: self.node.clone(),
                    command: command.clone(),
                    source,
                }
            })?;
        }
        let mut child = command_line
            .args(&args)
            .env("LC_ALL", "C")
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ExecError::Spawn {
                node: self.node.clone(),
                command: command.clone(),
                source,
            })?;
        if let (Some(input), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            // A child that exits without reading is not an error here; its
            // status says what happened.
            let _ = pipe.write_all(input).await;
        }
        let started = Instant::now();
        let finished = tokio::time::timeout(cmd.timeout, child.wait_with_output()).await;
        let duration = started.elapsed();
        let output = match finished {
            Err(_) => {
                tracing::warn!(node = %self.node, %command, ?duration, "command timed out");
                return Err(ExecError::Timeout {
                    node: self.node.clone(),
                    command,
                    timeout: cmd.timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(ExecError::Spawn {
                    node: self.node.clone(),
                    command,
                    source,
                });
            }
            Ok(Ok(output)) => output,
        };
        let status = output.status.code().unwrap_or(-1);
        tracing::debug!(node = %self.node, %command, status, ?duration, "command ran");
        if status != 0 {
            return Err(ExecError::Failed {
                node: self.node.clone(),
                command,
                status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                stdout: output.stdout,
            });
        }
        Ok(Output {
            stdout: output.stdout,
            stderr: output.stderr,
            duration,
        })
    }
}

/// Make `command` move itself into each of `cgroups` between fork and
/// exec, by writing `0` (the writer itself) to the cgroup's
/// `cgroup.procs`. Its children, such as the FUSE client a mount helper
/// daemonizes, inherit the cgroup. A cgroup that cannot be joined fails
/// the command before it runs.
fn join_cgroups_before_exec(
    command: &mut tokio::process::Command,
    cgroups: &[std::path::PathBuf],
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    // Everything the child needs is made here, before the fork: between
    // fork and exec only async-signal-safe calls (open, write, close) run.
    let files: Vec<std::ffi::CString> = cgroups
        .iter()
        .map(|dir| {
            std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
                .map_err(|_| std::io::Error::other(format!("cgroup path {dir:?} holds a NUL")))
        })
        .collect::<std::io::Result<_>>()?;
    #[allow(unsafe_code)]
    // SAFETY: the closure only calls open(2), write(2) and close(2) through
    // rustix on paths built before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for file in &files {
                let fd = rustix::fs::open(
                    file.as_c_str(),
                    rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                rustix::io::write(&fd, b"0")?;
            }
            Ok(())
        });
    }
    Ok(())
}

impl Executor for NodeExecutor {
    fn node(&self) -> &str {
        &self.node
    }

    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output, ExecError>> {
        Box::pin(self.execute(cmd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_build_argv_without_a_local_shell() {
        let cmd = Cmd::new("gluster").args(["volume", "info", "it's; rm -rf /"]);
        assert_eq!(
            Transport::Local.argv(&cmd),
            ("gluster".to_owned(), cmd.args.clone())
        );
        let prefix = Transport::Prefix(vec![
            "nsenter".into(),
            "-t".into(),
            "42".into(),
            "-m".into(),
            "-n".into(),
        ]);
        let (program, args) = prefix.argv(&cmd);
        assert_eq!(program, "nsenter");
        assert_eq!(
            args,
            [
                "-t",
                "42",
                "-m",
                "-n",
                "gluster",
                "volume",
                "info",
                "it's; rm -rf /"
            ]
        );
        let ssh = Transport::Ssh {
            destination: "root@node1".into(),
            options: vec!["-p".into(), "2222".into()],
        };
        let (program, args) = ssh.argv(&cmd);
        assert_eq!(program, "ssh");
        assert_eq!(
            args.last().unwrap(),
            r"LC_ALL=C 'gluster' 'volume' 'info' 'it'\''s; rm -rf /'"
        );
        assert!(args.contains(&"BatchMode=yes".to_owned()) && args.contains(&"--".to_owned()));
        // The defaults come after the admin's options, so that theirs win
        // (ssh keeps the first value of each option).
        let at = |word: &str| args.iter().position(|a| a == word).unwrap();
        assert!(at("2222") < at("ConnectTimeout=10"));
        assert!(at("ServerAliveCountMax=3") < at("root@node1"));
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new("lvcreate").args(["-L", "10G", "--addtag", "aplo.brick=ab", "a b"]);
        assert_eq!(
            cmd.display(),
            "lvcreate -L 10G --addtag aplo.brick=ab 'a b'"
        );
    }
}
