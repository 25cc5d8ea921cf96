//! The scrape's error type and the registry's error body (`{"errors":[{code,message,detail}]}`).
//!
//! Every variant names where it happened: the registry, the repository and the item (tag,
//! manifest or blob digest), or the file on disk. Per-image problems that must not fail the
//! whole scrape (not a release, invalid release-metadata) are not errors: they are outcomes.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// One entry of a registry's error body, as defined by the distribution spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegistryErrorBody {
    /// Machine-readable code, e.g. `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `TOOMANYREQUESTS`.
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Free-form detail; kept as JSON because registries put anything there.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl fmt::Display for RegistryErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        match &self.detail {
            None | Some(serde_json::Value::Null) => Ok(()),
            Some(detail) => write!(f, " ({detail})"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<RegistryErrorBody>,
}

/// Parses a registry error body; anything that is not the spec's envelope yields no entries.
pub fn parse_error_body(body: &[u8]) -> Vec<RegistryErrorBody> {
    serde_json::from_slice::<Envelope>(body)
        .map(|envelope| envelope.errors)
        .unwrap_or_default()
}

/// Joins error bodies for display; `-` when the registry sent none.
pub(crate) struct ErrorList<'a>(pub &'a [RegistryErrorBody]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no error body");
        }
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Why a scrape failed as a whole. A scrape that returns this publishes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// A setting cannot be used (bad registry URL, zero concurrency, ...).
    #[error("invalid scrape setting `{field}` = {value:?}: {reason}")]
    InvalidSettings {
        /// The `ScrapeSettings` field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The docker `config.json` could not be read or parsed.
    #[error("cannot use registry credentials file {path}: {reason}")]
    Credentials {
        /// The credentials file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The CA certificate directory could not be walked.
    #[error("cannot read CA certificate directory {path}")]
    CertificateDirectory {
        /// The directory (or a subdirectory of it).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS backend, certificates).
    #[error("cannot build the HTTP client for registry {registry}")]
    HttpClient {
        /// The registry.
        registry: String,
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry's TLS certificate was refused (unknown issuer, wrong host name,
    /// expired, self-signed and not in the CA directory): not retried, since another
    /// attempt gets the same certificate.
    #[error("TLS certificate of registry {registry} refused for {repository} {item}: {reason}")]
    Certificate {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was being fetched.
        item: String,
        /// The cause and what was trusted (the CA directory and how many certificates
        /// came from it).
        reason: String,
    },
    /// The registry could not be reached or the connection broke, after all retries.
    #[error("transport error talking to registry {registry} about {repository} {item} (after {attempts} attempt(s))")]
    Transport {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was being fetched: tag, manifest or blob digest.
        item: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status (5xx/429 after all retries, or an
    /// unexpected 4xx).
    #[error("registry {registry} answered {status} for {repository} {item}: {}", ErrorList(.errors))]
    Registry {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was being fetched.
        item: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error body, parsed.
        errors: Vec<RegistryErrorBody>,
    },
    /// Authentication failed or the registry refuses access.
    #[error("not authorized by registry {registry} for {repository} {item}: {reason}; {}", ErrorList(.errors))]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was being fetched.
        item: String,
        /// What went wrong (no credentials, token endpoint failed, ...).
        reason: String,
        /// The registry's error body, parsed.
        errors: Vec<RegistryErrorBody>,
    },
    /// A blob stream broke after the request succeeded (connection reset, disk error).
    #[error("reading blob from {registry} for {repository} {item} failed")]
    BlobStream {
        /// The registry (or layout directory).
        registry: String,
        /// The repository.
        repository: String,
        /// The blob and the image it belongs to.
        item: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The content does not hash to the digest the registry (or the layout) claims.
    #[error("digest mismatch from {registry} for {repository} {item}: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// The registry (or layout directory).
        registry: String,
        /// The repository.
        repository: String,
        /// What was fetched.
        item: String,
        /// The digest claimed by `Docker-Content-Digest` or by the reference.
        expected: String,
        /// The sha256 of the bytes received.
        actual: String,
    },
    /// The registry returned something that is not the protocol (bad tag list, bad Link,
    /// oversized manifest, ...).
    #[error("protocol error from registry {registry} for {repository} {item}: {reason}")]
    Protocol {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was being fetched.
        item: String,
        /// What is wrong.
        reason: String,
    },
    /// Two different images claim the same release version.
    #[error("version {version} is claimed by two different images: tag {first_tag} ({first_digest}) and tag {second_tag} ({second_digest})")]
    DuplicateVersion {
        /// The version, with the arch as build metadata.
        version: String,
        /// A tag of the first image.
        first_tag: String,
        /// The first image's manifest digest.
        first_digest: String,
        /// A tag of the second image.
        second_tag: String,
        /// The second image's manifest digest.
        second_digest: String,
    },
    /// An OCI image layout directory cannot be read.
    #[error("cannot read OCI image layout {path}: {reason}")]
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
