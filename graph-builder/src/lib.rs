//! Graph-builder: scrapes release images from a mirror registry (or an OCI layout on disk)
//! and assembles the update graph from them and the graph-data.
//!
//! - [`registry`]: the Docker Registry v2 / OCI distribution client and its settings,
//! - [`scrape`]: turns a repository's tags into releases, with a digest-keyed cache,
//! - [`oci_layout`]: the same from an OCI image layout directory,
//! - [`layer`]: the streaming search of a layer for the release-metadata file,
//! - [`release_metadata`]: that file's format,
//! - [`assemble`]: scraped releases to the graph,
//! - [`config`]: flags, the TOML file and the validated settings,
//! - [`graph_data_source`]: graph-data from a directory or a tarball,
//! - [`graph_data_push`]: builds and pushes a graph-data image (the `graph-data` tool),
//! - [`refresh`]: the refresh loop and the build pipeline,
//! - [`report`]: the `/status` facts about building the graph (both binaries),
//! - [`status`]: the shared state (last good graph, failures) and the status routes,
//! - [`metrics`]: the `cincinnati_gb_*` metrics,
//! - [`logging`]: the logging flags and subscriber of both binaries,
//! - [`service`]: the listeners and [`run`],
//! - [`error`]: request errors and their HTTP mapping.
#![deny(missing_docs)]

pub mod assemble;
pub mod config;
pub mod error;
pub mod graph_data_push;
pub mod graph_data_source;
pub mod layer;
pub mod logging;
pub mod metrics;
pub mod oci_layout;
pub mod plan_cli;
pub mod refresh;
pub mod registry;
pub mod release_metadata;
pub mod report;
pub mod scrape;
pub mod service;
pub mod status;

pub use service::{run, Listeners, RunError};

/// The git commit these binaries were built from (`GIT_COMMIT` at build time, else the
/// checkout's HEAD, else `unknown`; see `build.rs`), for `build_info` and `/status`.
pub const GIT_COMMIT: &str = env!("UPDATE_SERVICE_GIT_COMMIT");

/// The version these binaries were built as, for `build_info` and `/status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    /// The build script records the checkout's HEAD (or `unknown` outside a checkout), so
    /// `build_info` names the commit a binary came from.
    #[test]
    fn git_commit_is_the_checkouts_head() {
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        match std::env::var("GIT_COMMIT").ok().filter(|c| !c.is_empty()) {
            Some(given) => assert_eq!(super::GIT_COMMIT, given),
            None => assert_eq!(super::GIT_COMMIT, head.as_deref().unwrap_or("unknown")),
        }
    }
}
