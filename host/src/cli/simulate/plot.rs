//! `aplo simulate --plot FILE`: utilisation as an SVG bar chart, one bar
//! per zone, node, device (and tag value with `--by-tag`), each side of
//! the run (aplo, and heketi with `--compare-heketi`) in a column of its
//! own. Plain SVG text, no dependency.

use std::fmt::Write;

use crate::model::format_size;
use crate::plan::simulate::Report;

/// Height of a row.
const ROW: f64 = 20.0;
/// Width of a full bar (100 %).
const BAR: f64 = 240.0;
/// Width of a side's column: its bar and the percentage after it.
const COLUMN: f64 = BAR + 80.0;
/// Space around the chart.
const MARGIN: f64 = 10.0;
/// Width of a character of the labels, roughly.
const CHAR: f64 = 7.0;

/// One bar: what it is, used and total bytes.
struct Row {
    name: String,
    used: u64,
    total: u64,
}

/// One group of bars: `section` is the machine name (`zone`, `node`,
/// `device`, `tag`), `title` what the reader sees.
struct Section {
    section: &'static str,
    title: String,
    /// Per side, its rows.
    sides: Vec<Vec<Row>>,
}

fn sections(sides: &[(&str, &Report)]) -> Vec<Section> {
    let rows = |map: &std::collections::BTreeMap<String, crate::plan::simulate::Used>| {
        map.iter()
            .map(|(name, u)| Row {
                name: name.clone(),
                used: u.used,
                total: u.total,
            })
            .collect::<Vec<Row>>()
    };
    let mut out = vec![
        Section {
            section: "zone",
            title: "per zone".into(),
            sides: sides.iter().map(|(_, r)| rows(&r.zones)).collect(),
        },
        Section {
            section: "node",
            title: "per node".into(),
            sides: sides.iter().map(|(_, r)| rows(&r.nodes)).collect(),
        },
        Section {
            section: "device",
            title: "per device".into(),
            sides: sides.iter().map(|(_, r)| rows(&r.devices)).collect(),
        },
    ];
    if let Some(first) = sides.first().and_then(|(_, r)| r.by_tag.as_ref()) {
        out.push(Section {
            section: "tag",
            title: format!("per {} (tag)", first.key),
            sides: sides
                .iter()
                .map(|(_, r)| {
                    r.by_tag
                        .iter()
                        .flat_map(|t| &t.values)
                        .map(|(value, u)| Row {
                            name: value.clone(),
                            used: u.used,
                            total: u.total,
                        })
                        .collect()
                })
                .collect(),
        });
    }
    out
}

/// The chart of `sides` (a title and its report each), as SVG text.
pub(super) fn svg(sides: &[(&str, &Report)]) -> String {
    let sections = sections(sides);
    let longest = sections
        .iter()
        .flat_map(|s| s.sides.iter().flatten())
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let label_width = (longest as f64 * CHAR + MARGIN).max(120.0);
    let rows: usize = sections
        .iter()
        .map(|s| 1 + s.sides.iter().map(Vec::len).max().unwrap_or(0))
        .sum();
    let width = 2.0 * MARGIN + label_width + sides.len() as f64 * COLUMN;
    let height = 2.0 * MARGIN + (rows + 2) as f64 * ROW;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
    );
    let mut y = MARGIN + ROW;
    let _ = writeln!(
        out,
        r#"<text x="{MARGIN}" y="{y:.1}" font-weight="bold" font-size="14">aplo simulate: used share of capacity</text>"#
    );
    y += ROW;
    for (i, (title, _)) in sides.iter().enumerate() {
        let x = MARGIN + label_width + i as f64 * COLUMN;
        let _ = writeln!(
            out,
            r#"<text class="side" x="{x:.1}" y="{y:.1}" font-weight="bold">{}</text>"#,
            escape(title)
        );
    }
    for section in &sections {
        y += ROW;
        let _ = writeln!(
            out,
            r#"<text class="section" x="{MARGIN}" y="{y:.1}" font-weight="bold">{}</text>"#,
            escape(&section.title)
        );
        let count = section.sides.iter().map(Vec::len).max().unwrap_or(0);
        for n in 0..count {
            let top = y + 4.0 + n as f64 * ROW;
            let base = top + ROW - 6.0;
            if let Some(row) = section.sides.iter().find_map(|s| s.get(n)) {
                let _ = writeln!(
                    out,
                    r#"<text class="label" x="{MARGIN}" y="{base:.1}">{}</text>"#,
                    escape(&row.name)
                );
            }
            for (i, (side, rows)) in sides.iter().zip(&section.sides).enumerate() {
                let Some(row) = rows.get(n) else { continue };
                let x = MARGIN + label_width + i as f64 * COLUMN;
                let share = if row.total == 0 {
                    0.0
                } else {
                    row.used as f64 / row.total as f64
                };
                let percent = share * 100.0;
                let filled = BAR * share.clamp(0.0, 1.0);
                let _ = writeln!(
                    out,
                    r##"<rect class="track" x="{x:.1}" y="{top:.1}" width="{BAR}" height="{h:.1}" fill="#eeeeee"/>"##,
                    h = ROW - 6.0
                );
                let _ = writeln!(
                    out,
                    r#"<rect class="bar" data-section="{}" data-side="{}" data-name="{}" x="{x:.1}" y="{top:.1}" width="{filled:.1}" height="{h:.1}" fill="{}"><title>{}: {}: {} of {} ({percent:.1} %)</title></rect>"#,
                    section.section,
                    escape(side.0),
                    escape(&row.name),
                    colour(share),
                    escape(side.0),
                    escape(&row.name),
                    format_size(row.used),
                    format_size(row.total),
                    h = ROW - 6.0
                );
                let _ = writeln!(
                    out,
                    r#"<text class="percent" x="{:.1}" y="{base:.1}">{percent:.1} %</text>"#,
                    x + BAR + 6.0
                );
            }
        }
        y += count as f64 * ROW;
    }
    out.push_str("</svg>\n");
    out
}

