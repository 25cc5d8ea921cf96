//! Test harness shared by the end-to-end tests and the scrape benchmark: starts a real
//! CNCF distribution registry on loopback ([`registry`], over HTTPS with [`tls`]), builds synthetic release,
//! component and signature images in memory ([`images`]), pushes them through the
//! registry API ([`pusher`]) and reads them back with an independent client ([`skopeo`]);
//! [`redirect`] puts a front before a registry that sends blobs to another origin;
//! [`signing`] makes real release signatures with `gpg` and `skopeo`; [`fake`] is an
//! in-process registry that misbehaves on demand; [`child`] is what the binaries' own
//! tests share about a service run as a child process.
#![deny(missing_docs)]

pub mod child;
mod error;
pub mod fake;
pub mod images;
pub mod oci_layout_writer;
pub mod pusher;
pub mod redirect;
pub mod registry;
pub mod signing;
pub mod skopeo;
pub mod tls;

pub use error::HarnessError;
pub use images::{Artifact, Format, Image, ImageBuilder, Index, Layer, ReleaseMetadata};
pub use pusher::Pusher;
pub use registry::{Credentials, RegistryOptions, ServerCertificate, TestRegistry};
