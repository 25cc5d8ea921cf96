//! Graph-data from a container image in a registry (SPEC B §3.1 "Container image", the
//! reference's `dkrv2-secondary-metadata-scrape`): the manifest of `repository:tag` is
//! fetched at each refresh; when its layer digests are those of the last download the
//! previous tarball is reused, otherwise every layer is streamed in order, keeping only
//! the graph-data files under `graph_data_path` (`/` for flat images, or
//! `/var/lib/cincinnati-graph-data` for the oc-mirror layout). Layer digests are verified
//! and whiteouts honoured. Registry access (credentials, CA directory, token) is the
//! release scraper's client.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::pack::{pack_entries, Entries, ROOT_FILES, YAML_DIRS};
use super::GraphDataError;
use crate::registry::auth::{credentials_for, SharedAuth};
use crate::registry::ca::load_ca_directory;
use crate::registry::client::{build_http_client, RegistryClient, RetryPolicy};
use crate::registry::manifest::{parse_manifest, Manifest};
use crate::registry::{ScrapeError, Target};

/// Largest graph-data file kept from a layer.
const FILE_CAP: u64 = 16 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where the graph-data image is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphDataImageSettings {
    /// Registry, with optional scheme, as for releases.
    pub registry: String,
    /// Repository of the image.
    pub repository: String,
    /// Tag (the reference's default is `latest`).
    pub tag: String,
    /// Docker `config.json`.
    pub credentials_path: Option<PathBuf>,
    /// Extra CA certificates.
    pub root_certificate_dir: Option<PathBuf>,
    /// The graph-data root inside the image: `/` or `/var/lib/cincinnati-graph-data`.
    pub graph_data_path: String,
    /// Where `graph-data.tar.gz` is also written after each download, if set.
    pub output_directory: Option<PathBuf>,
}

/// The last download: the layers it came from and the tarball made of them.
#[derive(Debug)]
struct Cached {
    layers: Vec<String>,
    tarball: Bytes,
}

/// A graph-data image source with its download cache.
#[derive(Debug)]
pub struct GraphDataImage {
    settings: GraphDataImageSettings,
    target: Target,
    root: Vec<String>,
    http: reqwest::Client,
    authorization: SharedAuth,
    cache: tokio::sync::Mutex<Option<Cached>>,
    downloads: AtomicU64,
}

