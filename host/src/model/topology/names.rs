//! Host names and device names as a topology, a request or a mount gives
//! them: they go into command lines, so only plain ones pass.

/// A hostname or a device name that cannot be used. The name is quoted
/// as [`quoted`] escapes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The hostname is empty.
    #[error("a hostname cannot be empty")]
    EmptyHost,
    /// The hostname is longer than 253 characters.
    #[error("'{0}' is longer than 253 characters")]
    LongHost(String),
    /// The hostname starts with `-` (a flag) or `.`.
    #[error("'{host}' is not a hostname or address: it starts with '{first}'")]
    HostStart {
        /// The hostname.
        host: String,
        /// Its first character.
        first: String,
    },
    /// The hostname has a character a DNS name or an address cannot have.
    #[error("'{host}' is not a hostname or address: it contains {character}")]
    HostCharacter {
        /// The hostname.
        host: String,
        /// The character, as [`describe_char`] names it.
        character: String,
    },
    /// The device name is empty.
    #[error("a device name cannot be empty")]
    EmptyDevice,
    /// The device name is not a plain absolute path.
    #[error("'{name}' is not a device path such as /dev/vdb: {problem}")]
    DevicePath {
        /// The device name.
        name: String,
        /// What is wrong with it.
        problem: DevicePathProblem,
    },
}

/// What makes a device name not a plain absolute path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevicePathProblem {
    /// Longer than 255 characters.
    #[error("it is longer than 255 characters")]
    TooLong,
    /// A character a device path may not have, as [`describe_char`] names it.
    #[error("it contains {0}")]
    Character(String),
    /// Not absolute.
    #[error("it is not an absolute path")]
    NotAbsolute,
    /// A `..` part.
    #[error("it contains '..'")]
    DotDot,
}

/// Why `host` cannot be a node's manage hostname or storage address. Both
/// go into command lines (`ssh`, `gluster peer probe`, brick specs), so
/// only DNS names and IPv4/IPv6 addresses pass: letters, digits, `.`,
/// `-`, `:` and `_`, not starting with `-` (a flag) or `.`, at most 253
/// characters.
pub fn check_host(host: &str) -> Result<(), NameError> {
    let quoted = quoted(host);
    if host.is_empty() {
        return Err(NameError::EmptyHost);
    }
    if host.len() > 253 {
        return Err(NameError::LongHost(quoted));
    }
    if host.starts_with(['-', '.']) {
        return Err(NameError::HostStart {
            host: quoted,
            first: host[..1].to_owned(),
        });
    }
    if let Some(c) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')))
    {
        return Err(NameError::HostCharacter {
            host: quoted,
            character: describe_char(c),
        });
    }
    Ok(())
}

/// Why `name` cannot be a device. A device's name goes into command lines
/// (`pvcreate`, `vgcreate`, `wipefs`; a brick root for the `loop` and
/// `dir` backends), so it must be an absolute path of letters, digits and
/// `/`, `_`, `.`, `:`, `-`, `+` (as `/dev/vdb` or
/// `/dev/disk/by-path/pci-0000:00:1f.2-ata-1` are), without `..`, at most
/// 255 characters. White space, `;`, quotes, `$`, control characters and
/// anything else a shell or a command line could misread are refused.
pub fn check_device_name(name: &str) -> Result<(), NameError> {
    let bad = |problem: DevicePathProblem| {
        Err(NameError::DevicePath {
            name: quoted(name),
            problem,
        })
    };
    if name.is_empty() {
        return Err(NameError::EmptyDevice);
    }
    if name.len() > 255 {
        return bad(DevicePathProblem::TooLong);
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | ':' | '-' | '+')))
    {
        return bad(DevicePathProblem::Character(describe_char(c)));
    }
    if !name.starts_with('/') || name.len() < 2 {
        return bad(DevicePathProblem::NotAbsolute);
    }
    if name.split('/').any(|part| part == "..") {
        return bad(DevicePathProblem::DotDot);
    }
    Ok(())
}

/// Text from a request or file, as quoted in an error: escaped (so that
/// control characters and bidirectional overrides show as `\u{…}` and act
/// on nothing) and cut after 256 characters.
fn quoted(text: &str) -> String {
    let mut escaped: String = text
        .chars()
        .take(256)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(256).is_some() {
        escaped.push('…');
    }
    escaped
}

/// A character as an error names it.
fn describe_char(c: char) -> String {
    if c.is_whitespace() {
        format!("white space ('{}')", c.escape_debug())
    } else if c.is_control() {
        format!("a control character ('{}')", c.escape_debug())
    } else {
        format!("'{}'", c.escape_debug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_plain_absolute_paths() {
        for good in [
            "/dev/vdb",
            "/dev/mapper/vg-lv_0",
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
            "/dev/disk/by-id/nvme-eui.0025388b71b1c2d3+x",
            "/var/lib/aplo/bricks",
        ] {
            assert_eq!(check_device_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("/dev/vd b", "white space (' ')"),
            ("/dev/vdb\t", "white space ('\\t')"),
            ("/dev/vdb;reboot", "';'"),
            ("/dev/vdb\n--force", "white space ('\\n')"),
            ("/dev/vdb\u{1b}[2J", "a control character ('\\u{1b}')"),
            ("/dev/$(id)", "'$'"),
            ("/dev/`id`", "'`'"),
            ("/dev/vdb|x", "'|'"),
            ("/dev/vdb&", "'&'"),
            ("/dev/'q'", "'\\''"),
            ("/dev/*", "'*'"),
            ("/dev/v\u{202e}db", "'\\u{202e}'"),
            ("/dev/vdé", "'é'"),
            ("-/dev/vdb", "not an absolute path"),
            ("vdb", "not an absolute path"),
            ("/", "not an absolute path"),
            ("/dev/../etc/passwd", "'..'"),
        ] {
            let err = check_device_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("is not a device path") && err.ends_with(why),
                "{bad:?}: {err}"
            );
            assert!(!err.chars().any(char::is_control), "{err:?}");
        }
        assert!(
            check_device_name("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(check_device_name(&format!("/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn hostnames_are_names_or_addresses() {
        for good in ["node1.example.com", "10.0.0.1", "fe80::1", "::1", "n_1"] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("a b", "white space (' ')"),
            ("node1\n", "white space ('\\n')"),
            ("node1;id", "';'"),
            ("-oProxyCommand=x", "it starts with '-'"),
            ("--remote-host=evil", "it starts with '-'"),
            (".hidden", "it starts with '.'"),
            ("n\u{7}", "a control character ('\\u{7}')"),
            ("n\u{202e}x", "'\\u{202e}'"),
        ] {
            let err = check_host(bad).unwrap_err().to_string();
            assert!(err.ends_with(why), "{bad:?}: {err}");
            assert!(!err.chars().any(char::is_control), "{err:?}");
        }
        assert!(check_host("").is_err() && check_host(&"a".repeat(254)).is_err());
    }
}
