//! What the volumes of a namespace and of the whole store hold, as the
//! quota policy sees it.

use crate::model::storage::{Snapshot, VolumeRecord};
use crate::model::{Id, Usage};

/// What the volumes of a namespace and of the whole store hold, for the
/// quota policy.
pub fn usage(snapshot: &Snapshot, namespace: &str) -> (Usage, Usage) {
    usage_without(snapshot, namespace, None)
}

/// [`usage`], leaving out the volume of the claim `except` of `namespace`
/// (the admission webhook checks a claim's new total against the rest).
pub fn usage_without(snapshot: &Snapshot, namespace: &str, except: Option<&str>) -> (Usage, Usage) {
    usage_where(snapshot, namespace, |v| {
        except.is_none_or(|name| {
            v.claim
                .as_ref()
                .is_none_or(|c| c.namespace != namespace || c.name != name)
        })
    })
}

/// [`usage`], leaving out the volume `except` (the one an expansion grows).
pub fn usage_except_volume(
    snapshot: &Snapshot,
    namespace: &str,
    except: Option<Id>,
) -> (Usage, Usage) {
    usage_where(snapshot, namespace, |v| Some(v.id) != except)
}

fn usage_where(
    snapshot: &Snapshot,
    namespace: &str,
    counted: impl Fn(&VolumeRecord) -> bool,
) -> (Usage, Usage) {
    let mut namespace_usage = Usage::default();
    let mut cluster_usage = Usage::default();
    for volume in snapshot.volumes.values().filter(|v| counted(v)) {
        cluster_usage.bytes = cluster_usage.bytes.saturating_add(volume.bytes);
        cluster_usage.volumes += 1;
        if volume
            .claim
            .as_ref()
            .is_some_and(|c| c.namespace == namespace)
        {
            namespace_usage.bytes = namespace_usage.bytes.saturating_add(volume.bytes);
            namespace_usage.volumes += 1;
        }
    }
    (namespace_usage, cluster_usage)
}
