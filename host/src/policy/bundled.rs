//! The default policies, built from `policies/` by `build.rs` and embedded
//! in the binary, so they are always available.

/// (name, component bytes) of every bundled policy.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "zone-spread",
        include_bytes!(env!("APLO_BUNDLED_ZONE_SPREAD")),
    ),
    ("binpack", include_bytes!(env!("APLO_BUNDLED_BINPACK"))),
    ("classes", include_bytes!(env!("APLO_BUNDLED_CLASSES"))),
    ("requested", include_bytes!(env!("APLO_BUNDLED_REQUESTED"))),
    (
        "namespace-quota",
        include_bytes!(env!("APLO_BUNDLED_NAMESPACE_QUOTA")),
    ),
];

/// Where the bundled policies' sources (and golden cases) were at build time.
pub const SOURCE_DIR: &str = env!("APLO_POLICIES_DIR");
