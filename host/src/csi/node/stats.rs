//! A mount's answer to `statvfs`, bounded in time, and the usage CSI
//! reports from it.

use std::path::Path;
use std::time::Duration;

use super::super::proto::VolumeUsage;
use super::super::proto::volume_usage::Unit;

/// How long a `statvfs` on a mount may take before the mount counts as
/// hung.
pub(super) const STAT_TIMEOUT: Duration = Duration::from_secs(10);

/// `statvfs` of a path off the reactor: `Err(None)` when it did not answer
/// within [`STAT_TIMEOUT`] (a hung mount).
pub(super) async fn statvfs(path: &Path) -> Result<rustix::fs::StatVfs, Option<rustix::io::Errno>> {
    let probe = path.to_owned();
    match tokio::time::timeout(
        STAT_TIMEOUT,
        tokio::task::spawn_blocking(move || rustix::fs::statvfs(&probe)),
    )
    .await
    {
        Ok(Ok(result)) => result.map_err(Some),
        Ok(Err(_)) | Err(_) => Err(None),
    }
}

/// Bytes and inodes from a `statvfs`.
pub(super) fn usage(s: &rustix::fs::StatVfs) -> Vec<VolumeUsage> {
    let frsize = s.f_frsize;
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    vec![
        VolumeUsage {
            total: clamp(s.f_blocks.saturating_mul(frsize)),
            available: clamp(s.f_bavail.saturating_mul(frsize)),
            used: clamp(s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(frsize)),
            unit: Unit::Bytes as i32,
        },
        VolumeUsage {
            total: clamp(s.f_files),
            available: clamp(s.f_ffree),
            used: clamp(s.f_files.saturating_sub(s.f_ffree)),
            unit: Unit::Inodes as i32,
        },
    ]
}
