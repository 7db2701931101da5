//! Parsing LVM's JSON reports (`--reportformat json --units b --nosuffix`).
//! Pure functions over bytes, tested against output captured from lvm2
//! 2.03.16. Sizes come as strings of bytes; tags as one comma-separated
//! string.
//!
//! What a failed LVM command means is classified in one place
//! ([`classify`], [`LvmFailure`]), from the standard error lvm2 prints.

mod commands;
mod failure;

use serde::Deserialize;

pub use self::commands::{
    LvmOptions, fullreport, lv_name, lvextend, lvremove, lvs, plain_lv_create, pool_name, pvcreate,
    pvremove, pvs, thin_lv_create, thin_pool_create, vg_name, vgcreate, vgremove, vgs,
};
pub use self::failure::{LvmFailure, classify, failure_of};

/// Why a report could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LvmError {
    /// The output is not the JSON report lvm prints.
    #[error("unexpected LVM report: {0}")]
    Malformed(String),
}

/// A volume group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vg {
    /// Name.
    pub name: String,
    /// LVM's UUID.
    pub uuid: String,
    /// Size in bytes.
    pub size: u64,
    /// Free bytes.
    pub free: u64,
    /// Extent size in bytes.
    pub extent_size: u64,
    /// Tags.
    pub tags: Vec<String>,
}

/// A logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lv {
    /// Name.
    pub name: String,
    /// Its volume group.
    pub vg: String,
    /// Size in bytes.
    pub size: u64,
    /// Tags.
    pub tags: Vec<String>,
    /// The thin pool it lives in, if thin.
    pub pool: Option<String>,
}

/// A physical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pv {
    /// The device path.
    pub name: String,
    /// Its volume group, if any.
    pub vg: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Free bytes.
    pub free: u64,
}

/// What `lvm fullreport` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FullReport {
    /// Volume groups.
    pub vgs: Vec<Vg>,
    /// Logical volumes.
    pub lvs: Vec<Lv>,
    /// Physical volumes.
    pub pvs: Vec<Pv>,
}

#[derive(Deserialize)]
struct Report {
    report: Vec<Section>,
}

#[derive(Deserialize, Default)]
struct Section {
    #[serde(default)]
    vg: Vec<RawVg>,
    #[serde(default)]
    lv: Vec<RawLv>,
    #[serde(default)]
    pv: Vec<RawPv>,
}

#[derive(Deserialize)]
struct RawVg {
    vg_name: String,
    vg_uuid: String,
    vg_size: String,
    vg_free: String,
    vg_extent_size: String,
    #[serde(default)]
    vg_tags: String,
}

#[derive(Deserialize)]
struct RawLv {
    lv_name: String,
    /// Absent in `fullreport`, where the section names the group.
    #[serde(default)]
    vg_name: String,
    lv_size: String,
    #[serde(default)]
    lv_tags: String,
    #[serde(default)]
    pool_lv: String,
}

#[derive(Deserialize)]
struct RawPv {
    pv_name: String,
    #[serde(default)]
    vg_name: String,
    pv_size: String,
    pv_free: String,
}

fn bytes(field: &str, value: &str) -> Result<u64, LvmError> {
    value.trim().parse().map_err(|_| {
        LvmError::Malformed(format!(
            "{field} is '{value}', not a byte count (run lvm with --units b --nosuffix)"
        ))
    })
}

