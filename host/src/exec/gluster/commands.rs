//! The gluster command lines aplo runs: `gluster --mode=script --xml …`,
//! built as argv, never as a shell string.

use crate::exec::command::Cmd;
use crate::exec::session;
use crate::model::options::flag_like;
use crate::model::{Pairs, Scheme};

/// A gluster CLI command: `gluster --mode=script --xml <args>`.
/// Nodes' executors may run it in their gluster session instead
/// ([`super::session`]): the same command without the CLI's start.
pub fn gluster<I: IntoIterator<Item = S>, S: Into<String>>(args: I) -> Cmd {
    let mut cmd = Cmd::new("gluster").args(session::ONE_SHOT).args(args);
    cmd.gluster_session = true;
    cmd
}

/// The words gluster uses for a durability scheme, e.g. `replica 3 arbiter 1`.
pub fn scheme_args(scheme: &Scheme) -> Vec<String> {
    match *scheme {
        Scheme::None => Vec::new(),
        Scheme::Replicate {
            count,
            arbiter: false,
        } => vec!["replica".into(), count.to_string()],
        Scheme::Replicate {
            count,
            arbiter: true,
        } => {
            vec![
                "replica".into(),
                count.to_string(),
                "arbiter".into(),
                "1".into(),
            ]
        }
        Scheme::Disperse { data, redundancy } => vec![
            "disperse".into(),
            (u32::from(data) + u32::from(redundancy)).to_string(),
            "redundancy".into(),
            redundancy.to_string(),
        ],
    }
}

/// `volume create NAME <scheme> host:/brick … [force]`. Bricks are given in
/// set order; `force` is needed only when bricks sit on the root filesystem
/// (the `dir` backend).
pub fn volume_create(name: &str, scheme: &Scheme, bricks: &[(String, String)], force: bool) -> Cmd {
    let mut cmd = gluster(["volume", "create", name]).args(scheme_args(scheme));
    cmd = cmd.args(bricks.iter().map(|(host, path)| format!("{host}:{path}")));
    if force { cmd.arg("force") } else { cmd }
}

/// A `volume set` argument that the gluster CLI could take as one of its
/// own flags (it parses `--flag=value` anywhere in its arguments); the
/// command is never made. The options were checked before they got here
/// ([`crate::model::options`]): this is the last line, so that no mistake
/// upstream can hand the CLI a flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to run `gluster volume set {volume}`: the gluster CLI could take '{argument}' as a flag"
)]
pub struct FlagArgument {
    /// The volume.
    pub volume: String,
    /// The argument.
    pub argument: String,
}

/// Refuse an argument that is, or has a white-space separated word that
/// is, flag-like (a session line is split on white space).
fn not_a_flag(volume: &str, argument: &str) -> Result<(), FlagArgument> {
    if flag_like(argument) || argument.split_whitespace().any(flag_like) {
        return Err(FlagArgument {
            volume: volume.to_owned(),
            argument: argument.to_owned(),
        });
    }
    Ok(())
}

/// `volume set NAME KEY VALUE`; refused if any of them could be a flag.
pub fn volume_set(name: &str, key: &str, value: &str) -> Result<Cmd, FlagArgument> {
    for argument in [name, key, value] {
        not_a_flag(name, argument)?;
    }
    Ok(gluster(["volume", "set", name, key, value]))
}

/// `volume set NAME K1 V1 K2 V2 …`: several options in one transaction;
/// refused if any argument could be a flag.
pub fn volume_set_many(name: &str, options: &Pairs) -> Result<Cmd, FlagArgument> {
    not_a_flag(name, name)?;
    for (key, value) in options {
        not_a_flag(name, key)?;
        not_a_flag(name, value)?;
    }
    Ok(gluster(["volume", "set", name])
        .args(options.iter().flat_map(|(k, v)| [k.clone(), v.clone()])))
}

/// `volume replace-brick NAME OLD NEW commit force`: the only form
/// gluster still offers; the new brick is healed from the others.
pub fn volume_replace_brick(name: &str, old: &str, new: &str) -> Cmd {
    gluster(["volume", "replace-brick", name, old, new, "commit", "force"])
}

/// `volume heal NAME info`: what each brick holds that its set still
/// needs healed.
pub fn volume_heal_info(name: &str) -> Cmd {
    gluster(["volume", "heal", name, "info"])
}

/// `volume start NAME` (with `force` to restart missing brick processes).
pub fn volume_start(name: &str, force: bool) -> Cmd {
    let cmd = gluster(["volume", "start", name]);
    if force { cmd.arg("force") } else { cmd }
}

/// `volume stop NAME force`: stop without asking, even with clients.
pub fn volume_stop(name: &str) -> Cmd {
    gluster(["volume", "stop", name, "force"])
}

/// `volume delete NAME`.
pub fn volume_delete(name: &str) -> Cmd {
    gluster(["volume", "delete", name])
}

