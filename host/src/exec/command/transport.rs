//! How commands reach a node: locally, behind a prefix, or through ssh.

use super::Cmd;

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
}
