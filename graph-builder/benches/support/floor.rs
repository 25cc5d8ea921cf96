//! The registry's floor: the requests a scrape cannot do without, sent by a bare client
//! (no verification, no cache, no layer scan, nothing kept), at the scrape's
//! concurrency. A scrape can go no faster than this against the same registry on the
//! same machine, so the benchmark prints it beside the build's own times.
//!
//! Cold: per tag, its manifest; for an image, its config (the architecture) and its one
//! layer (the release-metadata); for an index, its last child's manifest and that
//! child's layer (a multi release's architecture is `multi`, so no config). Warm: one
//! `HEAD` per tag.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{stream, StreamExt as _, TryStreamExt as _};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The floor's cold and warm times.
pub struct Floor {
    pub cold: Duration,
    pub warm: Duration,
    pub requests: usize,
}

pub async fn measure(base: &str, repository: &str, concurrency: usize) -> anyhow::Result<Floor> {
    let http = reqwest::Client::new();
    let repo = format!("{base}/v2/{repository}");
    let tags = list_tags(&http, &repo).await?;
    let started = Instant::now();
    let requests: usize = stream::iter(&tags)
        .map(|tag| cold_tag(&http, &repo, tag))
        .buffer_unordered(concurrency)
        .try_fold(0, |n, k| async move { Ok(n + k) })
        .await?;
    let cold = started.elapsed();
    let started = Instant::now();
    stream::iter(&tags)
        .map(|tag| {
            let http = &http;
            let url = format!("{repo}/manifests/{tag}");
            async move {
                http.head(url)
                    .header("accept", ACCEPT)
                    .send()
                    .await?
                    .error_for_status()
            }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(Floor {
        cold,
        warm: started.elapsed(),
        requests,
    })
}

async fn list_tags(http: &reqwest::Client, repo: &str) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Tags {
        tags: Vec<String>,
    }
    let page: Tags = http
        .get(format!("{repo}/tags/list"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(page.tags)
}

#[derive(serde::Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

async fn get(http: &reqwest::Client, url: String) -> anyhow::Result<bytes::Bytes> {
    Ok(http
        .get(&url)
        .header("accept", ACCEPT)
        .send()
        .await?
        .error_for_status()
        .with_context(|| url.clone())?
        .bytes()
        .await?)
}

/// The requests of one tag; returns how many.
async fn cold_tag(http: &reqwest::Client, repo: &str, tag: &str) -> anyhow::Result<usize> {
    let mut manifest: Manifest =
        serde_json::from_slice(&get(http, format!("{repo}/manifests/{tag}")).await?)?;
    let mut requests = 1;
    if let Some(child) = manifest.manifests.last() {
        let url = format!("{repo}/manifests/{}", child.digest);
        manifest = serde_json::from_slice(&get(http, url).await?)?;
        requests += 1;
    } else if let Some(config) = &manifest.config {
        get(http, format!("{repo}/blobs/{}", config.digest)).await?;
        requests += 1;
    }
    let layer = manifest
        .layers
        .last()
        .context("a manifest without layers")?;
    get(http, format!("{repo}/blobs/{}", layer.digest)).await?;
    Ok(requests + 1)
}
