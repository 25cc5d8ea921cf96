//! The registry client: one [`Client`] built from one [`ClientConfig`] (credentials, CA
//! directory, retries, limits), used by the release scrape, the graph-data image source and
//! the push tool, and one error type, [`RegistryError`], saying where and what.
//!
//! - [`blocking`]: blob streams read on a blocking thread that stop with their caller,
//! - [`auth`]: docker `config.json` credentials and `WWW-Authenticate` challenges,
//! - [`ca`]: extra CA certificates from a directory,
//! - [`tls`]: which registry certificates are trusted, and refusals that say why not,
//! - `client`: the client, its settings and limits, requests, retries and authentication;
//!   `fetch`: tags, manifests and blobs,
//! - [`manifest`]: the four manifest kinds and digests,
//! - `verify`: streamed blobs checked against their digest and size,
//! - [`push`]: blob and manifest uploads (the graph-data image tool),
//! - [`error`]: [`RegistryError`], its [`ErrorKind`]s and the registry's error body.
//!
//! It knows nothing of releases: what the bytes mean is the scrape's business.

pub mod auth;
pub mod blocking;
pub mod ca;
pub(crate) mod client;
pub mod error;
mod fetch;
pub mod manifest;
pub mod push;
mod tags;
pub mod tls;
pub(crate) mod verify;

use url::Url;

pub use client::{BlobReadError, Client, ClientConfig, Limits, RetryPolicy};
pub use error::{ErrorKind, ErrorTally, Limited, RegistryError, RegistryErrorBody};

/// A parsed registry target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `scheme://host[:port]/`.
    pub base: Url,
    /// `host[:port]`, as it appears in pull specs and credential keys.
    pub host: String,
    /// The repository path, without leading or trailing slashes; a path given with the
    /// registry is prepended (`host/ns` + `repo` = `ns/repo`).
    pub repository: String,
}

impl Target {
    /// Parses `registry` + `/` + `repository`: no scheme means HTTPS, and a path given
    /// with the registry is prepended to the repository.
    pub fn parse(registry: &str, repository: &str) -> Result<Target, RegistryError> {
        let invalid = |reason: String| {
            RegistryError::setup(ErrorKind::InvalidSetting {
                field: "registry",
                value: registry.to_string(),
                reason,
            })
        };
        let registry = registry.trim().trim_end_matches('/');
        let with_scheme = if registry.contains("://") {
            registry.to_string()
        } else {
            format!("https://{registry}")
        };
        let url = Url::parse(&format!("{with_scheme}/{}", repository.trim_matches('/')))
            .map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid(format!(
                "scheme {:?} is neither http nor https",
                url.scheme()
            )));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(invalid("no host".to_string())),
        };
        let repository = url.path().trim_matches('/').to_string();
        if repository.is_empty() {
            return Err(RegistryError::setup(ErrorKind::InvalidSetting {
                field: "repository",
                value: repository,
                reason: "empty".to_string(),
            }));
        }
        let mut base = url;
        base.set_path("/");
        base.set_query(None);
        Ok(Target {
            base,
            host,
            repository,
        })
    }

    /// `host[:port]/repository@digest`, the pull spec of a release.
    pub fn payload(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.host, self.repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("quay.io", "openshift-release-dev/ocp-release").unwrap();
        assert_eq!(t.base.as_str(), "https://quay.io/");
        assert_eq!(
            t.payload("sha256:ab"),
            "quay.io/openshift-release-dev/ocp-release@sha256:ab"
        );
        let t = Target::parse("http://127.0.0.1:5000/", "/ocp/release/").unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(
            (t.host.as_str(), t.repository.as_str()),
            ("127.0.0.1:5000", "ocp/release")
        );
        let t = Target::parse("https://mirror.example:8443/ns", "release").unwrap();
        assert_eq!(
            (t.host.as_str(), t.repository.as_str()),
            ("mirror.example:8443", "ns/release")
        );
        assert!(Target::parse("ftp://x", "r").is_err());
        assert!(Target::parse("quay.io", "").is_err());
    }
}
