//! The `upwatch` binary: everything lives in `upwatch-app`, so this stays a few lines.

/// mimalloc instead of glibc's allocator: in a profile of the embedded standard run, glibc's
/// malloc and free were a sixth of upwatch's CPU (a check allocates its request, its answer,
/// its result and their JSON, and frees them on another thread).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    upwatch_app::cli::main()
}
