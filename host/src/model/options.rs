//! Gluster volume options: which names and values aplo passes on to
//! `gluster volume set`, whoever asked for them (a durability policy's
//! answer, a class's `<class>.options`, a REST request's
//! `glustervolumeoptions`).
//!
//! Options end up as arguments of the gluster CLI, and the CLI takes any
//! argument that begins with `--` as one of its own flags, wherever it
//! stands: `--log-file=PATH` makes it (as root) write that file,
//! `--remote-host=ADDR` sends the command to another glusterd,
//! `--glusterd-sock=PATH` to another socket. A long-lived CLI session
//! splits its input line on white space, so a word inside a value counts
//! too. Hence:
//!
//! - a name is a real volume option of the gluster aplo runs (the list
//!   `gluster volume set help-xml` prints, [`OptionNames`]), or a custom
//!   `user.<name>` option, which gluster stores without acting on it;
//! - `user.aplo.*` is aplo's own (its ids on each volume), and
//!   `user.cifs`/`user.smb` are not inert: gluster's hook scripts share the
//!   volume over Samba when they are set;
//! - no word of a value begins with `-`, and a value has no control
//!   characters and is at most [`MAX_VALUE_LEN`] bytes;
//! - a name is given once.
//!
//! Everything here is pure: the list of names is read from the node (or
//! the copy built into aplo) by the exec layer and passed in.

use std::collections::BTreeSet;

/// The longest option name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// The longest option value accepted.
pub const MAX_VALUE_LEN: usize = 1024;
/// Names under this prefix are aplo's own.
pub const RESERVED_PREFIX: &str = "user.aplo.";
/// Custom options: gluster stores them without checking them.
pub const USER_PREFIX: &str = "user.";
/// `user.` options that gluster's hook scripts act on (`S30samba-set.sh`
/// shares the volume over Samba when one is set to `enable` or `on`).
pub const HOOKED_USER_OPTIONS: [&str; 2] = ["user.cifs", "user.smb"];

/// Volume options gluster accepts that `volume set help-xml` does not list
/// (gluster 10.3 accepts about 340 names and documents 254), taken in too
/// because heketi-era StorageClasses set them. Each takes a plain value (a
/// switch, a number or an address family), never a path, and no word of a
/// value may begin with `-` in any case.
pub const UNLISTED_OPTIONS: [&str; 4] = [
    "nfs.disable",
    "transport.address-family",
    "cluster.heal-timeout",
    "features.acl",
];

/// The volume options a gluster accepts, as its `volume set help` lists
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionNames {
    names: BTreeSet<String>,
    /// Where the list came from, for messages and logs (e.g. a gluster
    /// version or a node's name).
    source: String,
}

impl OptionNames {
    /// The names in `names`, read from `source`.
    pub fn new<I, S>(names: I, source: impl Into<String>) -> OptionNames
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OptionNames {
            names: names.into_iter().map(Into::into).collect(),
            source: source.into(),
        }
    }

    /// Whether `name` is one of them, or one of [`UNLISTED_OPTIONS`].
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name) || UNLISTED_OPTIONS.contains(&name)
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Where the list came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Why an option cannot be passed to gluster. Every variant names the
/// option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The name is not shaped like a gluster option name.
    #[error(
        "'{}' is not a gluster option name (letters, digits, '.', '-' and '_', with a '.', not beginning with '-', at most {MAX_NAME_LEN} bytes)",
        shown(.0)
    )]
    BadName(String),
    /// The name is not one of the gluster's volume options.
    #[error(
        "'{}' is not a volume option of this gluster (the options of {list}; custom options are user.<name>)",
        shown(name)
    )]
    Unknown {
        /// The option.
        name: String,
        /// Where the list of options came from.
        list: String,
    },
    /// The name is aplo's own, or one gluster acts on beyond storing it.
    #[error("'{}' is reserved: {why}", shown(name))]
    Reserved {
        /// The option.
        name: String,
        /// Whose it is.
        why: &'static str,
    },
    /// The value could reach the gluster CLI as something else than a
    /// value.
    #[error("the value of '{}' {why}", shown(name))]
    BadValue {
        /// The option.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The name is given more than once.
    #[error("'{}' is given more than once", shown(.0))]
    Duplicate(String),
}

