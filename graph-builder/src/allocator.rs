//! The C allocator's settings for a long-running service: called first thing by both
//! binaries (and by the full-scale benchmark, so it measures what runs).
//!
//! glibc's malloc gives a thread that meets contention an arena of its own, up to eight
//! per core, and every arena keeps the memory freed into it for reuse. A refresh
//! allocates on the async workers and on blocking threads (assembly, serialization,
//! layer scans), so each of them ends up with its own tens of megabytes that the others
//! cannot reuse. One arena keeps the resident set near what is live: at full scale
//! (6,845 releases, 412k edges) the graph-builder's peak RSS went from 193 MiB to
//! 141 MiB with no loss of speed, since the refresh is bound by the registry. Per-thread
//! caches (tcache) still serve small allocations without the lock.
//!
//! An admin who sets `MALLOC_ARENA_MAX` in the environment keeps that value. Other C
//! libraries (musl) have no arenas; there this does nothing.

/// Arenas when the environment does not say.
const ARENAS: i32 = 1;

/// Applies the settings; call before any thread is started.
pub fn tune() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    set_arena_max(ARENAS);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt only sets a parameter of the allocator; it takes plain integers,
    // touches no memory of ours, and is safe to call at any time.
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    debug_assert_eq!(accepted, 1, "mallopt(M_ARENA_MAX) refused");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) {}
