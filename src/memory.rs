//! How the process holds memory from glibc's allocator (a no-op elsewhere). glibc gives each
//! thread that allocates an arena of its own, up to eight per core, and keeps what is freed
//! for later: a server's RSS then grows with its thread count and stays at its highest.

/// Arenas a server process allocates from unless `MALLOC_ARENA_MAX` says otherwise: two
/// serve the workers and the blocking pool of a small machine with no measured loss
/// (docs/DESIGN.md, "Memory").
const ARENAS: i32 = 2;

/// Called before the process starts any thread.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes no pointer and only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Hands the pages no allocation uses back to the system, after a burst of allocations the
/// process will not repeat (a copy of the fleet's first load).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only releases pages no allocation is using.
    unsafe {
        libc::malloc_trim(0);
    }
}
