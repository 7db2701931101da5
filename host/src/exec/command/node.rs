//! The executor of one node: its commands one at a time through its
//! transport, gluster commands through a kept CLI session when they can be.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{BoxFuture, Cmd, ExecError, Executor, Output, Transport};
use crate::exec::session::{self, GlusterSession, Outcome, Unavailable};

/// Runs a node's commands one at a time through a [`Transport`], gluster
/// commands through a long-lived CLI session when they can be
/// ([`crate::exec::session`]).
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
