//! Fetching from the registry: tag pages (following `Link`), manifests (verified against
//! their digest), small blobs read whole (configs) and large blobs streamed (layers), each
//! read against its limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::client::{
    header_str, read_capped, BlobReadError, BlobStream, FetchedManifest, Head, Session,
    CONTENT_DIGEST,
};
use super::error::{ErrorKind, Limited, RegistryError};
use super::manifest::{sha256_digest, MANIFEST_ACCEPT};
use super::tags::{next_link, TagPage};
use super::verify::verified;

/// Page size asked for when listing tags; the `Link` header is followed regardless.
const TAG_PAGE_SIZE: usize = 1000;

/// A small document and the headers that matter.
struct Small {
    claimed: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Session {
    /// Every tag, following `Link` pagination wherever it points, up to `max_tags`.
    pub(crate) async fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        let limits = *self.limits();
        let mut url = self.repo_url("tags/list");
        url.set_query(Some(&format!("n={TAG_PAGE_SIZE}")));
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let item = format!("tag list page {url}");
            if !seen.insert(url.clone()) {
                return Err(self.protocol(&item, "pagination loops back".to_string()));
            }
            let response = self
                .send(Method::GET, url.clone(), Some("application/json"), &item)
                .await?;
            if !response.status().is_success() {
                return Err(self.status_error(response, &item).await);
            }
            let link = response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .find_map(|v| v.to_str().ok().and_then(next_link));
            let body = self
                .read_limited(response, &item, Limited::TagPage, limits.max_tag_page_bytes)
                .await?;
            let page: TagPage = serde_json::from_slice(&body)
                .map_err(|e| self.protocol(&item, format!("tag list is not JSON: {e}")))?;
            let listed = page.tags.unwrap_or_default();
            if listed.is_empty() && link.is_some() {
                // Pages without tags could link on for ever without reaching any cap.
                let reason = "lists no tag but links to another page".to_string();
                return Err(self.protocol(&item, reason));
            }
            tags.extend(listed);
            // Every page adds a tag or ends the list, so this also bounds the pages.
            if tags.len() as u64 > limits.max_tags {
                let kind = ErrorKind::TooLarge {
                    what: Limited::Tags,
                    limit: limits.max_tags,
                };
                return Err(self.error("tag list", kind));
            }
            match link {
                None => return Ok(tags),
                Some(next) => {
                    url = url
                        .join(&next)
                        .map_err(|e| self.protocol(&item, format!("bad Link {next:?}: {e}")))?;
                }
            }
        }
    }

    /// `HEAD /v2/<repo>/manifests/<tag>`: the cheap per-tag check of a warm scrape.
    /// `NoDigest` sends the caller to a GET.
    pub(crate) async fn head_manifest(&self, tag: &str) -> Result<Head, RegistryError> {
        let item = format!("tag {tag}");
        let url = self.repo_url(&format!("manifests/{tag}"));
        let response = self
            .send(Method::HEAD, url, Some(MANIFEST_ACCEPT), &item)
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Head::NotFound),
            s if s.is_success() => Ok(header_str(&response, CONTENT_DIGEST)
                .filter(|d| d.starts_with("sha256:"))
                .map_or(Head::NoDigest, Head::Digest)),
            // Some registries refuse HEAD (405) or answer it oddly; the GET that follows
            // either works or fails with an error body worth showing (HEAD has none).
            s if s.is_client_error() => {
                tracing::debug!(%item, status = %s, "HEAD refused; falling back to GET");
                Ok(Head::NoDigest)
            }
            _ => Err(self.status_error(response, &item).await),
        }
    }

    /// GETs a small document in full, against `limit`. A body that breaks mid-way is
    /// fetched again, like any transport error. `None` on 404.
    async fn get_small(
        &self,
        url: Url,
        accept: Option<&str>,
        item: &str,
        (what, limit): (Limited, u64),
    ) -> Result<Option<Small>, RegistryError> {
        let retry = *self.retry();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if what == Limited::Config {
                self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
            }
            let response = self.send(Method::GET, url.clone(), accept, item).await?;
            match response.status() {
                StatusCode::NOT_FOUND => return Ok(None),
                s if !s.is_success() => return Err(self.status_error(response, item).await),
                _ => {}
            }
            let claimed = header_str(&response, CONTENT_DIGEST);
            let content_type = header_str(&response, CONTENT_TYPE.as_str());
            match read_capped(response, limit).await {
                Ok(Some(body)) => {
                    return Ok(Some(Small {
                        claimed,
                        content_type,
                        body,
                    }))
                }
                Ok(None) => return Err(self.error(item, ErrorKind::TooLarge { what, limit })),
                Err(error) if retry.retries_after(attempt) => {
                    tracing::debug!(%item, attempt, error = %error, "retrying a broken body");
                    tokio::time::sleep(retry.delay(attempt)).await;
                }
                Err(source) => return Err(self.transport(item, attempt, source)),
            }
        }
    }

    fn check_digest(
        &self,
        item: &str,
        expected: String,
        actual: &str,
    ) -> Result<(), RegistryError> {
        if expected == actual {
            return Ok(());
        }
        let kind = ErrorKind::DigestMismatch {
            expected,
            actual: actual.to_string(),
        };
        Err(self.error(item, kind))
    }

    /// Fetches a manifest by tag or digest and verifies its digest: against the reference
    /// when it is a digest, else against `Docker-Content-Digest` when sent. `None` on 404.
    pub(crate) async fn get_manifest(
        &self,
        reference: &str,
        item: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let url = self.repo_url(&format!("manifests/{reference}"));
        let limit = (Limited::Manifest, self.limits().max_manifest_bytes);
        let Some(small) = self
            .get_small(url, Some(MANIFEST_ACCEPT), item, limit)
            .await?
        else {
            return Ok(None);
        };
        let actual = sha256_digest(&small.body);
        let expected = reference
            .starts_with("sha256:")
            .then(|| reference.to_string())
            .or(small.claimed.filter(|c| c.starts_with("sha256:")));
        if let Some(expected) = expected {
            self.check_digest(item, expected, &actual)?;
        }
        Ok(Some(FetchedManifest {
            digest: actual,
            content_type: small.content_type,
            body: small.body,
        }))
    }

    /// Fetches a small blob (an image config) and verifies it. `None` on 404.
    pub(crate) async fn get_small_blob(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Bytes>, RegistryError> {
        let url = self.repo_url(&format!("blobs/{digest}"));
        let limit = (Limited::Config, self.limits().max_config_bytes);
        let Some(small) = self.get_small(url, None, item, limit).await? else {
            return Ok(None);
        };
        self.counters
            .blob_bytes
            .fetch_add(small.body.len() as u64, Ordering::Relaxed);
        self.check_digest(item, digest.to_string(), &sha256_digest(&small.body))?;
        Ok(Some(small.body))
    }

    /// Opens a blob as a byte stream, checked against `digest` and, when given, the
    /// descriptor's `size` as it arrives ([`verified`]); bytes are counted as they arrive.
    /// A failure of the stream, a mismatch included, is a [`BlobReadError`] inside the
    /// `io::Error`. `None` on 404.
    pub(crate) async fn open_blob(
        &self,
        digest: &str,
        size: Option<u64>,
        item: &str,
    ) -> Result<Option<BlobStream>, RegistryError> {
        let Some(response) = self.blob_response(digest, item).await? else {
            return Ok(None);
        };
        let counters = Arc::clone(&self.counters);
        let stream = response
            .bytes_stream()
            .map_ok(move |chunk| {
                counters
                    .blob_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                chunk
            })
            .map_err(BlobReadError::wrap);
        Ok(Some(verified(Box::pin(stream), digest, size)))
    }

    /// Reads blob `digest` whole, up to `max_blob_bytes`, and checks its digest. A stream
    /// that breaks is read again from the start. `None` on 404.
    pub(crate) async fn get_blob(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Bytes>, RegistryError> {
        let retry = *self.retry();
        let limit = self.limits().max_blob_bytes;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(response) = self.blob_response(digest, item).await? else {
                return Ok(None);
            };
            match read_capped(response, limit).await {
                Ok(Some(body)) => {
                    self.counters
                        .blob_bytes
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    self.check_digest(item, digest.to_string(), &sha256_digest(&body))?;
                    return Ok(Some(body));
                }
                Ok(None) => {
                    let kind = ErrorKind::TooLarge {
                        what: Limited::Blob,
                        limit,
                    };
                    return Err(self.error(item, kind));
                }
                Err(error) if retry.retries_after(attempt) => {
                    tracing::debug!(%item, attempt, error = %error, "retrying a broken blob");
                    tokio::time::sleep(retry.delay(attempt)).await;
                }
                Err(source) => return Err(self.transport(item, attempt, source)),
            }
        }
    }

    async fn blob_response(
        &self,
        digest: &str,
        item: &str,
    ) -> Result<Option<Response>, RegistryError> {
        let url = self.repo_url(&format!("blobs/{digest}"));
        self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        let response = self.send(Method::GET, url, None, item).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(response)),
            _ => Err(self.status_error(response, item).await),
        }
    }
}
