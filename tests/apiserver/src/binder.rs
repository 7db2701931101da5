//! The PV binder: a stand-in for the parts of kube-controller-manager that
//! aplo relies on (the PV controller's binding and phases, the provisioner
//! annotations, and the pv/pvc protection controllers).
//!
//! It follows the change broadcast and reacts to the changed object and its
//! related objects only (an index maps claims to the volumes that point at
//! them); it resyncs everything only if it falls behind the broadcast. Each
//! read-modify-write happens atomically under the store lock, through the
//! same write path as API requests, so every change gets a real
//! resourceVersion and watch event.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::App;
use crate::object::{annotation, finalizers, is_deleting, meta_mut, meta_str, set_path, str_at};
use crate::ops::mutate;
use crate::resources::{native, storage};
use crate::store::{Change, ChangeKind, Key, State};

const MANAGER: &str = "kube-controller-manager";
const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const PROVISIONER_KEYS: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Claim key → names of the volumes whose claimRef names it.
#[derive(Default)]
struct Index {
    volumes_of: HashMap<Key, BTreeSet<String>>,
    claim_of: HashMap<String, Key>,
}

impl Index {
    fn update(&mut self, pv: &Value, deleted: bool) {
        let name = meta_str(pv, "name").unwrap_or("").to_string();
        if let Some(old) = self.claim_of.remove(&name)
            && let Some(set) = self.volumes_of.get_mut(&old)
        {
            set.remove(&name);
            if set.is_empty() {
                self.volumes_of.remove(&old);
            }
        }
        if deleted {
            return;
        }
        if let Some(claim) = claim_ref(pv) {
            self.volumes_of
                .entry(claim.clone())
                .or_default()
                .insert(name.clone());
            self.claim_of.insert(name, claim);
        }
    }

