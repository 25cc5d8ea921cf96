//! The shared vocabulary of the update service.
//!
//! - the release graph model (a petgraph DAG of releases),
//! - the Cincinnati graph JSON wire format,
//! - the graph-data repository format (`version`, `channels/`, `blocked-edges/`, `raw/`),
//!   its loader and validator, and the pure functions that apply it to a scraped graph,
//! - [`keys`]: the metadata keys and the small API rules both services share.
#![deny(missing_docs)]

pub mod apply;
mod conditional;
mod error;
mod graph;
pub mod keys;
mod release;
pub mod repo;
pub mod validate;
pub mod wire;

pub use conditional::{ConditionalEdge, ConditionalUpdateEdge, MatchingRule, Risk};
pub use error::{GraphError, WireError};
pub use graph::{Graph, ReleaseId};
pub use release::{Metadata, Release};
