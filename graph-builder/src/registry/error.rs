//! The registry client's one error type, [`RegistryError`], and the registry's error body
//! (`{"errors":[{code,message,detail}]}`).
//!
//! Every error says where it happened (the registry, the repository and the item: tag,
//! manifest or blob digest, upload, token) and what happened, as a typed [`ErrorKind`], so
//! a caller can tell a refused certificate from a 5xx without reading the message. The
//! message carries the kind's own text only: the underlying cause is the error's `source`
//! and is never repeated in the message, so a chain printed `a: b: c` says each thing once.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One entry of a registry's error body, as defined by the distribution API.
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

/// Parses a registry error body; anything that is not the API's envelope yields no entries.
pub fn parse_error_body(body: &[u8]) -> Vec<RegistryErrorBody> {
    serde_json::from_slice::<Envelope>(body)
        .map(|envelope| envelope.errors)
        .unwrap_or_default()
}

/// Joins error bodies for display; says so when the registry sent none.
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

/// What a size or count limit of the client applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limited {
    /// A manifest (image manifest, manifest list or index).
    Manifest,
    /// An image config blob.
    Config,
    /// One page of the tag list.
    TagPage,
    /// The number of tags in the repository.
    Tags,
    /// A token endpoint's answer.
    Token,
    /// A blob read whole (a base image layer being copied).
    Blob,
}

impl Limited {
    fn unit(self) -> &'static str {
        match self {
            Limited::Tags => "",
            _ => " bytes",
        }
    }
}

impl fmt::Display for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limited::Manifest => "the manifest is larger than",
            Limited::Config => "the config blob is larger than",
            Limited::TagPage => "the tag list page is larger than",
            Limited::Tags => "the repository lists more tags than",
            Limited::Token => "the token answer is larger than",
            Limited::Blob => "the blob is larger than",
        })
    }
}

