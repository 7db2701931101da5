//! Mounts for the CSI node service: the glusterfs FUSE mount of a volume,
//! bind mounts of it, unmounts, and what `findmnt` says is mounted where.
//!
//! Command lines are built from checked parts only: hosts and the volume
//! name pass the same checks as a topology's, paths must be absolute and
//! free of `..`, and a mount flag is a plain `name` or `name=value` word, so
//! nothing a claim or a class carries can become a flag of `mount`.

use std::path::{Component, Path};

use super::command::Cmd;
use crate::model::paths::check_volume_name;
use crate::model::topology::check_host;

/// A mount that cannot be described safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A part of the mount is refused; the message names it.
    #[error("{field}: {reason}")]
    Invalid {
        /// The part, e.g. `hosts[1]`, `volume`, `mount_flags[0]`.
        field: String,
        /// Why.
        reason: String,
    },
    /// `findmnt` printed something that is not its JSON.
    #[error("findmnt output: {0}")]
    Parse(String),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> MountError {
    MountError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Check that `path` is absolute, has no `..` and no control characters.
pub fn check_path(field: &str, path: &Path) -> Result<(), MountError> {
    let text = path.to_string_lossy();
    if !path.is_absolute() {
        return Err(invalid(
            field,
            format!("'{}' is not an absolute path", text.escape_default()),
        ));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(invalid(
            field,
            format!("'{}' contains '..'", text.escape_default()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("'{}' contains control characters", text.escape_default()),
        ));
    }
    Ok(())
}

/// Check one mount flag: a word such as `ro`, `noatime` or
/// `log-level=ERROR`, never anything `mount` could read as its own flag
/// or as a second option.
pub fn check_flag(field: &str, flag: &str) -> Result<(), MountError> {
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let value_ok = value.is_none_or(|v| {
        !v.is_empty()
            && !v.starts_with('-')
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':'))
    });
    if name_ok && value_ok && flag.len() <= 256 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("'{}' is not a plain mount option", flag.escape_default()),
        ))
    }
}

/// A glusterfs FUSE mount of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlusterMount<'a> {
    /// The servers to fetch the volume's layout from: the first is asked
    /// first, the others are `backup-volfile-servers`.
    pub hosts: &'a [String],
    /// The gluster volume.
    pub volume: &'a str,
    /// Where to mount it.
    pub target: &'a Path,
    /// The client's log file.
    pub log_file: Option<&'a Path>,
    /// The client's log level (`ERROR`, `WARNING`, `INFO`, ...).
    pub log_level: Option<&'a str>,
    /// Whether the client unmounts its mount when it dies (glusterfs 3.12
    /// and later).
    pub auto_unmount: bool,
    /// Further options, e.g. `ro` or a class's `mountOptions`.
    pub flags: &'a [String],
}

