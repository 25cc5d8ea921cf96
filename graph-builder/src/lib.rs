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
//! - [`status`]: the shared state (last good graph, failures) and the status routes,
//! - [`metrics`]: the `cincinnati_gb_*` metrics,
//! - [`service`]: the listeners and [`run`],
//! - [`error`]: request errors and their HTTP mapping.
#![deny(missing_docs)]

pub mod assemble;
pub mod config;
pub mod error;
pub mod graph_data_push;
pub mod graph_data_source;
pub mod layer;
pub mod metrics;
pub mod oci_layout;
pub mod plan_cli;
pub mod refresh;
pub mod registry;
pub mod release_metadata;
pub mod scrape;
pub mod service;
pub mod status;

pub use service::{run, Listeners, RunError};
