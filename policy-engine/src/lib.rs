//! Policy-engine: holds the update graph and serves it per channel and architecture
//! over the Cincinnati HTTP API.
//!
//! - [`config`], [`config_file`]: command line, TOML file and validated settings;
//! - [`source`]: the seam producers publish graphs into; [`refresh`]: the one refresh
//!   loop over the two producers, [`upstream`] (fetches from a graph-builder) and
//!   [`in_process`] (builds the graph here: one-process mode);
//! - [`cache`]: response bodies per graph revision, channel and arch;
//! - [`filter`]: client parameters and the channel/arch filters, pure functions;
//! - [`routes`], [`negotiate`], [`query`], [`openapi`]: the public API;
//! - [`planner`]: explain, path, mirror gaps and the planner page;
//! - [`status`], [`metrics`]: the status server;
//! - [`error`]: the error kinds of the API and their HTTP mapping;
//! - [`signatures`]: release signatures for the cluster version operator (sources,
//!   verification, the `{prefix}/signatures/…` route and the metadata-helper mode);
//! - [`server`]: [`run`] and [`serve`], which tests call with their own listeners.
#![deny(missing_docs)]

pub mod cache;
pub mod config;
pub mod config_file;
pub mod error;
pub mod filter;
pub mod in_process;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod planner;
pub mod query;
pub mod refresh;
pub mod routes;
pub mod server;
pub mod signatures;
pub mod source;
pub mod status;
pub mod upstream;

pub use config::{Cli, Settings};
pub use server::{run, serve, Listeners};
pub use source::GraphSource;
