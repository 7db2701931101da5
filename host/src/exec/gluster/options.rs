//! Which volume options a gluster has: `gluster volume set help-xml`, its
//! parser, and the list captured from glusterfs 10.3 that aplo falls back
//! on when no node answers.
//!
//! `volume set help-xml` needs no volume and answers with a bare
//! `<options>` document (no `<cliOutput>`, even under `--xml`). `volume set
//! help --xml` prints the same list as plain text, so it is not used.

use std::sync::{Arc, LazyLock};

use roxmltree::Document;

use super::{GlusterError, checked, gluster, text};
use crate::exec::command::Cmd;
use crate::model::options::OptionNames;

/// One option as `volume set help-xml` documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionHelp {
    /// Its name, e.g. `performance.cache-size`.
    pub name: String,
    /// Its default, as gluster prints it (`(null)` when it has none).
    pub default: String,
    /// What it does.
    pub description: String,
}

/// `volume set help-xml`: every volume option this gluster documents.
pub fn volume_set_help() -> Cmd {
    gluster(["volume", "set", "help-xml"])
}

/// Parse what `volume set help-xml` prints. A `<cliOutput>` answer is a
/// failure (or an answer of some other command); a list without options is
/// refused rather than taken to mean that no option may be set.
pub fn parse_set_help(xml: &[u8]) -> Result<Vec<OptionHelp>, GlusterError> {
    let source =
        std::str::from_utf8(xml).map_err(|e| GlusterError::Malformed(format!("not UTF-8: {e}")))?;
    let doc =
        Document::parse(source).map_err(|e| GlusterError::Malformed(format!("not XML: {e}")))?;
    let root = doc.root_element();
    if root.has_tag_name("cliOutput") {
        checked(xml)?;
        return Err(GlusterError::Malformed(
            "<cliOutput> where the option list was expected".into(),
        ));
    }
    if !root.has_tag_name("options") {
        return Err(GlusterError::Malformed(format!(
            "root element is <{}>, not <options>",
            root.tag_name().name()
        )));
    }
    let options = root
        .children()
        .filter(|c| c.has_tag_name("option"))
        .map(|option| {
            let name = text(option, "name")?;
            if name.is_empty() {
                return Err(GlusterError::Malformed(
                    "an <option> has an empty <name>".into(),
                ));
            }
            Ok(OptionHelp {
                name,
                default: text(option, "defaultValue").unwrap_or_default(),
                description: text(option, "description").unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if options.is_empty() {
        return Err(GlusterError::Malformed("the option list is empty".into()));
    }
    Ok(options)
}

/// The names of `options`, said to come from `source`.
pub fn option_names(options: &[OptionHelp], source: impl Into<String>) -> OptionNames {
    OptionNames::new(options.iter().map(|o| o.name.clone()), source)
}

/// What `gluster volume set help-xml` printed on glusterfs 10.3 (Debian
/// 12), captured under `tests/data/gluster/`.
const CAPTURED: &[u8] = include_bytes!("../../../tests/data/gluster/volume-set-help.xml");

/// The gluster the built-in list was captured from.
pub const BUILTIN_SOURCE: &str = "glusterfs 10.3, built into aplo";

/// The volume options of glusterfs 10.3, built into aplo: what is checked
/// when no node could be asked.
pub fn builtin_options() -> Arc<OptionNames> {
    static BUILTIN: LazyLock<Arc<OptionNames>> = LazyLock::new(|| {
        let options = parse_set_help(CAPTURED).expect("the captured option list parses");
        Arc::new(option_names(&options, BUILTIN_SOURCE))
    });
    BUILTIN.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_list_has_every_documented_option() {
        let options = parse_set_help(CAPTURED).unwrap();
        // glusterfs 10.3 documents 255 options; `features.ctime` twice.
        assert_eq!(options.len(), 255);
        let first = &options[0];
        assert_eq!(
            (first.name.as_str(), first.default.as_str()),
            ("cluster.lookup-unhashed", "on")
        );
        assert!(first.description.starts_with("This option if set to ON"));
        let names = builtin_options();
        assert_eq!(names.len(), 254);
        assert_eq!(names.source(), BUILTIN_SOURCE);
        for name in [
            "performance.cache-size",
            "network.ping-timeout",
            "cluster.quorum-type",
            "cluster.favorite-child-policy",
            "storage.owner-gid",
            "features.quota-deem-statfs",
            "performance.rda-cache-limit",
            "performance.readdir-ahead",
        ] {
            assert!(names.contains(name), "{name}");
        }
        // Not listed: the CLI's special `group` word, and undocumented
        // options (`nfs.disable` is still accepted, as one of
        // `model::options::UNLISTED_OPTIONS`).
        for name in [
            "group",
            "nfs.disable",
            "changelog.changelog-dir",
            "user.cifs",
        ] {
            assert!(!names.iter().any(|n| n == name), "{name}");
        }
        assert!(names.contains("nfs.disable") && !names.contains("changelog.changelog-dir"));
        // aplo's rule for a name's shape refuses none of them.
        for name in names.iter() {
            assert_eq!(crate::model::options::check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn failures_and_garbage_are_errors() {
        let failed = br#"<?xml version="1.0"?><cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>Connection failed</opErrstr></cliOutput>"#;
        assert_eq!(
            parse_set_help(failed),
            Err(GlusterError::Failed {
                errno: 0,
                message: "Connection failed".into()
            })
        );
        for bad in [
            &b""[..],
            b"Connection failed. Please check if gluster daemon is operational.\n",
            b"<options/>",
            b"<options><option><defaultValue>on</defaultValue></option></options>",
            b"<options><option><name> </name></option></options>",
            b"<html/>",
            b"<cliOutput><opRet>0</opRet></cliOutput>",
            b"\xff",
        ] {
            assert!(
                matches!(parse_set_help(bad), Err(GlusterError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let one = parse_set_help(b"<options><option><name>a.b</name></option></options>").unwrap();
        assert_eq!(one[0].name, "a.b");
        assert_eq!(one[0].default, "");
    }

    #[test]
    fn the_command_needs_no_volume() {
        assert_eq!(
            volume_set_help().display(),
            "gluster --mode=script --xml volume set help-xml"
        );
    }
}
