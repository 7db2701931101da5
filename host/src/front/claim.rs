//! What a claim asks for and the PersistentVolume that answers it: pure
//! functions over Kubernetes objects, no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, GlusterfsPersistentVolumeSource, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::{AccessMode, Claim, Pairs};

/// The provisioner name aplo answers to unless configured otherwise. It is
/// also the CSI driver name in the volumes it provisions.
pub const DEFAULT_PROVISIONER: &str = "glusterfs.aplo.dev";
/// The claim annotation naming the provisioner that should provision it.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The older spelling of [`ANN_STORAGE_PROVISIONER`].
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The node the scheduler chose, for `WaitForFirstConsumer` classes.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The PV annotation naming the provisioner that made it.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The finalizer that keeps a PV until its backend volume is deleted (the
/// same name external-provisioner uses, so tools recognise it).
pub const FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// The node label a zone preference is read from.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

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

/// The PV annotation kubelet reads to add a supplemental group to the pods
/// that use the volume (any volume type, CSI too).
pub const ANN_GID: &str = "pv.beta.kubernetes.io/gid";

/// The PV (and gluster volume) name for a claim: `pvc-<uid>`, so that a
/// retry or a restart can never make a second volume for the same claim.
pub fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// The claim uid a PV or volume name encodes, if it has that form.
pub fn claim_uid_of(volume_name: &str) -> Option<&str> {
    volume_name
        .strip_prefix("pvc-")
        .filter(|uid| !uid.is_empty())
}

/// The provisioner a claim asks for, from its annotations.
pub fn provisioner_of(claim: &PersistentVolumeClaim) -> Option<&str> {
    let annotations = claim.metadata.annotations.as_ref()?;
    annotations
        .get(ANN_STORAGE_PROVISIONER)
        .or_else(|| annotations.get(ANN_BETA_STORAGE_PROVISIONER))
        .map(String::as_str)
}

/// A Kubernetes quantity in bytes, rounded up to a whole byte: `10Gi`,
/// `1.5G`, `500M`, `1e9`, `2048`, `1500m` (1.5 bytes, so 2).
pub fn parse_quantity(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("'{text}' is not a valid quantity: {why}");
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let number = number.strip_prefix('+').unwrap_or(number);
    if number.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("expected a number such as 10Gi or 1.5G"));
    }
    // value = digits / 10^scale * multiplier, held exactly as a fraction.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(bad("it has too many digits"));
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad("it is too large"))?
    };
    let scale = i32::try_from(fraction.len()).map_err(|_| bad("it is too long"))?;
    let (binary, mut decimal): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent if exponent.starts_with(['e', 'E']) => {
            let e: i32 = exponent[1..]
                .parse()
                .map_err(|_| bad("the exponent is not a number"))?;
            (0, e)
        }
        other => return Err(bad(&format!("unknown suffix '{other}'"))),
    };
    // An exponent near i32::MIN (`1.5e-2147483648`) must not wrap.
    decimal = decimal
        .checked_sub(scale)
        .ok_or_else(|| bad("the exponent is out of range"))?;
    let mut numerator = mantissa
        .checked_mul(1u128 << binary)
        .ok_or_else(|| bad("it is too large"))?;
    let mut denominator: u128 = 1;
    if decimal >= 0 {
        let factor = 10u128
            .checked_pow(decimal.unsigned_abs())
            .ok_or_else(|| bad("it is too large"))?;
        numerator = numerator
            .checked_mul(factor)
            .ok_or_else(|| bad("it is too large"))?;
    } else {
        denominator = 10u128
            .checked_pow(decimal.unsigned_abs())
            .ok_or_else(|| bad("it has too many decimals"))?;
    }
    let bytes = numerator.div_ceil(denominator);
    u64::try_from(bytes).map_err(|_| bad("it is too large"))
}

/// Bytes as a quantity in the largest binary unit that divides them.
pub fn quantity(bytes: u64) -> Quantity {
    let units = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (suffix, shift) in units {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return Quantity(format!("{}{suffix}", bytes >> shift));
        }
    }
    Quantity(bytes.to_string())
}

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
pub fn class_options(class: &StorageClass) -> Result<ClassOptions, String> {
    parameter_options(class.parameters.clone().unwrap_or_default())
}

