//! Handing memory back to the system (glibc's allocator; a no-op elsewhere). glibc keeps
//! what is freed inside the process for later allocations, so a server's RSS stays at its
//! highest: after a first load of the fleet's copies, or a burst of connections, megabytes
//! the process may never need again.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

/// Hands the pages no allocation uses back to the system: after a burst of allocations the
/// process will not repeat (a copy of the fleet's first load).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only releases pages no allocation is using.
    unsafe {
        libc::malloc_trim(0);
    }
}

static OPEN: AtomicUsize = AtomicUsize::new(0);
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);
/// When memory was last given back on going idle, in milliseconds since `STARTED`.
static LAST_IDLE: AtomicI64 = AtomicI64::new(i64::MIN);
/// Going idle gives memory back at most this often: a quiet server whose every request
/// comes on a new connection would otherwise trim after each.
const IDLE_EVERY_MS: i64 = 1_000;

/// Held by each open HTTP connection. When the last one closes, what the connections'
/// buffers held is given back: RSS after a burst of connections returns to what the
/// process holds at rest (docs/DESIGN.md, "Copies of the fleet in each process").
pub struct OpenConnection(());

impl OpenConnection {
    pub fn new() -> Self {
        LazyLock::force(&STARTED);
        OPEN.fetch_add(1, Ordering::AcqRel);
        OpenConnection(())
    }
}

impl Default for OpenConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if OPEN.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let now = i64::try_from(STARTED.elapsed().as_millis()).unwrap_or(i64::MAX);
        let last = LAST_IDLE.load(Ordering::Acquire);
        if now.saturating_sub(last) >= IDLE_EVERY_MS
            && LAST_IDLE
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            give_back();
        }
    }
}
