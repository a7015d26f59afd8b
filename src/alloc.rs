//! The allocator of the platform's binaries: mimalloc, with its arenas
//! committed as they are used.
//!
//! mimalloc is the allocator because glibc's malloc spent about a fifth of
//! the CPU in its arena locks and free lists under load (BENCHMARKS.md,
//! the transcode profile). By default it commits each arena it reserves
//! (1 GiB) in full and advises transparent huge pages on it, so on a host
//! whose THP setting is `madvise` (or `always`) each 2 MiB region it
//! touches becomes resident whole: the platform started at 64 MiB instead
//! of 18 MiB, and the benchmark peaked about 50 MiB higher, for no speed
//! (BENCHMARKS.md, fifth session). The `allocator!` macro sets
//! mimalloc's `arena_eager_commit` to 0 before `main` (from `.init_array`),
//! unless `MIMALLOC_ARENA_EAGER_COMMIT` is set, which then decides.
//! Dropping transparent huge pages altogether (mimalloc's `no_thp`) saved
//! the same memory but cost about a tenth of the throughput, so it is not
//! done.

pub use mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit`: its index in the options of
/// mimalloc v2 and v3 (libmimalloc-sys does not name it).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commit arenas on demand, unless the environment says otherwise. Runs
/// before `main`, before the allocator reserves its first arena.
pub extern "C" fn commit_on_demand() {
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: sets one option value of mimalloc; this runs from
        // `.init_array`, on the only thread there is then.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }
}

/// Declare the process allocator: mimalloc, arenas committed on demand
/// (see the module). For a binary's root module.
#[macro_export]
macro_rules! allocator {
    () => {
        #[global_allocator]
        static ALLOC: $crate::alloc::MiMalloc = $crate::alloc::MiMalloc;

        #[cfg(target_os = "linux")]
        #[used]
        #[link_section = ".init_array"]
        static COMMIT_ON_DEMAND: extern "C" fn() = $crate::alloc::commit_on_demand;
    };
}

#[cfg(test)]
mod tests {
    /// The option index is mimalloc's `arena_eager_commit`: it reads that
    /// option's default, 2, which none of the options next to it has (the
    /// unit tests do not run the binaries' `.init_array` setting).
    #[test]
    fn the_option_is_the_arena_eager_commit() {
        // SAFETY: reading an option value.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::ARENA_EAGER_COMMIT) };
        // mimalloc's default for arena_eager_commit is 2 ("on overcommit
        // systems"); the options around it are booleans (0 or 1) or sizes.
        assert!(
            default == 2 || std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some(),
            "option {} reads {default}, not arena_eager_commit's default 2",
            super::ARENA_EAGER_COMMIT
        );
    }
}
