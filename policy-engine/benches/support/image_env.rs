//! The environment the operand image sets for its processes (the `ENV` instructions of
//! the repository's `Containerfile`: glibc's allocator settings), read from the file so
//! that a benchmark runs the policy-engine as the image runs it and cannot drift from it.
//! `PE_BENCH_IMAGE_ENV=0` runs without it (glibc's defaults), to compare.

use std::path::Path;

/// The `ENV` name/value pairs of the Containerfile, or none when `PE_BENCH_IMAGE_ENV=0`.
pub fn image_env() -> Vec<(String, String)> {
    if std::env::var("PE_BENCH_IMAGE_ENV").is_ok_and(|v| v == "0") {
        return Vec::new();
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
    if env.is_empty() {
        return "none (glibc defaults)".to_owned();
    }
    env.iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
