//! `aplo` built with fault-injection points, for crash-recovery tests: the
//! same entry point as the real binary.

fn main() -> std::process::ExitCode {
    aplo::cli::main()
}
