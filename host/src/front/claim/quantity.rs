//! Kubernetes quantities (`10Gi`, `1.5G`, `1e9`) read into bytes and
//! bytes written as quantities.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity that cannot be read as bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid quantity: {problem}")]
pub struct QuantityError {
    /// The quantity as given (before trimming).
    pub text: String,
    /// What is wrong with it.
    pub problem: QuantityProblem,
}

/// What is wrong with a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityProblem {
    /// A minus sign.
    #[error("it is negative")]
    Negative,
    /// No number, or one with stray characters.
    #[error("expected a number such as 10Gi or 1.5G")]
    NotANumber,
    /// More than 30 significant digits.
    #[error("it has too many digits")]
    TooManyDigits,
    /// More bytes than a `u64` holds.
    #[error("it is too large")]
    TooLarge,
    /// A fraction too long to scale.
    #[error("it is too long")]
    TooLong,
    /// An `e` or `E` suffix whose exponent is not a number.
    #[error("the exponent is not a number")]
    BadExponent,
    /// A suffix Kubernetes does not know.
    #[error("unknown suffix '{0}'")]
    UnknownSuffix(String),
    /// The exponent and the fraction's scale together overflow.
    #[error("the exponent is out of range")]
    ExponentOutOfRange,
    /// A value too small to hold as a fraction.
    #[error("it has too many decimals")]
    TooManyDecimals,
}

/// A Kubernetes quantity in bytes, rounded up to a whole byte: `10Gi`,
/// `1.5G`, `500M`, `1e9`, `2048`, `1500m` (1.5 bytes, so 2).
pub fn parse_quantity(text: &str) -> Result<u64, QuantityError> {
    let bad = |problem: QuantityProblem| QuantityError {
        text: text.to_owned(),
        problem,
    };
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let number = number.strip_prefix('+').unwrap_or(number);
    if number.starts_with('-') {
        return Err(bad(QuantityProblem::Negative));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(QuantityProblem::NotANumber));
    }
    // value = digits / 10^scale * multiplier, held exactly as a fraction.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(bad(QuantityProblem::TooManyDigits));
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad(QuantityProblem::TooLarge))?
    };
    let scale = i32::try_from(fraction.len()).map_err(|_| bad(QuantityProblem::TooLong))?;
    let (binary, mut decimal): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent if exponent.starts_with(['e', 'E']) => {
            let e: i32 = exponent[1..]
                .parse()
                .map_err(|_| bad(QuantityProblem::BadExponent))?;
            (0, e)
        }
        other => return Err(bad(QuantityProblem::UnknownSuffix(other.to_owned()))),
    };
    // An exponent near i32::MIN (`1.5e-2147483648`) must not wrap.
    decimal = decimal
        .checked_sub(scale)
        .ok_or_else(|| bad(QuantityProblem::ExponentOutOfRange))?;
    let mut numerator = mantissa
        .checked_mul(1u128 << binary)
        .ok_or_else(|| bad(QuantityProblem::TooLarge))?;
    let mut denominator: u128 = 1;
    if decimal >= 0 {
        let factor = 10u128
            .checked_pow(decimal.unsigned_abs())
            .ok_or_else(|| bad(QuantityProblem::TooLarge))?;
        numerator = numerator
            .checked_mul(factor)
            .ok_or_else(|| bad(QuantityProblem::TooLarge))?;
    } else {
        denominator = 10u128
            .checked_pow(decimal.unsigned_abs())
            .ok_or_else(|| bad(QuantityProblem::TooManyDecimals))?;
    }
    let bytes = numerator.div_ceil(denominator);
    u64::try_from(bytes).map_err(|_| bad(QuantityProblem::TooLarge))
}

/// Bytes as a quantity in the largest binary unit that divides them.
pub fn quantity(bytes: u64) -> Quantity {
    let units = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (suffix, shift) in units {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return Quantity(format!("{}{suffix}", bytes >> shift));
        }
    }
    Quantity(bytes.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        let cases = [
            ("10Gi", 10 << 30),
            ("1Ki", 1024),
            ("1.5Gi", 3 << 29),
            ("1G", 1_000_000_000),
            ("500M", 500_000_000),
            ("1e9", 1_000_000_000),
            ("1E3", 1000),
            ("2048", 2048),
            ("1500m", 2),
            ("0.5", 1),
            ("+3k", 3000),
            ("1Ei", 1 << 60),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_quantity(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "Gi",
            "-1Gi",
            "1.2.3",
            "10GB",
            "1e",
            "99999999999999999999Ei",
            "x",
        ] {
            let err = parse_quantity(bad).unwrap_err().to_string();
            assert!(err.contains("not a valid quantity"), "{bad}: {err}");
        }
    }

    #[test]
    fn extreme_exponents_are_refused_not_wrapped() {
        // The fraction's scale taken from i32::MIN used to overflow (a
        // panic in a debug build).
        for (text, why) in [
            ("1.5e-2147483648", "the exponent is out of range"),
            ("1e-2147483648", "too many decimals"),
            ("1e2147483647", "too large"),
            ("1e2147483648", "the exponent is not a number"),
        ] {
            let err = parse_quantity(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn quantities_print_in_the_largest_unit() {
        assert_eq!(quantity(10 << 30).0, "10Gi");
        assert_eq!(quantity(1536 << 20).0, "1536Mi");
        assert_eq!(quantity(1000).0, "1000");
        assert_eq!(quantity(0).0, "0");
        for bytes in [1u64, 1023, 4096, 10 << 30, (3 << 40) + 7] {
            assert_eq!(parse_quantity(&quantity(bytes).0), Ok(bytes));
        }
    }
}
