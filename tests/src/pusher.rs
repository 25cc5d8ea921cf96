//! Pushes [`Artifact`]s into a [`TestRegistry`] through the distribution API, as
//! `skopeo copy` or `podman push` would: monolithic blob uploads (skipping blobs the
//! registry already has), then manifests by digest, then the tag.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Client, RequestBuilder, Response, StatusCode};

use crate::images::{Artifact, Blob, Image};
use crate::registry::{Credentials, TestRegistry};
use crate::HarnessError;

const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A registry client that writes images; uses the registry's credentials if it has any.
#[derive(Debug, Clone)]
pub struct Pusher {
    client: Client,
    base_url: String,
    credentials: Option<Credentials>,
}

impl Pusher {
    /// A pusher for `registry`, authenticating with its credentials if it is private.
    pub fn new(registry: &TestRegistry) -> Self {
        Self {
            // Bounded: a wedged registry fails the test instead of hanging it.
            client: client(registry),
            base_url: registry.base_url(),
            credentials: registry.credentials().cloned(),
        }
    }

    /// Pushes `artifact` (for an index: every image it lists, by digest, first) and tags
    /// it `tag`. Returns the digest the tag now points at.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<String, HarnessError> {
        match artifact {
            Artifact::Image(image) => {
                self.push_image_blobs(repository, image).await?;
                self.put_manifest(repository, tag, &image.media_type, &image.manifest)
                    .await?;
            }
            Artifact::Index(index) => {
                for image in &index.images {
                    self.push_image_blobs(repository, image).await?;
                    self.put_manifest(
                        repository,
                        &image.digest,
                        &image.media_type,
                        &image.manifest,
                    )
                    .await?;
                }
                self.put_manifest(repository, tag, &index.media_type, &index.manifest)
                    .await?;
            }
        }
        Ok(artifact.digest().to_owned())
    }

    /// Pushes a single image and tags it; shorthand for [`Pusher::push`].
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        image: &Image,
    ) -> Result<String, HarnessError> {
        self.push_image_blobs(repository, image).await?;
        self.put_manifest(repository, tag, &image.media_type, &image.manifest)
            .await?;
        Ok(image.digest.clone())
    }

    /// Uploads a blob unless the registry already has it in `repository`.
    pub async fn push_blob(&self, repository: &str, blob: &Blob) -> Result<(), HarnessError> {
        let url = format!("{}/v2/{repository}/blobs/{}", self.base_url, blob.digest);
        let response = self.send("HEAD", &url, self.client.head(&url)).await?;
        if response.status() == StatusCode::OK {
            return Ok(());
        }
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base_url);
        let response = self.send("POST", &start, self.client.post(&start)).await?;
        let response = expect_status(response, "POST", &start, StatusCode::ACCEPTED).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| HarnessError::NoUploadLocation {
                repository: repository.to_owned(),
                digest: blob.digest.clone(),
            })?;
        // distribution answers a path with a `_state` query: the digest goes after it.
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base_url)
        } else {
            location.to_owned()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", blob.digest);
        let request = self
            .client
            .put(&put)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(blob.data.clone());
        let response = self.send("PUT", &put, request).await?;
        expect_status(response, "PUT", &put, StatusCode::CREATED).await?;
        Ok(())
    }

    /// Puts manifest bytes under `reference` (a tag or a digest) with their media type.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), HarnessError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base_url);
        let request = self
            .client
            .put(&url)
            .header(CONTENT_TYPE, media_type)
            .body(manifest.to_vec());
        let response = self.send("PUT", &url, request).await?;
        expect_status(response, "PUT", &url, StatusCode::CREATED).await?;
        Ok(())
    }

    /// Deletes the manifest `digest` from `repository` (every tag pointing at it goes).
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<(), HarnessError> {
        let url = format!("{}/v2/{repository}/manifests/{digest}", self.base_url);
        let response = self.send("DELETE", &url, self.client.delete(&url)).await?;
        expect_status(response, "DELETE", &url, StatusCode::ACCEPTED).await?;
        Ok(())
    }

    /// Unlinks the blob `digest` from `repository`: it answers 404 until pushed again.
    pub async fn delete_blob(&self, repository: &str, digest: &str) -> Result<(), HarnessError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url);
        let response = self.send("DELETE", &url, self.client.delete(&url)).await?;
        expect_status(response, "DELETE", &url, StatusCode::ACCEPTED).await?;
        Ok(())
    }

    async fn push_image_blobs(&self, repository: &str, image: &Image) -> Result<(), HarnessError> {
        for blob in image.layers.iter().chain(std::iter::once(&image.config)) {
            self.push_blob(repository, blob).await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        method: &'static str,
        url: &str,
        request: RequestBuilder,
    ) -> Result<Response, HarnessError> {
        let request = match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        };
        request.send().await.map_err(|source| HarnessError::Http {
            method,
            url: url.to_owned(),
            source,
        })
    }
}

/// A client with bounded requests that trusts the registry's test CA, if it has one.
fn client(registry: &TestRegistry) -> Client {
    let mut builder = Client::builder().timeout(REQUEST_TIMEOUT);
    let ca = registry
        .tls()
        .map(|tls| reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()));
    if let Some(Ok(ca)) = ca {
        builder = builder.add_root_certificate(ca);
    }
    // The pusher only sets the scene; the certificate is under test elsewhere.
    if registry.serves_custom_certificate() {
        builder = builder.danger_accept_invalid_certs(true);
    }
    // Building fails only if the TLS backend cannot start; requests would then fail with
    // a message naming the URL, which is where a test wants to see it.
    builder.build().unwrap_or_default()
}

async fn expect_status(
    response: Response,
    method: &'static str,
    url: &str,
    expected: StatusCode,
) -> Result<Response, HarnessError> {
    if response.status() == expected {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(HarnessError::Status {
        method,
        url: url.to_owned(),
        status,
        body,
    })
}
