//! `requested`: a durability policy that echoes what was asked.
//!
//! heketi's REST API lets the caller choose the durability of each volume
//! (`none`, `replicate{replica}`, `disperse{data, redundancy}`), its gluster
//! options and its snapshot reserve. When such a request names no policy,
//! aplo's API passes the request's own choice to this policy as settings,
//! so the answer still goes through the sandbox and the host's validation
//! like every other decision.
//!
//! | setting            | meaning                                   | default     |
//! |--------------------|-------------------------------------------|-------------|
//! | `type`             | `none`, `replicate` or `disperse`         | `replicate` |
//! | `replica`          | copies, for `replicate` (1 means `none`)  | `3`         |
//! | `arbiter`          | replica 3 with an arbiter brick           | `false`     |
//! | `data`             | data bricks, for `disperse`               | `4`         |
//! | `redundancy`       | redundancy bricks, for `disperse`         | `2`         |
//! | `options`          | gluster volume options, `key=value;...`, each key once | none |
//! | `snapshot-reserve` | snapshot headroom factor, 1.0 to 100      | `1.0`       |
//!
//! The defaults are heketi's: a request without durability gets replica 3,
//! and `disperse` without counts gets 4+2.

use aplo_policy_sdk::prelude::*;

/// The requested policy.
pub struct Requested;

const KNOWN: [&str; 7] = [
    "type",
    "replica",
    "arbiter",
    "data",
    "redundancy",
    "options",
    "snapshot-reserve",
];

/// `key=value;key=value`, each key once.
fn parse_options(text: &str) -> Result<Pairs, String> {
    aplo_policy_sdk::settings::parse_pairs(text).map_err(|e| format!("setting 'options': {e}"))
}

/// The scheme the settings ask for.
fn scheme(settings: &Settings) -> Result<Scheme, String> {
    let kind = settings.choice("type", &["none", "replicate", "disperse"], "replicate")?;
    let arbiter = settings.flag("arbiter", false)?;
    if arbiter && kind != "replicate" {
        return Err(format!(
            "setting 'arbiter': an arbiter needs type replicate, not {kind}"
        ));
    }
    match kind {
        "none" => Ok(Scheme::None),
        "replicate" => {
            let count: u8 = settings.parse("replica", 3)?;
            match count {
                0 => Err("setting 'replica': must be at least 1".to_owned()),
                1 if arbiter => {
                    Err("setting 'arbiter': an arbiter volume is replica 3, not 1".to_owned())
                }
                1 => Ok(Scheme::None),
                count => Ok(Scheme::Replicate { count, arbiter }),
            }
        }
        _ => {
            let data: u8 = settings.parse("data", 4)?;
            let redundancy: u8 = settings.parse("redundancy", 2)?;
            if data < 2 || redundancy < 1 || redundancy >= data {
                return Err(format!(
                    "settings 'data' and 'redundancy': disperse {data}+{redundancy} needs data >= 2 and 1 <= redundancy < data"
                ));
            }
            Ok(Scheme::Disperse { data, redundancy })
        }
    }
}

fn reserve(settings: &Settings) -> Result<f64, String> {
    let reserve: f64 = settings.parse("snapshot-reserve", 1.0)?;
    if (1.0..=100.0).contains(&reserve) {
        Ok(reserve)
    } else {
        Err(format!(
            "setting 'snapshot-reserve': {reserve} is outside 1.0..=100.0"
        ))
    }
}

impl Policy for Requested {
    fn describe() -> Info {
        Info::new(
            "Echoes the durability a request asks for (heketi API volume requests)",
            env!("CARGO_PKG_VERSION"),
        )
        .setting("type", "none, replicate or disperse.", Some("replicate"))
        .setting(
            "replica",
            "Copies for replicate; 1 means no redundancy.",
            Some("3"),
        )
        .setting(
            "arbiter",
            "Replica 3 with an arbiter brick instead of a third copy.",
            Some("false"),
        )
        .setting("data", "Data bricks per disperse set.", Some("4"))
        .setting(
            "redundancy",
            "Bricks per disperse set that may fail.",
            Some("2"),
        )
        .setting(
            "options",
            "Gluster volume options, key=value;key=value.",
            None,
        )
        .setting(
            "snapshot-reserve",
            "Snapshot headroom factor, 1.0 to 100.",
            Some("1.0"),
        )
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        settings.only(&KNOWN)?;
        scheme(settings)?;
        if let Some(text) = settings.get("options") {
            parse_options(text)?;
        }
        reserve(settings)?;
        Ok(())
    }
}

impl Durability for Requested {
    fn decide(_claim: &Claim, settings: &Settings) -> Result<DurabilityDecision, String> {
        let mut decision = DurabilityDecision::new(scheme(settings)?);
        if let Some(text) = settings.get("options") {
            decision.volume_options = parse_options(text)?;
        }
        decision.snapshot_reserve = reserve(settings)?;
        Ok(decision)
    }
}

aplo_policy_sdk::export!(Requested: durability);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        aplo_policy_sdk::testing::Golden::new(env!("CARGO_MANIFEST_DIR"))
            .policy::<Requested>()
            .durability::<Requested>()
            .run();
    }
}