/// A host as `mount.glusterfs` wants it: IPv6 addresses in brackets.
fn server(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `mount -t glusterfs -o <options> <host>:/<volume> <target>`.
pub fn mount_glusterfs(m: &GlusterMount<'_>) -> Result<Cmd, MountError> {
    let Some((first, backups)) = m.hosts.split_first() else {
        return Err(invalid("hosts", "no gluster server to mount from"));
    };
    for (i, host) in m.hosts.iter().enumerate() {
        check_host(host).map_err(|e| invalid(format!("hosts[{i}]"), e.to_string()))?;
    }
    check_volume_name(m.volume).map_err(|e| invalid("volume", e.to_string()))?;
    check_path("target", m.target)?;
    let mut options = Vec::new();
    if !backups.is_empty() {
        let servers: Vec<String> = backups.iter().map(|h| server(h)).collect();
        options.push(format!("backup-volfile-servers={}", servers.join(":")));
    }
    if let Some(log) = m.log_file {
        check_path("log_file", log)?;
        let log = log.to_string_lossy();
        if log.contains(',') {
            return Err(invalid("log_file", "a log file path cannot contain ','"));
        }
        options.push(format!("log-file={log}"));
    }
    if let Some(level) = m.log_level {
        let known = [
            "TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NONE",
        ];
        if !known.contains(&level.to_ascii_uppercase().as_str()) {
            return Err(invalid(
                "log_level",
                format!(
                    "'{}' is not one of {}",
                    level.escape_default(),
                    known.join(", ")
                ),
            ));
        }
        options.push(format!("log-level={}", level.to_ascii_uppercase()));
    }
    if m.auto_unmount {
        options.push("auto_unmount".into());
    }
    for (i, flag) in m.flags.iter().enumerate() {
        check_flag(&format!("mount_flags[{i}]"), flag)?;
        options.push(flag.clone());
    }
    let mut cmd = Cmd::new("mount").args(["-t", "glusterfs"]);
    if !options.is_empty() {
        cmd = cmd.arg("-o").arg(options.join(","));
    }
    Ok(cmd
        .arg(format!("{}:/{}", server(first), m.volume))
        .arg(m.target.display().to_string()))
}

/// `mount --bind <source> <target>`.
pub fn bind(source: &Path, target: &Path) -> Result<Cmd, MountError> {
    check_path("source", source)?;
    check_path("target", target)?;
    Ok(Cmd::new("mount")
        .arg("--bind")
        .arg(source.display().to_string())
        .arg(target.display().to_string()))
}

/// `mount -o remount,bind,ro <target>`: make a bind mount read-only.
pub fn remount_read_only(target: &Path) -> Result<Cmd, MountError> {
    check_path("target", target)?;
    Ok(Cmd::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(target.display().to_string()))
}

/// `umount [-l] <target>`; lazily for a mount whose client is gone.
pub fn unmount(target: &Path, lazy: bool) -> Result<Cmd, MountError> {
    check_path("target", target)?;
    let cmd = Cmd::new("umount");
    let cmd = if lazy { cmd.arg("-l") } else { cmd };
    Ok(cmd.arg(target.display().to_string()))
}

/// How long `findmnt` may take.
pub const FIND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS --mountpoint <target>`: what
/// is mounted there (it exits 1 when nothing is).
pub fn find_mount(target: &Path) -> Result<Cmd, MountError> {
    check_path("target", target)?;
    // A hung FUSE mount can hang findmnt's look at the path; it must not
    // hold the node's command queue for long.
    Ok(Cmd::new("findmnt")
        .args(["-J", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", "--mountpoint"])
        .arg(target.display().to_string())
        .timeout(FIND_TIMEOUT))
}

/// One mount, as `findmnt` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MountEntry {
    /// Where it is mounted.
    pub target: String,
    /// What is mounted (`host:/volume`, or a device and path for a bind).
    pub source: String,
    /// The filesystem type, `fuse.glusterfs` for a gluster client.
    pub fstype: String,
    /// The mount options, comma-separated.
    pub options: String,
}

impl MountEntry {
    /// Whether it is mounted read-only.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Parse `findmnt -J` output. Stacked mounts on one target come in the
/// order they were made, the visible one last.
pub fn parse_findmnt(json: &[u8]) -> Result<Vec<MountEntry>, MountError> {
    #[derive(serde::Deserialize)]
    struct Report {
        filesystems: Vec<Node>,
    }
    #[derive(serde::Deserialize)]
    struct Node {
        #[serde(flatten)]
        entry: MountEntry,
        #[serde(default)]
        children: Vec<Node>,
    }
    fn walk(nodes: Vec<Node>, out: &mut Vec<MountEntry>) {
        for node in nodes {
            out.push(node.entry);
            walk(node.children, out);
        }
    }
    let report: Report =
        serde_json::from_slice(json).map_err(|e| MountError::Parse(e.to_string()))?;
    let mut out = Vec::new();
    walk(report.filesystems, &mut out);
    Ok(out)
}

/// Whether the glusterfs mount helper refused `option` as unknown: a
/// line of its standard error that is `Invalid option OPTION` (or, for an
/// option with a value, `Invalid option: OPTION`), as `mount.glusterfs`
/// prints for what it does not know (older ones for `auto_unmount`).
pub fn rejected_option(stderr: &str, option: &str) -> bool {
    stderr.lines().map(str::trim).any(|line| {
        line.strip_prefix("Invalid option")
            .map(|rest| rest.strip_prefix(':').unwrap_or(rest))
            .is_some_and(|rest| rest.strip_prefix(' ') == Some(option))
    })
}

/// Whether the glusterfs client's log says the servers have no volume
/// `volume`: a line of gluster's log format (`[time] E [file:line:function]
/// 0-mgmt: …`) that ends with `failed to fetch volume file (key:/VOLUME)`.
pub fn servers_lack_volume(log: &str, volume: &str) -> bool {
    let said = format!(" 0-mgmt: failed to fetch volume file (key:/{volume})");
    log.lines()
        .map(str::trim_end)
        .any(|line| line.starts_with('[') && line.ends_with(&said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_failures_are_read_from_the_helper_s_and_the_client_s_words() {
        // Captured: `mount -t glusterfs -o no_such_option …` (exit 1), and
        // the client's log of a mount of a volume the servers lack.
        let stderr = include_str!("../../tests/data/gluster/mount-invalid-option.stderr");
        assert!(rejected_option(stderr, "no_such_option"));
        assert!(!rejected_option(stderr, "no_such"));
        assert!(rejected_option(
            "Invalid option auto_unmount\n",
            "auto_unmount"
        ));
        assert!(rejected_option("Invalid option: log-level\n", "log-level"));
        assert!(!rejected_option(
            "note: Invalid option auto_unmount",
            "auto_unmount"
        ));
        let log = include_str!("../../tests/data/gluster/mount-missing-volume.log");
        assert!(servers_lack_volume(log, "vol_nope"));
        assert!(!servers_lack_volume(log, "vol_no"));
        assert!(!servers_lack_volume(log, "vol_nope2"));
        assert!(!servers_lack_volume(
            "they said failed to fetch volume file (key:/vol_nope)",
            "vol_nope"
        ));
    }

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn a_gluster_mount_names_every_server_its_log_and_its_flags() {
        let hosts = hosts(&["10.0.0.1", "10.0.0.2", "fd00::3"]);
        let flags = vec!["ro".to_owned(), "noatime".to_owned()];
        let cmd = mount_glusterfs(&GlusterMount {
            hosts: &hosts,
            volume: "pvc-1",
            target: Path::new("/var/lib/kubelet/plugins/x/globalmount"),
            log_file: Some(Path::new("/var/log/aplo/pvc-1.log")),
            log_level: Some("error"),
            auto_unmount: true,
            flags: &flags,
        })
        .unwrap();
        assert_eq!(cmd.program, "mount");
        assert_eq!(
            cmd.args,
            [
                "-t",
                "glusterfs",
                "-o",
                "backup-volfile-servers=10.0.0.2:[fd00::3],log-file=/var/log/aplo/pvc-1.log,log-level=ERROR,auto_unmount,ro,noatime",
                "10.0.0.1:/pvc-1",
                "/var/lib/kubelet/plugins/x/globalmount",
            ]
        );
    }

    #[test]
    fn nothing_a_claim_carries_becomes_a_flag_or_a_second_option() {
        let one = hosts(&["g1"]);
        let base = GlusterMount {
            hosts: &one,
            volume: "v",
            target: Path::new("/mnt/v"),
            log_file: None,
            log_level: None,
            auto_unmount: false,
            flags: &[],
        };
        assert_eq!(
            mount_glusterfs(&base).unwrap().display(),
            "mount -t glusterfs g1:/v /mnt/v"
        );
        let bad_hosts = hosts(&["g1", "--remote-host=evil"]);
        let err = mount_glusterfs(&GlusterMount {
            hosts: &bad_hosts,
            ..base.clone()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("hosts[1]"), "{err}");
        for volume in ["a;b", "../x", ""] {
            let err = mount_glusterfs(&GlusterMount {
                volume,
                ..base.clone()
            })
            .unwrap_err();
            assert!(err.to_string().starts_with("volume"), "{volume}: {err}");
        }
        for target in ["relative/path", "/a/../b"] {
            let err = mount_glusterfs(&GlusterMount {
                target: Path::new(target),
                ..base.clone()
            })
            .unwrap_err();
            assert!(err.to_string().starts_with("target"), "{target}: {err}");
        }
        for flag in ["-o", "ro,exec", "x=--y", "a b", "log-file=/tmp/x,y"] {
            let flags = vec![flag.to_owned()];
            let err = mount_glusterfs(&GlusterMount {
                flags: &flags,
                ..base.clone()
            })
            .unwrap_err();
            assert!(
                err.to_string().starts_with("mount_flags[0]"),
                "{flag}: {err}"
            );
        }
        let err = mount_glusterfs(&GlusterMount {
            log_level: Some("LOUD"),
            ..base.clone()
        })
        .unwrap_err();
        assert!(err.to_string().contains("LOUD"), "{err}");
        assert!(mount_glusterfs(&GlusterMount { hosts: &[], ..base }).is_err());
    }

    #[test]
    fn binds_and_unmounts() {
        let (a, b) = (Path::new("/s"), Path::new("/t"));
        assert_eq!(bind(a, b).unwrap().display(), "mount --bind /s /t");
        assert_eq!(
            remount_read_only(b).unwrap().display(),
            "mount -o remount,bind,ro /t"
        );
        assert_eq!(unmount(b, true).unwrap().display(), "umount -l /t");
        assert_eq!(unmount(b, false).unwrap().display(), "umount /t");
        assert!(bind(Path::new("s"), b).is_err());
    }

    #[test]
    fn findmnt_json_is_parsed_with_stacked_mounts_in_order() {
        let json = br#"{"filesystems": [
            {"target": "/mnt/v", "source": "g1:/v", "fstype": "fuse.glusterfs",
             "options": "rw,relatime,user_id=0,group_id=0,allow_other,max_read=131072",
             "children": [
                {"target": "/mnt/v/sub", "source": "g1:/v", "fstype": "fuse.glusterfs", "options": "ro,relatime"}
             ]}
        ]}"#;
        let mounts = parse_findmnt(json).unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].fstype, "fuse.glusterfs");
        assert!(!mounts[0].read_only());
        assert!(mounts[1].read_only());
        assert!(parse_findmnt(b"not json").is_err());
    }
}
