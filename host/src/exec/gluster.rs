//! Parsing what `gluster --mode=script --xml …` prints. Pure functions over
//! bytes, tested against output captured from glusterfs 10.3.
//!
//! With `--xml`, gluster exits 0 even when the operation failed; the outcome
//! is in `opRet` (0 or -1), `opErrno` and `opErrstr`, which
//! [`GlusterError::kind`] classifies ([`Failure`]).

mod failure;
mod options;

use roxmltree::{Document, Node};

pub use self::failure::{Failure, glusterd_unreachable};
pub use self::options::{
    BUILTIN_SOURCE, OptionHelp, builtin_options, option_names, parse_set_help, volume_set_help,
};
use super::command::Cmd;
use super::session;
use crate::model::options::flag_like;
use crate::model::{Pairs, Scheme};

/// Why gluster's answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlusterError {
    /// The operation failed; `message` is gluster's `opErrstr`.
    #[error("gluster: {message} (errno {errno})")]
    Failed {
        /// `opErrno`.
        errno: i32,
        /// `opErrstr`.
        message: String,
    },
    /// The output is not the XML gluster prints.
    #[error("unexpected gluster output: {0}")]
    Malformed(String),
}

impl GlusterError {
    /// What the failure means ([`Failure::Other`] for output that is not
    /// gluster's XML).
    pub fn kind(&self) -> Failure {
        match self {
            GlusterError::Failed { errno, message } => failure::classify(*errno, message),
            GlusterError::Malformed(_) => Failure::Other,
        }
    }

    /// Whether the failure is another transaction holding the cluster lock:
    /// worth retrying with backoff.
    pub fn is_busy(&self) -> bool {
        self.kind() == Failure::Busy
    }

    /// Whether the failure says the volume does not exist.
    pub fn is_missing_volume(&self) -> bool {
        self.kind() == Failure::NotFound
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GlusterError::Failed { .. } if self.is_busy() => "busy",
            GlusterError::Failed { .. } => "failed",
            GlusterError::Malformed(_) => "malformed",
        }
    }
}

/// A volume as `volume info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Name.
    pub name: String,
    /// gluster's UUID of the volume.
    pub id: String,
    /// `Created`, `Started` or `Stopped`.
    pub status: String,
    /// `Replicate`, `Disperse`, `Distribute`, `Distributed-Replicate`, …
    pub kind: String,
    /// Bricks per replica set (0 or 1 when not replicated).
    pub replica_count: u32,
    /// Arbiter bricks per replica set.
    pub arbiter_count: u32,
    /// Bricks per disperse set (0 when not dispersed).
    pub disperse_count: u32,
    /// Redundancy bricks per disperse set.
    pub redundancy_count: u32,
    /// The bricks in order.
    pub bricks: Vec<BrickInfo>,
    /// Options set on the volume.
    pub options: Pairs,
}

/// A brick as `volume info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickInfo {
    /// The storage host.
    pub host: String,
    /// The brick directory.
    pub path: String,
    /// The UUID of the peer holding it.
    pub host_uuid: String,
    /// Whether it is an arbiter brick.
    pub arbiter: bool,
}

/// A brick process as `volume status` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickStatus {
    /// The storage host.
    pub host: String,
    /// The brick directory.
    pub path: String,
    /// Whether the brick process is running.
    pub online: bool,
    /// Its TCP port, when online.
    pub port: Option<u16>,
    /// Its pid, when online.
    pub pid: Option<u32>,
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn text(node: Node<'_, '_>, name: &str) -> Result<String, GlusterError> {
    child(node, name)
        .map(|c| c.text().unwrap_or_default().trim().to_owned())
        .ok_or_else(|| {
            GlusterError::Malformed(format!("<{}> has no <{name}>", node.tag_name().name()))
        })
}

fn number<T: std::str::FromStr>(node: Node<'_, '_>, name: &str) -> Result<T, GlusterError> {
    let raw = text(node, name)?;
    raw.parse()
        .map_err(|_| GlusterError::Malformed(format!("<{name}> is not a number: '{raw}'")))
}

