//! The LVM command lines aplo runs, and the names it gives volume groups,
//! thin pools and logical volumes.

use crate::exec::command::Cmd;
use crate::model::Id;

/// How LVM commands are run on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LvmOptions {
    /// Pass `--config 'global { activation = 0 }'`: change metadata only.
    /// For machines without device-mapper (such as CI here), where no LV
    /// could be activated; nothing can then be formatted or mounted.
    pub no_activation: bool,
}

/// aplo's name for the volume group on a device.
pub fn vg_name(device: Id) -> String {
    format!("vg_aplo_{device}")
}

/// aplo's name for a brick's logical volume.
pub fn lv_name(brick: Id) -> String {
    format!("brick_{brick}")
}

/// aplo's name for a brick's thin pool.
pub fn pool_name(brick: Id) -> String {
    format!("tp_{brick}")
}

/// Sizes for LVM, in KiB (`--size 1024K`), rounded up.
fn kib(bytes: u64) -> String {
    format!("{}K", bytes.div_ceil(1024))
}

fn lvm(options: LvmOptions, tool: &str) -> Cmd {
    with_options(options, Cmd::new(tool))
}

/// Options go after the command (`lvm fullreport --config …`, not before).
fn with_options(options: LvmOptions, cmd: Cmd) -> Cmd {
    if options.no_activation {
        cmd.arg("--config").arg("global { activation = 0 }")
    } else {
        cmd
    }
}

/// `pvcreate` on a device.
pub fn pvcreate(options: LvmOptions, device_path: &str) -> Cmd {
    lvm(options, "pvcreate").args([
        "-qq",
        "--metadatasize=128M",
        "--dataalignment=256K",
        device_path,
    ])
}

/// `vgcreate` of aplo's volume group on a device, tagged with its id.
pub fn vgcreate(options: LvmOptions, device: Id, device_path: &str) -> Cmd {
    lvm(options, "vgcreate")
        .args(["-qq", "--physicalextentsize=4M", "--autobackup=n"])
        .args(["--addtag", &format!("aplo.device={device}")])
        .args([vg_name(device).as_str(), device_path])
}

/// A thin pool for one brick (data plus metadata, snapshot room included).
pub fn thin_pool_create(
    options: LvmOptions,
    device: Id,
    brick: Id,
    pool_bytes: u64,
    metadata_bytes: u64,
) -> Cmd {
    lvm(options, "lvcreate")
        .args([
            "-qq",
            "--autobackup=n",
            "--chunksize",
            "256K",
            "--zero",
            "n",
        ])
        .args([
            "--poolmetadatasize",
            &kib(metadata_bytes),
            "--size",
            &kib(pool_bytes),
        ])
        .args([
            "--thin",
            &format!("{}/{}", vg_name(device), pool_name(brick)),
        ])
        .args(["--addtag", &format!("aplo.brick={brick}")])
}

/// The thin volume of a brick, in its pool, tagged with brick and volume.
pub fn thin_lv_create(options: LvmOptions, device: Id, brick: Id, volume: Id, bytes: u64) -> Cmd {
    lvm(options, "lvcreate")
        .args([
            "-qq",
            "--autobackup=n",
            "--virtualsize",
            &kib(bytes),
            "--thin",
        ])
        .args([
            "--name",
            &lv_name(brick),
            &format!("{}/{}", vg_name(device), pool_name(brick)),
        ])
        .args([
            "--addtag",
            &format!("aplo.brick={brick}"),
            "--addtag",
            &format!("aplo.volume={volume}"),
        ])
}

/// A plain (thick) volume for a brick, tagged like a thin one.
pub fn plain_lv_create(options: LvmOptions, device: Id, brick: Id, volume: Id, bytes: u64) -> Cmd {
    lvm(options, "lvcreate")
        .args([
            "-qq",
            "--autobackup=n",
            "--size",
            &kib(bytes),
            "--name",
            &lv_name(brick),
            "--zero",
            "n",
        ])
        .args([
            "--addtag",
            &format!("aplo.brick={brick}"),
            "--addtag",
            &format!("aplo.volume={volume}"),
        ])
        .arg(vg_name(device))
}

/// Grow a logical volume to `bytes`.
pub fn lvextend(options: LvmOptions, vg: &str, lv: &str, bytes: u64) -> Cmd {
    lvm(options, "lvextend").args([
        "-qq",
        "--autobackup=n",
        "--size",
        &kib(bytes),
        &format!("{vg}/{lv}"),
    ])
}

/// Remove a logical volume (or thin pool).
pub fn lvremove(options: LvmOptions, vg: &str, lv: &str) -> Cmd {
    lvm(options, "lvremove").args(["-qq", "--autobackup=n", "-y", &format!("{vg}/{lv}")])
}

/// Remove a volume group.
pub fn vgremove(options: LvmOptions, vg: &str) -> Cmd {
    lvm(options, "vgremove").args(["-qq", "-y", vg])
}

/// Remove a physical volume label.
pub fn pvremove(options: LvmOptions, device_path: &str) -> Cmd {
    lvm(options, "pvremove").args(["-qq", "-y", device_path])
}

const REPORT: [&str; 5] = ["--reportformat", "json", "--units", "b", "--nosuffix"];

/// `vgs` of aplo's groups, for [`parse_vgs`].
pub fn vgs(options: LvmOptions) -> Cmd {
    lvm(options, "vgs").args(REPORT).args([
        "-o",
        "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_tags",
    ])
}

/// `lvs`, for [`parse_lvs`].
pub fn lvs(options: LvmOptions) -> Cmd {
    lvm(options, "lvs")
        .args(REPORT)
        .args(["-o", "lv_name,vg_name,lv_size,lv_tags,pool_lv"])
}

/// `pvs`, for [`parse_pvs`].
pub fn pvs(options: LvmOptions) -> Cmd {
    lvm(options, "pvs")
        .args(REPORT)
        .args(["-o", "pv_name,vg_name,pv_size,pv_free"])
}

/// `lvm fullreport`, for [`parse_fullreport`].
pub fn fullreport(options: LvmOptions) -> Cmd {
    with_options(options, Cmd::new("lvm").arg("fullreport")).args(REPORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_command_lines_name_and_tag_what_they_create() {
        let (device, brick, volume) = (Id(1), Id(2), Id(3));
        let pool = thin_pool_create(LvmOptions::default(), device, brick, 3 << 30, 16 << 20);
        assert_eq!(
            pool.display(),
            format!(
                "lvcreate -qq --autobackup=n --chunksize 256K --zero n --poolmetadatasize 16384K --size 3145728K --thin vg_aplo_{device}/tp_{brick} --addtag aplo.brick={brick}"
            )
        );
        let lv = thin_lv_create(
            LvmOptions {
                no_activation: true,
            },
            device,
            brick,
            volume,
            1 << 30,
        );
        assert_eq!(&lv.args[..2], ["--config", "global { activation = 0 }"]);
        assert!(lv.display().ends_with(&format!(
            "--virtualsize 1048576K --thin --name brick_{brick} vg_aplo_{device}/tp_{brick} --addtag aplo.brick={brick} --addtag aplo.volume={volume}"
        )));
    }
}