/// Green below 70 %, amber below 90 %, red above.
fn colour(share: f64) -> &'static str {
    if share < 0.7 {
        "#4c9a2a"
    } else if share < 0.9 {
        "#e0a000"
    } else {
        "#c8382c"
    }
}

/// Text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GIB;
    use crate::model::testing::topology;

    fn report() -> Report {
        let mut t = topology()
            .zones(3)
            .nodes_per_zone(2)
            .devices_per_node(2)
            .total(10 * GIB)
            .free(4 * GIB)
            .build();
        t.clusters[0].nodes[0]
            .tags
            .insert("rack".into(), "r<1>&".into());
        let mut report = Report::of(1);
        report.measure(&t, &|id| format!("dev-{id}"));
        report.measure_tag(&t, "rack");
        report
    }

    fn bars<'a>(
        doc: &'a roxmltree::Document<'a>,
        section: &str,
        side: &str,
    ) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| {
                n.attribute("class") == Some("bar")
                    && n.attribute("data-section") == Some(section)
                    && n.attribute("data-side") == Some(side)
            })
            .collect()
    }

    #[test]
    fn the_chart_parses_with_one_labelled_bar_per_zone_node_device_and_tag() {
        let report = report();
        let text = svg(&[("aplo", &report)]);
        let doc = roxmltree::Document::parse(&text).expect("valid XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert_eq!(bars(&doc, "zone", "aplo").len(), 3);
        assert_eq!(bars(&doc, "node", "aplo").len(), 6);
        assert_eq!(bars(&doc, "device", "aplo").len(), 12);
        assert_eq!(bars(&doc, "tag", "aplo").len(), 2, "r<1>& and (none)");
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        for name in report
            .zones
            .keys()
            .chain(report.nodes.keys())
            .chain(report.devices.keys())
        {
            assert!(texts.contains(&name.as_str()), "no label {name}");
        }
        assert!(texts.contains(&"r<1>&"), "labels are escaped, not lost");
        assert!(texts.contains(&"60.0 %"), "{texts:?}");
        assert!(texts.contains(&"per rack (tag)"));
        let bar = &bars(&doc, "node", "aplo")[0];
        assert_eq!(bar.attribute("width"), Some("144.0"), "60 % of 240");
    }

    #[test]
    fn heketi_is_a_column_beside_aplo() {
        let aplo = report();
        let mut heketi = aplo.clone();
        heketi.nodes.values_mut().for_each(|u| u.used = 0);
        let text = svg(&[("aplo", &aplo), ("heketi", &heketi)]);
        let doc = roxmltree::Document::parse(&text).expect("valid XML");
        for section in ["zone", "node", "device", "tag"] {
            assert_eq!(
                bars(&doc, section, "aplo").len(),
                bars(&doc, section, "heketi").len(),
                "{section}"
            );
        }
        let x = |side: &str| {
            bars(&doc, "node", side)[0]
                .attribute("x")
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        assert!(x("heketi") > x("aplo") + BAR, "side by side");
        assert_eq!(
            bars(&doc, "node", "heketi")[0].attribute("width"),
            Some("0.0")
        );
        let sides: Vec<&str> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("side"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(sides, ["aplo", "heketi"]);
    }
}
