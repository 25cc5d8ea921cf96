//! Graph-data from a container image in a registry (the
//! reference's `dkrv2-secondary-metadata-scrape`): the manifest of `repository:tag` is
//! fetched at each refresh; when its layer digests are those of the last download the
//! previous tarball is reused, otherwise every layer is streamed in order, keeping only
//! the graph-data files under `graph_data_path` (`/` for flat images, or
//! `/var/lib/cincinnati-graph-data` for the oc-mirror layout). Layer digests are verified
//! and whiteouts honoured. Registry access is the same [`Client`] as the release
//! scraper's.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::pack::{pack_entries, Entries};
use super::unpack::extract;
use super::GraphDataError;
use crate::registry::blocking::read_on_blocking_thread;
use crate::registry::client::Session;
use crate::registry::error::blob_mismatch;
use crate::registry::manifest::{parse_manifest, Manifest};
use crate::registry::{Client, ClientConfig, RegistryError};

/// Where the graph-data image is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphDataImageSettings {
    /// Registry, with optional scheme, as for releases.
    pub registry: String,
    /// Repository of the image.
    pub repository: String,
    /// Tag (the reference's default is `latest`).
    pub tag: String,
    /// Credentials, CA directory, retries and limits of the registry client.
    pub client: ClientConfig,
    /// The graph-data root inside the image: `/` or `/var/lib/cincinnati-graph-data`.
    pub graph_data_path: String,
    /// Where `graph-data.tar.gz` is also written after each download, if set.
    pub output_directory: Option<PathBuf>,
}

/// A layer of the image: its digest and, when the manifest gives it, its size.
type LayerRef = (String, Option<u64>);

/// The last download: the layers it came from and the tarball made of them.
#[derive(Debug)]
struct Cached {
    layers: Vec<LayerRef>,
    tarball: Bytes,
}

/// A graph-data image source with its download cache.
#[derive(Debug)]
pub struct GraphDataImage {
    tag: String,
    output_directory: Option<PathBuf>,
    client: Client,
    root: Vec<String>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    downloads: AtomicU64,
}

