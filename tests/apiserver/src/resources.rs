//! The static table of served resources. Add a row to serve another one.

/// How stored objects are presented for a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Stored as served.
    Native,
    /// `core/v1` events: a view over the `events.k8s.io/v1` storage.
    CoreEvent,
}

/// One served resource.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    /// API group, `""` for core.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// `group/version`, or `v1` for core.
    pub api_version: &'static str,
    /// Plural (URL) name.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// List kind.
    pub list_kind: &'static str,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Has a `status` subresource.
    pub status: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Storage key: two resources with the same key share objects.
    pub storage: &'static str,
    /// Presentation of stored objects.
    pub view: View,
}

/// Verbs served on every resource.
pub(crate) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Storage keys used by the binder and the server.
pub(crate) mod storage {
    /// Namespaces.
    pub const NAMESPACES: &str = "namespaces";
    /// PersistentVolumeClaims.
    pub const PVCS: &str = "persistentvolumeclaims";
    /// PersistentVolumes.
    pub const PVS: &str = "persistentvolumes";
    /// StorageClasses.
    pub const STORAGE_CLASSES: &str = "storageclasses";
    /// Events (both views).
    pub const EVENTS: &str = "events";
}

macro_rules! def {
    ($group:expr, $api_version:expr, $plural:expr, $singular:expr, $kind:expr, $namespaced:expr, $status:expr, $short:expr, $storage:expr, $view:expr) => {
        ResourceDef {
            group: $group,
            version: "v1",
            api_version: $api_version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            namespaced: $namespaced,
            status: $status,
            short_names: $short,
            storage: $storage,
            view: $view,
        }
    };
}

/// Every served resource. Groups appear in discovery in the order of their
/// first row here.
pub(crate) static RESOURCES: &[ResourceDef] = &[
    def!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        true,
        &["ns"],
        storage::NAMESPACES,
        View::Native
    ),
    def!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        true,
        &["no"],
        "nodes",
        View::Native
    ),
    def!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
        storage::PVCS,
        View::Native
    ),
    def!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        true,
        &["pv"],
        storage::PVS,
        View::Native
    ),
    // Served because `kubectl describe pvc` lists the pods using a claim.
    def!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        true,
        &["po"],
        "pods",
        View::Native
    ),
    def!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
        storage::EVENTS,
        View::CoreEvent
    ),
    def!(
        "storage.k8s.io",
        "storage.k8s.io/v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        false,
        &["sc"],
        storage::STORAGE_CLASSES,
        View::Native
    ),
    def!(
        "coordination.k8s.io",
        "coordination.k8s.io/v1",
        "leases",
        "lease",
        "Lease",
        true,
        false,
        &[],
        "leases",
        View::Native
    ),
    def!(
        "events.k8s.io",
        "events.k8s.io/v1",
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
        storage::EVENTS,
        View::Native
    ),
];

/// The resource `plural` of `group/version`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// The resource stored under `storage` as served natively (events: the
/// `events.k8s.io/v1` row).
pub(crate) fn native(storage: &str) -> &'static ResourceDef {
    RESOURCES
        .iter()
        .find(|d| d.storage == storage && d.view == View::Native)
        .expect("every storage has a native row")
}

/// The API groups, in table order, without the core group.
pub(crate) fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for d in RESOURCES {
        if !d.group.is_empty() && !groups.contains(&d.group) {
            groups.push(d.group);
        }
    }
    groups
}
