//! Pushing to a registry: blob existence checks, monolithic blob uploads and manifest
//! uploads (the distribution API's "pushing blobs" and "pushing manifests").
//!
//! The push client is the registry [`Client`] with a `pull,push` token scope: same
//! settings, credentials lookup, CA directory, retries, limits and errors. Blobs are
//! uploaded in one piece (`POST` then `PUT ?digest=`), which suits the small layers we push
//! (graph-data).

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::client::{Access, Client, ClientConfig, FetchedManifest, Session};
use super::error::{ErrorKind, RegistryError};
use super::manifest::sha256_digest;
use super::Target;

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
    pub fn parse(reference: &str) -> Result<ImageReference, RegistryError> {
        let invalid = |reason: &str| {
            RegistryError::setup(ErrorKind::InvalidSetting {
                field: "image reference",
                value: reference.to_string(),
                reason: reason.to_string(),
            })
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
    client: Client,
    session: Session,
}

impl PushClient {
    /// Reads the credentials file and CA directory and builds the HTTP client.
    pub fn new(
        registry: &str,
        repository: &str,
        config: ClientConfig,
    ) -> Result<PushClient, RegistryError> {
        let client = Client::with_access(registry, repository, config, Access::PullPush)?;
        let session = client.session()?;
        Ok(PushClient { client, session })
    }

    /// The same registry and settings for another repository (a base image to read).
    pub fn for_repository(&self, repository: &str) -> Result<PushClient, RegistryError> {
        let client = self.client.for_repository(repository)?;
        let session = client.session()?;
        Ok(PushClient { client, session })
    }

    /// The registry and repository pushed to.
    pub fn target(&self) -> &Target {
        self.client.target()
    }

    /// Whether the repository holds blob `digest` (`HEAD`).
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        let item = format!("blob {digest}");
        let url = self.session.repo_url(&format!("blobs/{digest}"));
        let response = self.session.send(Method::HEAD, url, None, &item).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.session.status_error(response, &item).await),
        }
    }

    /// Uploads `bytes` as one blob unless the repository has it; returns its digest.
    pub async fn push_blob(&self, bytes: Bytes) -> Result<String, RegistryError> {
        let digest = sha256_digest(&bytes);
        if self.blob_exists(&digest).await? {
            return Ok(digest);
        }
        let item = format!("blob {digest} upload");
        let start = self.session.repo_url("blobs/uploads/");
        let response = self
            .session
            .send_with(Method::POST, start.clone(), &item, |r| {
                r.header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.session.status_error(response, &item).await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.session
                    .protocol(&item, "202 without a Location header".to_string())
            })?;
        // Location may be absolute or relative to the request URL.
        let mut url = start.join(location).map_err(|e| {
            self.session
                .protocol(&item, format!("bad Location {location:?}: {e}"))
        })?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let response = self
            .session
            .send_with(Method::PUT, url, &item, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.session.status_error(response, &item).await);
        }
        Ok(digest)
    }

    /// Asks the registry to mount blob `digest` from repository `from` (same registry);
    /// `false` when it would rather have an upload (it then opened one, left unused).
    pub async fn mount_blob(&self, digest: &str, from: &str) -> Result<bool, RegistryError> {
        let item = format!("blob {digest} mount from {from}");
        let mut url = self.session.repo_url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let response = self
            .session
            .send_with(Method::POST, url, &item, |r| r.header(CONTENT_LENGTH, 0))
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(self.session.status_error(response, &item).await),
        }
    }

    /// Reads blob `digest` whole (up to the blob limit) and checks its digest: the base
    /// image layers to copy.
    pub async fn blob(&self, digest: &str) -> Result<Bytes, RegistryError> {
        let item = format!("blob {digest}");
        self.session
            .get_blob(digest, &item)
            .await?
            .ok_or_else(|| self.session.protocol(&item, "not found".to_string()))
    }

    /// Uploads a manifest under `tag` with its media type; returns its digest.
    pub async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(&body);
        let item = format!("tag {tag} manifest {digest}");
        let url = self.session.repo_url(&format!("manifests/{tag}"));
        let response = self
            .session
            .send_with(Method::PUT, url, &item, |r| {
                r.header(CONTENT_TYPE, media_type).body(body.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.session.status_error(response, &item).await);
        }
        Ok(digest)
    }

    /// Fetches a manifest by tag or digest (verified); `None` on 404.
    pub async fn manifest(&self, reference: &str) -> Result<Option<PulledManifest>, RegistryError> {
        let item = format!("manifest {reference}");
        let fetched = self.session.get_manifest(reference, &item).await?;
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
    pub async fn small_blob(&self, digest: &str) -> Result<Option<Bytes>, RegistryError> {
        self.session
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