fn tags(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn sections(json: &[u8]) -> Result<Vec<Section>, LvmError> {
    serde_json::from_slice::<Report>(json)
        .map(|r| r.report)
        .map_err(|e| LvmError::Malformed(e.to_string()))
}

fn vg(raw: RawVg) -> Result<Vg, LvmError> {
    Ok(Vg {
        size: bytes("vg_size", &raw.vg_size)?,
        free: bytes("vg_free", &raw.vg_free)?,
        extent_size: bytes("vg_extent_size", &raw.vg_extent_size)?,
        tags: tags(&raw.vg_tags),
        name: raw.vg_name,
        uuid: raw.vg_uuid,
    })
}

fn lv(raw: RawLv) -> Result<Lv, LvmError> {
    Ok(Lv {
        size: bytes("lv_size", &raw.lv_size)?,
        tags: tags(&raw.lv_tags),
        pool: Some(raw.pool_lv).filter(|p| !p.is_empty()),
        name: raw.lv_name,
        vg: raw.vg_name,
    })
}

fn pv(raw: RawPv) -> Result<Pv, LvmError> {
    Ok(Pv {
        size: bytes("pv_size", &raw.pv_size)?,
        free: bytes("pv_free", &raw.pv_free)?,
        vg: Some(raw.vg_name).filter(|v| !v.is_empty()),
        name: raw.pv_name,
    })
}

/// Parse `vgs --reportformat json`.
pub fn parse_vgs(json: &[u8]) -> Result<Vec<Vg>, LvmError> {
    sections(json)?
        .into_iter()
        .flat_map(|s| s.vg)
        .map(vg)
        .collect()
}

/// Parse `lvs --reportformat json`.
pub fn parse_lvs(json: &[u8]) -> Result<Vec<Lv>, LvmError> {
    sections(json)?
        .into_iter()
        .flat_map(|s| s.lv)
        .map(lv)
        .collect()
}

/// Parse `pvs --reportformat json`.
pub fn parse_pvs(json: &[u8]) -> Result<Vec<Pv>, LvmError> {
    sections(json)?
        .into_iter()
        .flat_map(|s| s.pv)
        .map(pv)
        .collect()
}

/// Parse `lvm fullreport --reportformat json`: one section per volume group,
/// whose logical and physical volumes do not repeat the group's name.
pub fn parse_fullreport(json: &[u8]) -> Result<FullReport, LvmError> {
    let mut report = FullReport::default();
    for section in sections(json)? {
        let group = section
            .vg
            .first()
            .map(|v| v.vg_name.clone())
            .unwrap_or_default();
        for raw in section.vg {
            report.vgs.push(vg(raw)?);
        }
        for mut raw in section.lv {
            if raw.vg_name.is_empty() {
                raw.vg_name.clone_from(&group);
            }
            report.lvs.push(lv(raw)?);
        }
        for mut raw in section.pv {
            if raw.vg_name.is_empty() {
                raw.vg_name.clone_from(&group);
            }
            report.pvs.push(pv(raw)?);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VG: &str = "vg_aplo_0123456789abcdef0123456789abcdef";

    #[test]
    fn reports_from_real_lvm() {
        let vgs = parse_vgs(include_bytes!("../../tests/data/lvm/vgs.json")).unwrap();
        assert_eq!(vgs.len(), 1);
        assert_eq!(vgs[0].name, VG);
        assert_eq!(
            (vgs[0].size, vgs[0].free, vgs[0].extent_size),
            (2_143_289_344, 2_038_431_744, 4 << 20)
        );
        assert_eq!(
            vgs[0].tags,
            ["aplo.device=0123456789abcdef0123456789abcdef"]
        );
        let lvs = parse_lvs(include_bytes!("../../tests/data/lvm/lvs.json")).unwrap();
        assert_eq!(lvs[0].size, 100 << 20);
        assert_eq!(
            lvs[0].tags,
            [
                "aplo.brick=aabbccddeeff00112233445566778899",
                "aplo.volume=ffeeddccbbaa99887766554433221100"
            ]
        );
        assert_eq!(lvs[0].pool, None);
        let pvs = parse_pvs(include_bytes!("../../tests/data/lvm/pvs.json")).unwrap();
        assert_eq!(
            (pvs[0].name.as_str(), pvs[0].vg.as_deref()),
            ("/dev/loop0", Some(VG))
        );
    }

    #[test]
    fn the_full_report_agrees_with_the_single_reports() {
        let full =
            parse_fullreport(include_bytes!("../../tests/data/lvm/fullreport.json")).unwrap();
        assert_eq!(
            full.vgs,
            parse_vgs(include_bytes!("../../tests/data/lvm/vgs.json")).unwrap()
        );
        assert_eq!(
            full.lvs,
            parse_lvs(include_bytes!("../../tests/data/lvm/lvs.json")).unwrap()
        );
        assert_eq!(
            full.pvs,
            parse_pvs(include_bytes!("../../tests/data/lvm/pvs.json")).unwrap()
        );
    }

    #[test]
    fn bad_reports_are_refused() {
        assert!(parse_vgs(b"").is_err());
        assert!(parse_vgs(b"{\"report\": 3}").is_err());
        let human = br#"{"report": [{"vg": [{"vg_name": "v", "vg_uuid": "u", "vg_size": "2.00g", "vg_free": "1", "vg_extent_size": "4"}]}]}"#;
        assert!(
            parse_vgs(human)
                .unwrap_err()
                .to_string()
                .contains("--units b")
        );
    }
}
