//! The `upwatch` binary: everything lives in `upwatch-app`, so this stays a few lines.

fn main() -> std::process::ExitCode {
    upwatch_app::cli::main()
}
