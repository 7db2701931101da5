//! One event storage, two views: objects are stored in the
//! `events.k8s.io/v1` shape and presented as `core/v1` events on demand,
//! with the field mapping the real API server uses, so that events posted
//! by `kube::runtime::events::Recorder` show up in `kubectl describe`.
//!
//! | events.k8s.io/v1            | core/v1                                        |
//! |-----------------------------|------------------------------------------------|
//! | regarding                   | involvedObject                                 |
//! | note                        | message                                        |
//! | reportingController         | reportingComponent (and `source.component` if no source) |
//! | deprecatedSource            | source                                         |
//! | deprecatedFirstTimestamp    | firstTimestamp (else eventTime)                |
//! | deprecatedLastTimestamp     | lastTimestamp (else series.lastObservedTime, else eventTime) |
//! | deprecatedCount             | count (else series.count, else 1)              |
//! | reason, type, action, related, eventTime, series, reportingInstance | same |

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::object::truncate_to_seconds;
use crate::resources::{ResourceDef, View};

/// (events.k8s.io/v1 field, core/v1 field) pairs renamed one to one.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(from: &Map<String, Value>, to_core: bool) -> Map<String, Value> {
    from.iter()
        .map(|(k, v)| {
            let renamed = RENAMED.iter().find_map(|(ev, core)| {
                let (a, b) = if to_core { (ev, core) } else { (core, ev) };
                (k == a).then_some(*b)
            });
            (renamed.unwrap_or(k).to_string(), v.clone())
        })
        .collect()
}

/// A stored `events.k8s.io/v1` event as a `core/v1` event.
fn to_core(stored: &Value) -> Value {
    let Some(map) = stored.as_object() else {
        return stored.clone();
    };
    let mut core = rename(map, true);
    let event_time = map
        .get("eventTime")
        .and_then(Value::as_str)
        .map(truncate_to_seconds);
    if !core.contains_key("source")
        && let Some(rc) = map.get("reportingController")
    {
        core.insert("source".into(), json!({ "component": rc }));
    }
    if !core.contains_key("firstTimestamp")
        && let Some(t) = &event_time
    {
        core.insert("firstTimestamp".into(), json!(t));
    }
    if !core.contains_key("lastTimestamp") {
        let last = map
            .get("series")
            .and_then(|s| s.get("lastObservedTime"))
            .and_then(Value::as_str)
            .map(truncate_to_seconds)
            .or(event_time);
        if let Some(t) = last {
            core.insert("lastTimestamp".into(), json!(t));
        }
    }
    if !core.contains_key("count") {
        let count = map
            .get("series")
            .and_then(|s| s.get("count"))
            .cloned()
            .unwrap_or(json!(1));
        core.insert("count".into(), count);
    }
    Value::Object(core)
}

/// `stored` as served by `def`.
pub(crate) fn to_view<'a>(def: &ResourceDef, stored: &'a Value) -> Cow<'a, Value> {
    match def.view {
        View::Native => Cow::Borrowed(stored),
        View::CoreEvent => Cow::Owned(to_core(stored)),
    }
}

/// An object written through `def` in the stored shape.
pub(crate) fn from_view(def: &ResourceDef, obj: Value) -> Value {
    match (def.view, obj) {
        (View::CoreEvent, Value::Object(map)) => Value::Object(rename(&map, false)),
        (_, obj) => obj,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_v1_reads_as_core_with_series_count() {
        let stored = json!({
            "metadata": {"name": "e"},
            "regarding": {"kind": "PersistentVolumeClaim", "name": "c"},
            "note": "provisioned",
            "reportingController": "aplo",
            "eventTime": "2025-01-01T00:00:00.123456Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000001Z"},
        });
        let core = to_core(&stored);
        assert_eq!(core["involvedObject"]["name"], "c");
        assert_eq!(core["message"], "provisioned");
        assert_eq!(core["source"]["component"], "aplo");
        assert_eq!(core["reportingComponent"], "aplo");
        assert_eq!(core["firstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(core["lastTimestamp"], "2025-01-01T00:01:00Z");
        assert_eq!(core["count"], 2);
    }

    #[test]
    fn core_writes_store_as_events_v1() {
        let core = json!({"involvedObject": {"name": "c"}, "message": "m", "count": 3, "source": {"component": "x"}});
        let def = crate::resources::find("", "v1", "events").unwrap();
        let stored = from_view(def, core);
        assert_eq!(
            stored,
            json!({"regarding": {"name": "c"}, "note": "m", "deprecatedCount": 3, "deprecatedSource": {"component": "x"}})
        );
    }
}
