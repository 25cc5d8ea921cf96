//! Policy-engine: holds the update graph and serves it per channel and architecture
//! over the Cincinnati HTTP API.
//!
//! - [`filter`]: client parameters and the channel/arch filters, pure functions;
//! - [`error`]: the error kinds of the API and their HTTP mapping.
#![deny(missing_docs)]

pub mod error;
pub mod filter;