impl GraphDataImage {
    /// Validates the target and loads the CA directory.
    pub fn new(settings: GraphDataImageSettings) -> Result<GraphDataImage, ScrapeError> {
        let target = Target::parse(&settings.registry, &settings.repository)?;
        let certificates = match &settings.root_certificate_dir {
            Some(dir) => load_ca_directory(dir)?.certificates,
            None => Vec::new(),
        };
        let http = build_http_client(&target.host, certificates)?;
        let root = Path::new(&settings.graph_data_path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        Ok(GraphDataImage {
            settings,
            target,
            root,
            http,
            authorization: Arc::default(),
            cache: tokio::sync::Mutex::default(),
            downloads: AtomicU64::new(0),
        })
    }

    /// `host/repository:tag`.
    pub fn reference(&self) -> String {
        format!(
            "{}/{}:{}",
            self.target.host, self.target.repository, self.settings.tag
        )
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

    fn registry_error(&self, source: ScrapeError) -> GraphDataError {
        GraphDataError::Registry {
            reference: self.reference(),
            source: Box::new(source),
        }
    }

    /// The image's graph-data as a tarball, downloading only when the layers changed.
    pub async fn fetch(&self) -> Result<Bytes, GraphDataError> {
        let credentials = match &self.settings.credentials_path {
            Some(path) => credentials_for(path, &self.target.host, &self.target.repository)
                .map_err(|e| self.registry_error(e))?,
            None => None,
        };
        let client = RegistryClient::new(
            self.http.clone(),
            self.target.clone(),
            credentials,
            Arc::clone(&self.authorization),
            RetryPolicy::default(),
        );
        let layers = self.layer_digests(&client).await?;
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.layers == layers) {
            tracing::debug!(image = %self.reference(), "graph-data image unchanged");
            return Ok(cached.tarball.clone());
        }
        let mut files = Entries::new();
        for digest in &layers {
            files = self.apply_layer(&client, digest, files).await?;
        }
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let tarball = Bytes::from(
            pack_entries(&files).map_err(|e| self.image_error(format!("cannot pack: {e}")))?,
        );
        if let Some(dir) = &self.settings.output_directory {
            write_tarball(dir, &tarball)?;
        }
        tracing::info!(image = %self.reference(), layers = layers.len(), files = files.len(), "graph-data image downloaded");
        *cache = Some(Cached {
            layers,
            tarball: tarball.clone(),
        });
        Ok(tarball)
    }

    /// The layer digests of the tag, base first. For an index, the linux/amd64 entry (or
    /// the first platform): graph-data is the same on every platform.
    async fn layer_digests(&self, client: &RegistryClient) -> Result<Vec<String>, GraphDataError> {
        let tag = &self.settings.tag;
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
                    return Ok(image.layers.into_iter().map(|l| l.digest).collect())
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
        client: &RegistryClient,
        digest: &str,
        files: Entries,
    ) -> Result<Entries, GraphDataError> {
        let stream = client
            .open_blob(digest, digest)
            .await
            .map_err(|e| self.registry_error(e))?
            .ok_or_else(|| self.image_error(format!("layer {digest} not found")))?;
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let root = self.root.clone();
        let expected = digest.to_owned();
        tokio::task::spawn_blocking(move || extract(reader, &root, &expected, files))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            .map_err(|e| self.image_error(format!("layer {digest}: {e}")))
    }
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

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies one layer to `files` (paths relative to the graph-data root): keeps the
/// graph-data files under `root`, applies whiteouts, and checks the layer digest.
pub(super) fn extract(
    reader: impl Read,
    root: &[String],
    digest: &str,
    mut files: Entries,
) -> std::io::Result<Entries> {
    let mut hashing = Hashing {
        inner: reader,
        hasher: Sha256::new(),
    };
    {
        let mut buffered = BufReader::with_capacity(64 * 1024, &mut hashing);
        let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        let decoded: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(decoded);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let Some(parts) = normal_parts(&entry.path_bytes()) else {
                continue;
            };
            let Some(rel) = parts.strip_prefix(root) else {
                continue;
            };
            if let Some((name, parent)) = rel.split_last() {
                if let Some(hidden) = name.strip_prefix(".wh.") {
                    whiteout(&mut files, parent, hidden);
                    continue;
                }
            }
            let kind = entry.header().entry_type();
            let rel = rel.join("/");
            if kind.is_dir() && wanted(&rel, true) {
                files.insert(rel, None);
            } else if kind.is_file() && wanted(&rel, false) {
                if entry.size() > FILE_CAP {
                    return Err(std::io::Error::other(format!(
                        "{rel} is larger than {FILE_CAP} bytes"
                    )));
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes)?;
                files.insert(rel, Some(bytes));
            }
        }
        // Hash what the tar reader left unread (padding, trailing blocks).
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    }
    let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    if actual != digest {
        return Err(std::io::Error::other(format!(
            "content digest is {actual}, not the layer digest"
        )));
    }
    Ok(files)
}

/// The normal components of a tar path; `None` for `..` (never extracted).
fn normal_parts(path: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(path).ok()?;
    let mut parts = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(parts)
}

/// Whether a path relative to the graph-data root is part of graph-data: the root files,
/// the two YAML directories and their direct children.
fn wanted(rel: &str, is_dir: bool) -> bool {
    if !is_dir && ROOT_FILES.contains(&rel) {
        return true;
    }
    match rel.split_once('/') {
        None => is_dir && YAML_DIRS.contains(&rel),
        Some((dir, name)) => YAML_DIRS.contains(&dir) && !name.contains('/'),
    }
}

/// `parent/.wh.name` deletes `parent/name` from lower layers; `.wh..wh..opq` empties
/// `parent`.
fn whiteout(files: &mut Entries, parent: &[String], hidden: &str) {
    let parent = parent.join("/");
    let target = match hidden {
        ".wh..opq" => parent.clone(),
        name if parent.is_empty() => name.to_owned(),
        name => format!("{parent}/{name}"),
    };
    let opaque = hidden == ".wh..opq";
    files.retain(|path, _| {
        let inside = target.is_empty() || path.starts_with(&format!("{target}/"));
        !(inside || (!opaque && *path == target))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            match content {
                Some(c) => {
                    header.set_size(c.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(&mut header, path, c.as_bytes()).unwrap();
                }
                None => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    fn apply(bytes: &[u8], root: &[&str], files: Entries) -> std::io::Result<Entries> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let root: Vec<String> = root.iter().map(|s| s.to_string()).collect();
        extract(bytes, &root, &digest, files)
    }

    #[test]
    fn keeps_only_graph_data_under_the_root_and_honours_whiteouts() {
        let root = ["var", "lib", "cincinnati-graph-data"];
        let base = layer(&[
            ("etc/os-release", Some("ID=ubi")),
            ("var/lib/cincinnati-graph-data/version", Some("1.1.0\n")),
            ("./var/lib/cincinnati-graph-data/channels/", None),
            (
                "var/lib/cincinnati-graph-data/channels/a-4.1.yaml",
                Some("a"),
            ),
            (
                "var/lib/cincinnati-graph-data/channels/b-4.1.yaml",
                Some("b"),
            ),
            (
                "var/lib/cincinnati-graph-data/channels/deep/c.yaml",
                Some("c"),
            ),
            ("var/lib/cincinnati-graph-data/README.md", Some("r")),
            (
                "var/lib/cincinnati-graph-data/raw/metadata.json",
                Some("{}"),
            ),
        ]);
        let files = apply(&base, &root, Entries::new()).unwrap();
        let names: Vec<_> = files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "channels",
                "channels/a-4.1.yaml",
                "channels/b-4.1.yaml",
                "raw/metadata.json",
                "version"
            ]
        );
        let top = layer(&[
            (
                "var/lib/cincinnati-graph-data/channels/.wh.a-4.1.yaml",
                Some(""),
            ),
            ("var/lib/cincinnati-graph-data/version", Some("1.2.0\n")),
        ]);
        let files = apply(&top, &root, files).unwrap();
        assert!(!files.contains_key("channels/a-4.1.yaml"));
        assert!(files.contains_key("channels/b-4.1.yaml"));
        assert_eq!(files["version"].as_deref(), Some(&b"1.2.0\n"[..]));
        let opaque = layer(&[(
            "var/lib/cincinnati-graph-data/channels/.wh..wh..opq",
            Some(""),
        )]);
        let files = apply(&opaque, &root, files).unwrap();
        assert!(
            !files.keys().any(|k| k.starts_with("channels/")),
            "{files:?}"
        );
    }

    #[test]
    fn flat_images_and_digest_mismatches() {
        let flat = layer(&[
            ("version", Some("1.1.0\n")),
            ("blocked-edges/x.yaml", Some("x")),
        ]);
        let files = apply(&flat, &[], Entries::new()).unwrap();
        assert_eq!(files.len(), 2);
        let err = extract(&flat[..], &[], "sha256:00", Entries::new()).unwrap_err();
        assert!(err.to_string().contains("not the layer digest"), "{err}");
    }
}
