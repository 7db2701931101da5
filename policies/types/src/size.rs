//! Sizes: constants, parsing of Kubernetes-style quantities, rounding.

/// One kibibyte.
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;
/// One tebibyte.
pub const TIB: u64 = 1 << 40;

/// Parse a size: a whole number of bytes with an optional Kubernetes suffix,
/// binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`) or decimal (`k`, `K`, `M`, `G`, `T`, `P`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "'{text}' is not a size (expected e.g. 10Gi or 500M)"
        ));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let unit: u64 = match suffix {
        "" => 1,
        "Ki" => KIB,
        "Mi" => MIB,
        "Gi" => GIB,
        "Ti" => TIB,
        "Pi" => TIB << 10,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (use Ki, Mi, Gi, Ti, Pi, k, M, G, T or P)"
            ));
        }
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// `bytes` rounded up to a multiple of `unit` (saturating).
pub fn round_up(bytes: u64, unit: u64) -> u64 {
    if unit == 0 {
        return bytes;
    }
    bytes.div_ceil(unit).saturating_mul(unit)
}

/// A human-readable size with a binary unit, e.g. `1.5GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)];
    for (name, unit) in UNITS {
        if bytes >= unit {
            let whole = bytes / unit;
            let tenth = (bytes % unit) * 10 / unit;
            return if tenth == 0 {
                format!("{whole}{name}")
            } else {
                format!("{whole}.{tenth}{name}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_quantities() {
        assert_eq!(parse_size("10Gi"), Ok(10 * GIB));
        assert_eq!(parse_size("500M"), Ok(500_000_000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("10GB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("Gi").unwrap_err().contains("not a size"));
        assert!(
            parse_size("99999999999Pi")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn rounds_and_formats() {
        assert_eq!(round_up(GIB + 1, MIB), GIB + MIB);
        assert_eq!(round_up(u64::MAX, GIB), u64::MAX, "saturates");
        assert_eq!(format_size(3 * GIB / 2), "1.5GiB");
        assert_eq!(format_size(512), "512B");
    }
}
