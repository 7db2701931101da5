//! What a failed LVM command means, decided once, here, from the standard
//! error lvm2 2.03.16 really prints (each case is captured under
//! `tests/data/lvm/`). lvm2 exits 5 for all of them, so only its words
//! tell them apart. Callers match on [`LvmFailure`], never on lvm's text.
//!
//! Each line is matched whole, with only the names (volume group, logical
//! volume, device, numbers) free: a line that merely contains a phrase
//! says nothing. When several lines match, the first kind in the order
//! of [`LvmFailure`] wins (a mounted device also "has a signature").

use super::super::command::ExecError;

/// What a failure of an LVM command means to the one who ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvmFailure {
    /// The device is held by someone else: `Can't open DEV exclusively.
    /// Mounted filesystem?` (`pvcreate` on a mounted device).
    DeviceInUse,
    /// The device is already a physical volume of a volume group:
    /// `Can't initialize physical volume "DEV" of volume group "VG"
    /// without -ff` (`pvcreate`), `Physical volume 'DEV' is already in
    /// volume group 'VG'` (`vgcreate`), `PV DEV is used by VG VG so please
    /// use vgreduce first.` (`pvremove`).
    InVolumeGroup,
    /// `A volume group called VG already exists.` (`vgcreate`).
    VgExists,
    /// `Logical Volume "LV" already exists in volume group "VG"`
    /// (`lvcreate`).
    LvExists,
    /// Not enough free extents: `Volume group "VG" has insufficient free
    /// space (N extents): M required.` (`lvcreate`), `Insufficient free
    /// space: M extents needed, but only N available` (`lvextend`).
    InsufficientSpace,
    /// `Logical volume LV not found in volume group VG.` (`lvextend`),
    /// `Failed to find logical volume "VG/LV"` (`lvremove`).
    LvNotFound,
    /// `Volume group "VG" not found` (`lvcreate`, `vgremove`).
    VgNotFound,
    /// `No device found for DEV.` (`pvcreate` of a path that is no device).
    DeviceNotFound,
    /// The device holds a filesystem or other signature, which `-qq`
    /// declines to wipe: `Aborted wiping of TYPE.`, `N existing
    /// signature(s) left on the device.`, `Cannot use DEV: device has a
    /// signature` (`pvcreate`).
    HasSignature,
    /// Anything else: a real failure.
    Other,
}

/// Whether `line` is `parts[0] X parts[1] Y … parts[n]`, each free part one
/// non-empty word; the last part ends the line.
fn shaped(line: &str, parts: &[&str]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return line.is_empty();
    };
    let Some(mut left) = line.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        // A free word runs to the next fixed part, the last one to the
        // part that ends the line.
        let found = if i + 1 == rest.len() {
            left.strip_suffix(part).map(str::len)
        } else {
            left.find(part)
        };
        let Some(at) = found else {
            return false;
        };
        let word = &left[..at];
        if word.is_empty() || word.contains(char::is_whitespace) {
            return false;
        }
        left = &left[at + part.len()..];
    }
    left.is_empty()
}

/// The kind one line of standard error says, if any.
fn line_kind(line: &str) -> Option<LvmFailure> {
    use LvmFailure::*;
    let patterns: &[(LvmFailure, &[&str])] = &[
        (
            DeviceInUse,
            &["Can't open ", " exclusively.  Mounted filesystem?"],
        ),
        (
            InVolumeGroup,
            &[
                "Can't initialize physical volume \"",
                "\" of volume group \"",
                "\" without -ff",
            ],
        ),
        (
            InVolumeGroup,
            &["Physical volume '", "' is already in volume group '", "'"],
        ),
        (
            InVolumeGroup,
            &["PV ", " is used by VG ", " so please use vgreduce first."],
        ),
        (VgExists, &["A volume group called ", " already exists."]),
        (
            LvExists,
            &[
                "Logical Volume \"",
                "\" already exists in volume group \"",
                "\"",
            ],
        ),
        (
            InsufficientSpace,
            &[
                "Volume group \"",
                "\" has insufficient free space (",
                " extents): ",
                " required.",
            ],
        ),
        (
            InsufficientSpace,
            &[
                "Insufficient free space: ",
                " extents needed, but only ",
                " available",
            ],
        ),
        (
            LvNotFound,
            &["Logical volume ", " not found in volume group ", "."],
        ),
        (LvNotFound, &["Failed to find logical volume \"", "\""]),
        (VgNotFound, &["Volume group \"", "\" not found"]),
        (DeviceNotFound, &["No device found for ", "."]),
        (HasSignature, &["Aborted wiping of ", "."]),
        (
            HasSignature,
            &["", " existing signature left on the device."],
        ),
        (
            HasSignature,
            &["", " existing signatures left on the device."],
        ),
        (HasSignature, &["Cannot use ", ": device has a signature"]),
    ];
    patterns
        .iter()
        .find(|(_, parts)| shaped(line, parts))
        .map(|(kind, _)| *kind)
}