/// Parse the document and check `opRet`; return the root `<cliOutput>`.
fn checked(xml: &[u8]) -> Result<Document<'_>, GlusterError> {
    let source =
        std::str::from_utf8(xml).map_err(|e| GlusterError::Malformed(format!("not UTF-8: {e}")))?;
    let doc =
        Document::parse(source).map_err(|e| GlusterError::Malformed(format!("not XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name("cliOutput") {
        return Err(GlusterError::Malformed(format!(
            "root element is <{}>, not <cliOutput>",
            root.tag_name().name()
        )));
    }
    let op_ret: i32 = number(root, "opRet")?;
    if op_ret != 0 {
        let errno = number(root, "opErrno").unwrap_or(0);
        let message = text(root, "opErrstr").unwrap_or_default();
        return Err(GlusterError::Failed { errno, message });
    }
    Ok(doc)
}

/// Check the outcome of any `--xml` command (create, start, set, …).
pub fn parse_outcome(xml: &[u8]) -> Result<(), GlusterError> {
    checked(xml).map(|_| ())
}

fn split_brick(name: &str) -> Result<(String, String), GlusterError> {
    name.split_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .ok_or_else(|| GlusterError::Malformed(format!("brick '{name}' is not host:/path")))
}

/// Parse `volume info` (all volumes, or one).
pub fn parse_volume_info(xml: &[u8]) -> Result<Vec<VolumeInfo>, GlusterError> {
    let doc = checked(xml)?;
    let volumes = child(doc.root_element(), "volInfo")
        .and_then(|v| child(v, "volumes"))
        .ok_or_else(|| GlusterError::Malformed("no <volInfo><volumes>".into()))?;
    volumes
        .children()
        .filter(|c| c.has_tag_name("volume"))
        .map(|v| {
            let bricks = child(v, "bricks")
                .map(|b| {
                    b.children()
                        .filter(|c| c.has_tag_name("brick"))
                        .map(|brick| {
                            let (host, path) = split_brick(&text(brick, "name")?)?;
                            Ok(BrickInfo {
                                host,
                                path,
                                host_uuid: text(brick, "hostUuid")?,
                                arbiter: text(brick, "isArbiter")
                                    .map(|a| a == "1")
                                    .unwrap_or(false),
                            })
                        })
                        .collect::<Result<Vec<_>, GlusterError>>()
                })
                .transpose()?
                .unwrap_or_default();
            let options = child(v, "options")
                .map(|o| {
                    o.children()
                        .filter(|c| c.has_tag_name("option"))
                        .map(|opt| Ok((text(opt, "name")?, text(opt, "value")?)))
                        .collect::<Result<Pairs, GlusterError>>()
                })
                .transpose()?
                .unwrap_or_default();
            Ok(VolumeInfo {
                name: text(v, "name")?,
                id: text(v, "id")?,
                status: text(v, "statusStr")?,
                kind: text(v, "typeStr")?,
                replica_count: number(v, "replicaCount")?,
                arbiter_count: number(v, "arbiterCount").unwrap_or(0),
                disperse_count: number(v, "disperseCount").unwrap_or(0),
                redundancy_count: number(v, "redundancyCount").unwrap_or(0),
                bricks,
                options,
            })
        })
        .collect()
}

/// Parse `volume status <volume>`: its bricks' processes. Entries for
/// self-heal daemons and other services (which have no brick path under a
/// host) are left out.
pub fn parse_volume_status(xml: &[u8]) -> Result<Vec<BrickStatus>, GlusterError> {
    let doc = checked(xml)?;
    let volume = child(doc.root_element(), "volStatus")
        .and_then(|s| child(s, "volumes"))
        .and_then(|v| child(v, "volume"))
        .ok_or_else(|| GlusterError::Malformed("no <volStatus><volumes><volume>".into()))?;
    let mut bricks = Vec::new();
    for node in volume.children().filter(|c| c.has_tag_name("node")) {
        let path = text(node, "path")?;
        if !path.starts_with('/') {
            continue;
        }
        let online = text(node, "status")? == "1";
        bricks.push(BrickStatus {
            host: text(node, "hostname")?,
            path,
            online,
            port: text(node, "port")
                .ok()
                .and_then(|p| p.parse().ok())
                .filter(|_| online),
            pid: text(node, "pid")
                .ok()
                .and_then(|p| p.parse().ok())
                .filter(|&p: &u32| online && p > 0),
        });
    }
    Ok(bricks)
}

/// A brick as `volume heal NAME info` describes it: the entries it holds
/// that another brick of its set has not got yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealInfo {
    /// The storage host.
    pub host: String,
    /// The brick directory.
    pub path: String,
    /// Whether the heal client reached the brick.
    pub connected: bool,
    /// Entries waiting for heal (`None` when the brick was not reached).
    pub entries: Option<u64>,
}

