//! Running commands: argv only, `LC_ALL=C`, a timeout on every command, the
//! child killed when its future is dropped, stderr captured into errors, and
//! a trace of each command with its exit status and duration.

mod node;
mod transport;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::node::NodeExecutor;
pub use self::transport::Transport;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new("lvcreate").args(["-L", "10G", "--addtag", "aplo.brick=ab", "a b"]);
        assert_eq!(
            cmd.display(),
            "lvcreate -L 10G --addtag aplo.brick=ab 'a b'"
        );
    }
}
