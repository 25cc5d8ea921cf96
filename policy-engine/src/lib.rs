//! Policy-engine: holds the update graph and serves it per channel and architecture
//! over the Cincinnati HTTP API.
#![deny(missing_docs)]
