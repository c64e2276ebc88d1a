//! Settings of the `rudder noded` process itself, chosen for a small resident footprint: a node
//! agent does little in parallel, so it needs neither many malloc arenas nor many blocking
//! threads; and when pods go away, the memory they freed goes back to the system. It must not
//! hold node logic; `src/main.rs` applies the settings before the async runtime starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The most threads the async runtime may start for blocking work (filesystem, runtime and
/// shim calls). Every blocking call noded makes is short; waits (grace periods, probes) are
/// on the async clock.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// The most malloc arenas glibc may create. By default it makes up to eight per core, one for
/// each thread that allocates while the others are busy; each keeps its own free memory, so a
/// burst of blocking threads leaves megabytes of fragments behind. One arena shares all free
/// memory (threads keep their small caches); noded allocates too little for the lock to matter.
pub const MALLOC_ARENAS: i32 = 1;

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

/// How long freed memory may wait before [`release_freed_memory_soon`] hands it back, so that a
/// burst of pod removals costs one pass over the heap.
const RELEASE_DELAY: Duration = Duration::from_secs(2);

static RELEASE_PENDING: AtomicBool = AtomicBool::new(false);

/// Returns the heap's free pages to the system shortly (glibc's `malloc_trim`; a no-op
/// elsewhere). glibc gives back only the top of the heap by itself, so the pages a removed
/// pod's worker freed in the middle stay resident until trimmed. Call it from the async
/// runtime when a lot was freed; calls while one is pending are folded into it.
pub fn release_freed_memory_soon() {
    if RELEASE_PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(RELEASE_DELAY).await;
        RELEASE_PENDING.store(false, Ordering::Release);
        let _ = tokio::task::spawn_blocking(release_freed_memory).await;
    });
}

fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes the allocator's own locks; it only releases free pages.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
