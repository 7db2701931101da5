//! Rules every policy answer must obey. A policy is never trusted: its
//! layout, durability and quota answers go through these checks before
//! anything acts on them, and a broken rule is named in the error.

mod layout;

pub use self::layout::{LayoutRule, LayoutSummary, LayoutViolation, validate_layout};
use super::options::{OptionNames, check_option};
use super::{Allowance, Claim, DurabilityDecision, Scheme, format_size};

/// The most brick sets a layout may have.
pub const MAX_SETS: usize = 512;
/// The most bricks a set may have (gluster disperse allows up to 64 in
/// theory; sets beyond 16 are impractical).
pub const MAX_SET_SIZE: usize = 16;
/// The longest refusal reason passed on to users; longer ones are cut.
pub const MAX_REASON_LEN: usize = 1024;
/// The smallest data brick a layout may have: the smallest XFS filesystem
/// `mkfs.xfs` 6.x makes. Every production backend (`lvm-thin`, `loop`)
/// gives each brick its own XFS, so a smaller data brick would hold more
/// than its accounted size (its filesystem is rounded up to this). The
/// floor holds for `dir` too, so that a layout valid on one backend is
/// valid on all. Arbiter bricks hold only metadata and may be smaller:
/// backends round their thin or sparse filesystems up.
pub const MIN_DATA_BRICK_BYTES: u64 = 300 << 20;

/// A durability or quota answer that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct AnswerViolation {
    /// The field at fault, e.g. `scheme` or `hard_limit`.
    pub field: &'static str,
    /// What is wrong.
    pub detail: String,
}

/// Check a scheme against gluster's limits.
pub fn validate_scheme(scheme: &Scheme) -> Result<(), AnswerViolation> {
    let bad = |detail: String| {
        Err(AnswerViolation {
            field: "scheme",
            detail,
        })
    };
    match *scheme {
        Scheme::None => Ok(()),
        Scheme::Replicate { count, arbiter } => {
            if arbiter && count != 3 {
                return bad(format!(
                    "an arbiter volume is replica 3, not replica {count}"
                ));
            }
            if !(2..=MAX_SET_SIZE as u8).contains(&count) {
                return bad(format!(
                    "replica count {count} is outside 2..={MAX_SET_SIZE}"
                ));
            }
            Ok(())
        }
        Scheme::Disperse { data, redundancy } => {
            if data < 2 || redundancy < 1 || redundancy >= data {
                return bad(format!(
                    "disperse {data}+{redundancy} needs data >= 2 and 1 <= redundancy < data"
                ));
            }
            if usize::from(data) + usize::from(redundancy) > MAX_SET_SIZE {
                return bad(format!(
                    "disperse {data}+{redundancy} exceeds {MAX_SET_SIZE} bricks per set"
                ));
            }
            Ok(())
        }
    }
}

/// Check a durability decision: the scheme, the options and the reserve.
/// Every option must be one gluster could be given
/// ([`super::options::check_option`]); with `known`, its name must also
/// be one of those volume options (or a custom `user.` one).
pub fn validate_durability(
    decision: &DurabilityDecision,
    known: Option<&OptionNames>,
) -> Result<(), AnswerViolation> {
    validate_scheme(&decision.scheme)?;
    for (key, value) in &decision.volume_options {
        check_option(key, value, known).map_err(|e| AnswerViolation {
            field: "volume_options",
            detail: e.to_string(),
        })?;
    }
    let reserve = decision.snapshot_reserve;
    if !(reserve.is_finite() && (1.0..=100.0).contains(&reserve)) {
        return Err(AnswerViolation {
            field: "snapshot_reserve",
            detail: format!("{reserve} is outside 1.0..=100.0"),
        });
    }
    Ok(())
}

/// Check a quota allowance against the claim it allows and, where the host
/// knows it, the raw capacity of the storage (every device's size): no
/// volume can hold more, so a larger hard limit is not a limit.
pub fn validate_allowance(
    allowance: &Allowance,
    claim: &Claim,
    raw_capacity: Option<u64>,
) -> Result<(), AnswerViolation> {
    match (allowance.hard_limit, raw_capacity) {
        (Some(limit), _) if limit < claim.requested_bytes => Err(AnswerViolation {
            field: "hard_limit",
            detail: format!(
                "{} is below the {} the claim requested",
                format_size(limit),
                format_size(claim.requested_bytes)
            ),
        }),
        (Some(limit), Some(raw)) if limit > raw => Err(AnswerViolation {
            field: "hard_limit",
            detail: format!(
                "{} is above the {} raw capacity of the storage",
                format_size(limit),
                format_size(raw)
            ),
        }),
        _ => Ok(()),
    }
}

/// A refusal reason or panic message made fit to show: inert (see
/// [`super::text::inert`]), capped at [`MAX_REASON_LEN`], never empty.
pub fn clean_reason(reason: &str) -> String {
    let text = super::text::inert(reason, MAX_REASON_LEN);
    if text.is_empty() {
        "refused without a reason".to_owned()
    } else {
        text
    }
}

