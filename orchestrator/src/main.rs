//! The `berth` binary: everything lives in the `orchestrator` library.

fn main() -> std::process::ExitCode {
    orchestrator::cli::main()
}
