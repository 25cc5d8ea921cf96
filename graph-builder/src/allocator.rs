//! The C allocator's settings for a long-running service: called first thing by both
//! binaries (and by the full-scale benchmark, so it measures what runs). The operand
//! image sets the same values in its environment, for every process it runs.
//!
//! glibc's malloc gives a thread that meets contention an arena of its own, up to eight
//! per core, and every arena keeps the memory freed into it for reuse. A refresh
//! allocates on the async workers and on blocking threads (assembly, serialization,
//! layer scans, response bodies), so each of them ends up with tens of megabytes that the
//! others cannot reuse. And after a large block is freed (a parsed 21 MB graph), glibc
//! raises its trim threshold to twice that block, so freed pages stay resident. Two
//! arenas still let two cores allocate without waiting on each other; a fixed 128 KiB
//! trim threshold gives freed memory back. At full scale (6,845 releases, 412k edges)
//! the graph-builder's peak RSS went from 193 MiB to 101 MiB, with no loss of speed,
//! since the refresh is bound by the registry, and the policy-engine's from 91-105 MB to
//! 78 MB once it served every body (`docs/configuration.md` says what it costs).
//!
//! An admin who sets `MALLOC_ARENA_MAX` or `MALLOC_TRIM_THRESHOLD_` keeps that value.
//! Other C libraries (musl) have neither; there this does nothing.

/// Arenas when the environment does not say.
const ARENAS: i32 = 2;
/// Bytes free at the top of the heap before they are given back, when the environment
/// does not say.
const TRIM_THRESHOLD: i32 = 128 * 1024;

/// Applies the settings; call before any thread is started.
pub fn tune() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        set(Parameter::ArenaMax, ARENAS);
    }
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        set(Parameter::TrimThreshold, TRIM_THRESHOLD);
    }
}

enum Parameter {
    ArenaMax,
    TrimThreshold,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(parameter: Parameter, value: i32) {
    let parameter = match parameter {
        Parameter::ArenaMax => libc::M_ARENA_MAX,
        Parameter::TrimThreshold => libc::M_TRIM_THRESHOLD,
    };
    // SAFETY: mallopt only sets a parameter of the allocator; it takes plain integers,
    // touches no memory of ours, and is safe to call at any time.
    let accepted = unsafe { libc::mallopt(parameter, value) };
    debug_assert_eq!(accepted, 1, "mallopt({parameter}, {value}) refused");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_parameter: Parameter, _value: i32) {}
