//! What the server-wide routes change: heketi's admin mode, kept in the
//! store, and the log level of the running process.

use std::sync::{Arc, Mutex};

use tracing::level_filters::LevelFilter;

use crate::model::storage::AdminMode;
use crate::store::{Change, Store, StoreError};

/// heketi's admin mode as the REST API applies it: read on every request,
/// written through to the store first.
pub struct AdminGate {
    state: Mutex<Gate>,
}

struct Gate {
    /// Where the mode is kept; `None` keeps it in memory only.
    store: Option<Arc<dyn Store>>,
    mode: AdminMode,
}

impl Default for AdminGate {
    fn default() -> AdminGate {
        AdminGate::in_memory()
    }
}

impl AdminGate {
    /// A gate in `normal` mode that keeps its mode in memory until a store
    /// is attached ([`AdminGate::attach`]).
    pub fn in_memory() -> AdminGate {
        AdminGate {
            state: Mutex::new(Gate {
                store: None,
                mode: AdminMode::Normal,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep the mode in `store` from now on, starting from the mode it
    /// holds.
    pub fn attach(&self, store: Arc<dyn Store>) -> Result<(), StoreError> {
        let mode = store.admin_mode()?;
        let mut gate = self.lock();
        gate.store = Some(store);
        gate.mode = mode;
        Ok(())
    }

    /// The mode now.
    pub fn mode(&self) -> AdminMode {
        self.lock().mode
    }

    /// Change the mode: written to the store (if any) first, so that a
    /// failed write changes nothing.
    pub fn set(&self, mode: AdminMode) -> Result<(), StoreError> {
        let mut gate = self.lock();
        if let Some(store) = &gate.store {
            store.write(&[Change::SetAdminMode(mode)])?;
        }
        gate.mode = mode;
        Ok(())
    }
}

/// A log level, by heketi's names (`trace`, which heketi has not, is
/// aplo's most detailed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    None,
    /// Errors (heketi's `critical` and `error`).
    Error,
    /// Warnings.
    Warning,
    /// What happens.
    Info,
    /// How it happens.
    Debug,
    /// Everything.
    Trace,
}

/// The levels with their names and `tracing`'s filters.
static LEVELS: [(LogLevel, &str, LevelFilter); 6] = [
    (LogLevel::None, "none", LevelFilter::OFF),
    (LogLevel::Error, "error", LevelFilter::ERROR),
    (LogLevel::Warning, "warning", LevelFilter::WARN),
    (LogLevel::Info, "info", LevelFilter::INFO),
    (LogLevel::Debug, "debug", LevelFilter::DEBUG),
    (LogLevel::Trace, "trace", LevelFilter::TRACE),
];

impl LogLevel {
    fn entry(self) -> &'static (LogLevel, &'static str, LevelFilter) {
        LEVELS
            .iter()
            .find(|(l, ..)| *l == self)
            .expect("every level is listed")
    }

    /// heketi's name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// `tracing`'s filter for it.
    pub fn filter(self) -> LevelFilter {
        self.entry().2
    }

    /// The level of a `tracing` filter.
    pub fn of(filter: LevelFilter) -> LogLevel {
        LEVELS
            .iter()
            .find(|(.., f)| *f == filter)
            .map_or(LogLevel::Trace, |(l, ..)| *l)
    }
}

/// Why the log level cannot be read or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogLevelError {
    /// A name that is no level.
    #[error("invalid log level: {0} (use none, critical, error, warning, info, debug or trace)")]
    Unknown(String),
    /// The filter for the level cannot be made (why).
    #[error("{0}")]
    Filter(String),
    /// The running filter cannot be replaced (why).
    #[error("changing the log filter: {0}")]
    Reload(String),
}

impl std::str::FromStr for LogLevel {
    type Err = LogLevelError;

    /// heketi's names (`critical` is `error`: tracing has nothing above
    /// it), and `trace`.
    fn from_str(name: &str) -> Result<LogLevel, LogLevelError> {
        let wanted = if name == "critical" { "error" } else { name };
        LEVELS
            .iter()
            .find(|(_, n, _)| *n == wanted)
            .map(|(l, ..)| *l)
            .ok_or_else(|| LogLevelError::Unknown(name.to_owned()))
    }
}

/// The running process's log filter, as `/internal/logging` reads and
/// changes it.
pub trait LogControl: Send + Sync {
    /// The most detailed level anything is logged at now (`None`: the
    /// filter cannot say).
    fn level(&self) -> Option<LogLevel>;

    /// Log at `level` from now on.
    fn set_level(&self, level: LogLevel) -> Result<(), LogLevelError>;
}

/// What the server-wide routes need besides the engine.
#[derive(Clone, Default)]
pub struct ServerControl {
    /// heketi's admin mode.
    pub mode: Arc<AdminGate>,
    /// The log filter; `None`: the level cannot be changed in this process
    /// (an embedded API, in tests).
    pub logging: Option<Arc<dyn LogControl>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// A store whose writes fail.
    struct Broken;

    impl Store for Broken {
        fn read(&self) -> Result<crate::model::storage::Snapshot, StoreError> {
            Ok(Default::default())
        }

        fn admin_mode(&self) -> Result<AdminMode, StoreError> {
            Ok(AdminMode::Normal)
        }

        fn write(&self, _: &[Change]) -> Result<(), StoreError> {
            Err(StoreError::Backend {
                path: "broken".into(),
                message: "disk full".into(),
            })
        }
    }

    #[test]
    fn the_mode_is_written_through_and_read_back_from_the_store() {
        let store = Arc::new(MemoryStore::default());
        store
            .write(&[Change::SetAdminMode(AdminMode::LocalClient)])
            .unwrap();
        let gate = AdminGate::in_memory();
        assert_eq!(gate.mode(), AdminMode::Normal);
        gate.attach(store.clone()).unwrap();
        assert_eq!(gate.mode(), AdminMode::LocalClient, "the stored mode");
        gate.set(AdminMode::ReadOnly).unwrap();
        assert_eq!(store.admin_mode().unwrap(), AdminMode::ReadOnly);
        // A gate opened later over the same store starts there.
        let again = AdminGate::in_memory();
        again.attach(store).unwrap();
        assert_eq!(again.mode(), AdminMode::ReadOnly);
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let gate = AdminGate::in_memory();
        gate.attach(Arc::new(Broken)).unwrap();
        let err = gate.set(AdminMode::ReadOnly).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(gate.mode(), AdminMode::Normal);
    }

    #[test]
    fn levels_have_heketis_names_and_tracings_filters() {
        for name in ["none", "error", "warning", "info", "debug", "trace"] {
            let level: LogLevel = name.parse().unwrap();
            assert_eq!(level.name(), name);
            assert_eq!(LogLevel::of(level.filter()), level);
        }
        assert_eq!("critical".parse(), Ok(LogLevel::Error));
        assert_eq!(LogLevel::None.filter(), LevelFilter::OFF);
        assert_eq!(LogLevel::Warning.filter(), LevelFilter::WARN);
        let loud = "loud".parse::<LogLevel>().unwrap_err().to_string();
        assert!(loud.contains("invalid log level: loud"), "{loud}");
    }
}
