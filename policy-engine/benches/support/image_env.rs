//! The environment the operand image sets for its processes (the `ENV` instructions of
//! the repository's `Containerfile`: glibc's allocator settings), read from the file so
//! that a benchmark runs the policy-engine as the image runs it and cannot drift from it.
//! `PE_BENCH_IMAGE_ENV=0` runs with glibc's default arena count instead (eight per core),
//! to compare; the binary's own trim threshold (`graph_builder::allocator`) stays, since
//! glibc's dynamic one cannot be asked for by name.

use std::path::Path;

/// The `ENV` name/value pairs of the Containerfile, or glibc's default arena count when
/// `PE_BENCH_IMAGE_ENV=0`.
pub fn image_env() -> Vec<(String, String)> {
    if std::env::var("PE_BENCH_IMAGE_ENV").is_ok_and(|v| v == "0") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        return vec![("MALLOC_ARENA_MAX".to_owned(), (8 * cores).to_string())];
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Containerfile");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\\\n", " ");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// `NAME=VALUE ...` for the benchmark's first line.
pub fn describe(env: &[(String, String)]) -> String {
    env.iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
