//! What a StorageClass's parameters say: the PV source, the gid range,
//! and the parameters left for the policies.

use std::collections::BTreeMap;

use k8s_openapi::api::storage::v1::StorageClass;

use crate::model::Pairs;

/// StorageClass parameters aplo cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    /// A parameter with a `/` (a secret or a CSI sidecar parameter).
    #[error(
        "StorageClass parameter '{0}' is not used by aplo (it reads no secrets and no CSI sidecar parameters)"
    )]
    NotUsed(String),
    /// `endpoints` or `endpointsNamespace` without the in-tree source.
    #[error("StorageClass parameter '{0}' applies only with volumeSource: glusterfs")]
    OnlyWithGlusterfs(&'static str),
    /// A `volumeSource` other than `csi` and `glusterfs`.
    #[error(
        "StorageClass parameter volumeSource is '{0}'; use 'csi' (the default) or 'glusterfs' (the legacy in-tree source)"
    )]
    VolumeSource(String),
    /// `gidMin` or `gidMax` is not a group id.
    #[error(
        "StorageClass parameter {key} is '{value}'; it must be a group id from 1 to {}",
        DEFAULT_GID_RANGE.1
    )]
    Gid {
        /// `gidMin` or `gidMax`.
        key: &'static str,
        /// The value, escaped.
        value: String,
    },
    /// `gidMin` is above `gidMax`.
    #[error(
        "StorageClass parameters gidMin {min} and gidMax {max}: gidMin must not be above gidMax"
    )]
    GidOrder {
        /// `gidMin`.
        min: u32,
        /// `gidMax`.
        max: u32,
    },
}

/// StorageClass parameters the host reads itself (the rest choose and
/// configure policies).
const HOST_PARAMETERS: [&str; 5] = [
    "volumeSource",
    "endpoints",
    "endpointsNamespace",
    "gidMin",
    "gidMax",
];

/// The in-tree glusterfs provisioner's default gid range, kept for classes
/// that name none.
pub const DEFAULT_GID_RANGE: (u32, u32) = (2000, 2_147_483_647);

/// Where a provisioned PV points its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A CSI source with aplo's driver name (the default).
    Csi,
    /// The legacy in-tree `glusterfs` source, for clusters before 1.26.
    Glusterfs {
        /// The Endpoints object listing the gluster servers.
        endpoints: String,
        /// Its namespace; the claim's namespace when not given.
        namespace: Option<String>,
    },
}

/// What a StorageClass's parameters say, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassOptions {
    /// The PV source.
    pub source: VolumeSource,
    /// The parameters that choose and configure policies (for the engine).
    pub policy_parameters: Pairs,
    /// The range each volume's own gid comes from (`gidMin`, `gidMax`).
    pub gid_range: (u32, u32),
}

/// Read a StorageClass's host parameters; the policy parameters are left
/// for the policy registry to check.
pub fn class_options(class: &StorageClass) -> Result<ClassOptions, ClassError> {
    parameter_options(class.parameters.clone().unwrap_or_default())
}

/// Read StorageClass parameters (as a class has them, or as a CSI
/// `CreateVolume` carries them without the sidecar's own keys).
pub fn parameter_options(parameters: BTreeMap<String, String>) -> Result<ClassOptions, ClassError> {
    let mut policy_parameters = Pairs::new();
    let mut host = BTreeMap::new();
    for (key, value) in parameters {
        if HOST_PARAMETERS.contains(&key.as_str()) {
            host.insert(key, value);
        } else if key.contains('/') {
            return Err(ClassError::NotUsed(key));
        } else {
            policy_parameters.insert(key, value);
        }
    }
    let source = match host.get("volumeSource").map(String::as_str) {
        None | Some("csi") => {
            if let Some(key) = ["endpoints", "endpointsNamespace"]
                .into_iter()
                .find(|k| host.contains_key(*k))
            {
                return Err(ClassError::OnlyWithGlusterfs(key));
            }
            VolumeSource::Csi
        }
        Some("glusterfs") => VolumeSource::Glusterfs {
            endpoints: host
                .get("endpoints")
                .cloned()
                .unwrap_or_else(|| "glusterfs-cluster".to_owned()),
            namespace: host.get("endpointsNamespace").cloned(),
        },
        Some(other) => {
            return Err(ClassError::VolumeSource(other.to_owned()));
        }
    };
    let gid = |key: &'static str, default: u32| -> Result<u32, ClassError> {
        match host.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|g| (1..=DEFAULT_GID_RANGE.1).contains(g))
                .ok_or_else(|| ClassError::Gid {
                    key,
                    value: text.escape_default().to_string(),
                }),
        }
    };
    let gid_range = (
        gid("gidMin", DEFAULT_GID_RANGE.0)?,
        gid("gidMax", DEFAULT_GID_RANGE.1)?,
    );
    if gid_range.0 > gid_range.1 {
        return Err(ClassError::GidOrder {
            min: gid_range.0,
            max: gid_range.1,
        });
    }
    Ok(ClassOptions {
        source,
        policy_parameters,
        gid_range,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::class;
    use super::*;

    #[test]
    fn class_parameters_split_into_host_and_policy_parameters() {
        let options = class_options(&class(&[
            ("durability", "classes"),
            ("classes.class", "arbiter"),
        ]))
        .unwrap();
        assert_eq!(options.source, VolumeSource::Csi);
        assert_eq!(options.policy_parameters.len(), 2);

        let legacy = class_options(&class(&[("volumeSource", "glusterfs")])).unwrap();
        assert_eq!(
            legacy.source,
            VolumeSource::Glusterfs {
                endpoints: "glusterfs-cluster".into(),
                namespace: None
            }
        );
        for (params, needle) in [
            (&[("volumeSource", "nfs")][..], "volumeSource is 'nfs'"),
            (
                &[("endpoints", "x")][..],
                "only with volumeSource: glusterfs",
            ),
            (
                &[("csi.storage.k8s.io/provisioner-secret-name", "x")][..],
                "not used by aplo",
            ),
        ] {
            let err = class_options(&class(params)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn gid_ranges_come_from_the_class() {
        assert_eq!(
            class_options(&class(&[])).unwrap().gid_range,
            DEFAULT_GID_RANGE
        );
        let range = class_options(&class(&[("gidMin", "3000"), ("gidMax", "3999")]));
        assert_eq!(range.unwrap().gid_range, (3000, 3999));
        for (pairs, words) in [
            (&[("gidMin", "0")][..], "gidMin is '0'"),
            (&[("gidMax", "-5")][..], "gidMax is '-5'"),
            (&[("gidMin", "ten")][..], "gidMin is 'ten'"),
            (
                &[("gidMin", "5000"), ("gidMax", "4000")][..],
                "must not be above",
            ),
        ] {
            let err = class_options(&class(pairs)).unwrap_err().to_string();
            assert!(err.contains(words), "{err}");
        }
    }
}
