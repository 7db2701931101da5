//! The topology file: heketi's `topology.json` as it is, or the same
//! structure in YAML.
//!
//! ```json
//! {"clusters": [{"nodes": [{
//!     "node": {"hostnames": {"manage": ["n1.example.com"], "storage": ["10.0.0.1"]},
//!              "zone": 1, "tags": {"rack": "r1"}},
//!     "devices": ["/dev/vdb", {"name": "/dev/vdc", "destroydata": true, "tags": {"disktype": "ssd"}}]
//! }]}]}
//! ```
//!
//! Parsing is pure. Errors name the field by its path, e.g.
//! `clusters[0].nodes[2].node.hostnames.manage`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Pairs;

mod names;

pub use names::{DevicePathProblem, NameError, check_device_name, check_host};

/// A parsed and checked topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologySpec {
    /// The clusters, in file order.
    pub clusters: Vec<ClusterSpec>,
}

/// One cluster of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Its nodes.
    pub nodes: Vec<NodeSpec>,
}

/// One node of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The hostname aplo manages the node by (runs commands on).
    pub manage: String,
    /// The address gluster uses for bricks.
    pub storage: String,
    /// The failure zone (heketi's integer zones become their decimal text).
    pub zone: String,
    /// Node tags.
    pub tags: Pairs,
    /// The node's devices.
    pub devices: Vec<DeviceSpec>,
}

/// One device of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The block device, e.g. `/dev/vdb`.
    pub name: String,
    /// Whether existing data on the device may be wiped when it is added.
    pub destroy_data: bool,
    /// Device tags.
    pub tags: Pairs,
}

