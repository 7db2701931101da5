//! `classes`: aplo's default durability policy.
//!
//! A StorageClass names a durability class; each class fixes the scheme,
//! its gluster volume options and its limits:
//!
//! | class          | scheme                  | default options                |
//! |----------------|-------------------------|--------------------------------|
//! | `replica3`     | replicate 3             | `cluster.quorum-type=auto`     |
//! | `replica2`     | replicate 2             | `cluster.favorite-child-policy=mtime` |
//! | `arbiter`      | replicate 3, arbiter 1  | `cluster.quorum-type=auto`     |
//! | `disperse-2-1` | disperse 2+1            | none                           |
//! | `disperse-4-2` | disperse 4+2            | none                           |
//! | `disperse-8-3` | disperse 8+3            | none                           |
//! | `none`         | one brick, no redundancy| none                           |
//!
//! Per-class settings: `<class>.max-size` refuses larger claims,
//! `<class>.options` adds or overrides volume options
//! (`key=value;key=value`, each key once), `<class>.snapshot-reserve` sets
//! the reserve. The host refuses an option that is not one of gluster's
//! volume options (or a custom `user.` one), and a key or value the gluster
//! CLI could take as a flag.

use aplo_policy_sdk::prelude::*;

/// The classes policy.
pub struct Classes;

/// A named durability class with its defaults.
struct Class {
    name: &'static str,
    scheme: Scheme,
    options: &'static [(&'static str, &'static str)],
}

const CLASSES: [Class; 7] = [
    Class {
        name: "replica3",
        scheme: Scheme::Replicate {
            count: 3,
            arbiter: false,
        },
        options: &[("cluster.quorum-type", "auto")],
    },
    Class {
        name: "replica2",
        scheme: Scheme::Replicate {
            count: 2,
            arbiter: false,
        },
        options: &[("cluster.favorite-child-policy", "mtime")],
    },
    Class {
        name: "arbiter",
        scheme: Scheme::Replicate {
            count: 3,
            arbiter: true,
        },
        options: &[("cluster.quorum-type", "auto")],
    },
    Class {
        name: "disperse-2-1",
        scheme: Scheme::Disperse {
            data: 2,
            redundancy: 1,
        },
        options: &[],
    },
    Class {
        name: "disperse-4-2",
        scheme: Scheme::Disperse {
            data: 4,
            redundancy: 2,
        },
        options: &[],
    },
    Class {
        name: "disperse-8-3",
        scheme: Scheme::Disperse {
            data: 8,
            redundancy: 3,
        },
        options: &[],
    },
    Class {
        name: "none",
        scheme: Scheme::None,
        options: &[],
    },
];

const PER_CLASS: [&str; 3] = ["max-size", "options", "snapshot-reserve"];

/// The claim annotation that may pick a class when `allow-claim-override` is on.
pub const OVERRIDE_ANNOTATION: &str = "aplo.io/durability-class";

