//! The `upwatch` binary: everything lives in `upwatch-app`, so this stays a few lines.

use upwatch_app::Role;

/// mimalloc instead of glibc's allocator: in a profile of the embedded standard run, glibc's
/// malloc and free were a sixth of upwatch's CPU (a check allocates its request, its answer,
/// its result and their JSON, and frees them on another thread).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h`); libmimalloc-sys
/// declares no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    upwatch_app::cli::main_with(|roles| {
        if roles == [Role::Scheduler] {
            // The scheduler's memory is its monitors plus, at each reload, a second copy of
            // them for a moment; mimalloc's default (freed pages go back to the system after a
            // delay, and not all of them) left that copy counted in its RSS, 800 bytes per
            // monitor in the distributed benchmark. Returning freed pages at once costs the
            // scheduler no measurable CPU (8% of a core either way); the other roles keep the
            // default, which their CPU per check prefers.
            // SAFETY: sets one integer option of the allocator, before any thread starts.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's purge delay: it holds that option's default (1,000 ms
    /// in mimalloc 3's `options.c`, where no other option defaults to 1,000) and can be set.
    #[test]
    fn the_option_is_the_purge_delay() {
        // SAFETY: reads and sets integer options of the allocator.
        unsafe {
            let before = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            assert_eq!(before, 1000, "mimalloc 3's default purge delay, in ms");
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 7);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 7);
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, before);
        }
    }
}
