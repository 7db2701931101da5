//! The volumes as CSI sees them: the gluster name of a CSI name, a
//! volume's description (id, size, how to mount it, zones), lookups, and
//! whether volumes may change now.

use std::collections::{BTreeSet, HashMap};

use tonic::Status;

use super::super::proto::{Topology, Volume};
use super::{Controller, ZONE_KEY, status};
use crate::model::paths::check_volume_name;
use crate::model::storage::{AdminMode, VolumeRecord, VolumeState};

/// The gluster volume name for a CSI volume name.
pub fn volume_name(csi_name: &str) -> String {
    if check_volume_name(csi_name).is_ok() {
        return csi_name.to_owned();
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(csi_name.as_bytes()));
    format!("csi-{}", &digest[..32])
}

impl Controller {
    /// UNAVAILABLE (the sidecars retry) while heketi's admin mode is
    /// read-only: no volume is created, grown or deleted.
    pub(super) fn writable(&self) -> Result<(), Status> {
        match self.engine.admin_mode().map_err(status)? {
            AdminMode::ReadOnly => Err(Status::unavailable(
                "aplo is in read-only mode (heketi's admin mode, set through POST /admin or \
                 `aplo server mode set`): no volume is created, grown or deleted until an admin \
                 sets it back to normal",
            )),
            AdminMode::Normal | AdminMode::LocalClient => Ok(()),
        }
    }

    /// The volume as CSI describes it: id, size, how to mount it, and the
    /// zones of its bricks.
    pub(super) fn describe(&self, volume: &VolumeRecord) -> Volume {
        let hosts = self.engine.volume_hosts(volume.id);
        let zones: BTreeSet<String> = self.engine.with_state(|s| {
            s.bricks_of(volume.id)
                .iter()
                .filter_map(|b| s.nodes.get(&b.node))
                .map(|n| n.zone.clone())
                .filter(|z| !z.is_empty())
                .collect()
        });
        Volume {
            volume_id: volume.id.to_string(),
            capacity_bytes: i64::try_from(volume.bytes).unwrap_or(i64::MAX),
            volume_context: HashMap::from([
                ("hosts".to_owned(), hosts.join(",")),
                ("volume".to_owned(), volume.name.clone()),
            ]),
            content_source: None,
            accessible_topology: zones
                .into_iter()
                .map(|zone| Topology {
                    segments: HashMap::from([(ZONE_KEY.to_owned(), zone)]),
                })
                .collect(),
        }
    }

    /// The volume with this CSI id, if it exists and is not being deleted.
    pub(super) fn find(&self, volume_id: &str) -> Option<VolumeRecord> {
        self.engine
            .volumes()
            .into_iter()
            .find(|v| v.id.to_string() == volume_id)
    }

    /// The volumes ListVolumes pages through, in a stable order.
    pub(super) fn listed(&self) -> Vec<VolumeRecord> {
        let mut volumes: Vec<VolumeRecord> = self
            .engine
            .volumes()
            .into_iter()
            .filter(|v| v.state == VolumeState::Ready)
            .collect();
        volumes.sort_by_key(|v| v.id.to_string());
        volumes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_names_map_to_gluster_names_deterministically() {
        assert_eq!(volume_name("pvc-0b1c2d"), "pvc-0b1c2d");
        let long = "sanity-".to_owned() + &"x".repeat(121);
        let mapped = volume_name(&long);
        assert!(mapped.starts_with("csi-") && mapped.len() == 36, "{mapped}");
        assert_eq!(mapped, volume_name(&long));
        assert_ne!(volume_name("a b"), volume_name("a  b"));
        assert!(check_volume_name(&volume_name("-x;rm")).is_ok());
    }
}
