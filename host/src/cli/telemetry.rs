//! Logging: `tracing` with an `EnvFilter`, text or JSON, on stderr.

use tracing_subscriber::EnvFilter;

use super::LogFormat;

/// Install the global subscriber. Wasmtime's and cranelift's own logs are
/// silenced unless the filter names them.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    // kube-runtime logs every reconcile at info; aplo logs what matters.
    let filter = EnvFilter::try_new(format!(
        "cranelift=warn,wasmtime=warn,kube_runtime=warn,{filter}"
    ))
    .map_err(|e| anyhow::anyhow!("invalid log filter '{filter}': {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