impl GraphDataImage {
    /// Validates the target and loads the CA directory.
    pub fn new(settings: GraphDataImageSettings) -> Result<GraphDataImage, RegistryError> {
        let client = Client::new(&settings.registry, &settings.repository, settings.client)?;
        let root = Path::new(&settings.graph_data_path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        Ok(GraphDataImage {
            tag: settings.tag,
            output_directory: settings.output_directory,
            client,
            root,
            cache: tokio::sync::Mutex::default(),
            downloads: AtomicU64::new(0),
        })
    }

    /// `host/repository:tag`.
    pub fn reference(&self) -> String {
        let target = self.client.target();
        format!("{}/{}:{}", target.host, target.repository, self.tag)
    }

    /// How many times the layers were downloaded.
    pub fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    fn image_error(&self, reason: impl Into<String>) -> GraphDataError {
        GraphDataError::Image {
            reference: self.reference(),
            reason: reason.into(),
        }
    }

    fn registry_error(&self, source: RegistryError) -> GraphDataError {
        GraphDataError::Registry {
            reference: self.reference(),
            source,
        }
    }

    /// The image's graph-data as a tarball, downloading only when the layers changed.
    pub async fn fetch(&self) -> Result<Bytes, GraphDataError> {
        let client = self.client.session().map_err(|e| self.registry_error(e))?;
        let layers = self.layers(&client).await?;
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.layers == layers) {
            tracing::debug!(image = %self.reference(), "graph-data image unchanged");
            return Ok(cached.tarball.clone());
        }
        let mut files = Entries::new();
        for (digest, size) in &layers {
            files = self.apply_layer(&client, digest, *size, files).await?;
        }
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let file_count = files.len();
        // Gzip and the file write are blocking work: off the async workers.
        let output_directory = self.output_directory.clone();
        let packed = tokio::task::spawn_blocking(move || {
            let tarball = Bytes::from(pack_entries(&files).map_err(PackFailure::Pack)?);
            if let Some(dir) = &output_directory {
                write_tarball(dir, &tarball).map_err(PackFailure::Write)?;
            }
            Ok(tarball)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let tarball = match packed {
            Ok(tarball) => tarball,
            Err(PackFailure::Write(error)) => return Err(error),
            Err(PackFailure::Pack(e)) => return Err(self.image_error(format!("cannot pack: {e}"))),
        };
        tracing::info!(image = %self.reference(), layers = layers.len(), files = file_count, "graph-data image downloaded");
        *cache = Some(Cached {
            layers,
            tarball: tarball.clone(),
        });
        Ok(tarball)
    }

    /// The layers of the tag, base first. For an index, the linux/amd64 entry (or
    /// the first platform): graph-data is the same on every platform.
    async fn layers(&self, client: &Session) -> Result<Vec<LayerRef>, GraphDataError> {
        let tag = &self.tag;
        let mut manifest = client
            .get_manifest(tag, tag)
            .await
            .map_err(|e| self.registry_error(e))?
            .ok_or_else(|| self.image_error("no such tag"))?;
        for _ in 0..2 {
            let parsed = parse_manifest(manifest.content_type.as_deref(), &manifest.body)
                .map_err(|e| self.image_error(e))?;
            match parsed {
                Manifest::Image(image) => {
                    return Ok(image
                        .layers
                        .into_iter()
                        .map(|l| (l.digest, l.size))
                        .collect())
                }
                Manifest::Index(index) => {
                    let platforms: Vec<_> = index
                        .manifests
                        .into_iter()
                        .filter(|e| !e.is_attestation())
                        .collect();
                    let entry = platforms
                        .iter()
                        .find(|e| {
                            e.platform
                                .as_ref()
                                .is_some_and(|p| p.architecture == "amd64" && p.os == "linux")
                        })
                        .or(platforms.first())
                        .ok_or_else(|| self.image_error("the index lists no image"))?;
                    manifest = client
                        .get_manifest(&entry.digest, &entry.digest)
                        .await
                        .map_err(|e| self.registry_error(e))?
                        .ok_or_else(|| {
                            self.image_error(format!("index entry {} not found", entry.digest))
                        })?;
                }
                Manifest::Unsupported(media_type) => {
                    return Err(self.image_error(format!("unsupported manifest type {media_type}")))
                }
            }
        }
        Err(self.image_error("an index points at another index"))
    }

    async fn apply_layer(
        &self,
        client: &Session,
        digest: &str,
        size: Option<u64>,
        files: Entries,
    ) -> Result<Entries, GraphDataError> {
        // Checked against the digest and size as it streams: a layer that hashes otherwise,
        // ends short or runs long fails its last read.
        let stream = client
            .open_blob(digest, size, digest)
            .await
            .map_err(|e| self.registry_error(e))?
            .ok_or_else(|| self.image_error(format!("layer {digest} not found")))?;
        let root = self.root.clone();
        // Dropping this future (a timed-out refresh) stops the thread and the download.
        read_on_blocking_thread(stream, move |reader, stop| {
            extract(reader, &root, files, Some(&stop))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(|e| match blob_mismatch(&e) {
            Some(mismatch) => self.image_error(format!("layer {digest}: {mismatch}")),
            None => self.image_error(format!("layer {digest}: {e}")),
        })
    }
}

/// Why the downloaded files could not be packed or written.
enum PackFailure {
    Pack(std::io::Error),
    Write(GraphDataError),
}

/// Writes `<dir>/graph-data.tar.gz` through a temporary file, so readers never see half.
fn write_tarball(dir: &Path, tarball: &[u8]) -> Result<(), GraphDataError> {
    let path = dir.join("graph-data.tar.gz");
    let tmp = dir.join(".graph-data.tar.gz.tmp");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, tarball))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| GraphDataError::Read { path, source })
}
