//! The registry: policies by name, from the bundled defaults and a policy
//! directory (`<name>.wasm` files), reloaded when files change.
//!
//! A reload that fails to compile or link keeps the previous version active
//! and logs the error. A file of the same name as a bundled policy shadows
//! it; removing the file brings the bundled one back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::SystemTime;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::bundled::BUNDLED;
use super::error::{PolicyError, Refusal};
use super::runtime::{Limits, LoadedPolicy, Runtime};
use super::set::{Bound, PolicySet};
use crate::model::{Decision, Pairs, PolicyName, PolicySelection};

mod scan;
mod watch;

pub use self::watch::{Progress, Watcher};

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
    /// Changes made and scans done; `progressed` is notified on each.
    progress: Mutex<Progress>,
    progressed: Condvar,
    /// Held by the scan under way: scans run one at a time, in the order
    /// they are numbered.
    scanning: Mutex<()>,
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
            progress: Mutex::new(Progress::default()),
            progressed: Condvar::new(),
            scanning: Mutex::new(()),
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
        self.progress().generation
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
}
