//! Human-readable output in heketi-cli's layout: `Name: … Size: …` for a
//! volume, one line per listed item, the topology as an indented tree.
//! Pure: the API's types in, text out.

use std::fmt::Write;

use crate::http::heketi::{
    ClusterInfoResponse, DeviceInfoResponse, NodeInfoResponse, VolumeInfoResponse,
};

use super::wire::Topology;

/// KiB as GiB, with up to two decimals when not whole.
fn gib(kib: u64) -> String {
    const KIB_PER_GIB: u64 = 1 << 20;
    if kib.is_multiple_of(KIB_PER_GIB) {
        (kib / KIB_PER_GIB).to_string()
    } else {
        let text = format!("{:.2}", kib as f64 / KIB_PER_GIB as f64);
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn mount_options(v: &VolumeInfoResponse) -> String {
    v.mount
        .glusterfs
        .options
        .iter()
        .map(|(k, val)| format!("{k}={val}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Bricks per set, by durability.
fn set_width(v: &VolumeInfoResponse) -> usize {
    let d = &v.durability;
    match d.kind.as_str() {
        "replicate" => d.replicate.replica as usize,
        "disperse" => (d.disperse.data + d.disperse.redundancy) as usize,
        _ => 1,
    }
    .max(1)
}

/// `volume info`, `create`, `expand`.
pub fn volume(v: &VolumeInfoResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name: {}", v.name);
    let _ = writeln!(out, "Size: {}", v.size);
    let _ = writeln!(out, "Volume Id: {}", v.id);
    let _ = writeln!(out, "Cluster Id: {}", v.cluster);
    let _ = writeln!(out, "Mount: {}", v.mount.glusterfs.device);
    let _ = writeln!(out, "Mount Options: {}", mount_options(v));
    let _ = writeln!(out, "Block: {}", v.block);
    let _ = writeln!(out, "Durability Type: {}", v.durability.kind);
    let _ = writeln!(out, "Distribute Count: {}", v.bricks.len() / set_width(v));
    match v.durability.kind.as_str() {
        "replicate" => {
            let _ = writeln!(out, "Replica Count: {}", v.durability.replicate.replica);
        }
        "disperse" => {
            let _ = writeln!(out, "Disperse Data Count: {}", v.durability.disperse.data);
            let _ = writeln!(
                out,
                "Disperse Redundancy Count: {}",
                v.durability.disperse.redundancy
            );
        }
        _ => {}
    }
    if v.snapshot.enable {
        let _ = writeln!(out, "Snapshot Factor: {:.2}", v.snapshot.factor);
    }
    if !v.glustervolumeoptions.is_empty() {
        let _ = writeln!(
            out,
            "Gluster Volume Options: {}",
            v.glustervolumeoptions.join(", ")
        );
    }
    out
}

/// One line of `volume list`.
pub fn volume_line(v: &VolumeInfoResponse) -> String {
    format!("Id:{:<35} Cluster:{:<35} Name:{}", v.id, v.cluster, v.name)
}

/// `cluster info`.
pub fn cluster(c: &ClusterInfoResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cluster id: {}", c.id);
    let _ = writeln!(out, "Nodes:");
    for n in &c.nodes {
        let _ = writeln!(out, "{n}");
    }
    let _ = writeln!(out, "Volumes:");
    for v in &c.volumes {
        let _ = writeln!(out, "{v}");
    }
    let _ = writeln!(out, "Block: {}", c.block);
    let _ = writeln!(out, "File: {}", c.file);
    out
}

/// One line of `cluster list`.
pub fn cluster_line(c: &ClusterInfoResponse) -> String {
    let mut kinds = String::new();
    if c.file {
        kinds.push_str("[file]");
    }
    if c.block {
        kinds.push_str("[block]");
    }
    format!("Id:{} {kinds}", c.id)
}

fn tags_line(tags: &std::collections::BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!(" {k}:{v}"))
        .collect::<String>()
}

fn device_line(d: &DeviceInfoResponse) -> String {
    format!(
        "Id:{:<35}Name:{:<20}State:{:<10}Size (GiB):{:<8}Used (GiB):{:<8}Free (GiB):{:<8}Bricks:{}",
        d.id,
        d.name,
        d.state,
        gib(d.storage.total),
        gib(d.storage.used),
        gib(d.storage.free),
        d.bricks.len()
    )
}

/// `node info`.
pub fn node(n: &NodeInfoResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Node Id: {}", n.id);
    let _ = writeln!(out, "State: {}", n.state);
    let _ = writeln!(out, "Cluster Id: {}", n.cluster);
    let _ = writeln!(out, "Zone: {}", n.zone);
    let _ = writeln!(
        out,
        "Management Hostname: {}",
        n.hostnames.manage.join(", ")
    );
    let _ = writeln!(out, "Storage Hostname: {}", n.hostnames.storage.join(", "));
    if !n.tags.is_empty() {
        let _ = writeln!(out, "Tags:");
        for (k, v) in &n.tags {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }
    let _ = writeln!(out, "Devices:");
    for d in &n.devices {
        let _ = writeln!(out, "{}", device_line(d));
    }
    out
}

/// `device info`.
pub fn device(d: &DeviceInfoResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Device Id: {}", d.id);
    let _ = writeln!(out, "Name: {}", d.name);
    let _ = writeln!(out, "State: {}", d.state);
    let _ = writeln!(out, "Size (GiB): {}", gib(d.storage.total));
    let _ = writeln!(out, "Used (GiB): {}", gib(d.storage.used));
    let _ = writeln!(out, "Free (GiB): {}", gib(d.storage.free));
    if !d.tags.is_empty() {
        let _ = writeln!(out, "Tags:");
        for (k, v) in &d.tags {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }
    let _ = writeln!(out, "Bricks:");
    for b in &d.bricks {
        let _ = writeln!(
            out,
            "Id:{:<35}Size (GiB):{:<8}Path: {}",
            b.id,
            gib(b.size),
            b.path
        );
    }
    out
}

/// `topology info`: clusters, their volumes with bricks, their nodes with
/// devices and bricks.
pub fn topology(t: &Topology) -> String {
    let mut out = String::new();
    for c in &t.clusters {
        let _ = writeln!(out, "\nCluster Id: {}", c.id);
        let _ = writeln!(out, "    File:  {}", c.file);
        let _ = writeln!(out, "    Block: {}", c.block);
        let _ = writeln!(out, "\n    Volumes:");
        for v in &c.volumes {
            let _ = writeln!(out, "\n\tName: {}", v.name);
            let _ = writeln!(out, "\tSize: {}", v.size);
            let _ = writeln!(out, "\tId: {}", v.id);
            let _ = writeln!(out, "\tCluster Id: {}", v.cluster);
            let _ = writeln!(out, "\tMount: {}", v.mount.glusterfs.device);
            let _ = writeln!(out, "\tMount Options: {}", mount_options(v));
            let _ = writeln!(out, "\tDurability Type: {}", v.durability.kind);
            match v.durability.kind.as_str() {
                "replicate" => {
                    let _ = writeln!(out, "\tReplica: {}", v.durability.replicate.replica);
                }
                "disperse" => {
                    let _ = writeln!(out, "\tDisperse Data: {}", v.durability.disperse.data);
                    let _ = writeln!(
                        out,
                        "\tDisperse Redundancy: {}",
                        v.durability.disperse.redundancy
                    );
                }
                _ => {}
            }
            if v.snapshot.enable {
                let _ = writeln!(out, "\tSnapshot: Enabled");
                let _ = writeln!(out, "\tSnapshot Factor: {:.2}", v.snapshot.factor);
            } else {
                let _ = writeln!(out, "\tSnapshot: Disabled");
            }
            let _ = writeln!(out, "\n\t\tBricks:");
            for b in &v.bricks {
                let _ = writeln!(out, "\t\t\tId: {}", b.id);
                let _ = writeln!(out, "\t\t\tPath: {}", b.path);
                let _ = writeln!(out, "\t\t\tSize (GiB): {}", gib(b.size));
                let _ = writeln!(out, "\t\t\tNode: {}", b.node);
                let _ = writeln!(out, "\t\t\tDevice: {}\n", b.device);
            }
        }
        let _ = writeln!(out, "\n    Nodes:");
        for n in &c.nodes {
            let _ = writeln!(out, "\n\tNode Id: {}", n.id);
            let _ = writeln!(out, "\tState: {}", n.state);
            let _ = writeln!(out, "\tCluster Id: {}", n.cluster);
            let _ = writeln!(out, "\tZone: {}", n.zone);
            let _ = writeln!(
                out,
                "\tManagement Hostnames: {}",
                n.hostnames.manage.join(", ")
            );
            let _ = writeln!(
                out,
                "\tStorage Hostnames: {}",
                n.hostnames.storage.join(", ")
            );
            if !n.tags.is_empty() {
                let _ = writeln!(out, "\tTags:{}", tags_line(&n.tags));
            }
            let _ = writeln!(out, "\tDevices:");
            for d in &n.devices {
                let _ = writeln!(
                    out,
                    "\t\tId:{:<35}State:{:<10}Size (GiB):{:<8}Used (GiB):{:<8}Free (GiB):{:<8}",
                    d.id,
                    d.state,
                    gib(d.storage.total),
                    gib(d.storage.used),
                    gib(d.storage.free)
                );
                if !d.tags.is_empty() {
                    let _ = writeln!(out, "\t\t\tTags:{}", tags_line(&d.tags));
                }
                let _ = writeln!(out, "\t\t\tKnown Paths: {}", d.name);
                let _ = writeln!(out, "\t\t\tBricks:");
                for b in &d.bricks {
                    let _ = writeln!(
                        out,
                        "\t\t\t\tId:{:<35}Size (GiB):{:<8}Path: {}",
                        b.id,
                        gib(b.size),
                        b.path
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_gib() {
        assert_eq!(gib(10 << 20), "10");
        assert_eq!(gib(3 << 19), "1.5");
        assert_eq!(gib(0), "0");
    }

    #[test]
    fn a_volume_reads_like_heketi_cli() {
        let v: VolumeInfoResponse = serde_json::from_value(serde_json::json!({
            "size": 10, "name": "vol_x", "id": "ab", "cluster": "cd", "block": false,
            "durability": {"type": "replicate", "replicate": {"replica": 3}, "disperse": {}},
            "snapshot": {"enable": false, "factor": 1.0},
            "mount": {"glusterfs": {"hosts": ["h1"], "device": "h1:vol_x",
                                    "options": {"backup-volfile-servers": "h2,h3"}}},
            "bricks": [
                {"id": "1", "path": "/b", "device": "d", "node": "n", "volume": "ab", "size": 1},
                {"id": "2", "path": "/b", "device": "d", "node": "n", "volume": "ab", "size": 1},
                {"id": "3", "path": "/b", "device": "d", "node": "n", "volume": "ab", "size": 1}
            ]
        }))
        .unwrap();
        let text = volume(&v);
        for line in [
            "Name: vol_x\n",
            "Size: 10\n",
            "Volume Id: ab\n",
            "Mount: h1:vol_x\n",
            "Mount Options: backup-volfile-servers=h2,h3\n",
            "Durability Type: replicate\n",
            "Distribute Count: 1\n",
            "Replica Count: 3\n",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains("Snapshot Factor"));
    }
}
