//! list and deletecollection: selectors, resourceVersion semantics and
//! consistent paging with continue tokens.
//!
//! A page is cut from the table *as of* the list's resourceVersion (rebuilt
//! from the history), so paging is consistent until the history no longer
//! covers that version; then the continue token is answered with 410.

use std::ops::Bound;
use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::events::to_view;
use crate::http::{Query, Target, json_response, write_typed};
use crate::ops::{self, Addr, Deleted};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Key, Table};

/// Label, field and namespace filters of a list or watch.
pub(crate) struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// The filter of a request.
    pub fn new(t: &Target, query: &Query) -> ApiResult<Filter> {
        Ok(Filter {
            namespace: t.namespace.clone(),
            labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?,
        })
    }

    /// Whether a stored object is selected.
    pub fn matches(&self, t: &Target, stored: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && stored
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                != Some(ns.as_str())
        {
            return false;
        }
        if !self.labels.matches(stored) {
            return false;
        }
        self.fields.is_empty() || self.fields.matches(&to_view(t.def, stored))
    }

    fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An opaque continue token: the list's resourceVersion and the last key.
fn encode_continue(rv: u64, key: &Key) -> String {
    hex(json!([rv, key.0, key.1]).to_string().as_bytes())
}

fn decode_continue(token: &str) -> ApiResult<(u64, Key)> {
    let bad = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    };
    let bytes = unhex(token).ok_or_else(bad)?;
    let (rv, ns, name): (u64, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((rv, (ns, name)))
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn parse_rv(s: &str) -> ApiResult<u64> {
    s.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "resourceVersion: Invalid value: \"{s}\": must be a non-negative integer"
        ))
    })
}

/// One page of a list.
struct Page {
    rv: u64,
    items: Vec<Arc<Value>>,
    next: Option<String>,
    remaining: Option<usize>,
}

fn select(app: &App, t: &Target, query: &Query, filter: &Filter) -> ApiResult<Page> {
    let s = app.store.lock();
    let limit = match query.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let (rv, start) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, key) = decode_continue(token)?;
            if rv < s.floor {
                return Err(ApiError::Expired(CONTINUE_EXPIRED.into()));
            }
            (rv, Some(key))
        }
        None => {
            let requested = query.get("resourceVersion").filter(|v| !v.is_empty());
            match (requested, query.get("resourceVersionMatch")) {
                (Some(v), Some("Exact")) => (parse_rv(v)?, None),
                (None, Some(m)) => {
                    return Err(ApiError::BadRequest(format!(
                        "resourceVersionMatch: Forbidden: resourceVersionMatch \"{m}\" is forbidden unless resourceVersion is provided"
                    )));
                }
                (Some(v), _) => {
                    let v = parse_rv(v)?;
                    if v > s.rv {
                        return Err(ApiError::TooLargeResourceVersion {
                            requested: v,
                            current: s.rv,
                        });
                    }
                    (s.rv, None)
                }
                (None, None) => (s.rv, None),
            }
        }
    };
    let snapshot: Option<Table> = if rv == s.rv {
        None
    } else {
        Some(s.snapshot(t.def.storage, rv)?)
    };
    let empty = Table::new();
    let table = snapshot
        .as_ref()
        .or_else(|| s.table(t.def.storage))
        .unwrap_or(&empty);
    let ns_start = (filter.namespace.clone().unwrap_or_default(), String::new());
    let lower = match &start {
        Some(k) => Bound::Excluded(k),
        None if filter.namespace.is_some() => Bound::Included(&ns_start),
        None => Bound::Unbounded,
    };
    let mut iter = table
        .range::<Key, _>((lower, Bound::Unbounded))
        .take_while(|(k, _)| filter.namespace.as_ref().is_none_or(|ns| &k.0 == ns))
        .filter(|(_, v)| filter.matches(t, v));
    let mut items = Vec::new();
    let mut last = None;
    for (k, v) in iter.by_ref() {
        items.push(v.clone());
        last = Some(k);
        if limit > 0 && items.len() == limit {
            break;
        }
    }
    let remaining = iter.count();
    let next =
        (remaining > 0).then(|| encode_continue(rv, last.expect("a full page has a last key")));
    Ok(Page {
        rv,
        items,
        next,
        remaining: (remaining > 0 && !filter.has_selectors()).then_some(remaining),
    })
}

/// `GET` on a collection.
pub(crate) fn serve(app: &App, t: &Target, query: &Query) -> ApiResult<Response> {
    let filter = Filter::new(t, query)?;
    let page = select(app, t, query, &filter)?;
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = page.next {
        meta["continue"] = json!(next);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    let mut out = Vec::with_capacity(256 + page.items.len() * 1024);
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
            t.def.list_kind, t.def.api_version
        )
        .as_bytes(),
    );
    serde_json::to_writer(&mut out, &meta).expect("json");
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Items carry no apiVersion/kind, as from the real server.
        serde_json::to_writer(&mut out, &*to_view(t.def, item)).expect("json");
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(200, out))
}

/// `DELETE` on a collection: delete every selected object; answers the
/// list of what was deleted (or marked for deletion).
pub(crate) fn delete_collection(
    app: &App,
    t: &Target,
    query: &Query,
    dry_run: bool,
) -> ApiResult<Response> {
    let filter = Filter::new(t, query)?;
    let mut s = app.store.lock();
    let names: Vec<Key> = s
        .table(t.def.storage)
        .map(|tb| {
            tb.iter()
                .filter(|(_, v)| filter.matches(t, v))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut deleted = Vec::new();
    for (ns, name) in names {
        let ns = (!ns.is_empty()).then_some(ns);
        let at = Addr {
            def: t.def,
            ns: ns.as_deref(),
            name: &name,
            status: false,
        };
        match ops::delete(&mut s, at, &json!({}), dry_run)? {
            Deleted::Gone(o) | Deleted::Pending(o) => deleted.push(o),
        }
    }
    let rv = s.rv;
    drop(s);
    let mut out = format!("{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{rv}\"}},\"items\":[", t.def.list_kind, t.def.api_version).into_bytes();
    for (i, o) in deleted.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_typed(&mut out, t.def, o);
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(200, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("ns".to_string(), "a/b".to_string());
        let token = encode_continue(42, &key);
        assert_eq!(decode_continue(&token).unwrap(), (42, key));
        assert_eq!(decode_continue("zz").unwrap_err().code(), 400);
    }
}
