//! The registry: policies by name, from the bundled defaults and a policy
//! directory (`<name>.wasm` files), reloaded when files change.
//!
//! A reload that fails to compile or link keeps the previous version active
//! and logs the error. A file of the same name as a bundled policy shadows
//! it; removing the file brings the bundled one back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use super::bundled::BUNDLED;
use super::error::{PolicyError, Refusal};
use super::runtime::{Limits, LoadedPolicy, Runtime};
use super::set::{Bound, PolicySet};
use crate::model::{Decision, Pairs, PolicyName, PolicySelection};

/// How the registry is set up.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// The policy directory, if any.
    pub dir: Option<PathBuf>,
    /// Limits for policies not named in `limits`.
    pub default_limits: Limits,
    /// Limits per policy name.
    pub limits: BTreeMap<String, Limits>,
}

/// One policy as the registry knows it.
#[derive(Clone)]
struct Entry {
    policy: Arc<LoadedPolicy>,
    /// For directory files: the stamp last seen, to skip unchanged files.
    stamp: Option<Stamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    sha256: [u8; 32],
}

/// What a rescan did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new or changed file was loaded.
    Loaded {
        /// The policy.
        name: String,
        /// The module's sha256.
        sha256: String,
    },
    /// A file failed to load; the previous version (if any) stays active.
    Rejected {
        /// The policy (or file) name.
        name: String,
        /// Why.
        error: String,
    },
    /// A file disappeared; the bundled policy of that name, if any, is back.
    Removed {
        /// The policy.
        name: String,
    },
}

/// Summary of a policy, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicySummary {
    /// Name.
    pub name: String,
    /// `bundled` or the file's path.
    pub origin: String,
    /// Module sha256.
    pub sha256: String,
    /// Decisions made.
    pub decisions: Vec<Decision>,
    /// What the policy says about itself.
    pub info: crate::model::Info,
}

/// Policies by name.
pub struct Registry {
    runtime: Arc<Runtime>,
    config: RegistryConfig,
    dir: Option<Dir>,
    bundled: BTreeMap<String, Arc<LoadedPolicy>>,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Settings already accepted, by (module sha256, settings).
    accepted: Mutex<HashSet<([u8; 32], Pairs)>>,
    /// Files that failed to load, by stamp, so they are not retried until
    /// they change.
    rejected: Mutex<HashMap<String, Stamp>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Registry {
    /// Load the bundled policies and every policy in the directory. A broken
    /// file in the directory is logged and skipped, not fatal; a broken
    /// bundled policy is (it is part of aplo).
    pub fn open(runtime: Arc<Runtime>, config: RegistryConfig) -> Result<Registry, PolicyError> {
        let mut bundled = BTreeMap::new();
        for (name, wasm) in BUNDLED {
            let limits = config
                .limits
                .get(*name)
                .copied()
                .unwrap_or(config.default_limits);
            bundled.insert(
                name.to_string(),
                Arc::new(runtime.load(name, "bundled", wasm, limits)?),
            );
        }
        let dir = match &config.dir {
            Some(path) => Some(Dir::open_ambient_dir(path, ambient_authority()).map_err(
                |source| PolicyError::Io {
                    path: path.display().to_string(),
                    source,
                },
            )?),
            None => None,
        };
        let entries = bundled
            .iter()
            .map(|(n, p)| {
                (
                    n.clone(),
                    Entry {
                        policy: p.clone(),
                        stamp: None,
                    },
                )
            })
            .collect();
        let registry = Registry {
            runtime,
            config,
            dir,
            bundled,
            entries: RwLock::new(entries),
            accepted: Mutex::new(HashSet::new()),
            rejected: Mutex::new(HashMap::new()),
            generation: Default::default(),
        };
        // Logs what it loads and rejects (once: not again here).
        registry.rescan();
        Ok(registry)
    }

    /// The runtime policies run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Increases by one with every change to the set of active policies.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedPolicy>, PolicyError> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(name)
            .map(|e| e.policy.clone())
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_owned(),
                available: entries.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Every active policy.
    pub fn list(&self) -> Vec<PolicySummary> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .map(|e| PolicySummary {
                name: e.policy.name().to_owned(),
                origin: e.policy.origin().to_owned(),
                sha256: e.policy.sha256(),
                decisions: e.policy.decisions(),
                info: e.policy.info().clone(),
            })
            .collect()
    }

