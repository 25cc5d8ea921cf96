//! Pushing to a registry: blob existence checks, monolithic blob uploads and manifest
//! uploads (OCI distribution spec, "Pushing blobs" and "Pushing manifests").
//!
//! The push client is the scrape client with a `pull,push` token scope: same credentials
//! file lookup, CA directory, retries and error bodies. Blobs are uploaded in one piece
//! (`POST` then `PUT ?digest=`), which suits the small layers we push (graph-data).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::auth::credentials_for;
use super::ca::load_ca_directory;
use super::client::{build_http_client, FetchedManifest, RegistryClient, RetryPolicy};
use super::error::ScrapeError;
use super::manifest::sha256_digest;
use super::Target;

/// Where to push, and with which credentials and CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// `host[:port]` (HTTPS), or `http://host:port` for a plain-HTTP registry.
    pub registry: String,
    /// `openshift/graph-image`.
    pub repository: String,
    /// A docker `config.json`.
    pub credentials_path: Option<PathBuf>,
    /// Extra CA certificates (every PEM bundle below it, two levels deep).
    pub root_certificate_dir: Option<PathBuf>,
}

/// A `[scheme://]host[:port]/repository:tag` reference split in three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]`, with its scheme if one was given.
    pub registry: String,
    /// The repository path.
    pub repository: String,
    /// The tag.
    pub tag: String,
}

impl ImageReference {
    /// Parses `[scheme://]host[:port]/repository:tag`; the tag is required.
    pub fn parse(reference: &str) -> Result<ImageReference, ScrapeError> {
        let invalid = |reason: &str| ScrapeError::InvalidSettings {
            field: "image reference",
            value: reference.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = match reference.split_once("://") {
            Some((scheme, rest)) => (format!("{scheme}://"), rest),
            None => (String::new(), reference),
        };
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("no repository after the registry host"))?;
        let (repository, tag) = path
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .ok_or_else(|| invalid("no `:tag` at the end"))?;
        if host.is_empty() || repository.is_empty() || tag.is_empty() || repository.contains('@') {
            return Err(invalid("expected [scheme://]host[:port]/repository:tag"));
        }
        Ok(ImageReference {
            registry: format!("{scheme}{host}"),
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// A manifest as read from the registry.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// Its digest.
    pub digest: String,
    /// The `Content-Type` the registry sent.
    pub content_type: Option<String>,
    /// The bytes.
    pub body: Bytes,
}

/// A registry session that may push to one repository.
#[derive(Debug)]
pub struct PushClient {
    client: RegistryClient,
}

impl PushClient {
    /// Reads the credentials file and CA directory and builds the HTTP client.
    pub fn new(settings: &PushSettings) -> Result<PushClient, ScrapeError> {
        let target = Target::parse(&settings.registry, &settings.repository)?;
        let ca = match &settings.root_certificate_dir {
            Some(dir) => load_ca_directory(dir)?,
            None => Default::default(),
        };
        let http = build_http_client(&target.host, &ca)?;
        let credentials = match &settings.credentials_path {
            Some(path) => credentials_for(path, &target.host, &target.repository)?,
            None => None,
        };
        let mut client = RegistryClient::new(
            http,
            target,
            credentials,
            Arc::default(),
            RetryPolicy::default(),
        );
        client.actions = "pull,push";
        Ok(PushClient { client })
    }

    /// The registry and repository pushed to.
    pub fn target(&self) -> &Target {
        self.client.target()
    }

    /// Whether the repository holds blob `digest` (`HEAD`).
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, ScrapeError> {
        let item = format!("blob {digest}");
        let url = self.client.repo_url(&format!("blobs/{digest}"));
        let response = self.client.send(Method::HEAD, url, None, &item).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.client.status_error(response, &item).await),
        }
    }

    /// Uploads `bytes` as one blob unless the repository has it; returns its digest.
    pub async fn push_blob(&self, bytes: Bytes) -> Result<String, ScrapeError> {
        let digest = sha256_digest(&bytes);
        if self.blob_exists(&digest).await? {
            return Ok(digest);
        }
        let item = format!("blob {digest} upload");
        let start = self.client.repo_url("blobs/uploads/");
        let response = self
            .client
            .send_with(Method::POST, start.clone(), &item, |r| {
                r.header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.client.status_error(response, &item).await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.client
                    .protocol(&item, "202 without a Location header".to_string())
            })?;
        // Location may be absolute or relative to the request URL.
        let mut url = start.join(location).map_err(|e| {
            self.client
                .protocol(&item, format!("bad Location {location:?}: {e}"))
        })?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let response = self
            .client
            .send_with(Method::PUT, url, &item, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.client.status_error(response, &item).await);
        }
        Ok(digest)
    }

