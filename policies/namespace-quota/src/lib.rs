//! `namespace-quota`: aplo's default quota policy.
//!
//! Caps, per namespace, the total bytes and the number of volumes, and caps
//! the size of a single volume. Each cap can be overridden for one namespace
//! with `ns.<namespace>.<cap>`. When `hard-limit` is on (the default), the
//! volume gets a gluster quota at its requested size, so it cannot be
//! filled past what was granted.

use aplo_policy_sdk::prelude::*;
use aplo_policy_sdk::size::format_size;

/// The namespace-quota policy.
pub struct NamespaceQuota;

const CAPS: [&str; 3] = ["max-bytes", "max-volumes", "max-volume-size"];

fn cap(settings: &Settings, namespace: &str, name: &str) -> Result<Option<u64>, String> {
    let key = format!("ns.{namespace}.{name}");
    let key = if settings.get(&key).is_some() {
        key
    } else {
        name.to_owned()
    };
    if name == "max-volumes" {
        settings
            .get(&key)
            .map(|_| settings.parse::<u64>(&key, 0))
            .transpose()
    } else {
        settings.size(&key)
    }
}

impl Policy for NamespaceQuota {
    fn describe() -> Info {
        Info::new(
            "Caps bytes and volumes per namespace and the size of one volume",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "max-bytes",
            "Most bytes a namespace may claim in all, e.g. 100Gi.",
            None,
        )
        .setting("max-volumes", "Most volumes a namespace may have.", None)
        .setting("max-volume-size", "Largest single volume.", None)
        .setting(
            "hard-limit",
            "Enforce each volume's size with a gluster quota.",
            Some("true"),
        )
        .setting(
            "ns.<namespace>.<cap>",
            "Override a cap for one namespace, e.g. ns.ci.max-bytes=1Ti.",
            None,
        )
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        for key in settings.pairs().keys() {
            let ok = match key.strip_prefix("ns.") {
                Some(rest) => rest
                    .rsplit_once('.')
                    .is_some_and(|(ns, c)| !ns.is_empty() && CAPS.contains(&c)),
                None => CAPS.contains(&key.as_str()) || key == "hard-limit",
            };
            if !ok {
                return Err(format!(
                    "unknown setting '{key}' (known settings: {}, hard-limit, ns.<namespace>.<cap>)",
                    CAPS.join(", ")
                ));
            }
            if key.ends_with("max-volumes") {
                settings.parse::<u64>(key, 0)?;
            } else if key != "hard-limit" {
                settings.size(key)?;
            }
        }
        settings.flag("hard-limit", true)?;
        Ok(())
    }
}

impl Quota for NamespaceQuota {
    fn check(request: &QuotaRequest, settings: &Settings) -> Result<Allowance, String> {
        let claim = &request.claim;
        let ns = if claim.namespace.is_empty() {
            "(none)"
        } else {
            claim.namespace.as_str()
        };
        let asked = claim.requested_bytes;
        if let Some(max) = cap(settings, &claim.namespace, "max-volume-size")?
            && asked > max
        {
            return Err(format!(
                "a volume may have at most {}, and the claim asks for {}",
                format_size(max),
                format_size(asked)
            ));
        }
        if let Some(max) = cap(settings, &claim.namespace, "max-bytes")? {
            let used = request.namespace_usage.bytes;
            let total = used.saturating_add(asked);
            if total > max {
                return Err(format!(
                    "namespace {ns} would claim {} of its {} quota ({} in use, the claim asks for {})",
                    format_size(total),
                    format_size(max),
                    format_size(used),
                    format_size(asked)
                ));
            }
        }
        if request.current_bytes == 0
            && let Some(max) = cap(settings, &claim.namespace, "max-volumes")?
            && u64::from(request.namespace_usage.volumes) >= max
        {
            return Err(format!(
                "namespace {ns} has {} volumes, its limit is {max}",
                request.namespace_usage.volumes
            ));
        }
        let hard_limit = settings.flag("hard-limit", true)?.then_some(asked);
        Ok(Allowance { hard_limit })
    }
}

aplo_policy_sdk::export!(NamespaceQuota: quota);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<NamespaceQuota>()
            .quota::<NamespaceQuota>()
            .run();
    }
}