fn class(name: &str) -> Result<&'static Class, String> {
    CLASSES.iter().find(|c| c.name == name).ok_or_else(|| {
        format!(
            "unknown class '{name}' (classes: {})",
            CLASSES
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn parse_reserve(settings: &Settings, key: &str, default: f64) -> Result<f64, String> {
    let reserve: f64 = settings.parse(key, default)?;
    if (1.0..=100.0).contains(&reserve) {
        Ok(reserve)
    } else {
        Err(format!("setting '{key}': {reserve} is outside 1.0..=100.0"))
    }
}

impl Policy for Classes {
    fn describe() -> Info {
        Info::new(
            "Named durability classes: replica, arbiter, disperse or none, with options and limits",
            env!("CARGO_PKG_VERSION"),
        )
        .setting(
            "class",
            "The class for claims of this StorageClass.",
            Some("replica3"),
        )
        .setting(
            "allow-claim-override",
            "Let a claim pick its class with the aplo.io/durability-class annotation.",
            Some("false"),
        )
        .setting(
            "allowed-classes",
            "Comma-separated classes a claim may pick (with allow-claim-override).",
            None,
        )
        .setting(
            "snapshot-reserve",
            "Snapshot headroom factor for every class, 1.0 to 100.",
            Some("1.0"),
        )
        .setting(
            "<class>.max-size",
            "Refuse claims of this class larger than this size, e.g. replica3.max-size=1Ti.",
            None,
        )
        .setting(
            "<class>.options",
            "Gluster volume options for the class, key=value;key=value.",
            None,
        )
        .setting(
            "<class>.snapshot-reserve",
            "Snapshot headroom factor for one class.",
            None,
        )
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        for key in settings.pairs().keys() {
            match key.split_once('.') {
                None if matches!(
                    key.as_str(),
                    "class" | "allow-claim-override" | "allowed-classes" | "snapshot-reserve"
                ) => {}
                None => {
                    return Err(format!(
                        "unknown setting '{key}' (known settings: class, allow-claim-override, allowed-classes, snapshot-reserve, <class>.max-size, <class>.options, <class>.snapshot-reserve)"
                    ));
                }
                Some((name, setting)) => {
                    class(name).map_err(|e| format!("setting '{key}': {e}"))?;
                    if !PER_CLASS.contains(&setting) {
                        return Err(format!(
                            "unknown setting '{key}' (per-class settings: {})",
                            PER_CLASS.join(", ")
                        ));
                    }
                }
            }
        }
        class(settings.get("class").unwrap_or("replica3"))
            .map_err(|e| format!("setting 'class': {e}"))?;
        settings.flag("allow-claim-override", false)?;
        for name in settings
            .get("allowed-classes")
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.trim().is_empty())
        {
            class(name.trim()).map_err(|e| format!("setting 'allowed-classes': {e}"))?;
        }
        parse_reserve(settings, "snapshot-reserve", 1.0)?;
        for c in &CLASSES {
            settings.size(&format!("{}.max-size", c.name))?;
            if let Some(text) = settings.get(&format!("{}.options", c.name)) {
                aplo_policy_sdk::settings::parse_pairs(text)
                    .map_err(|e| format!("setting '{}.options': {e}", c.name))?;
            }
            parse_reserve(settings, &format!("{}.snapshot-reserve", c.name), 1.0)?;
        }
        Ok(())
    }
}

impl Durability for Classes {
    fn decide(claim: &Claim, settings: &Settings) -> Result<DurabilityDecision, String> {
        let mut chosen = class(settings.get("class").unwrap_or("replica3"))?;
        if let Some(asked) = claim.annotations.get(OVERRIDE_ANNOTATION) {
            if !settings.flag("allow-claim-override", false)? {
                return Err(format!(
                    "the claim asks for durability class '{asked}' with {OVERRIDE_ANNOTATION}, but this StorageClass does not allow claims to choose (set classes.allow-claim-override=true)"
                ));
            }
            let allowed = settings.get("allowed-classes").unwrap_or_default();
            let listed = allowed.split(',').map(str::trim).any(|n| n == asked);
            if !allowed.trim().is_empty() && !listed {
                return Err(format!(
                    "durability class '{asked}' is not allowed here (allowed: {allowed})"
                ));
            }
            chosen = class(asked)?;
        }
        if let Some(max) = settings.size(&format!("{}.max-size", chosen.name))?
            && claim.requested_bytes > max
        {
            return Err(format!(
                "the claim asks for {}, more than the {} limit of durability class {}",
                aplo_policy_sdk::size::format_size(claim.requested_bytes),
                aplo_policy_sdk::size::format_size(max),
                chosen.name
            ));
        }
        let mut decision = DurabilityDecision::new(chosen.scheme);
        decision.volume_options = chosen
            .options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(text) = settings.get(&format!("{}.options", chosen.name)) {
            let options = aplo_policy_sdk::settings::parse_pairs(text)
                .map_err(|e| format!("setting '{}.options': {e}", chosen.name))?;
            decision.volume_options.extend(options);
        }
        let global = parse_reserve(settings, "snapshot-reserve", 1.0)?;
        decision.snapshot_reserve = parse_reserve(
            settings,
            &format!("{}.snapshot-reserve", chosen.name),
            global,
        )?;
        Ok(decision)
    }
}

aplo_policy_sdk::export!(Classes: durability);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<Classes>()
            .durability::<Classes>()
            .run();
    }
}
