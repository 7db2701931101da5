//! Logging: `tracing` with an `EnvFilter`, text or JSON, on stderr. The
//! filter can be changed while the process runs ([`LogFilter`], behind
//! the REST API's `/internal/logging`).

use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use super::LogFormat;
use crate::http::control::{LogControl, LogLevel, LogLevelError};

/// The crates whose own logs are quieter than aplo's: wasmtime and
/// cranelift; kube-runtime logs every reconcile at info.
const QUIETER: [&str; 3] = ["cranelift", "wasmtime", "kube_runtime"];

/// Install the global subscriber. Wasmtime's and cranelift's own logs are
/// silenced unless the filter names them.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    init_reloadable(format, filter).map(drop)
}

/// [`init`], returning the handle that changes the filter later.
pub fn init_reloadable(format: LogFormat, filter: &str) -> anyhow::Result<LogFilter> {
    let quieter: Vec<String> = QUIETER.iter().map(|c| format!("{c}=warn")).collect();
    let env = EnvFilter::try_new(format!("{},{filter}", quieter.join(",")))
        .map_err(|e| anyhow::anyhow!("invalid log filter '{filter}': {e}"))?;
    let (env, handle) = reload::Layer::new(env);
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(env)
            .with(output.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(env)
            .with(output.json())
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(LogFilter {
        handle,
        level: Mutex::new(level_of(filter)),
    })
}

/// The most detailed level a filter logs anything at (`None`: it cannot
/// say, e.g. with span field filters).
fn level_of(filter: &str) -> Option<LevelFilter> {
    EnvFilter::try_new(filter).ok()?.max_level_hint()
}

/// The filter of the installed subscriber.
pub struct LogFilter {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The level of the filter as given (the quieter crates aside).
    level: Mutex<Option<LevelFilter>>,
}

/// The filter that logs at `level`, the quieter crates at `warn` at most.
fn filter_at(level: LevelFilter) -> String {
    let quieter = level.min(LevelFilter::WARN);
    let mut directives = vec![level.to_string().to_lowercase()];
    directives.extend(
        QUIETER
            .iter()
            .map(|c| format!("{c}={}", quieter.to_string().to_lowercase())),
    );
    directives.join(",")
}

impl LogControl for LogFilter {
    fn level(&self) -> Option<LogLevel> {
        self.level
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(LogLevel::of)
    }

    /// Log at `level` from now on, the quieter crates at `warn` at most.
    fn set_level(&self, level: LogLevel) -> Result<(), LogLevelError> {
        let level = level.filter();
        let filter = EnvFilter::try_new(filter_at(level))
            .map_err(|e| LogLevelError::Filter(e.to_string()))?;
        let mut current = self.level.lock().unwrap_or_else(|e| e.into_inner());
        self.handle
            .reload(filter)
            .map_err(|e| LogLevelError::Reload(e.to_string()))?;
        *current = Some(level);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_keeps_the_quieter_crates_at_warn_at_most() {
        assert_eq!(
            filter_at(LevelFilter::DEBUG),
            "debug,cranelift=warn,wasmtime=warn,kube_runtime=warn"
        );
        assert_eq!(
            filter_at(LevelFilter::ERROR),
            "error,cranelift=error,wasmtime=error,kube_runtime=error"
        );
        assert_eq!(
            filter_at(LevelFilter::OFF),
            "off,cranelift=off,wasmtime=off,kube_runtime=off"
        );
        for level in [LevelFilter::OFF, LevelFilter::INFO, LevelFilter::TRACE] {
            let filter = EnvFilter::try_new(filter_at(level)).unwrap();
            assert_eq!(filter.max_level_hint(), Some(level), "{level}");
        }
    }

    #[test]
    fn a_filter_that_does_not_parse_says_what_the_parser_says() {
        let parse = EnvFilter::try_new("aplo=loud").unwrap_err();
        let said = parse.to_string();
        assert_eq!(LogLevelError::Filter(said.clone()).to_string(), said);
    }

    #[test]
    fn the_level_of_a_filter_is_its_most_detailed() {
        assert_eq!(level_of("info"), Some(LevelFilter::INFO));
        assert_eq!(level_of("aplo=debug,warn"), Some(LevelFilter::DEBUG));
        assert_eq!(level_of("off"), Some(LevelFilter::OFF));
    }
}
