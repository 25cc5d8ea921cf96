//! The registry client: one [`Client`] built from one [`ClientConfig`] (credentials, CA
//! directory, retries, limits), used by the release scrape, the graph-data image source and
//! the push tool, and one error type, [`RegistryError`], saying where and what.
//!
//! - [`blocking`]: blob streams read on a blocking thread that stop with their caller,
//! - [`auth`]: docker `config.json` credentials and `WWW-Authenticate` challenges,
//! - [`ca`]: extra CA certificates from a directory,
//! - [`tls`]: which registry certificates are trusted, and refusals that say why not,
//! - `client`: the client, its settings and limits, requests, retries and redirects;
//!   `authorize`: where credentials go, and answering 401 challenges;
//!   `fetch`: tags, manifests and blobs,
//! - [`manifest`]: the four manifest kinds and digests,
//! - `verify`: streamed blobs checked against their digest and size,
//! - [`push`]: blob and manifest uploads (the graph-data image tool),
//! - [`error`]: [`RegistryError`], its [`ErrorKind`]s and the registry's error body.
//!
//! It knows nothing of releases: what the bytes mean is the scrape's business.

pub mod auth;
mod authorize;
pub mod blocking;
pub mod ca;
pub(crate) mod client;
pub mod error;
mod fetch;
pub mod manifest;
#[cfg(test)]
mod props;
pub mod push;
mod tags;
pub mod tls;
pub(crate) mod verify;

use url::Url;

pub use client::{BlobReadError, Client, ClientConfig, Limits, RetryPolicy};
pub use error::{ErrorKind, ErrorTally, Limited, RegistryError, RegistryErrorBody};

/// `url` with any `user:password@` replaced by `***@`, for logs, errors and status pages.
/// Works on anything URL-like (with or without a scheme), parseable or not.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A parsed registry target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `scheme://host[:port]/`, without any `user:password@`: the registry origin, the only
    /// place credentials are sent to.
    pub base: Url,
    /// A `user:password@` given in the registry URL: used when the credentials file has no
    /// entry, and never shown (its `Debug` hides the password).
    pub url_credentials: Option<auth::Credentials>,
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
                value: redact_url(registry),
                reason,
            })
        };
        let registry = registry.trim().trim_end_matches('/');
        let with_scheme = if registry.contains("://") {
            registry.to_string()
        } else {
            format!("https://{registry}")
        };
        let mut url = Url::parse(&format!("{with_scheme}/{}", repository.trim_matches('/')))
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
        let url_credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            auth::Credentials {
                username: decode(url.username()),
                password: decode(url.password().unwrap_or_default()),
            }
        });
        // Neither reqwest (which would send them to whatever the base is joined with) nor
        // a log ever sees them in the URL.
        let _ = url.set_username("");
        let _ = url.set_password(None);
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
            url_credentials,
            host,
            repository,
        })
    }

    /// Whether `url` is on the registry origin (scheme, host and port): the only URLs an
    /// `Authorization` header or Basic credentials are sent to. Plain http is therefore
    /// only ever given credentials when the registry itself was configured as `http://`.
    pub fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
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
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_url("https://u:p@host:5000/a@b"),
            "https://***@host:5000/a@b"
        );
        assert_eq!(redact_url("u:p@host/r"), "***@host/r");
        assert_eq!(redact_url("http://host:5000/x"), "http://host:5000/x");
        assert_eq!(redact_url("quay.io"), "quay.io");
    }

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
        let err = Target::parse("ftp://me:s3cret@x", "r")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("s3cret") && err.contains("ftp://***@x"),
            "{err}"
        );
        assert!(Target::parse("quay.io", "").is_err());
    }

    #[test]
    fn credentials_in_the_registry_url_are_taken_out_of_it() {
        let t = Target::parse("https://robot:s%40cret@mirror.example:8443", "ocp/release").unwrap();
        assert_eq!(t.base.as_str(), "https://mirror.example:8443/");
        assert_eq!(t.host, "mirror.example:8443");
        let c = t.url_credentials.clone().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("robot", "s@cret")
        );
        assert!(!format!("{t:?}").contains("s@cret"));
        let error = Target::parse("ftp://robot:s3cret@x", "r")
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("s3cret") && error.contains("***@x"),
            "{error}"
        );
        assert_eq!(
            Target::parse("quay.io", "a/b").unwrap().url_credentials,
            None
        );
    }

    #[test]
    fn redacted_urls_keep_everything_but_the_user_info() {
        assert_eq!(
            redact_url("https://u:p@r.example:5000/ns"),
            "https://***@r.example:5000/ns"
        );
        assert_eq!(redact_url("u:p@r.example/ns@x"), "***@r.example/ns@x");
        assert_eq!(redact_url("http://a:b@c@host/"), "http://***@host/");
        assert_eq!(redact_url("https://r.example/ns"), "https://r.example/ns");
        assert_eq!(redact_url("r.example:5000"), "r.example:5000");
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let t = Target::parse("https://mirror.example", "r").unwrap();
        let same = |u: &str| t.same_origin(&Url::parse(u).unwrap());
        assert!(same("https://mirror.example/v2/r/blobs/x"));
        assert!(same("https://MIRROR.example:443/token"));
        assert!(!same("http://mirror.example/v2/"));
        assert!(!same("https://mirror.example:8443/v2/"));
        assert!(!same("https://storage.example/blob"));
        assert!(!same("https://mirror.example.evil/v2/"));
    }
}
