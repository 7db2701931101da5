//! Looking at the policy directory: loading new and changed files,
//! rejecting broken ones, dropping removed ones.

use std::sync::Arc;

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use super::{Entry, Registry, ReloadEvent, Stamp};
use crate::model::PolicyName;

impl Registry {
    /// Look at the policy directory again: load new and changed `.wasm`
    /// files, drop removed ones. Unchanged files (same size and mtime) are
    /// not read.
    pub fn rescan(&self) -> Vec<ReloadEvent> {
        // One scan at a time, so that a scan begun after a change is known
        // to have seen it once `scans_done` counts it.
        let _scanning = self.scanning.lock().unwrap_or_else(|e| e.into_inner());
        self.advance(|p| p.scans_begun += 1);
        let events = self.scan();
        self.advance(|p| p.scans_done += 1);
        events
    }

    fn scan(&self) -> Vec<ReloadEvent> {
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
            self.advance(|p| p.generation += 1);
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
        let file = match crate::policy::file::read_in(dir, file_name, file_name) {
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
                self.advance(|p| p.generation += 1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bundled::BUNDLED;
    use crate::policy::registry::RegistryConfig;
    use crate::policy::runtime::Runtime;

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