/// Classify what an LVM command printed on standard error.
pub fn classify(stderr: &str) -> LvmFailure {
    stderr
        .lines()
        .filter_map(|line| line_kind(line.trim()))
        .min_by_key(|kind| *kind as u8)
        .unwrap_or(LvmFailure::Other)
}

/// What a failed LVM command means, if it ran and failed (a command that
/// could not be started or timed out says nothing about LVM).
pub fn failure_of(error: &ExecError) -> Option<LvmFailure> {
    match error {
        ExecError::Failed { stderr, .. } => Some(classify(stderr)),
        ExecError::Spawn { .. } | ExecError::Timeout { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! captured {
        ($name:literal) => {
            include_str!(concat!("../../../tests/data/lvm/", $name))
        };
    }

    #[test]
    fn each_captured_failure_has_its_kind() {
        use LvmFailure::*;
        for (stderr, kind) in [
            (captured!("pvcreate-mounted.stderr"), DeviceInUse),
            (captured!("pvcreate-in-vg.stderr"), InVolumeGroup),
            (captured!("vgcreate-pv-in-vg.stderr"), InVolumeGroup),
            (captured!("pvremove-in-vg.stderr"), InVolumeGroup),
            (captured!("vgcreate-exists.stderr"), VgExists),
            (captured!("lvcreate-exists.stderr"), LvExists),
            (captured!("lvcreate-no-space.stderr"), InsufficientSpace),
            (captured!("lvextend-no-space.stderr"), InsufficientSpace),
            (captured!("lvextend-missing.stderr"), LvNotFound),
            (captured!("lvremove-missing.stderr"), LvNotFound),
            (captured!("lvcreate-vg-missing.stderr"), VgNotFound),
            (captured!("vgremove-missing.stderr"), VgNotFound),
            (captured!("pvcreate-no-device.stderr"), DeviceNotFound),
            (captured!("pvcreate-signature.stderr"), HasSignature),
            // No device-mapper here: a real failure of another kind.
            (captured!("thin-pool-create.stderr"), Other),
        ] {
            assert_eq!(classify(stderr), kind, "{stderr}");
        }
    }

    #[test]
    fn lines_are_matched_whole() {
        for stderr in [
            "",
            "  WARNING: Activation disabled. No device-mapper interaction will be attempted.",
            "  Volume group \"two words\" not found",
            "  Volume group \"vg\" not found, or so",
            "  Logical volume not found",
            "  note: A volume group called vg already exists.",
            "  already exists",
            "  insufficient free space",
        ] {
            assert_eq!(classify(stderr), LvmFailure::Other, "{stderr:?}");
        }
    }

    #[test]
    fn only_a_failed_command_has_a_failure() {
        let failed = ExecError::Failed {
            node: "n".into(),
            command: "vgremove -qq -y vg".into(),
            status: 5,
            stderr: captured!("vgremove-missing.stderr").trim().into(),
            stdout: Vec::new(),
        };
        assert_eq!(failure_of(&failed), Some(LvmFailure::VgNotFound));
        let timeout = ExecError::Timeout {
            node: "n".into(),
            command: "lvs".into(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(failure_of(&timeout), None);
    }
}
