//! Graph-builder: scrapes release images from a mirror registry (or an OCI layout on disk)
//! and assembles the update graph from them and the graph-data.
//!
//! The public surface, in pipeline order:
//! - [`registry`]: the registry client ([`registry::Client`], [`registry::ClientConfig`],
//!   [`registry::RegistryError`]) and the push client of the `graph-data` tool,
//! - [`scrape`]: a repository's tags (or an OCI layout's) to releases, with a digest cache,
//! - [`graph_data_source`]: graph-data from a directory, a tarball or an image,
//! - [`graph_json`]: the raw graph JSON as held and served (gzip-coded once),
//! - [`refresh`]: one build ([`refresh::Pipeline`]: as a [`graph_data::Graph`] with
//!   `build_graph`, or as the raw JSON with `build`) and the service's refresh loop,
//! - [`config`]: flags, the TOML file and the validated settings of the binary,
//! - [`graph_data_push`]: builds and pushes a graph-data image (the `graph-data` tool),
//! - [`logging`]: the logging flags and subscriber of both binaries,
//! - [`report`]: the `/status` facts about building the graph (both binaries),
//! - [`plan_cli`]: the update planner's commands of the `graph-data` tool,
//! - [`surface`]: the size limits and metric labels of requests to the public ports,
//! - [`run`]: the service,
//! - [`allocator`]: the C allocator's settings both binaries start with.
//!
//! Everything else is private to the crate: `assemble` (releases to the graph), `cycles`
//! (releases whose metadata closes a cycle, left out), `oci_layer` (what the readers of
//! image layers share: compression, whiteouts), `scrape_report` (how degraded the
//! last scrape left the graph, for `report`), `status`
//! (the last good graph, failures, the status routes), `metrics`, `service` (listeners)
//! and `error` (request errors and their HTTP mapping).
#![deny(missing_docs)]

pub mod allocator;
pub(crate) mod assemble;
pub mod config;
pub(crate) mod cycles;
pub(crate) mod error;
pub mod graph_data_push;
pub mod graph_data_source;
pub mod graph_json;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod oci_layer;
pub mod plan_cli;
pub mod refresh;
pub mod registry;
pub mod report;
pub mod scrape;
pub(crate) mod scrape_report;
pub(crate) mod service;
pub(crate) mod status;
pub mod surface;

pub use assemble::{assemble, AssembleError};
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
