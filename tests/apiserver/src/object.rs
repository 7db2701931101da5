//! Object helpers: metadata access, timestamps, uids, name validation and
//! the defaults the real API server applies.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// `obj.metadata` as a map, created if absent.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("object");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("object")
}

/// A string field of `obj.metadata`.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The value at a dotted path, e.g. `spec.claimRef.name`.
pub(crate) fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

/// The string at a dotted path.
pub(crate) fn str_at<'a>(obj: &'a Value, path: &str) -> Option<&'a str> {
    at(obj, path)?.as_str()
}

/// The object's finalizers.
pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// An annotation's value.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// Set `obj[path...] = value`, creating objects along the way.
pub(crate) fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for key in &path[..path.len() - 1] {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .expect("object")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    cur.as_object_mut()
        .expect("object")
        .insert(path[path.len() - 1].to_string(), value);
}

/// Set `obj[path...] = value` unless something is already there.
fn default_path(obj: &mut Value, path: &[&str], value: Value) {
    let present = path
        .iter()
        .try_fold(&*obj, |v, k| v.get(k))
        .is_some_and(|v| !v.is_null());
    if !present {
        set_path(obj, path, value);
    }
}

/// Seconds and nanoseconds since the epoch.
fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn format_time(secs: u64, micros: Option<u32>) -> String {
    let (y, mo, d) = civil((secs / 86_400) as i64);
    let s = secs % 86_400;
    let base = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    match micros {
        Some(us) => format!("{base}.{us:06}Z"),
        None => format!("{base}Z"),
    }
}

/// Now as RFC 3339 with seconds (`metav1.Time`).
pub(crate) fn timestamp() -> String {
    format_time(now().0, None)
}

/// A `metav1.MicroTime` string truncated to a `metav1.Time`.
pub(crate) fn truncate_to_seconds(micro: &str) -> String {
    match micro.find('.') {
        Some(dot) => format!("{}Z", &micro[..dot]),
        None => micro.to_string(),
    }
}

static RANDOM: std::sync::LazyLock<RandomState> = std::sync::LazyLock::new(RandomState::new);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 random bits (SipHash with a per-process random key over a counter).
fn random_u64() -> u64 {
    let mut h = RANDOM.build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random version-4-shaped UUID.
pub(crate) fn uid() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Five characters for `generateName`, from the real server's alphabet.
pub(crate) fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Why `name` is not a DNS-1123 subdomain, if it is not.
pub(crate) fn invalid_name(name: &str) -> Option<String> {
    const MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        None
    } else {
        Some(MSG.into())
    }
}

/// Defaults the real API server fills in on every write of `kind`.
pub(crate) fn apply_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "PersistentVolumeClaim" => {
            default_path(obj, &["spec", "volumeMode"], json!("Filesystem"));
        }
        "PersistentVolume" => {
            default_path(
                obj,
                &["spec", "persistentVolumeReclaimPolicy"],
                json!("Retain"),
            );
            default_path(obj, &["spec", "volumeMode"], json!("Filesystem"));
        }
        "StorageClass" => {
            default_path(obj, &["reclaimPolicy"], json!("Delete"));
            default_path(obj, &["volumeBindingMode"], json!("Immediate"));
        }
        "Namespace" => {
            default_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            default_path(obj, &["status", "phase"], json!("Active"));
        }
        _ => {}
    }
}

/// What the real server's create strategies do to `status` on create.
pub(crate) fn reset_status_on_create(kind: &str, obj: &mut Value) {
    let phase = match kind {
        "PersistentVolumeClaim" | "PersistentVolume" | "Pod" => "Pending",
        _ => return,
    };
    if let Some(map) = obj.as_object_mut() {
        map.insert("status".into(), json!({ "phase": phase }));
    }
}

/// `obj` without `metadata` and `status`: what `generation` tracks.
pub(crate) fn same_spec(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skip = |k: &str| k == "metadata" || k == "status";
    let count = |m: &Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
    count(a) == count(b)
        && a.iter()
            .filter(|(k, _)| !skip(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_time(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(
            format_time(1_700_000_000, Some(5)),
            "2023-11-14T22:13:20.000005Z"
        );
        assert_eq!(
            truncate_to_seconds("2023-11-14T22:13:20.000005Z"),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn uids_are_uuid_shaped_and_distinct() {
        let (a, b) = (uid(), uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn validates_subdomain_names() {
        assert!(invalid_name("data-1.example").is_none());
        assert!(invalid_name("Data").is_some());
        assert!(invalid_name("-a").is_some());
        assert!(invalid_name("a..b").is_some());
        assert!(invalid_name("").is_some());
    }

    #[test]
    fn spec_comparison_ignores_metadata_and_status() {
        let a = json!({"metadata": {"x": 1}, "spec": {"a": 1}, "status": {"p": 1}});
        let b = json!({"metadata": {"x": 2}, "spec": {"a": 1}, "status": {"p": 2}});
        let c = json!({"metadata": {"x": 2}, "spec": {"a": 2}});
        assert!(same_spec(&a, &b));
        assert!(!same_spec(&a, &c));
    }
}
