//! The `aplo` binary: parse the configuration, start telemetry, run.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = aplo::cli::Cli::parse();
    if let Err(err) = aplo::cli::init_telemetry(cli.config.log_format, cli.log_filter()) {
        eprintln!("aplo: {err:#}");
        return ExitCode::from(2);
    }
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("aplo: {err:#}");
            ExitCode::FAILURE
        }
    }
}
