//! The storage verbs' command line, one definition each. `aplo cluster`,
//! `topology`, `node`, `device`, `volume` and `brick` parse into these
//! types, and both paths take them as they are: the local store's
//! (`storage`, which calls the engine) and the REST client's (`client`).
//! The spellings are heketi-cli's subcommands and flags, with the local
//! store's older ones kept. What only one path can do is refused by the
//! other with a message that says which path it needs (`server_only`).

mod cluster;
mod device;
mod node;
mod topology;
mod volume;

use clap::ValueEnum;

use crate::model::State;

pub use cluster::{ClusterArgs, ClusterCommand};
pub use device::{DeviceArgs, DeviceCommand, device_and_state};
pub use node::{NodeArgs, NodeCommand, SetTags};
pub use topology::{TopologyArgs, TopologyCommand};
pub use volume::{
    BrickArgs, BrickCommand, DurabilityArg, HeketiVolumeArgs, VolumeArgs, VolumeCommand,
};

/// The local store's refusal of what only a server does.
pub fn server_only(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`aplo {what}` needs a server: give --server URL or set APLO_SERVER (the local store \
         has no such command)"
    )
}

/// A node or device state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// In service.
    Online,
    /// Out of service, for maintenance.
    Offline,
    /// Broken or leaving: its bricks are moved elsewhere first
    /// (`replace-brick`, placed by the volume's placement policy).
    Failed,
}

impl StateArg {
    /// Its name, as the command line and heketi's API spell it.
    pub fn name(self) -> &'static str {
        match self {
            StateArg::Online => "online",
            StateArg::Offline => "offline",
            StateArg::Failed => "failed",
        }
    }

    /// A state typed as a word among others (`device state [NODE] DEVICE
    /// STATE`), in any case.
    pub fn parse(text: &str) -> anyhow::Result<StateArg> {
        StateArg::from_str(text, true)
            .map_err(|_| anyhow::anyhow!("'{text}' is not online, offline or failed"))
    }
}