/// What went wrong, by kind. The location is on [`RegistryError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting cannot be used as given (registry URL, repository, image reference,
    /// retry attempts).
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidSetting {
        /// `registry`, `repository`, `image reference`, ...
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The docker `config.json` could not be read or parsed.
    #[error("cannot use registry credentials file {}: {reason}", path.display())]
    Credentials {
        /// The credentials file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The CA certificate directory could not be walked.
    #[error("cannot read CA certificate directory {}", path.display())]
    CaDirectory {
        /// The directory (or a subdirectory of it).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS backend, certificates).
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The registry's TLS certificate was refused (unknown issuer, wrong host name,
    /// expired, self-signed and not in the CA directory): not retried, since another
    /// attempt gets the same certificate.
    #[error("TLS certificate refused: {reason}")]
    Certificate {
        /// The cause and what was trusted (the CA directory and how many certificates
        /// came from it).
        reason: String,
    },
    /// The registry could not be reached or the connection broke, after all retries.
    #[error("transport error after {attempts} attempt(s)")]
    Transport {
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer in time, after all retries: the whole request (connect, headers
    /// and body) has a deadline, and each read a timeout.
    #[error("no complete answer within the {}s request deadline (or a read stalled for {}s) after {attempts} attempt(s)", deadline.as_secs(), read_timeout.as_secs())]
    TimedOut {
        /// The per-request deadline.
        deadline: Duration,
        /// The per-read timeout.
        read_timeout: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last timeout.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status (5xx/429 after all retries, or an
    /// unexpected 4xx).
    #[error("answered {status}: {}", ErrorList(.errors))]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The registry's error body, parsed.
        errors: Vec<RegistryErrorBody>,
    },
    /// Authentication failed or the registry refuses access.
    #[error("not authorized: {reason}; {}", ErrorList(.errors))]
    Unauthorized {
        /// What went wrong (no credentials, token endpoint failed, ...).
        reason: String,
        /// The registry's error body, parsed.
        errors: Vec<RegistryErrorBody>,
    },
    /// A blob stream broke after the request succeeded, after all retries.
    #[error("the blob stream broke")]
    BlobStream(#[source] std::io::Error),
    /// The content does not hash to the digest the registry or the reference claims.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// The digest claimed by `Docker-Content-Digest` or by the reference.
        expected: String,
        /// The sha256 of the bytes received.
        actual: String,
    },
    /// A body or a count is over one of the client's limits; nothing more was read.
    #[error("{what} {limit}{}", what.unit())]
    TooLarge {
        /// What is limited.
        what: Limited,
        /// The limit (bytes, or tags).
        limit: u64,
    },
    /// The registry returned something that is not the protocol (bad tag list, bad
    /// `Link`, missing `Location`, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ErrorKind {
    /// A short, stable name of the cause, for a metric label.
    pub fn cause(&self) -> &'static str {
        match self {
            ErrorKind::InvalidSetting { .. } => "invalid_setting",
            ErrorKind::Credentials { .. } => "credentials",
            ErrorKind::CaDirectory { .. } => "ca_directory",
            ErrorKind::HttpClient(_) => "http_client",
            ErrorKind::Certificate { .. } => "certificate",
            ErrorKind::Transport { .. } => "transport",
            ErrorKind::TimedOut { .. } => "timed_out",
            ErrorKind::Status { .. } => "status",
            ErrorKind::Unauthorized { .. } => "unauthorized",
            ErrorKind::BlobStream(io) if mismatch_in(io) => "blob_mismatch",
            ErrorKind::BlobStream(_) => "blob_stream",
            ErrorKind::DigestMismatch { .. } => "digest_mismatch",
            ErrorKind::TooLarge { .. } => "too_large",
            ErrorKind::Protocol(_) => "protocol",
        }
    }
}

/// Whether a [`super::verify::BlobMismatch`] is somewhere in `error`'s chain.
fn mismatch_in(error: &std::io::Error) -> bool {
    blob_mismatch(error).is_some()
}

/// The [`super::verify::BlobMismatch`] somewhere in `error`'s chain, if any (an
/// `io::Error` hides its payload from `source`, so look inside each one).
pub(crate) fn blob_mismatch(error: &std::io::Error) -> Option<&super::verify::BlobMismatch> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    for _ in 0..32 {
        let e = current?;
        if let Some(mismatch) = e.downcast_ref::<super::verify::BlobMismatch>() {
            return Some(mismatch);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// How many registry errors of each cause a client has met since it was built: the
/// causes behind failed fetches, whatever the caller then made of them.
#[derive(Debug, Default)]
pub struct ErrorTally(std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>);

impl ErrorTally {
    pub(crate) fn count(&self, cause: &'static str) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(cause).or_default() += 1;
    }

    /// The counts so far, by cause.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.iter().map(|(cause, n)| (*cause, *n)).collect()
    }
}

/// A registry client failure: where it happened and what happened.
#[derive(Debug)]
pub struct RegistryError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    registry: String,
    repository: String,
    item: String,
    kind: ErrorKind,
}

impl RegistryError {
    /// An error about `item` of `repository` in `registry`.
    pub(crate) fn new(
        registry: impl Into<String>,
        repository: impl Into<String>,
        item: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        RegistryError(Box::new(Inner {
            registry: registry.into(),
            repository: repository.into(),
            item: item.into(),
            kind,
        }))
    }

    /// An error in the client's settings, before any registry is involved.
    pub(crate) fn setup(kind: ErrorKind) -> Self {
        RegistryError::new("", "", "", kind)
    }

    /// The registry (`host[:port]`); empty for a settings error.
    pub fn registry(&self) -> &str {
        &self.0.registry
    }

    /// The repository; empty when the error is not about one.
    pub fn repository(&self) -> &str {
        &self.0.repository
    }

    /// What was being fetched or pushed: `tag 4.14.3`, `blob sha256:...`, ...
    pub fn item(&self) -> &str {
        &self.0.item
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            registry,
            repository,
            item,
            kind,
        } = &*self.0;
        if !registry.is_empty() {
            write!(f, "registry {registry}")?;
            if !repository.is_empty() {
                write!(f, ", repository {repository}")?;
            }
            if !item.is_empty() {
                write!(f, ", {item}")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{kind}")
    }
}

impl std::error::Error for RegistryError {
    // The kind's message is already in ours; its cause comes next in the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_place_and_the_cause_is_not_repeated() {
        let io = std::io::Error::other("connection reset");
        let error = RegistryError::new(
            "127.0.0.1:5000",
            "ocp/release",
            "tag 4.14.3 layer sha256:ab",
            ErrorKind::BlobStream(io),
        );
        assert_eq!(
            error.to_string(),
            "registry 127.0.0.1:5000, repository ocp/release, tag 4.14.3 layer sha256:ab: the blob stream broke"
        );
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "connection reset");
        assert!(source.source().is_none());
        let limit = RegistryError::new(
            "r",
            "p",
            "tag list",
            ErrorKind::TooLarge {
                what: Limited::Tags,
                limit: 3,
            },
        );
        assert_eq!(
            limit.to_string(),
            "registry r, repository p, tag list: the repository lists more tags than 3"
        );
    }
}