/// Parse `volume heal NAME info --xml`.
pub fn parse_heal_info(xml: &[u8]) -> Result<Vec<HealInfo>, GlusterError> {
    let doc = checked(xml)?;
    let bricks = child(doc.root_element(), "healInfo")
        .and_then(|h| child(h, "bricks"))
        .ok_or_else(|| GlusterError::Malformed("no <healInfo><bricks>".into()))?;
    let mut found = Vec::new();
    for brick in bricks.children().filter(|c| c.has_tag_name("brick")) {
        let (host, path) = split_brick(&text(brick, "name")?)?;
        let connected = text(brick, "status")? == "Connected";
        let entries = text(brick, "numberOfEntries")?;
        let entries = match entries.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) if entries == "-" || !connected => None,
            Err(_) => {
                return Err(GlusterError::Malformed(format!(
                    "numberOfEntries '{entries}' of brick {host}:{path} is not a number"
                )));
            }
        };
        found.push(HealInfo {
            host,
            path,
            connected,
            entries,
        });
    }
    Ok(found)
}

/// A peer of the trusted pool, as `pool list` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The hostname it was probed by (`localhost` for the node asked).
    pub hostname: String,
    /// Its UUID.
    pub uuid: String,
    /// Whether the node asked is connected to it.
    pub connected: bool,
}