    /// Resolve StorageClass parameters into the policies that decide for it,
    /// checking that each makes its decision and accepts its settings.
    pub fn resolve(&self, parameters: &Pairs) -> Result<PolicySet, PolicyError> {
        let selection = PolicySelection::from_parameters(parameters)?;
        let bind = |decision: Decision, name: &PolicyName| -> Result<Bound, PolicyError> {
            let policy = self.get(name.as_str())?;
            if !policy.makes(decision) {
                return Err(PolicyError::NotExported {
                    policy: name.to_string(),
                    decision,
                    exports: policy
                        .decisions()
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let settings = selection.settings_for(name);
            self.accept_settings(&policy, &settings)?;
            Ok(Bound { policy, settings })
        };
        Ok(PolicySet {
            durability: bind(Decision::Durability, &selection.durability)?,
            placement: bind(Decision::Placement, &selection.placement)?,
            quota: selection
                .quota
                .as_ref()
                .map(|name| bind(Decision::Quota, name))
                .transpose()?,
            host: selection.host.clone(),
        })
    }

    /// Ask the policy to validate settings, remembering accepted ones.
    fn accept_settings(&self, policy: &LoadedPolicy, settings: &Pairs) -> Result<(), PolicyError> {
        let key = (policy.sha256_bytes(), settings.clone());
        if self
            .accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(());
        }
        match policy.validate(settings)? {
            Ok(()) => {
                self.accepted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key);
                Ok(())
            }
            Err(Refusal(message)) => Err(PolicyError::Settings {
                policy: policy.name().to_owned(),
                message: crate::model::validate::clean_reason(&message),
            }),
        }
    }

    /// Look at the policy directory again: load new and changed `.wasm`
    /// files, drop removed ones. Unchanged files (same size and mtime) are
    /// not read.
    pub fn rescan(&self) -> Vec<ReloadEvent> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let mut seen = Vec::new();
        let listing = match dir.entries() {
            Ok(listing) => listing,
            Err(err) => {
                return vec![ReloadEvent::Rejected {
                    name: "<policy directory>".into(),
                    error: err.to_string(),
                }];
            }
        };
        for item in listing.flatten() {
            let file_name = item.file_name().to_string_lossy().into_owned();
            let Some(stem) = file_name.strip_suffix(".wasm") else {
                continue;
            };
            if let Err(err) = PolicyName::new(stem) {
                events.push(ReloadEvent::Rejected {
                    name: file_name.escape_debug().to_string(),
                    error: with_file_name_hint(stem, &err),
                });
                continue;
            }
            seen.push(stem.to_owned());
            if let Some(event) = self.reload_file(dir, stem, &file_name) {
                events.push(event);
            }
        }
        let removed: Vec<String> = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            entries
                .iter()
                .filter(|(n, e)| e.stamp.is_some() && !seen.contains(n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in removed {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            match self.bundled.get(&name) {
                Some(policy) => entries.insert(
                    name.clone(),
                    Entry {
                        policy: policy.clone(),
                        stamp: None,
                    },
                ),
                None => entries.remove(&name),
            };
            self.generation.fetch_add(1, Ordering::SeqCst);
            events.push(ReloadEvent::Removed { name });
        }
        for event in &events {
            match event {
                ReloadEvent::Loaded { name, sha256 } => {
                    tracing::info!(policy = %name, %sha256, "policy loaded")
                }
                ReloadEvent::Rejected { name, error } => {
                    let active = self.still_active(name);
                    tracing::error!(policy = %name, %error, "policy file rejected; {active}")
                }
                ReloadEvent::Removed { name } => {
                    tracing::info!(policy = %name, "policy file removed")
                }
            }
        }
        events
    }

    /// What stays active when the file of policy `name` is rejected: an
    /// earlier version from the directory, the bundled policy of that
    /// name, or nothing.
    fn still_active(&self, name: &str) -> String {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        match entries.get(name) {
            Some(entry) if entry.stamp.is_some() => "the previous version stays active".into(),
            Some(_) => format!("the bundled {name} stays active"),
            None => "no previous version: no policy of that name is active".into(),
        }
    }

    fn reload_file(&self, dir: &Dir, name: &str, file_name: &str) -> Option<ReloadEvent> {
        let known = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .and_then(|e| e.stamp);
        let rejected = |error: String| {
            Some(ReloadEvent::Rejected {
                name: name.to_owned(),
                error,
            })
        };
        // A first look, by path, only to skip files that have not changed:
        // `stat` does not open the file, so it never blocks.
        let meta = match dir.metadata(file_name) {
            Ok(meta) => meta,
            Err(err) => return rejected(format!("{file_name}: {err}")),
        };
        let modified = meta.modified().ok().map(|t| t.into_std());
        let unchanged = |stamp: &Stamp| stamp.len == meta.len() && stamp.modified == modified;
        if known.as_ref().is_some_and(unchanged)
            || self
                .rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .is_some_and(unchanged)
        {
            return None;
        }
        // Opened without blocking; type, size and magic number checked on
        // the opened file before it is read (see `file`).
        let file = match super::file::read_in(dir, file_name, file_name) {
            Ok(file) => file,
            Err(err) => {
                if err.is_refusal() {
                    // Not looked at again until it changes.
                    self.rejected
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(
                            name.to_owned(),
                            Stamp {
                                len: meta.len(),
                                modified,
                                sha256: [0; 32],
                            },
                        );
                }
                return rejected(err.to_string());
            }
        };
        let wasm = file.bytes;
        let sha256: [u8; 32] = Sha256::digest(&wasm).into();
        // The stamp of what was read: the descriptor's, not the path's.
        let stamp = Stamp {
            len: file.metadata.len(),
            modified: file.metadata.modified().ok(),
            sha256,
        };
        if known.is_some_and(|k| k.sha256 == sha256) {
            // Touched but not changed.
            if let Some(entry) = self
                .entries
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(name)
            {
                entry.stamp = Some(stamp);
            }
            return None;
        }
        let origin = self.config.dir.as_deref().map_or_else(
            || file_name.to_owned(),
            |d| d.join(file_name).display().to_string(),
        );
        let limits = self
            .config
            .limits
            .get(name)
            .copied()
            .unwrap_or(self.config.default_limits);
        match self.runtime.load(name, &origin, &wasm, limits) {
            Ok(policy) => {
                self.rejected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(name);
                let event = ReloadEvent::Loaded {
                    name: name.to_owned(),
                    sha256: policy.sha256(),
                };
                self.entries
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        name.to_owned(),
                        Entry {
                            policy: Arc::new(policy),
                            stamp: Some(stamp),
                        },
                    );
                self.generation.fetch_add(1, Ordering::SeqCst);
                Some(event)
            }
            Err(err) => {
                // Remember the broken file's stamp so that it is not
                // recompiled on every scan; the old policy stays active.
                self.rejected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_owned(), stamp);
                rejected(err.to_string())
            }
        }
    }