    fn volumes(&self, claim: &Key) -> Vec<String> {
        self.volumes_of
            .get(claim)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn claim_ref(pv: &Value) -> Option<Key> {
    let ns = str_at(pv, "spec.claimRef.namespace")?;
    let name = str_at(pv, "spec.claimRef.name")?;
    Some((ns.to_string(), name.to_string()))
}

fn phase(obj: &Value) -> &str {
    str_at(obj, "status.phase").unwrap_or("")
}

/// Run until the broadcast closes (the server shuts down).
pub(crate) async fn run(app: Arc<App>) {
    let mut rx = app.store.lock().subscribe();
    let mut index = Index::default();
    resync(&app, &mut index);
    loop {
        match rx.recv().await {
            Ok(c) => on_change(&app, &mut index, &c),
            Err(broadcast::error::RecvError::Lagged(_)) => resync(&app, &mut index),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn resync(app: &App, index: &mut Index) {
    let mut s = app.store.lock();
    *index = Index::default();
    let pvs: Vec<Arc<Value>> = s
        .table(storage::PVS)
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default();
    for pv in &pvs {
        index.update(pv, false);
    }
    let claims: Vec<Key> = s
        .table(storage::PVCS)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    for claim in &claims {
        sync_claim(&mut s, claim);
    }
    for pv in &pvs {
        sync_volume(&mut s, meta_str(pv, "name").unwrap_or(""));
    }
}

fn on_change(app: &App, index: &mut Index, c: &Change) {
    match c.storage {
        storage::PVS => {
            index.update(&c.object, c.kind == ChangeKind::Deleted);
            if c.kind != ChangeKind::Deleted {
                sync_volume(
                    &mut app.store.lock(),
                    meta_str(&c.object, "name").unwrap_or(""),
                );
            }
        }
        storage::PVCS => {
            let claim = c.key();
            let mut s = app.store.lock();
            if c.kind != ChangeKind::Deleted {
                sync_claim(&mut s, &claim);
            }
            for pv in index.volumes(&claim) {
                sync_volume(&mut s, &pv);
            }
        }
        storage::STORAGE_CLASSES if c.kind != ChangeKind::Deleted => {
            let class = meta_str(&c.object, "name").unwrap_or("");
            let mut s = app.store.lock();
            let pending: Vec<Key> = s
                .table(storage::PVCS)
                .map(|t| {
                    t.iter()
                        .filter(|(_, v)| {
                            phase(v) == "Pending"
                                && str_at(v, "spec.storageClassName") == Some(class)
                        })
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            for claim in &pending {
                sync_claim(&mut s, claim);
            }
        }
        _ => {}
    }
}

fn remove_finalizer(obj: &mut Value, f: &str) {
    if let Some(list) = meta_mut(obj)
        .get_mut("finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|x| x.as_str() != Some(f));
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let list = meta_mut(obj)
        .entry("finalizers")
        .or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        list.push(json!(f));
    }
}

/// Protection finalizer and provisioner annotations for one claim.
fn sync_claim(s: &mut State, key: &Key) {
    let def = native(storage::PVCS);
    let Some(claim) = s.get(storage::PVCS, key).cloned() else {
        return;
    };
    let has_protection = finalizers(&claim).iter().any(|f| f == PVC_PROTECTION);
    if is_deleting(&claim) {
        // No pods exist here, so nothing uses the claim.
        if has_protection {
            mutate(s, def, key, false, MANAGER, |o| {
                remove_finalizer(o, PVC_PROTECTION)
            });
        }
        return;
    }
    if !has_protection && s.protect {
        mutate(s, def, key, false, MANAGER, |o| {
            add_finalizer(o, PVC_PROTECTION)
        });
    }
    let unbound =
        phase(&claim) == "Pending" && str_at(&claim, "spec.volumeName").is_none_or(str::is_empty);
    let Some(class_name) = str_at(&claim, "spec.storageClassName").filter(|c| !c.is_empty()) else {
        return;
    };
    if !unbound
        || PROVISIONER_KEYS
            .iter()
            .all(|k| annotation(&claim, k).is_some())
    {
        return;
    }
    let Some(class) = s.get(
        storage::STORAGE_CLASSES,
        &(String::new(), class_name.to_string()),
    ) else {
        return;
    };
    let Some(provisioner) = str_at(class, "provisioner")
        .filter(|p| !p.is_empty())
        .map(String::from)
    else {
        return;
    };
    let wffc = str_at(class, "volumeBindingMode") == Some("WaitForFirstConsumer");
    if wffc && annotation(&claim, SELECTED_NODE).is_none() {
        return;
    }
    mutate(s, def, key, false, MANAGER, |o| {
        for k in PROVISIONER_KEYS {
            if annotation(o, k).is_none() {
                set_path(o, &["metadata", "annotations", k], json!(provisioner));
            }
        }
    });
}

fn set_phase(s: &mut State, storage_key: &'static str, key: &Key, phase_now: &str, want: &str) {
    if phase_now != want {
        mutate(s, native(storage_key), key, true, MANAGER, |o| {
            set_path(o, &["status", "phase"], json!(want))
        });
    }
}

/// Protection finalizer, binding and phase for one volume.
fn sync_volume(s: &mut State, name: &str) {
    let def = native(storage::PVS);
    let key: Key = (String::new(), name.to_string());
    let Some(mut pv) = s.get(storage::PVS, &key).cloned() else {
        return;
    };
    let has_protection = finalizers(&pv).iter().any(|f| f == PV_PROTECTION);
    if is_deleting(&pv) {
        if has_protection && phase(&pv) != "Bound" {
            mutate(s, def, &key, false, MANAGER, |o| {
                remove_finalizer(o, PV_PROTECTION)
            });
        }
    } else if !has_protection && s.protect {
        match mutate(s, def, &key, false, MANAGER, |o| {
            add_finalizer(o, PV_PROTECTION)
        }) {
            Some(new) => pv = new,
            None => return,
        }
    }
    let Some(claim_key) = claim_ref(&pv) else {
        set_phase(s, storage::PVS, &key, phase(&pv), "Available");
        return;
    };
    if phase(&pv) == "Released" {
        return;
    }
    let ref_uid = str_at(&pv, "spec.claimRef.uid").unwrap_or("").to_string();
    let claim = s.get(storage::PVCS, &claim_key).cloned();
    let claim = match claim {
        Some(c) if ref_uid.is_empty() || meta_str(&c, "uid") == Some(ref_uid.as_str()) => c,
        Some(_) => return set_phase(s, storage::PVS, &key, phase(&pv), "Released"),
        None if ref_uid.is_empty() => {
            return set_phase(s, storage::PVS, &key, phase(&pv), "Available");
        }
        None => return set_phase(s, storage::PVS, &key, phase(&pv), "Released"),
    };
    if str_at(&claim, "spec.volumeName").is_some_and(|v| !v.is_empty() && v != name) {
        // The claim is bound to another volume; the real controller would
        // unbind this one. We leave it alone.
        return;
    }
    let claim_uid = meta_str(&claim, "uid").unwrap_or("").to_string();
    if ref_uid.is_empty() {
        mutate(s, def, &key, false, MANAGER, |o| {
            set_path(o, &["spec", "claimRef", "uid"], json!(claim_uid))
        });
    }
    set_phase(s, storage::PVS, &key, phase(&pv), "Bound");
    let claims = native(storage::PVCS);
    let volume = name.to_string();
    mutate(s, claims, &claim_key, false, MANAGER, |o| {
        if str_at(o, "spec.volumeName").is_none_or(str::is_empty) {
            set_path(o, &["spec", "volumeName"], json!(volume));
        }
        for k in [
            "pv.kubernetes.io/bind-completed",
            "pv.kubernetes.io/bound-by-controller",
        ] {
            if annotation(o, k).is_none() {
                set_path(o, &["metadata", "annotations", k], json!("yes"));
            }
        }
    });
    if phase(&claim) != "Bound" {
        let capacity = pv.pointer("/spec/capacity").cloned().unwrap_or(json!({}));
        let modes = pv
            .pointer("/spec/accessModes")
            .cloned()
            .unwrap_or(json!([]));
        mutate(s, claims, &claim_key, true, MANAGER, |o| {
            set_path(o, &["status", "phase"], json!("Bound"));
            set_path(o, &["status", "capacity"], capacity);
            set_path(o, &["status", "accessModes"], modes);
        });
    }
}