impl From<StateArg> for State {
    fn from(s: StateArg) -> State {
        match s {
            StateArg::Online => State::Online,
            StateArg::Offline => State::Offline,
            StateArg::Failed => State::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::device::DeviceAdd;
    use super::topology::TopologyLoad;
    use super::volume::VolumeExpand;
    use super::*;
    use crate::cli::{Cli, Command};

    const SERVER: &str = "http://aplo.example:8080";

    /// A storage verb as parsed, to compare.
    #[derive(Debug, PartialEq)]
    enum Verb {
        Cluster(ClusterArgs),
        Topology(TopologyArgs),
        Node(NodeArgs),
        Device(DeviceArgs),
        Volume(VolumeArgs),
        Brick(BrickArgs),
    }

    fn parse(argv: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("aplo").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    fn verb(cli: Cli) -> Verb {
        match cli.command {
            Command::Cluster(a) => Verb::Cluster(a),
            Command::Topology(a) => Verb::Topology(a),
            Command::Node(a) => Verb::Node(a),
            Command::Device(a) => Verb::Device(a),
            Command::Volume(a) => Verb::Volume(a),
            Command::Brick(a) => Verb::Brick(a),
            other => panic!("not a storage verb: {other:?}"),
        }
    }

    /// `argv` parsed for the local store and for a server (given before
    /// the verb, as heketi-cli takes it, and after it): one value, which
    /// both paths take.
    fn one_definition(argv: &[&str]) -> Verb {
        let local = parse(argv);
        let before = parse(&[&["--server", SERVER], argv].concat());
        let after = parse(&[argv, &["-s", SERVER]].concat());
        for remote in [&before, &after] {
            assert_eq!(remote.config.remote.server(), Some(SERVER), "{argv:?}");
        }
        let local = verb(local);
        assert_eq!(local, verb(before), "{argv:?}");
        assert_eq!(local, verb(after), "{argv:?}");
        local
    }

    #[test]
    fn the_same_argv_is_the_same_verb_with_or_without_a_server() {
        let id = "0123456789abcdef0123456789abcdef";
        for argv in [
            // heketi-cli's spellings, as the client's tests call them.
            &["volume", "create", "--size", "1", "--name", "vol_cli"][..],
            &["volume", "create", "--size", "1", "--replica", "5"],
            &["volume", "create", "--size", "1Gi", "--durability", "none"],
            &["volume", "info", id],
            &["volume", "--json", "info", id],
            &["volume", "list", "--json"],
            &["volume", "expand", "--volume", id, "--expand-size", "2"],
            &["volume", "expand", "vol_cli", "--size", "4Gi"],
            &["volume", "delete", "vol_cli"],
            &["brick", "evict", id],
            &["cluster", "list", "--json"],
            &["cluster", "create"],
            &["cluster", "setflags", id, "--file=false"],
            &["cluster", "info", id, "--json"],
            &["node", "list"],
            &["node", "info", "node0"],
            &["node", "disable", "node5"],
            &["node", "settags", "node5", "rack:r1", "ssd:yes"],
            &["node", "rmtags", "node5", "ssd"],
            &["node", "delete", "node9"],
            &[
                "node",
                "add",
                "--zone",
                "1",
                "--cluster",
                id,
                "--management-host-name",
                "node9",
                "--storage-host-name",
                "10.0.0.9",
            ],
            &["device", "info", "node0", "/dev/sdb"],
            &["device", "info", id, "--json"],
            &["device", "disable", "node5", "/dev/sdc"],
            &["device", "settags", id, "disk:ssd"],
            &["device", "resync", "node5", "/dev/sdb"],
            &["device", "add", "--node", "node5", "--name", "/dev/sdd"],
            &["device", "remove", "node5", "/dev/sdd"],
            &["device", "state", "node5", "/dev/sdd", "Failed"],
            &["topology", "load", "--json", "topology.json"],
            &["topology", "info", "--json"],
            // The local store's older spellings.
            &["topology", "load", "topology.json", "--backend", "dir"],
            &["topology", "show"],
            &["device", "add", "n1", "/dev/vdb", "--destroy-data"],
            &["node", "state", "n1", "offline"],
            &[
                "volume",
                "create",
                "--size",
                "10",
                "--param",
                "placement=binpack",
            ],
        ] {
            one_definition(argv);
        }
    }

    #[test]
    fn either_spelling_is_one_value() {
        let Verb::Volume(heketi) =
            one_definition(&["volume", "expand", "--volume", "v", "--expand-size", "2"])
        else {
            panic!("a volume command");
        };
        let VolumeCommand::Expand(expand) = heketi.command else {
            panic!("volume expand");
        };
        assert_eq!(expand.volume().unwrap(), "v");
        assert_eq!((expand.expand_size, expand.size), (Some(2), None));
        let Verb::Volume(local) = one_definition(&["volume", "expand", "v", "--size", "4Gi"])
        else {
            panic!("a volume command");
        };
        let VolumeCommand::Expand(VolumeExpand {
            expand_size, size, ..
        }) = &local.command
        else {
            panic!("volume expand");
        };
        assert_eq!((*expand_size, size.as_deref()), (None, Some("4Gi")));

        for argv in [
            &["topology", "load", "t.json"][..],
            &["topology", "load", "--json", "t.json"],
            &["topology", "load", "-j", "t.json"],
        ] {
            let Verb::Topology(TopologyArgs {
                command: TopologyCommand::Load(load @ TopologyLoad { .. }),
            }) = one_definition(argv)
            else {
                panic!("topology load");
            };
            assert_eq!(load.file().unwrap(), std::path::Path::new("t.json"));
        }

        for argv in [
            &["device", "add", "n1", "/dev/vdb"][..],
            &["device", "add", "--node", "n1", "--name", "/dev/vdb"],
        ] {
            let Verb::Device(DeviceArgs {
                command: DeviceCommand::Add(mut add @ DeviceAdd { .. }),
                ..
            }) = one_definition(argv)
            else {
                panic!("device add");
            };
            assert_eq!(
                add.node_and_name().unwrap(),
                ("n1".to_owned(), "/dev/vdb".to_owned())
            );
        }

        let (device, state) =
            device_and_state(vec!["n1".into(), "d".into(), "OFFLINE".into()]).unwrap();
        assert_eq!((device.len(), state), (2, StateArg::Offline));
        let bad = device_and_state(vec!["d".into(), "sideways".into()]).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "'sideways' is not online, offline or failed"
        );
    }

    /// What only a server does is refused by the local path with a message
    /// that says so, before the store is opened.
    #[test]
    fn the_local_store_refuses_what_only_a_server_does() {
        if std::env::var_os("APLO_SERVER").is_some()
            || std::env::var_os("HEKETI_CLI_SERVER").is_some()
        {
            // A server in the environment takes every command there.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("aplo.redb");
        let db = db.to_str().unwrap();
        for (argv, expected) in [
            (&["cluster", "list"][..], "`aplo cluster` needs a server"),
            (
                &[
                    "node",
                    "add",
                    "--zone",
                    "1",
                    "--cluster",
                    "c",
                    "--management-host-name",
                    "n",
                    "--storage-host-name",
                    "n",
                ],
                "`aplo node add` needs a server",
            ),
            (&["node", "list"], "locally, see `aplo topology info`"),
            (&["node", "settags", "n", "a:b"], "node settags/rmtags"),
            (&["device", "info", "n", "d"], "device info/resync"),
            (&["device", "rmtags", "d", "--all"], "device settags/rmtags"),
            (
                &["device", "enable", "d"],
                "locally, name the device as NODE DEVICE",
            ),
            (
                &["volume", "create", "--size", "1", "--gid", "5"],
                "--gid needs a server",
            ),
            (
                &["volume", "expand", "v", "--expand-size", "1"],
                "--expand-size needs a server",
            ),
        ] {
            let err = parse(&[&["--db", db], argv].concat()).run().unwrap_err();
            assert!(err.to_string().contains(expected), "{argv:?}: {err}");
        }
        assert!(
            !dir.path().join("aplo.redb").exists(),
            "the store was opened"
        );
    }
}
