//! The text form of `aplo simulate`'s reports.

use std::collections::BTreeMap;

use crate::model::{BrickRole, format_size};
use crate::plan::simulate::{ClaimLayout, Report, Used};

/// How many claims a failure group names in text.
const NAMED: usize = 5;

/// More rows than this are summarised (min, mean, max) rather than listed.
const LISTED: usize = 40;

/// Print one side's report.
pub(super) fn report(title: &str, report: &Report) {
    println!("== {title}");
    println!(
        "claims: {} succeeded of {}",
        report.succeeded, report.claims
    );
    failures(report);
    println!(
        "usable: {} of {} raw ({:.1} %)",
        format_size(report.usable_bytes),
        format_size(report.raw_bytes),
        report.usable_share() * 100.0
    );
    rows("per zone", &report.zones);
    rows("per node", &report.nodes);
    rows("per device", &report.devices);
    if let Some(by_tag) = &report.by_tag {
        println!("per {} (tag):", by_tag.key);
        for (value, usage) in &by_tag.values {
            println!(
                "  {value}: {} device(s), {} used of {}, {} free ({:.1} %)",
                usage.devices,
                format_size(usage.used),
                format_size(usage.total),
                format_size(usage.free),
                usage.share() * 100.0
            );
        }
    }
}

/// Every refusal, grouped by reason, the most common first.
fn failures(report: &Report) {
    let failed = report.claims.saturating_sub(report.succeeded);
    if report.failures.is_empty() {
        println!("failures: none");
        return;
    }
    println!(
        "failures: {failed} claim(s), {} reason(s)",
        report.failures.len()
    );
    for group in report.failures_by_count() {
        println!("  {} x {}", group.count, group.reason);
        let mut named = group.claims[..group.claims.len().min(NAMED)].join(", ");
        if group.count > NAMED {
            named.push_str(&format!(" and {} more", group.count - NAMED));
        }
        println!("    claims: {named}");
        println!("    first: {}", group.example);
    }
}

fn rows(what: &str, rows: &BTreeMap<String, Used>) {
    println!("{what}:");
    if rows.len() > LISTED {
        let shares: Vec<f64> = rows.values().map(Used::share).collect();
        let min = shares.iter().copied().fold(f64::INFINITY, f64::min);
        let max = shares.iter().copied().fold(0.0, f64::max);
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        println!(
            "  {} of them: used {:.1} % min, {:.1} % mean, {:.1} % max",
            rows.len(),
            min * 100.0,
            mean * 100.0,
            max * 100.0
        );
        return;
    }
    for (name, used) in rows {
        println!(
            "  {name}: {} of {} ({:.1} %)",
            format_size(used.used),
            format_size(used.total),
            used.share() * 100.0
        );
    }
}

/// Where each claim's bricks went, one line per set.
pub(super) fn layouts(title: &str, layouts: &[ClaimLayout], tag: Option<&str>) {
    println!("== layouts: {title}");
    if layouts.is_empty() {
        println!("no claim got a volume");
    }
    for layout in layouts {
        println!("{}:", layout.claim);
        for (n, set) in layout.sets.iter().enumerate() {
            let bricks: Vec<String> = set
                .iter()
                .map(|b| {
                    let role = match b.role {
                        BrickRole::Data => "data",
                        BrickRole::Arbiter => "arbiter",
                    };
                    let tag = match (tag, &b.tag) {
                        (Some(key), Some(value)) => format!(" {key}={value}"),
                        _ => String::new(),
                    };
                    format!(
                        "{}:{}{tag} {role} {}",
                        b.node,
                        b.device,
                        format_size(b.bytes)
                    )
                })
                .collect();
            println!("  set {}: {}", n + 1, bricks.join(", "));
        }
    }
}
