//! Graph-builder: scrapes release images from a mirror registry (or an OCI layout on disk)
//! and assembles the update graph from them and the graph-data.
//!
//! The public surface, in pipeline order:
//! - [`registry`]: the registry client ([`registry::Client`], [`registry::ClientConfig`],
//!   [`registry::RegistryError`]) and the push client of the `graph-data` tool,
//! - [`scrape`]: a repository's tags (or an OCI layout's) to releases, with a digest cache,
//! - [`graph_data_source`]: graph-data from a directory, a tarball or an image,
//! - [`refresh`]: one build ([`refresh::Pipeline`]: as a [`graph_data::Graph`] with
//!   `build_graph`, or as the raw JSON with `build`) and the service's refresh loop,
//! - [`config`]: flags, the TOML file and the validated settings of the binary,
//! - [`graph_data_push`]: builds and pushes a graph-data image (the `graph-data` tool),
//! - [`run`]: the service.
//!
//! Everything else is private to the crate: `assemble` (releases to the graph), `status`
//! (the last good graph, failures, the status routes), `metrics`, `service` (listeners)
//! and `error` (request errors and their HTTP mapping).
#![deny(missing_docs)]

pub(crate) mod assemble;
pub mod config;
pub(crate) mod error;
pub mod graph_data_push;
pub mod graph_data_source;
pub(crate) mod metrics;
pub mod refresh;
pub mod registry;
pub mod scrape;
pub(crate) mod service;
pub(crate) mod status;

pub use assemble::{assemble, AssembleError};
pub use service::{run, Listeners, RunError};