/// Read StorageClass parameters (as a class has them, or as a CSI
/// `CreateVolume` carries them without the sidecar's own keys).
pub fn parameter_options(parameters: BTreeMap<String, String>) -> Result<ClassOptions, String> {
    let mut policy_parameters = Pairs::new();
    let mut host = BTreeMap::new();
    for (key, value) in parameters {
        if HOST_PARAMETERS.contains(&key.as_str()) {
            host.insert(key, value);
        } else if key.contains('/') {
            return Err(format!(
                "StorageClass parameter '{key}' is not used by aplo (it reads no secrets and no \
                 CSI sidecar parameters)"
            ));
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
                return Err(format!(
                    "StorageClass parameter '{key}' applies only with volumeSource: glusterfs"
                ));
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
            return Err(format!(
                "StorageClass parameter volumeSource is '{other}'; use 'csi' (the default) or \
                 'glusterfs' (the legacy in-tree source)"
            ));
        }
    };
    let gid = |key: &str, default: u32| -> Result<u32, String> {
        match host.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|g| (1..=DEFAULT_GID_RANGE.1).contains(g))
                .ok_or_else(|| {
                    format!(
                        "StorageClass parameter {key} is '{}'; it must be a group id from 1 to {}",
                        text.escape_default(),
                        DEFAULT_GID_RANGE.1
                    )
                }),
        }
    };
    let gid_range = (
        gid("gidMin", DEFAULT_GID_RANGE.0)?,
        gid("gidMax", DEFAULT_GID_RANGE.1)?,
    );
    if gid_range.0 > gid_range.1 {
        return Err(format!(
            "StorageClass parameters gidMin {} and gidMax {}: gidMin must not be above gidMax",
            gid_range.0, gid_range.1
        ));
    }
    Ok(ClassOptions {
        source,
        policy_parameters,
        gid_range,
    })
}

/// A pending claim, checked: what to ask the engine for.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionRequest {
    /// The claim as the policies see it.
    pub claim: Claim,
    /// The node chosen by the scheduler (`WaitForFirstConsumer`).
    pub selected_node: Option<String>,
}

/// The bytes a claim requests.
pub fn requested_bytes(claim: &PersistentVolumeClaim) -> Result<u64, String> {
    let storage = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .ok_or("the claim requests no storage (spec.resources.requests.storage)")?;
    let bytes = parse_quantity(&storage.0)?;
    if bytes == 0 {
        return Err("the claim requests zero bytes of storage".into());
    }
    Ok(bytes)
}

fn access_mode(mode: &str) -> Result<AccessMode, String> {
    Ok(match mode {
        "ReadWriteOnce" => AccessMode::ReadWriteOnce,
        "ReadOnlyMany" => AccessMode::ReadOnlyMany,
        "ReadWriteMany" => AccessMode::ReadWriteMany,
        "ReadWriteOncePod" => AccessMode::ReadWriteOncePod,
        other => return Err(format!("unknown access mode '{other}'")),
    })
}

/// Check what a pending claim asks for, and say plainly what aplo cannot
/// give.
pub fn provision_request(claim: &PersistentVolumeClaim) -> Result<ProvisionRequest, String> {
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.selector.is_some() {
        return Err(
            "the claim has a selector; aplo cannot provision for a claim selector \
                    (remove spec.selector)"
                .into(),
        );
    }
    if let Some(source) = spec
        .data_source_ref
        .as_ref()
        .map(|r| (&r.kind, &r.name))
        .or(spec.data_source.as_ref().map(|r| (&r.kind, &r.name)))
    {
        return Err(format!(
            "the claim asks for data from {} '{}'; aplo cannot clone or restore volumes yet",
            source.0, source.1
        ));
    }
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err(
            "the claim asks for volumeMode Block; GlusterFS volumes are Filesystem only".into(),
        );
    }
    let modes = spec.access_modes.unwrap_or_default();
    if modes.is_empty() {
        return Err("the claim lists no access modes".into());
    }
    let access_modes = modes
        .iter()
        .map(|m| access_mode(m))
        .collect::<Result<Vec<_>, _>>()?;
    let meta = &claim.metadata;
    let annotations: Pairs = meta
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(ProvisionRequest {
        selected_node: annotations.get(ANN_SELECTED_NODE).cloned(),
        claim: Claim {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            annotations,
            requested_bytes: requested_bytes(claim)?,
            access_modes,
        },
    })
}

