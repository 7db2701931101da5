//! What a heketi volume request asks for, as the StorageClass-style
//! parameters the policies read, and why a request is refused.

use crate::http::heketi::VolumeCreateRequest;
use crate::model::options::{OptionError, OptionNames, check_option, first_duplicate};
use crate::model::{Id, Pairs};

/// Why a volume request is refused (a `400`): each names the field it is
/// about, with heketi's words in parentheses where heketi has some.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(in super::super) enum VolumeRequestError {
    /// A replica count heketi does not offer.
    #[error("durability.replicate.replica: {0} is not offered (Invalid replica value: use 1 to 3)")]
    Replica(u32),
    /// A dispersion heketi does not offer.
    #[error(
        "durability.disperse: Invalid dispersion combination: {data}+{redundancy} (use 2+1, 4+2, 8+3 or 8+4)"
    )]
    Dispersion {
        /// Data bricks.
        data: u32,
        /// Redundancy bricks.
        redundancy: u32,
    },
    /// A durability type that is not one.
    #[error(
        "durability.type: '{}' is not one of none, replicate, disperse",
        .0.escape_default()
    )]
    Durability(String),
    /// An option that is not `key value`.
    #[error("glustervolumeoptions: '{}' is not \"key value\"", .0.escape_default())]
    OptionShape(String),
    /// An option gluster must not be given.
    #[error("glustervolumeoptions: {0}")]
    Option(OptionError),
    /// An option with `;` or `=` in its key.
    #[error(
        "glustervolumeoptions: '{}' contains ';' or '=' in its key, which aplo cannot pass on",
        .0.escape_default()
    )]
    OptionSeparator(String),
    /// An option given twice (`gid`: once by the `gid` field).
    #[error(
        "glustervolumeoptions: '{key}' is given more than once{}",
        if *.gid { " (gid sets it too)" } else { "" }
    )]
    DuplicateOption {
        /// The option.
        key: String,
        /// Whether `gid` is the other time.
        gid: bool,
    },
    /// heketi's arbiter option is neither true nor false.
    #[error(
        "glustervolumeoptions: user.heketi.arbiter is '{}', not true or false",
        .0.escape_default()
    )]
    Arbiter(String),
    /// A snapshot factor outside 1 to 100.
    #[error("snapshot.factor: {0} is outside 1 to 100 (Invalid snapshot factor)")]
    SnapshotFactor(f32),
    /// There is no cluster.
    #[error("No clusters configured")]
    NoClusters,
    /// A cluster that is not an id.
    #[error("clusters: '{}' is not a valid id (32 hex characters)", .0.escape_default())]
    ClusterId(String),
    /// A cluster that does not exist.
    #[error("clusters: Cluster id {0} not found")]
    UnknownCluster(Id),
    /// No cluster asked for allows file volumes.
    #[error(
        "clusters: no cluster allows file volumes (set the file flag with POST /clusters/{{id}}/flags)"
    )]
    NoFileCluster,
}

/// The durability policy that echoes a heketi request.
const REQUESTED: &str = "requested";

/// heketi's dispersions.
const DISPERSIONS: [(u32, u32); 4] = [(2, 1), (4, 2), (8, 3), (8, 4)];

