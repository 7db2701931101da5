//! The `aplo` binary: everything is in [`aplo::cli::main`].

fn main() -> std::process::ExitCode {
    aplo::cli::main()
}
