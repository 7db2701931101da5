//! The comparison: every difference between the store's snapshot and what
//! gluster and the nodes reported, each with the repair that is safe, if any.
//! Pure, and tested here.

use std::collections::{BTreeMap, BTreeSet};

use super::{Drift, Observed, Pool, Repair};
use crate::exec::gluster::VolumeInfo;
use crate::model::Id;
use crate::model::storage::{Backend, BrickRecord, NodeRecord, Snapshot, VolumeState};
use crate::plan::volume as plan;

/// The brick id in a brick path aplo built (`…/mounts/<id>/brick`).
fn brick_id_in(path: &str) -> Option<Id> {
    let mut parts = path.rsplit('/');
    (parts.next()? == "brick").then_some(())?;
    let id = parts.next()?;
    (parts.next()? == "mounts").then_some(())?;
    id.parse().ok()
}

/// Every difference between the store and the observations.
pub fn find_drift(snapshot: &Snapshot, observed: &Observed) -> Vec<Drift> {
    let mut drift = Vec::new();
    let mut push =
        |subject: String, problem: String, repair: Option<Repair>, advice: Option<&str>| {
            drift.push(Drift {
                subject,
                problem,
                repair,
                advice: advice.map(str::to_owned),
            });
        };
    for operation in snapshot.operations.values() {
        push(
            format!("operation {}", operation.id),
            format!(
                "{} is unfinished (done: {})",
                operation.operation.name(),
                if operation.done.is_empty() {
                    "nothing".into()
                } else {
                    operation
                        .done
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            Some(Repair::Recover),
            None,
        );
    }
    let pending: BTreeSet<Id> = snapshot
        .operations
        .values()
        .filter_map(|o| o.operation.volume())
        .collect();
    let address = |b: &BrickRecord| plan::address(snapshot, b).to_string();
    // Every brick path any gluster volume uses.
    let mut used_by_gluster: BTreeMap<Id, String> = BTreeMap::new();
    for (cluster, volumes) in &observed.volumes {
        let volumes = match volumes {
            Ok(volumes) => volumes,
            Err(e) => {
                push(
                    format!("cluster {cluster}"),
                    format!("gluster could not be asked: {e}"),
                    None,
                    Some("bring a node of the cluster back and check again"),
                );
                continue;
            }
        };
        let by_name: BTreeMap<&str, &VolumeInfo> =
            volumes.iter().map(|v| (v.name.as_str(), v)).collect();
        for info in volumes {
            for brick in &info.bricks {
                if let Some(id) = brick_id_in(&brick.path) {
                    used_by_gluster.insert(id, info.name.clone());
                }
            }
        }
        for volume in snapshot.volumes.values().filter(|v| v.cluster == *cluster) {
            let subject = format!("volume {}", volume.name);
            if pending.contains(&volume.id) {
                continue; // the operation's drift says it
            }
            if volume.state != VolumeState::Ready {
                push(
                    subject,
                    format!("is {:?} with no operation in the journal", volume.state),
                    None,
                    Some("delete it with `aplo volume delete`"),
                );
                continue;
            }
            let Some(info) = by_name.get(volume.name.as_str()) else {
                push(
                    subject,
                    "is in the store but gluster has no such volume".into(),
                    None,
                    Some(
                        "its data is gone from gluster; `aplo volume delete` removes the record and frees its bricks",
                    ),
                );
                continue;
            };
            let want: BTreeSet<String> = snapshot
                .bricks_of(volume.id)
                .into_iter()
                .map(address)
                .collect();
            let have: BTreeSet<String> = info
                .bricks
                .iter()
                .map(|b| format!("{}:{}", b.host, b.path))
                .collect();
            if want != have {
                let missing: Vec<&String> = want.difference(&have).collect();
                let extra: Vec<&String> = have.difference(&want).collect();
                push(
                    subject.clone(),
                    format!(
                        "gluster's bricks differ from the store's (missing in gluster: {missing:?}; unknown to aplo: {extra:?})"
                    ),
                    None,
                    Some(
                        "someone changed the volume outside aplo; compare `gluster volume info` with `aplo volume info`",
                    ),
                );
            }
            if info.options.get("user.aplo.volume") != Some(&volume.id.to_string()) {
                push(
                    subject.clone(),
                    "lacks aplo's user.aplo.volume option".into(),
                    Some(Repair::Label(volume.id)),
                    None,
                );
            }
            if info.status != "Started" {
                push(
                    subject.clone(),
                    format!("is {} in gluster, not started", info.status),
                    Some(Repair::Start(volume.id)),
                    None,
                );
            } else if let Some(status) = observed.status.get(&volume.name) {
                let offline: Vec<String> = status
                    .iter()
                    .filter(|b| !b.online)
                    .map(|b| format!("{}:{}", b.host, b.path))
                    .collect();
                if !offline.is_empty() {
                    push(
                        subject.clone(),
                        format!("brick processes are down: {}", offline.join(", ")),
                        Some(Repair::RestartBricks(volume.id)),
                        None,
                    );
                }
            }
        }
        for info in volumes {
            let known = snapshot
                .volumes
                .values()
                .any(|v| v.name == info.name && v.cluster == *cluster);
            let aplos = info.options.contains_key("user.aplo.volume")
                || info.bricks.iter().any(|b| brick_id_in(&b.path).is_some());
            if !known && aplos {
                push(
                    format!("volume {}", info.name),
                    "gluster has it and it carries aplo's marks, but the store has no record of it"
                        .into(),
                    None,
                    Some(
                        "if the store was lost, import a `aplo db export`; otherwise stop and delete it with gluster",
                    ),
                );
            }
        }
    }
    for (cluster, pool) in &observed.pools {
        pool_drift(snapshot, *cluster, pool, &mut push);
    }
    for device in snapshot.devices.values() {
        let node = snapshot.nodes.get(&device.node);
        let subject = format!(
            "device {}:{}",
            node.map_or("?", |n| n.manage.as_str()),
            device.name
        );
        let Some(facts) = observed.devices.get(&device.id) else {
            continue;
        };
        let facts = match facts {
            Ok(facts) => facts,
            Err(e) => {
                push(
                    subject,
                    format!("could not be looked at: {e}"),
                    None,
                    Some("check the node is reachable"),
                );
                continue;
            }
        };
        for brick in snapshot.bricks.values().filter(|b| b.device == device.id) {
            let pending_brick = pending.contains(&brick.volume);
            if !facts.bricks.contains(&brick.id) {
                if !pending_brick {
                    push(
                        format!("brick {}", brick.id),
                        format!(
                            "is in the store (volume {}) but not on {subject}",
                            brick.volume
                        ),
                        None,
                        Some("the brick's data is gone; replace the brick or delete the volume"),
                    );
                }
            } else if device.backend != Backend::Dir
                && !facts.mounted.contains(&brick.id)
                && !pending_brick
            {
                push(
                    format!("brick {}", brick.id),
                    format!("its filesystem on {subject} is not mounted"),
                    Some(Repair::Remount(brick.id)),
                    None,
                );
            }
        }
        for found in &facts.bricks {
            if snapshot.bricks.contains_key(found) {
                continue;
            }
            match used_by_gluster.get(found) {
                Some(volume) => push(
                    format!("brick {found}"),
                    format!(
                        "is on {subject} and in gluster volume {volume}, but the store has no record of it"
                    ),
                    None,
                    Some("gluster still uses it; see the volume's own drift"),
                ),
                None => push(
                    format!("brick {found}"),
                    format!("is an orphan on {subject}: no record and no gluster volume uses it"),
                    Some(Repair::RemoveOrphan {
                        device: device.id,
                        brick: *found,
                    }),
                    None,
                ),
            }
        }
    }
    drift
}

/// Members of a cluster's trusted pool against the store's nodes. Counts
/// decide, names only explain: gluster may know a node by an address other
/// than the hostnames aplo has (the first node of a pool is often known to
/// the others by its IP), so a name that does not match is drift only when
/// the pool is larger or smaller than the store says.
fn pool_drift(
    snapshot: &Snapshot,
    cluster: Id,
    pool: &Pool,
    push: &mut impl FnMut(String, String, Option<Repair>, Option<&str>),
) {
    // A real pool always lists the node asked; an empty list says nothing.
    if pool.peers.is_empty() {
        return;
    }
    let nodes: Vec<&NodeRecord> = snapshot
        .nodes
        .values()
        .filter(|n| n.cluster == cluster)
        .collect();
    let names = |n: &NodeRecord, host: &str| n.storage == host || n.manage == host;
    let members = pool.peers.len();
    if members > nodes.len() {
        let unknown: Vec<&str> = pool
            .peers
            .iter()
            .filter(|p| p.hostname != "localhost" && !nodes.iter().any(|n| names(n, &p.hostname)))
            .map(|p| p.hostname.as_str())
            .collect();
        push(
            format!("cluster {cluster}"),
            format!(
                "its trusted pool has {members} members but the store knows {} node(s); peers unknown to aplo: {}",
                nodes.len(),
                if unknown.is_empty() {
                    "none by name".to_owned()
                } else {
                    unknown.join(", ")
                }
            ),
            None,
            Some(
                "a peer probed outside aplo: add it to aplo as a node, or remove it with `gluster peer detach <host>`",
            ),
        );
    } else if members < nodes.len() {
        let absent: Vec<&str> = nodes
            .iter()
            .filter(|n| n.id != pool.asked && !pool.peers.iter().any(|p| names(n, &p.hostname)))
            .map(|n| n.manage.as_str())
            .collect();
        push(
            format!("cluster {cluster}"),
            format!(
                "the store knows {} node(s) but its trusted pool has only {members} member(s); not in the pool: {}",
                nodes.len(),
                absent.join(", ")
            ),
            None,
            Some(
                "probe the node into the pool again (`gluster peer probe <storage host>` on a node of the cluster), or delete it from aplo",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::driver::{DeviceFacts, DriverError};
    use crate::exec::gluster::{BrickInfo, BrickStatus, Peer};
    use crate::model::State;
    use crate::model::journal::{Operation, OperationRecord, Step};
    use crate::model::storage::{ClusterRecord, DeviceRecord, NodeRecord, VolumeRecord};
    use crate::model::{BrickRole, Scheme};

    /// One cluster, one node, one loop device, one ready volume with one
    /// brick, and observations that match it exactly.
    fn world() -> (Snapshot, Observed) {
        let mut s = Snapshot::default();
        let (c, n, d, v, b) = (Id(1), Id(2), Id(3), Id(4), Id(5));
        s.clusters.insert(
            c,
            ClusterRecord {
                id: c,
                file: true,
                block: false,
            },
        );
        s.nodes.insert(
            n,
            NodeRecord {
                id: n,
                cluster: c,
                manage: "n1".into(),
                storage: "10.0.0.1".into(),
                zone: "1".into(),
                state: State::Online,
                tags: Default::default(),
            },
        );
        s.devices.insert(
            d,
            DeviceRecord {
                id: d,
                node: n,
                name: "/srv/dev0".into(),
                backend: Backend::Loop,
                state: State::Online,
                tags: Default::default(),
                total_bytes: 10 << 30,
            },
        );
        s.volumes.insert(
            v,
            VolumeRecord {
                id: v,
                name: "vol".into(),
                cluster: c,
                bytes: 1 << 30,
                scheme: Scheme::None,
                options: Default::default(),
                snapshot_reserve: 1.0,
                hard_limit: None,
                claim: None,
                parameters: Default::default(),
                state: VolumeState::Ready,
            },
        );
        let path = format!("/srv/dev0/mounts/{b}/brick");
        s.bricks.insert(
            b,
            BrickRecord {
                id: b,
                volume: v,
                device: d,
                node: n,
                bytes: 1 << 30,
                consumed: 1 << 30,
                role: BrickRole::Data,
                set: 0,
                position: 0,
                path: path.clone(),
            },
        );
        let info = VolumeInfo {
            name: "vol".into(),
            id: "uuid".into(),
            status: "Started".into(),
            kind: "Distribute".into(),
            replica_count: 1,
            arbiter_count: 0,
            disperse_count: 0,
            redundancy_count: 0,
            bricks: vec![BrickInfo {
                host: "10.0.0.1".into(),
                path: path.clone(),
                host_uuid: "h".into(),
                arbiter: false,
            }],
            options: [("user.aplo.volume".to_owned(), v.to_string())].into(),
        };
        let mut o = Observed::default();
        o.volumes.insert(c, Ok(vec![info]));
        o.status.insert(
            "vol".into(),
            vec![BrickStatus {
                host: "10.0.0.1".into(),
                path,
                online: true,
                port: Some(49152),
                pid: Some(7),
            }],
        );
        o.devices.insert(
            d,
            Ok(DeviceFacts {
                bricks: [b].into(),
                mounted: [b].into(),
            }),
        );
        (s, o)
    }

    fn peer(hostname: &str) -> Peer {
        Peer {
            hostname: hostname.into(),
            uuid: format!("uuid-{hostname}"),
            connected: true,
        }
    }

    fn node(s: &mut Snapshot, id: u128, manage: &str, storage: &str) {
        let template = s.nodes.values().next().unwrap().clone();
        s.nodes.insert(
            Id(id),
            NodeRecord {
                id: Id(id),
                manage: manage.into(),
                storage: storage.into(),
                ..template
            },
        );
    }

    /// Cluster 1's pool as node `asked` lists it.
    fn pool(o: &mut Observed, asked: u128, hostnames: &[&str]) {
        let peers = hostnames.iter().map(|h| peer(h)).collect();
        o.pools.insert(
            Id(1),
            Pool {
                asked: Id(asked),
                peers,
            },
        );
    }

    #[test]
    fn the_trusted_pool_is_compared_by_count_and_explained_by_name() {
        let (mut s, mut o) = world();
        node(&mut s, 20, "n2", "10.0.0.2");
        // Matching: the node asked is localhost, the other known by name.
        pool(&mut o, 2, &["localhost", "10.0.0.2"]);
        assert!(find_drift(&s, &o).is_empty(), "{:#?}", find_drift(&s, &o));
        // Known by another address (the first node, by IP, seen from the
        // second): the counts agree, so no drift.
        pool(&mut o, 20, &["localhost", "192.0.2.9"]);
        assert!(find_drift(&s, &o).is_empty(), "{:#?}", find_drift(&s, &o));
        // A peer aplo does not know (an interrupted node add).
        pool(&mut o, 2, &["localhost", "10.0.0.2", "stray.example"]);
        let drift = only(find_drift(&s, &o));
        assert_eq!(drift.subject, format!("cluster {}", Id(1)));
        assert!(
            drift.problem.ends_with(
                "3 members but the store knows 2 node(s); peers unknown to aplo: stray.example"
            ),
            "{}",
            drift.problem
        );
        assert!(drift.repair.is_none() && drift.advice.is_some());
        // A store node missing from the pool.
        node(&mut s, 30, "n3", "10.0.0.3");
        node(&mut s, 40, "n4", "10.0.0.4");
        pool(&mut o, 2, &["localhost", "n2", "10.0.0.3"]);
        let drift = only(find_drift(&s, &o));
        assert!(
            drift
                .problem
                .ends_with("only 3 member(s); not in the pool: n4"),
            "{}",
            drift.problem
        );
        // An empty answer (no gluster) says nothing.
        pool(&mut o, 2, &[]);
        assert!(find_drift(&s, &o).is_empty());
    }

    fn only(drift: Vec<Drift>) -> Drift {
        assert_eq!(drift.len(), 1, "{drift:#?}");
        drift.into_iter().next().unwrap()
    }

    #[test]
    fn a_matching_world_has_no_drift() {
        let (s, o) = world();
        assert!(find_drift(&s, &o).is_empty(), "{:#?}", find_drift(&s, &o));
    }

    #[test]
    fn stopped_volumes_and_dead_bricks_are_safe_to_repair() {
        let (s, mut o) = world();
        o.volumes.get_mut(&Id(1)).unwrap().as_mut().unwrap()[0].status = "Stopped".into();
        assert_eq!(only(find_drift(&s, &o)).repair, Some(Repair::Start(Id(4))));
        let (s, mut o) = world();
        o.status.get_mut("vol").unwrap()[0].online = false;
        assert_eq!(
            only(find_drift(&s, &o)).repair,
            Some(Repair::RestartBricks(Id(4)))
        );
        let (s, mut o) = world();
        o.devices.insert(
            Id(3),
            Ok(DeviceFacts {
                bricks: [Id(5)].into(),
                mounted: Default::default(),
            }),
        );
        assert_eq!(
            only(find_drift(&s, &o)).repair,
            Some(Repair::Remount(Id(5)))
        );
        let (s, mut o) = world();
        o.volumes.get_mut(&Id(1)).unwrap().as_mut().unwrap()[0]
            .options
            .clear();
        assert_eq!(only(find_drift(&s, &o)).repair, Some(Repair::Label(Id(4))));
    }

    #[test]
    fn lost_data_and_foreign_changes_are_explained_not_repaired() {
        let (s, mut o) = world();
        o.volumes.insert(Id(1), Ok(Vec::new()));
        let d = only(find_drift(&s, &o));
        assert!(
            d.repair.is_none() && d.problem.contains("no such volume"),
            "{d}"
        );
        let (s, mut o) = world();
        o.volumes.get_mut(&Id(1)).unwrap().as_mut().unwrap()[0].bricks[0].path =
            "/elsewhere".into();
        let d = only(find_drift(&s, &o));
        assert!(d.repair.is_none() && d.problem.contains("differ"), "{d}");
        let (s, mut o) = world();
        o.devices.insert(Id(3), Ok(DeviceFacts::default()));
        let d = only(find_drift(&s, &o));
        assert!(
            d.repair.is_none() && d.problem.contains("not on device"),
            "{d}"
        );
        let (s, mut o) = world();
        o.volumes
            .insert(Id(1), Err(DriverError::Refused("no node answered".into())));
        o.status.clear();
        let d = only(find_drift(&s, &o));
        assert!(
            d.repair.is_none() && d.problem.contains("could not be asked"),
            "{d}"
        );
    }

    #[test]
    fn orphans_are_found_and_only_unused_bricks_are_removed() {
        let (s, mut o) = world();
        let orphan = Id(99);
        o.devices.insert(
            Id(3),
            Ok(DeviceFacts {
                bricks: [Id(5), orphan].into(),
                mounted: [Id(5), orphan].into(),
            }),
        );
        assert_eq!(
            only(find_drift(&s, &o)).repair,
            Some(Repair::RemoveOrphan {
                device: Id(3),
                brick: orphan
            })
        );
        // The same brick in a gluster volume aplo has no record of: both
        // are reported, neither is touched.
        let mut foreign = o.volumes[&Id(1)].as_ref().unwrap()[0].clone();
        foreign.name = "lost".into();
        foreign.bricks[0].path = format!("/srv/dev0/mounts/{orphan}/brick");
        o.volumes
            .get_mut(&Id(1))
            .unwrap()
            .as_mut()
            .unwrap()
            .push(foreign);
        let drift = find_drift(&s, &o);
        assert_eq!(drift.len(), 2, "{drift:#?}");
        assert!(drift.iter().all(|d| d.repair.is_none()), "{drift:#?}");
        assert!(
            drift.iter().any(|d| d.subject == "volume lost"),
            "{drift:#?}"
        );
    }

    #[test]
    fn unfinished_operations_are_recovered_and_hide_their_volume() {
        let (mut s, mut o) = world();
        s.volumes.get_mut(&Id(4)).unwrap().state = VolumeState::Creating;
        s.operations.insert(
            Id(7),
            OperationRecord {
                id: Id(7),
                operation: Operation::CreateVolume { volume: Id(4) },
                done: vec![Step::Bricks],
                rolling_back: false,
            },
        );
        o.volumes.insert(Id(1), Ok(Vec::new()));
        let d = only(find_drift(&s, &o));
        assert_eq!(d.repair, Some(Repair::Recover));
        assert!(
            d.problem.contains("create-volume") && d.problem.contains("bricks"),
            "{d}"
        );
    }

    #[test]
    fn brick_ids_are_read_only_from_aplo_paths() {
        let id = Id(0xabc);
        assert_eq!(brick_id_in(&format!("/x/mounts/{id}/brick")), Some(id));
        assert_eq!(brick_id_in(&format!("/x/{id}/brick")), None);
        assert_eq!(brick_id_in("/x/mounts/nothex/brick"), None);
        assert_eq!(brick_id_in(&format!("/x/mounts/{id}/data")), None);
    }
}
