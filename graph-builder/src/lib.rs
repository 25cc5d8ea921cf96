//! Graph-builder: scrapes release images from a mirror registry (or an OCI layout on disk)
//! and assembles the update graph from them and the graph-data.
#![deny(missing_docs)]