/// The StorageClass-style parameters of a heketi volume request.
///
/// Unless the request's aplo extension `parameters` names a `durability`
/// policy (then they are used as they are), durability is the `requested`
/// policy's with these settings:
/// - `durability.type` and its counts: `requested.type`, `.replica`
///   (at most 3, as heketi; 0 means 3), `.data` and `.redundancy` (heketi's
///   2+1, 4+2, 8+3 or 8+4; 0 means 4 and 2). An empty type is `none`, as
///   heketi's server takes it (heketi-cli always sends a type).
/// - `glustervolumeoptions` (`"key value"`): `requested.options`
///   (`key=value;...`), except heketi's `user.heketi.arbiter true`, which
///   becomes `requested.arbiter=true`. Each key must be one of `known`
///   (gluster's volume options) or a custom `user.` option, given once;
///   a key or value the gluster CLI could take as a flag is refused
///   ([`crate::model::options`]).
/// - `gid`: the gluster option `storage.owner-gid` (aplo has no brick root
///   ownership of its own; gluster applies the group to the volume root).
/// - `snapshot`: `requested.snapshot-reserve` = its factor (1 to 100).
///
/// The extension `parameters` are then added over these (e.g. a
/// `placement` policy).
pub(in super::super) fn volume_parameters(
    request: &VolumeCreateRequest,
    known: &OptionNames,
) -> Result<Pairs, VolumeRequestError> {
    if request.parameters.contains_key("durability") {
        return Ok(request.parameters.clone());
    }
    let mut parameters = Pairs::new();
    let mut set = |key: &str, value: String| {
        parameters.insert(format!("{REQUESTED}.{key}"), value);
    };
    let d = &request.durability;
    match d.kind.as_str() {
        "" | "none" => set("type", "none".into()),
        "replicate" => {
            let replica = d.replicate.replica;
            if replica > 3 {
                return Err(VolumeRequestError::Replica(replica));
            }
            set("type", "replicate".into());
            if replica != 0 {
                set("replica", replica.to_string());
            }
        }
        "disperse" => {
            let data = if d.disperse.data == 0 {
                4
            } else {
                d.disperse.data
            };
            let redundancy = if d.disperse.redundancy == 0 {
                2
            } else {
                d.disperse.redundancy
            };
            if !DISPERSIONS.contains(&(data, redundancy)) {
                return Err(VolumeRequestError::Dispersion { data, redundancy });
            }
            set("type", "disperse".into());
            set("data", data.to_string());
            set("redundancy", redundancy.to_string());
        }
        other => {
            return Err(VolumeRequestError::Durability(other.to_owned()));
        }
    }
    let mut options = Vec::new();
    let mut keys = Vec::new();
    if request.gid > 0 {
        options.push(format!("storage.owner-gid={}", request.gid));
        keys.push("storage.owner-gid");
    }
    for option in &request.glustervolumeoptions {
        let option = option.trim();
        let Some((key, value)) = option
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .filter(|(_, v)| !v.is_empty())
        else {
            return Err(VolumeRequestError::OptionShape(option.to_owned()));
        };
        check_option(key, value, Some(known)).map_err(VolumeRequestError::Option)?;
        if option.contains(';') || key.contains('=') {
            return Err(VolumeRequestError::OptionSeparator(option.to_owned()));
        }
        keys.push(key);
        if let Some(key) = first_duplicate(keys.iter().copied()) {
            return Err(VolumeRequestError::DuplicateOption {
                key: key.to_owned(),
                gid: key == "storage.owner-gid" && request.gid > 0,
            });
        }
        if key == "user.heketi.arbiter" {
            match value {
                "true" => set("arbiter", "true".into()),
                "false" => {}
                other => {
                    return Err(VolumeRequestError::Arbiter(other.to_owned()));
                }
            }
            continue;
        }
        options.push(format!("{key}={value}"));
    }
    if !options.is_empty() {
        set("options", options.join(";"));
    }
    if request.snapshot.enable {
        let factor = request.snapshot.factor;
        if !(1.0..=100.0).contains(&factor) {
            return Err(VolumeRequestError::SnapshotFactor(factor));
        }
        set("snapshot-reserve", factor.to_string());
    }
    parameters.insert("durability".into(), REQUESTED.into());
    parameters.extend(request.parameters.clone());
    Ok(parameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::gluster::builtin_options;
    use crate::model::testing::pairs;

    fn request(json: &str) -> VolumeCreateRequest {
        serde_json::from_str(json).unwrap()
    }

    fn parameters(json: &str) -> Result<Pairs, VolumeRequestError> {
        volume_parameters(&request(json), &builtin_options())
    }

    #[test]
    fn heketi_durabilities_become_requested_settings() {
        let cases: [(&str, &[(&str, &str)]); 6] = [
            // heketi's server reads a missing type as distribute-only.
            (
                r#"{"size": 1}"#,
                &[("durability", "requested"), ("requested.type", "none")],
            ),
            (
                r#"{"size": 1, "durability": {"type": "none"}}"#,
                &[("durability", "requested"), ("requested.type", "none")],
            ),
            (
                r#"{"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 2}}}"#,
                &[
                    ("durability", "requested"),
                    ("requested.type", "replicate"),
                    ("requested.replica", "2"),
                ],
            ),
            (
                r#"{"size": 1, "durability": {"type": "replicate"}}"#,
                &[("durability", "requested"), ("requested.type", "replicate")],
            ),
            (
                r#"{"size": 1, "durability": {"type": "disperse"}}"#,
                &[
                    ("durability", "requested"),
                    ("requested.type", "disperse"),
                    ("requested.data", "4"),
                    ("requested.redundancy", "2"),
                ],
            ),
            (
                r#"{"size": 1, "durability": {"type": "disperse", "disperse": {"data": 8, "redundancy": 4}}}"#,
                &[
                    ("durability", "requested"),
                    ("requested.type", "disperse"),
                    ("requested.data", "8"),
                    ("requested.redundancy", "4"),
                ],
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parameters(body), Ok(pairs(expected)), "{body}");
        }
    }

    #[test]
    fn options_arbiter_gid_and_snapshot_become_settings() {
        let got = parameters(
            r#"{"size": 1, "gid": 2000, "durability": {"type": "replicate", "replicate": {"replica": 3}},
                "glustervolumeoptions": ["performance.rda-cache-limit  10MB", "user.heketi.arbiter true",
                "client.ssl on"], "snapshot": {"enable": true, "factor": 1.5}}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("durability", "requested"),
                ("requested.type", "replicate"),
                ("requested.replica", "3"),
                ("requested.arbiter", "true"),
                (
                    "requested.options",
                    "storage.owner-gid=2000;performance.rda-cache-limit=10MB;client.ssl=on"
                ),
                ("requested.snapshot-reserve", "1.5"),
            ])
        );
        // Snapshots off: no reserve, whatever the factor.
        let off = parameters(r#"{"size": 1, "snapshot": {"enable": false, "factor": 0}}"#).unwrap();
        assert!(!off.contains_key("requested.snapshot-reserve"), "{off:?}");
    }

    #[test]
    fn extension_parameters_add_to_or_replace_the_request() {
        let added = parameters(
            r#"{"size": 1, "durability": {"type": "none"}, "parameters": {"placement": "binpack"}}"#,
        )
        .unwrap();
        assert_eq!(added["placement"], "binpack");
        assert_eq!(added["requested.type"], "none");
        let replaced = parameters(
            r#"{"size": 1, "durability": {"type": "none"}, "gid": 5,
                "parameters": {"durability": "classes", "classes.class": "replica2"}}"#,
        )
        .unwrap();
        assert_eq!(
            replaced,
            pairs(&[("durability", "classes"), ("classes.class", "replica2")])
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                r#"{"durability": {"type": "replicate", "replicate": {"replica": 4}}}"#,
                "durability.replicate.replica",
            ),
            (
                r#"{"durability": {"type": "disperse", "disperse": {"data": 3, "redundancy": 1}}}"#,
                "durability.disperse",
            ),
            (r#"{"durability": {"type": "mirror"}}"#, "durability.type"),
            (
                r#"{"glustervolumeoptions": ["performance.cache-size"]}"#,
                "glustervolumeoptions",
            ),
            (
                r#"{"glustervolumeoptions": ["a.b x;c.d=y"]}"#,
                "glustervolumeoptions",
            ),
            (
                r#"{"glustervolumeoptions": ["user.heketi.arbiter maybe"]}"#,
                "glustervolumeoptions",
            ),
            (
                r#"{"glustervolumeoptions": ["performance.cache-size --log-file=/tmp/pwned"]}"#,
                "glustervolumeoptions",
            ),
            (
                r#"{"glustervolumeoptions": ["--log-file=/tmp/pwned on"]}"#,
                "glustervolumeoptions",
            ),
            (
                r#"{"snapshot": {"enable": true, "factor": 0.5}}"#,
                "snapshot.factor",
            ),
            (
                r#"{"snapshot": {"enable": true, "factor": 101}}"#,
                "snapshot.factor",
            ),
        ];
        for (body, field) in cases {
            let mut value: serde_json::Value = serde_json::from_str(body).unwrap();
            value["size"] = 1.into();
            let request: VolumeCreateRequest = serde_json::from_value(value).unwrap();
            let err = volume_parameters(&request, &builtin_options())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(field), "{body}: {err}");
        }
    }

    #[test]
    fn options_that_could_steer_gluster_are_refused_with_their_name() {
        let refused = |options: &str, gid: i64| {
            parameters(&format!(
                r#"{{"size": 1, "gid": {gid}, "glustervolumeoptions": {options}}}"#
            ))
            .unwrap_err()
            .to_string()
        };
        for (options, needle) in [
            (
                r#"["performance.cache-size --log-file=/tmp/pwned"]"#,
                "'performance.cache-size'",
            ),
            (
                r#"["performance.cache-size --remote-host=10.0.0.9"]"#,
                "'performance.cache-size'",
            ),
            (
                r#"["performance.cache-size -1"]"#,
                "'performance.cache-size'",
            ),
            (
                r#"["--remote-host=10.0.0.9 on"]"#,
                "'--remote-host=10.0.0.9'",
            ),
            (r#"["--log-file.x on"]"#, "'--log-file.x'"),
            (r#"["cluster.made-up on"]"#, "'cluster.made-up'"),
            (r#"["group virt"]"#, "'group'"),
            (r#"["user.aplo.volume x"]"#, "'user.aplo.volume'"),
            (r#"["user.smb enable"]"#, "'user.smb'"),
            (
                r#"["performance.cache-size 10MB", "performance.cache-size 20MB"]"#,
                "'performance.cache-size' is given more than once",
            ),
        ] {
            let err = refused(options, 0);
            assert!(
                err.starts_with("glustervolumeoptions: ") && err.contains(needle),
                "{options}: {err}"
            );
        }
        let gid = refused(r#"["storage.owner-gid 5"]"#, 7);
        assert!(
            gid.contains("'storage.owner-gid' is given more than once (gid sets it too)"),
            "{gid}"
        );
        assert!(
            refused(
                r#"["user.heketi.arbiter true", "user.heketi.arbiter false"]"#,
                0
            )
            .contains("'user.heketi.arbiter' is given more than once")
        );
        // A custom option and a real one pass.
        let ok = parameters(
            r#"{"size": 1, "glustervolumeoptions": ["user.team blue", "performance.cache-size 10MB"]}"#,
        )
        .unwrap();
        assert_eq!(
            ok["requested.options"],
            "user.team=blue;performance.cache-size=10MB"
        );
    }
}
