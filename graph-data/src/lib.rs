//! The shared vocabulary of the update service.
//!
//! - the release graph model (a petgraph DAG of releases),
//! - the Cincinnati graph JSON wire format,
//! - the graph-data repository format (`version`, `channels/`, `blocked-edges/`, `raw/`),
//!   its loader and validator, and the pure functions that apply it to a scraped graph;
//! - release signatures in the atomic signature-store layout ([`signatures`]): the
//!   `signatures/` tree of graph-data and signature ConfigMaps, loaded into a bounded store;
//! - [`keys`]: the metadata keys and the small API rules both services share.
#![deny(missing_docs)]

pub mod apply;
pub mod bounded_tar;
mod conditional;
mod error;
mod graph;
pub mod keys;
pub mod planner;
pub mod provenance;
mod release;
pub mod repo;
pub mod signatures;
pub mod validate;
pub mod wire;

pub use conditional::{ConditionalEdge, ConditionalUpdateEdge, MatchingRule, Risk};
pub use error::{GraphError, WireError};
pub use graph::{Graph, ReleaseId};
pub use release::{Metadata, Release};