/// The backend volume a PV points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The engine's volume id (the CSI volume handle).
    pub id: String,
    /// The gluster volume name.
    pub name: String,
    /// Usable bytes provisioned.
    pub bytes: u64,
    /// The gluster servers to mount from, first one first.
    pub hosts: Vec<String>,
    /// The volume's own group id, if it has one.
    pub gid: Option<u32>,
}

/// The PV for a provisioned claim.
pub fn build_pv(
    provisioner: &str,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    options: &ClassOptions,
    backend: &Backend,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let meta = &claim.metadata;
    let claim_ref = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    };
    let (csi, glusterfs) = match &options.source {
        VolumeSource::Csi => (
            Some(CSIPersistentVolumeSource {
                driver: provisioner.to_owned(),
                volume_handle: backend.id.clone(),
                volume_attributes: Some(BTreeMap::from([
                    ("hosts".to_owned(), backend.hosts.join(",")),
                    ("volume".to_owned(), backend.name.clone()),
                ])),
                ..CSIPersistentVolumeSource::default()
            }),
            None,
        ),
        VolumeSource::Glusterfs {
            endpoints,
            namespace,
        } => (
            None,
            Some(GlusterfsPersistentVolumeSource {
                endpoints: endpoints.clone(),
                endpoints_namespace: namespace.clone().or_else(|| meta.namespace.clone()),
                path: backend.name.clone(),
                read_only: None,
            }),
        ),
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(backend.name.clone()),
            annotations: Some(
                std::iter::once((ANN_PROVISIONED_BY.to_owned(), provisioner.to_owned()))
                    .chain(backend.gid.map(|gid| (ANN_GID.to_owned(), gid.to_string())))
                    .collect(),
            ),
            finalizers: Some(vec![FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([(
                "storage".to_owned(),
                quantity(backend.bytes),
            )])),
            claim_ref: Some(claim_ref),
            csi,
            glusterfs,
            mount_options: class.mount_options.clone(),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_owned()),
            ),
            storage_class_name: class.metadata.name.clone(),
            volume_mode: Some(spec.volume_mode.unwrap_or_else(|| "Filesystem".to_owned())),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