/// `volume info [NAME]`.
pub fn volume_info(name: Option<&str>) -> Cmd {
    gluster(["volume", "info"]).args(name)
}

/// `volume status NAME`.
pub fn volume_status(name: &str) -> Cmd {
    gluster(["volume", "status", name])
}

/// `volume add-brick NAME <scheme> host:/brick …`, to grow a volume by sets.
pub fn volume_add_brick(
    name: &str,
    scheme: &Scheme,
    bricks: &[(String, String)],
    force: bool,
) -> Cmd {
    let words: Vec<String> = match *scheme {
        Scheme::Replicate { count, arbiter } => {
            let mut w = vec!["replica".to_owned(), count.to_string()];
            if arbiter {
                w.extend(["arbiter".to_owned(), "1".to_owned()]);
            }
            w
        }
        _ => Vec::new(),
    };
    let cmd = gluster(["volume", "add-brick", name])
        .args(words)
        .args(bricks.iter().map(|(host, path)| format!("{host}:{path}")));
    if force { cmd.arg("force") } else { cmd }
}

/// `pool list`: every peer with its connection state.
pub fn pool_list() -> Cmd {
    gluster(["pool", "list"])
}

/// `peer probe HOST`: add a node to the trusted pool.
pub fn peer_probe(host: &str) -> Cmd {
    gluster(["peer", "probe", host])
}

/// `peer detach HOST`: remove a node from the trusted pool.
pub fn peer_detach(host: &str) -> Cmd {
    gluster(["peer", "detach", host])
}

/// `volume rebalance NAME start`: spread data onto added brick sets.
pub fn rebalance_start(name: &str) -> Cmd {
    gluster(["volume", "rebalance", name, "start"])
}

/// `volume quota NAME enable`.
pub fn quota_enable(name: &str) -> Cmd {
    gluster(["volume", "quota", name, "enable"])
}

/// `volume quota NAME limit-usage / BYTES`.
pub fn quota_limit(name: &str, bytes: u64) -> Cmd {
    gluster([
        "volume",
        "quota",
        name,
        "limit-usage",
        "/",
        &format!("{bytes}B"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_for_each_scheme() {
        let bricks: Vec<(String, String)> = (1..=3)
            .map(|i| (format!("n{i}"), format!("/b{i}/brick")))
            .collect();
        let arbiter = Scheme::Replicate {
            count: 3,
            arbiter: true,
        };
        assert_eq!(
            volume_create("vol_1", &arbiter, &bricks, false).display(),
            "gluster --mode=script --xml volume create vol_1 replica 3 arbiter 1 n1:/b1/brick n2:/b2/brick n3:/b3/brick"
        );
        let disperse = Scheme::Disperse {
            data: 2,
            redundancy: 1,
        };
        assert_eq!(scheme_args(&disperse), ["disperse", "3", "redundancy", "1"]);
        assert!(
            volume_create("v", &Scheme::None, &bricks[..1], true)
                .display()
                .ends_with("volume create v n1:/b1/brick force")
        );
        assert_eq!(
            quota_limit("v", 1 << 30).args.last().unwrap(),
            "1073741824B"
        );
        assert_eq!(
            volume_replace_brick("v", "n1:/b1/brick", "n4:/b4/brick").display(),
            "gluster --mode=script --xml volume replace-brick v n1:/b1/brick n4:/b4/brick commit force"
        );
    }

    #[test]
    fn volume_set_never_makes_a_command_with_a_flag() {
        let options: Pairs = [
            ("network.ping-timeout".to_owned(), "5".to_owned()),
            ("performance.cache-size".to_owned(), "10MB".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            volume_set_many("v", &options).unwrap().display(),
            "gluster --mode=script --xml volume set v network.ping-timeout 5 performance.cache-size 10MB"
        );
        assert_eq!(
            volume_set("v", "user.note", "two words")
                .unwrap()
                .args
                .last()
                .unwrap(),
            "two words"
        );
        for (key, value) in [
            ("performance.cache-size", "--log-file=/tmp/pwned"),
            ("performance.cache-size", "--remote-host=10.0.0.9"),
            ("performance.cache-size", "-1"),
            ("performance.cache-size", "10MB --xml"),
            ("--log-file=/tmp/pwned", "on"),
            ("-x", "on"),
        ] {
            let refused = volume_set("v", key, value).unwrap_err();
            assert!(
                refused.argument == key || refused.argument == value,
                "{refused:?}"
            );
            assert!(refused.to_string().contains("flag"), "{refused}");
            let mut many = options.clone();
            many.insert(key.to_owned(), value.to_owned());
            assert!(volume_set_many("v", &many).is_err(), "{key} {value}");
        }
        assert!(volume_set("--remote-host=x", "a.b", "c").is_err());
        assert!(volume_set_many("--remote-host=x", &options).is_err());
    }
}