/// A scheme in words, for messages.
pub fn describe(scheme: &Scheme) -> String {
    match *scheme {
        Scheme::None => "no redundancy".to_owned(),
        Scheme::Replicate {
            count,
            arbiter: false,
        } => format!("replica {count}"),
        Scheme::Replicate {
            count,
            arbiter: true,
        } => format!("replica {count} arbiter 1"),
        Scheme::Disperse { data, redundancy } => format!("disperse {data}+{redundancy}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::claim;
    use crate::model::{GIB, Pairs};

    #[test]
    fn durability_answers_are_checked() {
        let ok = DurabilityDecision {
            scheme: Scheme::Disperse {
                data: 4,
                redundancy: 2,
            },
            volume_options: Pairs::new(),
            snapshot_reserve: 1.0,
        };
        assert!(validate_durability(&ok, None).is_ok());
        let bad = |f: fn(&mut DurabilityDecision)| {
            let mut d = ok.clone();
            f(&mut d);
            validate_durability(&d, None).unwrap_err().field
        };
        assert_eq!(
            bad(|d| d.scheme = Scheme::Replicate {
                count: 1,
                arbiter: false
            }),
            "scheme"
        );
        assert_eq!(
            bad(|d| d.scheme = Scheme::Replicate {
                count: 2,
                arbiter: true
            }),
            "scheme"
        );
        assert_eq!(
            bad(|d| d.scheme = Scheme::Disperse {
                data: 2,
                redundancy: 2
            }),
            "scheme"
        );
        assert_eq!(
            bad(|d| d.scheme = Scheme::Disperse {
                data: 15,
                redundancy: 3
            }),
            "scheme"
        );
        assert_eq!(
            bad(|d| {
                d.volume_options.insert("user.aplo.id".into(), "x".into());
            }),
            "volume_options"
        );
        assert_eq!(
            bad(|d| {
                d.volume_options
                    .insert("no dots or spaces".into(), "x".into());
            }),
            "volume_options"
        );
        assert_eq!(
            bad(|d| {
                d.volume_options.insert("a.b".into(), "line\nbreak".into());
            }),
            "volume_options"
        );
        assert_eq!(bad(|d| d.snapshot_reserve = f64::NAN), "snapshot_reserve");
        assert_eq!(bad(|d| d.snapshot_reserve = 0.5), "snapshot_reserve");
    }

    #[test]
    fn durability_options_are_checked_by_name_value_and_list() {
        let known = OptionNames::new(["performance.cache-size"], "gluster 10.3");
        let with = |key: &str, value: &str| DurabilityDecision {
            scheme: Scheme::None,
            volume_options: [(key.to_owned(), value.to_owned())].into_iter().collect(),
            snapshot_reserve: 1.0,
        };
        let detail = |d: &DurabilityDecision, known: Option<&OptionNames>| {
            let v = validate_durability(d, known).unwrap_err();
            assert_eq!(v.field, "volume_options");
            v.detail
        };
        assert!(validate_durability(&with("performance.cache-size", "10MB"), Some(&known)).is_ok());
        assert!(validate_durability(&with("user.team", "a"), Some(&known)).is_ok());
        let flag = detail(
            &with("performance.cache-size", "--log-file=/tmp/x"),
            Some(&known),
        );
        assert!(
            flag.contains("'performance.cache-size'") && flag.contains("flag"),
            "{flag}"
        );
        let remote = detail(
            &with("performance.cache-size", "--remote-host=10.0.0.9"),
            None,
        );
        assert!(remote.contains("flag"), "{remote}");
        let name = detail(&with("--log-file=/tmp/x", "on"), None);
        assert!(name.contains("'--log-file=/tmp/x'"), "{name}");
        let unknown = detail(&with("cluster.made-up", "on"), Some(&known));
        assert!(
            unknown.contains("'cluster.made-up'") && unknown.contains("gluster 10.3"),
            "{unknown}"
        );
        // Without a list the name's shape is all that is checked.
        assert!(validate_durability(&with("cluster.made-up", "on"), None).is_ok());
    }

    #[test]
    fn quota_limits_below_the_claim_or_above_the_raw_capacity_are_refused() {
        let c = claim(10 * GIB);
        let limit = |bytes| Allowance {
            hard_limit: Some(bytes),
        };
        assert!(validate_allowance(&limit(10 * GIB), &c, None).is_ok());
        assert!(validate_allowance(&limit(10 * GIB), &c, Some(10 * GIB)).is_ok());
        assert!(validate_allowance(&Allowance { hard_limit: None }, &c, Some(GIB)).is_ok());
        let low = validate_allowance(&limit(GIB), &c, None).unwrap_err();
        assert_eq!(low.field, "hard_limit");
        assert!(low.detail.contains("below"), "{}", low.detail);
        let high = validate_allowance(&limit(u64::MAX), &c, Some(300 * GIB)).unwrap_err();
        assert_eq!(high.field, "hard_limit");
        assert!(
            high.detail.contains("above") && high.detail.contains("300"),
            "{}",
            high.detail
        );
        // Without a known capacity only the lower bound is checked.
        assert!(validate_allowance(&limit(u64::MAX), &c, None).is_ok());
    }

    #[test]
    fn reasons_are_cleaned() {
        assert_eq!(clean_reason("  no\nspace\t"), "no space");
        assert_eq!(clean_reason(""), "refused without a reason");
        let long = clean_reason(&"é".repeat(2000));
        assert!(long.len() <= MAX_REASON_LEN && long.ends_with('…'));
        assert_eq!(
            clean_reason("\u{1b}[31mno\u{1b}[0m \u{202e}space"),
            "no space"
        );
    }
}