/// A PV's capacity in bytes.
pub fn pv_bytes(pv: &PersistentVolume) -> Result<u64, String> {
    let q = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .ok_or("the PV has no storage capacity")?;
    parse_quantity(&q.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};

    #[test]
    fn quantities_parse_like_kubernetes() {
        let cases = [
            ("10Gi", 10 << 30),
            ("1Ki", 1024),
            ("1.5Gi", 3 << 29),
            ("1G", 1_000_000_000),
            ("500M", 500_000_000),
            ("1e9", 1_000_000_000),
            ("1E3", 1000),
            ("2048", 2048),
            ("1500m", 2),
            ("0.5", 1),
            ("+3k", 3000),
            ("1Ei", 1 << 60),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_quantity(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "Gi",
            "-1Gi",
            "1.2.3",
            "10GB",
            "1e",
            "99999999999999999999Ei",
            "x",
        ] {
            let err = parse_quantity(bad).unwrap_err();
            assert!(err.contains("not a valid quantity"), "{bad}: {err}");
        }
    }

    #[test]
    fn extreme_exponents_are_refused_not_wrapped() {
        // The fraction's scale taken from i32::MIN used to overflow (a
        // panic in a debug build).
        for (text, why) in [
            ("1.5e-2147483648", "the exponent is out of range"),
            ("1e-2147483648", "too many decimals"),
            ("1e2147483647", "too large"),
            ("1e2147483648", "the exponent is not a number"),
        ] {
            let err = parse_quantity(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn quantities_print_in_the_largest_unit() {
        assert_eq!(quantity(10 << 30).0, "10Gi");
        assert_eq!(quantity(1536 << 20).0, "1536Mi");
        assert_eq!(quantity(1000).0, "1000");
        assert_eq!(quantity(0).0, "0");
        for bytes in [1u64, 1023, 4096, 10 << 30, (3 << 40) + 7] {
            assert_eq!(parse_quantity(&quantity(bytes).0), Ok(bytes));
        }
    }

    fn class(params: &[(&str, &str)]) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some("gold".into()),
                ..ObjectMeta::default()
            },
            provisioner: DEFAULT_PROVISIONER.into(),
            parameters: Some(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            mount_options: Some(vec!["log-level=WARNING".into()]),
            ..StorageClass::default()
        }
    }

    fn claim(spec: PersistentVolumeClaimSpec) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                namespace: Some("shop".into()),
                uid: Some("0b9a".into()),
                annotations: Some(BTreeMap::from([(
                    ANN_STORAGE_PROVISIONER.to_owned(),
                    DEFAULT_PROVISIONER.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    fn wanting(size: &str) -> PersistentVolumeClaimSpec {
        PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some("gold".into()),
            ..PersistentVolumeClaimSpec::default()
        }
    }

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
            let err = class_options(&class(params)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_claim_becomes_a_request_or_a_clear_refusal() {
        let request = provision_request(&claim(wanting("2Gi"))).unwrap();
        assert_eq!(request.claim.requested_bytes, 2 << 30);
        assert_eq!(request.claim.namespace, "shop");
        assert_eq!(request.claim.access_modes, vec![AccessMode::ReadWriteMany]);
        assert_eq!(request.selected_node, None);

        let mut block = wanting("1Gi");
        block.volume_mode = Some("Block".into());
        let mut no_modes = wanting("1Gi");
        no_modes.access_modes = None;
        let mut selector = wanting("1Gi");
        selector.selector = Some(Default::default());
        for (spec, needle) in [
            (block, "Filesystem only"),
            (no_modes, "no access modes"),
            (selector, "selector"),
            (wanting("0"), "zero bytes"),
            (wanting("ten"), "not a valid quantity"),
        ] {
            let err = provision_request(&claim(spec)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn the_pv_answers_the_claim() {
        let claim = claim(wanting("1Gi"));
        let backend = Backend {
            id: "42".into(),
            name: volume_name("0b9a"),
            bytes: 1 << 30,
            hosts: vec!["g1".into(), "g2".into()],
            gid: Some(2001),
        };
        let class = class(&[]);
        let pv = build_pv(
            DEFAULT_PROVISIONER,
            &claim,
            &class,
            &class_options(&class).unwrap(),
            &backend,
        );
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-0b9a"));
        assert_eq!(pv.metadata.annotations.as_ref().unwrap()[ANN_GID], "2001");
        assert_eq!(pv.metadata.finalizers, Some(vec![FINALIZER.to_owned()]));
        let spec = pv.spec.as_ref().unwrap();
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(
            spec.claim_ref.as_ref().unwrap().uid.as_deref(),
            Some("0b9a")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("gold"));
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(spec.mount_options, class.mount_options);
        let csi = spec.csi.as_ref().unwrap();
        assert_eq!(csi.driver, DEFAULT_PROVISIONER);
        assert_eq!(csi.volume_handle, "42");
        let attributes = csi.volume_attributes.as_ref().unwrap();
        assert_eq!(attributes["hosts"], "g1,g2");
        assert_eq!(attributes["volume"], "pvc-0b9a");
        assert_eq!(pv_bytes(&pv), Ok(1 << 30));

        let legacy = class_options(&class_with_legacy()).unwrap();
        let pv = build_pv(DEFAULT_PROVISIONER, &claim, &class, &legacy, &backend);
        let gluster = pv.spec.unwrap().glusterfs.unwrap();
        assert_eq!(gluster.path, "pvc-0b9a");
        assert_eq!(gluster.endpoints_namespace.as_deref(), Some("shop"));
        assert_eq!(claim_uid_of("pvc-0b9a"), Some("0b9a"));
        assert_eq!(claim_uid_of("vol_1"), None);
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
            let err = class_options(&class(pairs)).unwrap_err();
            assert!(err.contains(words), "{err}");
        }
    }

    fn class_with_legacy() -> StorageClass {
        class(&[("volumeSource", "glusterfs")])
    }
}
