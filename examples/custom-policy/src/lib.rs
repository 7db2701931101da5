//! `size-tiered`: replica 3 for small claims, disperse 4+2 for large ones.
//! The walk-through in this folder's README builds it step by step.

use aplo_policy_sdk::prelude::*;

/// The policy type. It holds no state: every decision gets a fresh instance.
pub struct SizeTiered;

impl Policy for SizeTiered {
    fn describe() -> Info {
        Info::new(
            "Replica 3 below a threshold, disperse 4+2 above it",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "threshold",
            "Claims of at least this size get disperse 4+2.",
            Some("100Gi"),
        )
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        settings.only(&["threshold"])?;
        match settings.size("threshold")? {
            Some(0) => Err("setting 'threshold' must be greater than zero".into()),
            _ => Ok(()),
        }
    }
}

impl Durability for SizeTiered {
    fn decide(claim: &Claim, settings: &Settings) -> Result<DurabilityDecision, String> {
        let threshold = settings.size("threshold")?.unwrap_or(100 * GIB);
        let scheme = if claim.requested_bytes >= threshold {
            Scheme::Disperse {
                data: 4,
                redundancy: 2,
            }
        } else {
            Scheme::Replicate {
                count: 3,
                arbiter: false,
            }
        };
        Ok(DurabilityDecision::new(scheme))
    }
}

aplo_policy_sdk::export!(SizeTiered: durability);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<SizeTiered>()
            .durability::<SizeTiered>()
            .run();
    }
}