/// A topology file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The text is not JSON or YAML at all.
    #[error("the topology is not valid {format}: {message}")]
    Syntax {
        /// `JSON` or `YAML`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A field is missing, of the wrong type, or has a bad value.
    #[error("{path}: {message}")]
    Field {
        /// The field's path, e.g. `clusters[0].nodes[1].devices[0]`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn field(path: impl Into<String>, message: impl Into<String>) -> TopologyError {
    TopologyError::Field {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    clusters: Vec<RawCluster>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    nodes: Vec<RawNodeEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeEntry {
    node: RawNode,
    #[serde(default)]
    devices: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    hostnames: RawHostnames,
    zone: RawZone,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// heketi's add-node request carries a cluster id; a topology file's
    /// nesting already says which cluster, so it is ignored.
    #[serde(default, rename = "cluster")]
    _cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostnames {
    manage: Vec<String>,
    storage: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawZone {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDevice {
    Path(String),
    Full(RawDeviceFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviceFull {
    name: String,
    #[serde(default)]
    destroydata: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// Parse a topology file, JSON or YAML (JSON when it starts with `{`).
pub fn parse_topology(text: &str) -> Result<TopologySpec, TopologyError> {
    let raw: RawFile = if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            if e.inner().is_syntax() || e.inner().is_eof() {
                TopologyError::Syntax {
                    format: "JSON",
                    message: e.inner().to_string(),
                }
            } else {
                located(e, "JSON")
            }
        })?
    } else {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| located(e, "YAML"))?
    };
    check(raw)
}

fn located<E: std::fmt::Display>(
    err: serde_path_to_error::Error<E>,
    format: &'static str,
) -> TopologyError {
    let path = err.path().to_string();
    let message = err.inner().to_string();
    let message =
        if message.starts_with("data did not match any variant of untagged enum RawDevice") {
            "a device is a path string or {\"name\": ..., \"destroydata\": ..., \"tags\": {...}}"
                .to_owned()
        } else if message.starts_with("data did not match any variant of untagged enum RawZone") {
            "a zone is a number or a string".to_owned()
        } else {
            message
        };
    if path == "." || path.is_empty() {
        TopologyError::Syntax { format, message }
    } else {
        field(path, message)
    }
}

fn check(raw: RawFile) -> Result<TopologySpec, TopologyError> {
    if raw.clusters.is_empty() {
        return Err(field("clusters", "the topology has no clusters"));
    }
    let mut manage_seen: BTreeMap<String, String> = BTreeMap::new();
    let mut clusters = Vec::new();
    for (c, cluster) in raw.clusters.into_iter().enumerate() {
        if cluster.nodes.is_empty() {
            return Err(field(
                format!("clusters[{c}].nodes"),
                "a cluster needs at least one node",
            ));
        }
        let mut nodes = Vec::new();
        for (n, entry) in cluster.nodes.into_iter().enumerate() {
            let at = format!("clusters[{c}].nodes[{n}]");
            let node = entry.node;
            let manage = single_host(
                &node.hostnames.manage,
                &format!("{at}.node.hostnames.manage"),
            )?;
            let storage = single_host(
                &node.hostnames.storage,
                &format!("{at}.node.hostnames.storage"),
            )?;
            if let Some(first) = manage_seen.insert(manage.clone(), at.clone()) {
                return Err(field(
                    format!("{at}.node.hostnames.manage"),
                    format!("'{manage}' is already the manage hostname of {first}"),
                ));
            }
            let zone = match node.zone {
                RawZone::Number(z) => z.to_string(),
                RawZone::Text(z) if !z.trim().is_empty() && z.len() <= 63 => z.trim().to_owned(),
                RawZone::Text(_) => {
                    return Err(field(
                        format!("{at}.node.zone"),
                        "a zone name is 1 to 63 characters",
                    ));
                }
            };
            check_tags(&node.tags, &format!("{at}.node.tags"))?;
            let mut devices: Vec<DeviceSpec> = Vec::new();
            for (d, raw) in entry.devices.into_iter().enumerate() {
                let path = format!("{at}.devices[{d}]");
                let (device, name_field) = match raw {
                    RawDevice::Path(name) => (
                        DeviceSpec {
                            name,
                            destroy_data: false,
                            tags: Pairs::new(),
                        },
                        path.clone(),
                    ),
                    RawDevice::Full(full) => {
                        check_tags(&full.tags, &format!("{path}.tags"))?;
                        (
                            DeviceSpec {
                                name: full.name,
                                destroy_data: full.destroydata,
                                tags: full.tags,
                            },
                            format!("{path}.name"),
                        )
                    }
                };
                check_device_name(&device.name).map_err(|e| field(name_field, e.to_string()))?;
                if devices.iter().any(|other| other.name == device.name) {
                    return Err(field(
                        path,
                        format!("device '{}' is listed twice on this node", device.name),
                    ));
                }
                devices.push(device);
            }
            nodes.push(NodeSpec {
                manage,
                storage,
                zone,
                tags: node.tags,
                devices,
            });
        }
        clusters.push(ClusterSpec { nodes });
    }
    Ok(TopologySpec { clusters })
}

fn single_host(hosts: &[String], path: &str) -> Result<String, TopologyError> {
    let [host] = hosts else {
        return Err(field(
            path,
            format!("expected exactly one hostname, found {}", hosts.len()),
        ));
    };
    check_host(host).map_err(|e| field(path, e.to_string()))?;
    Ok(host.clone())
}

fn check_tags(tags: &Pairs, path: &str) -> Result<(), TopologyError> {
    for (key, value) in tags {
        let key_ok = !key.is_empty()
            && key.len() <= 63
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !key_ok {
            return Err(field(
                path,
                format!("'{key}' is not a tag name (letters, digits, '-', '_', '.', '/')"),
            ));
        }
        if value.len() > 255 || value.chars().any(char::is_control) {
            return Err(field(
                format!("{path}.{key}"),
                "a tag value is at most 255 plain characters",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEKETI: &str = include_str!("../../tests/data/heketi-topology.json");

    #[test]
    fn heketi_files_load_as_they_are() {
        let spec = parse_topology(HEKETI).unwrap();
        assert_eq!(spec.clusters.len(), 1);
        let nodes = &spec.clusters[0].nodes;
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].manage, "node1.example.com");
        assert_eq!(nodes[0].storage, "192.168.10.100");
        assert_eq!(nodes[0].zone, "1");
        assert_eq!(
            nodes[0].devices[0],
            DeviceSpec {
                name: "/dev/sdb".into(),
                destroy_data: false,
                tags: Pairs::new()
            }
        );
        let tagged = &nodes[2].devices[1];
        assert!(tagged.destroy_data);
        assert_eq!(
            tagged.tags.get("arbiter").map(String::as_str),
            Some("required")
        );
        assert_eq!(nodes[2].tags.get("rack").map(String::as_str), Some("r3"));
    }

    #[test]
    fn the_yaml_form_is_the_same_topology() {
        let json: serde_json::Value = serde_json::from_str(HEKETI).unwrap();
        let yaml = serde_yaml::to_string(&json).unwrap();
        assert_eq!(
            parse_topology(&yaml).unwrap(),
            parse_topology(HEKETI).unwrap()
        );
    }

    fn error(text: &str) -> String {
        parse_topology(text).unwrap_err().to_string()
    }

    fn node(hostnames: &str, extra: &str) -> String {
        format!(
            r#"{{"clusters": [{{"nodes": [{{"node": {{"hostnames": {hostnames}, "zone": 1}}, "devices": ["/dev/vdb"{extra}]}}]}}]}}"#
        )
    }

    #[test]
    fn bad_files_name_the_field() {
        let ok = r#"{"manage": ["a"], "storage": ["10.0.0.1"]}"#;
        assert!(parse_topology(&node(ok, "")).is_ok());
        let e = error(&node(r#"{"manage": [], "storage": ["10.0.0.1"]}"#, ""));
        assert_eq!(
            e,
            "clusters[0].nodes[0].node.hostnames.manage: expected exactly one hostname, found 0"
        );
        let e = error(&node(r#"{"manage": ["a b"], "storage": ["x"]}"#, ""));
        assert!(
            e.starts_with("clusters[0].nodes[0].node.hostnames.manage: 'a b'"),
            "{e}"
        );
        let e = error(&node(r#"{"manage": ["a"], "storag": ["x"]}"#, ""));
        assert!(
            e.starts_with("clusters[0].nodes[0].node.hostnames") && e.contains("storag"),
            "{e}"
        );
        let e = error(&node(ok, r#", "../etc/passwd""#));
        assert!(
            e.starts_with("clusters[0].nodes[0].devices[1]: '../etc/passwd'"),
            "{e}"
        );
        let e = error(&node(ok, r#", "/dev/vdb""#));
        assert!(
            e.contains("devices[1]") && e.contains("listed twice"),
            "{e}"
        );
        let e = error(&node(ok, r#", 42"#));
        assert!(
            e.starts_with("clusters[0].nodes[0].devices[1]: a device is a path string"),
            "{e}"
        );
        let e = error(&node(
            ok,
            r#", {"name": "/dev/vdc", "tags": {"bad key": "x"}}"#,
        ));
        assert!(e.starts_with("clusters[0].nodes[0].devices[1].tags"), "{e}");
        assert_eq!(
            error(r#"{"clusters": []}"#),
            "clusters: the topology has no clusters"
        );
        assert!(
            error("{\"clusters\": [").starts_with("the topology is not valid JSON"),
            "{}",
            error("{\"clusters\": [")
        );
        assert!(
            error("clusters: [").contains("at line 2 column 1"),
            "{}",
            error("clusters: [")
        );
    }

    #[test]
    fn a_manage_hostname_may_appear_once() {
        let two = r#"{"clusters": [{"nodes": [
            {"node": {"hostnames": {"manage": ["a"], "storage": ["1"]}, "zone": 1}, "devices": []},
            {"node": {"hostnames": {"manage": ["a"], "storage": ["2"]}, "zone": "east"}, "devices": []}]}]}"#;
        let e = error(two);
        assert_eq!(
            e,
            "clusters[0].nodes[1].node.hostnames.manage: 'a' is already the manage hostname of clusters[0].nodes[0]"
        );
    }

    #[test]
    fn a_topology_names_the_field_of_a_bad_device_or_host() {
        let ok = r#"{"manage": ["a"], "storage": ["10.0.0.1"]}"#;
        let e = error(&node(ok, r#", "/dev/vdc; rm -rf /""#));
        assert!(
            e.starts_with(
                "clusters[0].nodes[0].devices[1]: '/dev/vdc; rm -rf /' is not a device path"
            ),
            "{e}"
        );
        let e = error(&node(ok, r#", {"name": "/dev/vdc\u001b[31m"}"#));
        assert!(
            e.starts_with("clusters[0].nodes[0].devices[1].name: '/dev/vdc\\u{1b}[31m'"),
            "{e}"
        );
        let e = error(&node(
            r#"{"manage": ["a"], "storage": ["--remote-host=evil"]}"#,
            "",
        ));
        assert!(
            e.starts_with("clusters[0].nodes[0].node.hostnames.storage: '--remote-host=evil'"),
            "{e}"
        );
        let e = error(&node(r#"{"manage": ["a\tb"], "storage": ["x"]}"#, ""));
        assert!(
            e.starts_with("clusters[0].nodes[0].node.hostnames.manage: 'a\\tb'"),
            "{e}"
        );
    }
}
