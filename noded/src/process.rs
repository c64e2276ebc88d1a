//! Settings of the `rudder noded` process itself, chosen for a small resident footprint: a node
//! agent does little in parallel, so it needs neither many malloc arenas nor many blocking
//! threads. It must not hold node logic; `src/main.rs` applies these before the async runtime
//! starts.

/// The most threads the async runtime may start for blocking work (filesystem, runtime and
/// shim calls). Every blocking call noded makes is short; waits (grace periods, probes) are
/// on the async clock.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// The most malloc arenas glibc may create. By default it makes up to eight per core, one for
/// each thread that allocates while the others are busy; each keeps its own free memory, so a
/// burst of blocking threads leaves megabytes of fragments behind. Call it before any thread
/// is started.
pub const MALLOC_ARENAS: i32 = 2;

/// Applies [`MALLOC_ARENAS`] (glibc only; other C libraries have no per-thread arenas).
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // of the process exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}