    /// Asks the registry to mount blob `digest` from repository `from` (same registry);
    /// `false` when it would rather have an upload (it then opened one, left unused).
    pub async fn mount_blob(&self, digest: &str, from: &str) -> Result<bool, ScrapeError> {
        let item = format!("blob {digest} mount from {from}");
        let mut url = self.client.repo_url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let response = self
            .client
            .send_with(Method::POST, url, &item, |r| r.header(CONTENT_LENGTH, 0))
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(self.client.status_error(response, &item).await),
        }
    }

    /// Reads blob `digest` whole and checks its digest (base image layers to copy).
    pub async fn blob(&self, digest: &str) -> Result<Bytes, ScrapeError> {
        use futures::TryStreamExt as _;
        let item = format!("blob {digest}");
        let stream = self
            .client
            .open_blob(digest, &item)
            .await?
            .ok_or_else(|| self.client.protocol(&item, "not found".to_string()))?;
        let chunks: Vec<Bytes> = stream.try_collect().await.map_err(|e| {
            self.client
                .protocol(&item, format!("the blob stream broke: {e}"))
        })?;
        let bytes = Bytes::from(chunks.concat());
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ScrapeError::DigestMismatch {
                registry: self.client.target.host.clone(),
                repository: self.client.target.repository.clone(),
                item,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Uploads a manifest under `tag` with its media type; returns its digest.
    pub async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<String, ScrapeError> {
        let digest = sha256_digest(&body);
        let item = format!("tag {tag} manifest {digest}");
        let url = self.client.repo_url(&format!("manifests/{tag}"));
        let response = self
            .client
            .send_with(Method::PUT, url, &item, |r| {
                r.header(CONTENT_TYPE, media_type).body(body.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.client.status_error(response, &item).await);
        }
        Ok(digest)
    }

    /// Fetches a manifest by tag or digest (verified); `None` on 404.
    pub async fn manifest(&self, reference: &str) -> Result<Option<PulledManifest>, ScrapeError> {
        let item = format!("manifest {reference}");
        let fetched = self.client.get_manifest(reference, &item).await?;
        Ok(fetched.map(
            |FetchedManifest {
                 digest,
                 content_type,
                 body,
             }| PulledManifest {
                digest,
                content_type,
                body,
            },
        ))
    }

    /// Fetches a small blob (an image config), verified; `None` on 404.
    pub async fn small_blob(&self, digest: &str) -> Result<Option<Bytes>, ScrapeError> {
        self.client
            .get_small_blob(digest, &format!("blob {digest}"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageReference::parse("127.0.0.1:5000/openshift/graph-image:latest").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "openshift/graph-image", "latest")
        );
        let r = ImageReference::parse("http://127.0.0.1:5000/g:v1").unwrap();
        assert_eq!(r.registry, "http://127.0.0.1:5000");
        assert!(ImageReference::parse("127.0.0.1:5000/graph-image").is_err());
        assert!(ImageReference::parse("graph-image:latest").is_err());
        assert!(ImageReference::parse("h/r@sha256:ab").is_err());
    }
}