/// Parse `pool list --xml`.
pub fn parse_pool_list(xml: &[u8]) -> Result<Vec<Peer>, GlusterError> {
    let doc = checked(xml)?;
    let Some(status) = child(doc.root_element(), "peerStatus") else {
        return Err(GlusterError::Malformed("no <peerStatus>".into()));
    };
    status
        .children()
        .filter(|c| c.has_tag_name("peer"))
        .map(|peer| {
            Ok(Peer {
                hostname: text(peer, "hostname")?,
                uuid: text(peer, "uuid")?,
                connected: number::<u32>(peer, "connected")? == 1,
            })
        })
        .collect()
}

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

    const INFO: &[u8] = include_bytes!("../../tests/data/gluster/volume-info.xml");
    const DISPERSE: &[u8] = include_bytes!("../../tests/data/gluster/volume-info-disperse.xml");
    const MISSING: &[u8] = include_bytes!("../../tests/data/gluster/volume-info-missing.xml");
    const EXISTS: &[u8] = include_bytes!("../../tests/data/gluster/volume-create-exists.xml");
    const STATUS: &[u8] = include_bytes!("../../tests/data/gluster/volume-status.xml");
    const POOL: &[u8] = include_bytes!("../../tests/data/gluster/pool-list.xml");

    #[test]
    fn pool_list_reports_each_peer_and_its_connection() {
        // Captured on the three-node harness, node3's link down.
        let peers = parse_pool_list(POOL).unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[0].hostname, "10.213.0.2");
        assert!(peers[0].connected);
        assert_eq!(peers[1].hostname, "10.213.0.3");
        assert!(!peers[1].connected);
        assert_eq!(peers[2].hostname, "localhost");
        assert!(peers[2].connected);
        assert!(matches!(
            parse_pool_list(b"<cliOutput><opRet>0</opRet></cliOutput>"),
            Err(GlusterError::Malformed(_))
        ));
    }

    #[test]
    fn volume_info_of_replica_and_arbiter_volumes() {
        let volumes = parse_volume_info(INFO).unwrap();
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["vol_arb", "vol_r3"]);
        let arb = &volumes[0];
        assert_eq!(
            (arb.replica_count, arb.arbiter_count, arb.status.as_str()),
            (3, 1, "Created")
        );
        assert_eq!(
            arb.bricks.iter().map(|b| b.arbiter).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(arb.bricks[0].path, "/tmp/cap/b4/brick");
        let r3 = &volumes[1];
        assert_eq!(r3.status, "Started");
        assert_eq!(
            r3.options.get("user.aplo.volume-id").map(String::as_str),
            Some("ffeeddccbbaa99887766554433221100")
        );
    }

    #[test]
    fn volume_info_of_a_disperse_volume() {
        let v = &parse_volume_info(DISPERSE).unwrap()[0];
        assert_eq!(
            (v.kind.as_str(), v.disperse_count, v.redundancy_count),
            ("Disperse", 3, 1)
        );
    }

    #[test]
    fn failures_carry_gluster_s_message() {
        let missing = parse_volume_info(MISSING).unwrap_err();
        assert_eq!(
            missing,
            GlusterError::Failed {
                errno: 30806,
                message: "Volume does not exist".into()
            }
        );
        assert!(missing.is_missing_volume() && !missing.is_busy());
        let exists = parse_outcome(EXISTS).unwrap_err();
        assert_eq!(
            exists.to_string(),
            "gluster: Volume vol_r3 already exists (errno 0)"
        );
        let busy = GlusterError::Failed {
            errno: 0,
            message:
                "Another transaction is in progress for vol. Please try again after some time."
                    .into(),
        };
        assert!(busy.is_busy());
        assert_eq!(busy.label(), "busy");
    }

    #[test]
    fn volume_status_lists_brick_processes() {
        let bricks = parse_volume_status(STATUS).unwrap();
        assert_eq!(
            bricks.len(),
            3,
            "the self-heal daemon entry is left out: {bricks:?}"
        );
        assert!(
            bricks
                .iter()
                .all(|b| b.online && b.port.is_some() && b.pid.is_some())
        );
        assert_eq!(bricks[0].path, "/tmp/cap/b1/brick");
    }

    #[test]
    fn heal_info_counts_entries_and_unreached_bricks() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><healInfo><bricks>
<brick hostUuid="u1"><name>10.0.0.1:/b/1</name><status>Connected</status><numberOfEntries>3</numberOfEntries></brick>
<brick hostUuid="u2"><name>10.0.0.2:/b/2</name><status>Transport endpoint is not connected</status><numberOfEntries>-</numberOfEntries></brick>
<brick hostUuid="u3"><name>10.0.0.3:/b/3</name><status>Connected</status><numberOfEntries>0</numberOfEntries></brick>
</bricks></healInfo><opRet>0</opRet><opErrno>0</opErrno><opErrstr/></cliOutput>"#;
        let bricks = parse_heal_info(xml).unwrap();
        assert_eq!(bricks.len(), 3);
        assert_eq!(
            (bricks[0].host.as_str(), bricks[0].path.as_str()),
            ("10.0.0.1", "/b/1")
        );
        assert_eq!(
            bricks
                .iter()
                .map(|b| (b.connected, b.entries))
                .collect::<Vec<_>>(),
            [(true, Some(3)), (false, None), (true, Some(0))]
        );
        let bad = String::from_utf8_lossy(xml).replace(">3<", ">many<");
        let err = parse_heal_info(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("many"), "{err}");
        let failed = br#"<cliOutput><healInfo><bricks/></healInfo><opRet>-1</opRet><opErrno>2</opErrno><opErrstr>Volume hv does not exist</opErrstr></cliOutput>"#;
        assert!(parse_heal_info(failed).is_err());
    }

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

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for bad in [
            &b""[..],
            b"<html/>",
            b"\xff\xfe",
            b"<cliOutput><opRet>x</opRet></cliOutput>",
            b"<cliOutput><opRet>0</opRet></cliOutput>",
        ] {
            assert!(
                matches!(parse_volume_info(bad), Err(GlusterError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
