//! Parsing what `gluster --mode=script --xml …` prints. Pure functions over
//! bytes, tested against output captured from glusterfs 10.3.
//!
//! With `--xml`, gluster exits 0 even when the operation failed; the outcome
//! is in `opRet` (0 or -1), `opErrno` and `opErrstr`, which
//! [`GlusterError::kind`] classifies ([`Failure`]).

mod commands;
mod failure;
mod options;

use roxmltree::{Document, Node};

pub use self::commands::{
    FlagArgument, gluster, peer_detach, peer_probe, pool_list, quota_enable, quota_limit,
    rebalance_start, scheme_args, volume_add_brick, volume_create, volume_delete, volume_heal_info,
    volume_info, volume_replace_brick, volume_set, volume_set_many, volume_start, volume_status,
    volume_stop,
};
pub use self::failure::{Failure, glusterd_unreachable};
pub use self::options::{
    BUILTIN_SOURCE, OptionHelp, builtin_options, option_names, parse_set_help, volume_set_help,
};
use crate::model::Pairs;

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