    /// Rescan the directory every `interval` on a background thread until
    /// the returned watcher is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, registry) = (stop.clone(), Arc::downgrade(self));
        let thread = std::thread::Builder::new()
            .name("aplo-policy-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(interval);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    match registry.upgrade() {
                        Some(registry) => {
                            registry.rescan();
                        }
                        None => break,
                    }
                }
            })
            .expect("spawn the policy watcher thread");
        Watcher {
            stop,
            thread: Some(thread),
        }
    }
}

/// Why a file's stem is not a policy name, and, when it is one but for
/// case and `_` (cargo names `rack-aware`'s module `rack_aware.wasm`),
/// the file name to use.
fn with_file_name_hint(stem: &str, err: &crate::model::params::ParamError) -> String {
    let fixed = stem.to_ascii_lowercase().replace('_', "-");
    if PolicyName::new(&fixed).is_ok() {
        format!(
            "{err}; the file name is the policy's name: rename it to {fixed}.wasm (cargo writes '-' in a crate's name as '_')"
        )
    } else {
        err.to_string()
    }
}

/// Stops the directory watcher when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &std::path::Path) -> Registry {
        let runtime = Arc::new(Runtime::new(Default::default()).unwrap());
        let config = RegistryConfig {
            dir: Some(dir.to_path_buf()),
            ..Default::default()
        };
        Registry::open(runtime, config).unwrap()
    }

    fn zone_spread() -> &'static [u8] {
        BUNDLED
            .iter()
            .find(|(name, _)| *name == "zone-spread")
            .map(|(_, wasm)| *wasm)
            .unwrap()
    }

    #[test]
    fn a_module_named_as_cargo_names_it_is_refused_with_the_right_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rack_aware.wasm"), zone_spread()).unwrap();
        let registry = registry(dir.path());
        let events = registry.rescan();
        let [ReloadEvent::Rejected { name, error }] = events.as_slice() else {
            panic!("not rejected: {events:?}");
        };
        assert_eq!(name, "rack_aware.wasm");
        assert!(
            error.starts_with("'rack_aware' is not a valid policy name")
                && error.contains("rename it to rack-aware.wasm"),
            "{error}"
        );
        assert_eq!(
            registry.still_active(name),
            "no previous version: no policy of that name is active"
        );
        // A name no renaming fixes gets no suggestion.
        let err = PolicyName::new("a b").unwrap_err();
        assert!(!with_file_name_hint("a b", &err).contains("rename"));
    }

    #[test]
    fn a_rejected_file_says_what_stays_active() {
        let dir = tempfile::tempdir().unwrap();
        let registry = registry(dir.path());
        assert_eq!(
            registry.still_active("rack-aware"),
            "no previous version: no policy of that name is active"
        );
        std::fs::write(dir.path().join("rack-aware.wasm"), zone_spread()).unwrap();
        assert!(matches!(
            registry.rescan().as_slice(),
            [ReloadEvent::Loaded { .. }]
        ));
        assert_eq!(
            registry.still_active("rack-aware"),
            "the previous version stays active"
        );
        assert_eq!(
            registry.still_active("zone-spread"),
            "the bundled zone-spread stays active"
        );
    }
}