/// A name as messages show it: control characters escaped, and cut after
/// [`MAX_NAME_LEN`] characters (only a malformed name can be longer).
fn shown(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(MAX_NAME_LEN)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if name.chars().count() > MAX_NAME_LEN {
        shown.push('…');
    }
    shown
}

impl OptionError {
    /// The option at fault.
    pub fn name(&self) -> &str {
        match self {
            OptionError::BadName(name)
            | OptionError::Duplicate(name)
            | OptionError::Unknown { name, .. }
            | OptionError::Reserved { name, .. }
            | OptionError::BadValue { name, .. } => name,
        }
    }
}

/// Whether the gluster CLI could take `arg` (one argument, or a word of a
/// session line) as one of its flags. Only `--` starts a flag today; a
/// single `-` is refused as well, so that no future short flag and no
/// negative number is ever in doubt.
pub fn flag_like(arg: &str) -> bool {
    arg.starts_with('-')
}

/// Check a name's shape and that it is not reserved; not whether gluster
/// knows it (see [`check_known`]).
pub fn check_name(name: &str) -> Result<(), OptionError> {
    let shaped = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.contains('.')
        && !flag_like(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !shaped {
        return Err(OptionError::BadName(name.to_owned()));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(OptionError::Reserved {
            name: name.to_owned(),
            why: "aplo keeps its own ids under user.aplo.",
        });
    }
    if HOOKED_USER_OPTIONS.contains(&name) {
        return Err(OptionError::Reserved {
            name: name.to_owned(),
            why: "gluster's hook scripts share the volume over Samba when it is set",
        });
    }
    Ok(())
}

/// Check that gluster knows the name: one of `known`, or a custom
/// `user.<name>` option.
pub fn check_known(name: &str, known: &OptionNames) -> Result<(), OptionError> {
    let custom = name.len() > USER_PREFIX.len() && name.starts_with(USER_PREFIX);
    if custom || known.contains(name) {
        Ok(())
    } else {
        Err(OptionError::Unknown {
            name: name.to_owned(),
            list: known.source().to_owned(),
        })
    }
}

/// Check a value: not empty, at most [`MAX_VALUE_LEN`] bytes, no control
/// characters, and no word (split on white space, as a CLI session line
/// is) that begins with `-`.
pub fn check_value(name: &str, value: &str) -> Result<(), OptionError> {
    let bad = |why| {
        Err(OptionError::BadValue {
            name: name.to_owned(),
            why,
        })
    };
    if value.trim().is_empty() {
        return bad("is empty");
    }
    if value.len() > MAX_VALUE_LEN {
        return bad("is longer than 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return bad("has control characters");
    }
    if value.split_whitespace().any(flag_like) {
        return bad(
            "begins with '-' (or has a word that does), which the gluster CLI could take as a flag",
        );
    }
    Ok(())
}

/// Check one option: its name's shape, its value, and, with `known`, that
/// gluster knows the name.
pub fn check_option(
    name: &str,
    value: &str,
    known: Option<&OptionNames>,
) -> Result<(), OptionError> {
    check_name(name)?;
    check_value(name, value)?;
    if let Some(known) = known {
        check_known(name, known)?;
    }
    Ok(())
}

/// The first name that appears twice among `names`, if any.
pub fn first_duplicate<'a, I>(names: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut seen = BTreeSet::new();
    names.into_iter().find(|name| !seen.insert(*name))
}

/// Check a list of options as given (before it becomes a map, which would
/// keep only the last of a repeated name): every option, and no name
/// twice.
pub fn check_options<'a, I>(options: I, known: Option<&OptionNames>) -> Result<(), OptionError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut seen = BTreeSet::new();
    for (name, value) in options {
        if !seen.insert(name) {
            return Err(OptionError::Duplicate(name.to_owned()));
        }
        check_option(name, value, known)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> OptionNames {
        OptionNames::new(
            ["performance.cache-size", "network.ping-timeout"],
            "the test list",
        )
    }

    #[test]
    fn real_and_custom_names_pass_others_are_named() {
        let known = known();
        for unlisted in UNLISTED_OPTIONS {
            assert!(check_known(unlisted, &known).is_ok(), "{unlisted}");
        }
        assert_eq!(
            check_option("performance.cache-size", "10MB", Some(&known)),
            Ok(())
        );
        assert_eq!(check_option("user.team", "a", Some(&known)), Ok(()));
        let unknown = check_option("cluster.made-up", "on", Some(&known)).unwrap_err();
        assert_eq!(unknown.name(), "cluster.made-up");
        assert!(
            unknown.to_string().contains("'cluster.made-up'")
                && unknown.to_string().contains("the test list"),
            "{unknown}"
        );
        // `group` reads a file on the CLI's machine; it is no option.
        assert!(matches!(
            check_option("group", "virt", Some(&known)),
            Err(OptionError::BadName(_))
        ));
        assert!(matches!(
            check_option("user.", "x", Some(&known)),
            Err(OptionError::Unknown { .. })
        ));
        // Without a list, only the shape is checked.
        assert_eq!(check_option("cluster.made-up", "on", None), Ok(()));
    }

    #[test]
    fn names_that_are_flags_or_oddly_shaped_are_refused() {
        for name in [
            "--log-file=/tmp/x",
            "--remote-host.x",
            "-x.y",
            "",
            "nodot",
            "a b.c",
            "a.b;c",
            "a.b=c",
            "päth.x",
            &format!("a.{}", "b".repeat(MAX_NAME_LEN)),
        ] {
            assert_eq!(
                check_name(name),
                Err(OptionError::BadName(name.to_owned())),
                "{name:?}"
            );
        }
        for name in ["user.aplo.volume", "user.cifs", "user.smb"] {
            let err = check_name(name).unwrap_err();
            assert!(matches!(err, OptionError::Reserved { .. }), "{name}");
            assert!(err.to_string().contains(name), "{err}");
        }
        assert_eq!(check_name("user.smbx"), Ok(()));
        let shown = check_name("a.\u{1b}[31mred").unwrap_err().to_string();
        assert!(shown.starts_with("'a.\\u{1b}[31mred'"), "{shown}");
        let long = check_name(&"x".repeat(5000)).unwrap_err().to_string();
        assert!(long.len() < 400, "{long}");
        assert_eq!(check_name("user.heketi.id"), Ok(()));
    }

    #[test]
    fn values_the_cli_could_take_as_flags_are_refused() {
        for value in [
            "--log-file=/tmp/pwned",
            "--remote-host=10.0.0.9",
            "--glusterd-sock=/tmp/s",
            "--",
            "-1",
            "-",
            " --xml",
            "10MB --log-file=/tmp/x",
            "a  -b",
        ] {
            let err = check_value("performance.cache-size", value).unwrap_err();
            assert!(
                err.to_string().contains("'performance.cache-size'")
                    && err.to_string().contains("flag"),
                "{value:?}: {err}"
            );
        }
        for (value, why) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("line\nbreak", "has control characters"),
            ("nul\0", "has control characters"),
        ] {
            assert!(
                matches!(check_value("a.b", value), Err(OptionError::BadValue { why: w, .. }) if w == why),
                "{value:?}"
            );
        }
        assert!(check_value("a.b", &"x".repeat(MAX_VALUE_LEN + 1)).is_err());
        for value in [
            "10MB",
            "on",
            "192.168.*,10.0.0.1",
            "a-b",
            "x--y",
            "two words",
            "HIGH:-aNULL",
        ] {
            assert_eq!(check_value("a.b", value), Ok(()), "{value:?}");
        }
    }

    #[test]
    fn repeated_names_are_refused_with_the_name() {
        let list = [
            ("performance.cache-size", "10MB"),
            ("network.ping-timeout", "5"),
            ("performance.cache-size", "20MB"),
        ];
        assert_eq!(
            check_options(list, Some(&known())),
            Err(OptionError::Duplicate("performance.cache-size".into()))
        );
        assert_eq!(
            first_duplicate(list.iter().map(|(k, _)| *k)),
            Some("performance.cache-size")
        );
        assert_eq!(
            check_options(list[..2].iter().copied(), Some(&known())),
            Ok(())
        );
        assert_eq!(first_duplicate(["a.b", "c.d"]), None);
    }
}
