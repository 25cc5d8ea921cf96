//! Streaming search of one image layer for `release-manifests/release-metadata`.
//!
//! The layer arrives as a byte stream (HTTP body or file). A small one (a release's
//! metadata layer) is read into memory and searched in place; a large one is read through
//! `StreamReader` -> `SyncIoBridge` on a blocking thread -> gzip (sniffed by magic bytes;
//! plain tar otherwise) -> `tar` entries. Reading stops at the first matching entry and the
//! stream is dropped, so peak memory is a few buffers, whatever the layer size (the
//! reference buffered whole layers, B §8.1).

use std::error::Error as StdError;
use std::io::{self, BufRead, BufReader, Read};

use bytes::Bytes;
use futures::Stream;

// Whoever made the stream marks a failure of its source (network or disk) with this, so
// that it can be told apart from a decoding error after the gzip and tar readers.
use crate::registry::BlobReadError as SourceError;

/// Largest release-metadata file we accept.
pub const METADATA_SIZE_CAP: u64 = 1024 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Why a layer could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The source failed mid-stream (connection reset, disk error): not the layer's fault.
    #[error("the layer stream broke")]
    Source(#[source] io::Error),
    /// The bytes are not a gzip or plain tar archive.
    #[error("the layer is not a readable tar archive (gzip or plain)")]
    Format(#[source] io::Error),
    /// The layer uses a compression we do not read (zstd). The image is reported invalid
    /// rather than skipped: it might be a release we cannot see into.
    #[error("the layer is {0}-compressed, which is not supported")]
    Unsupported(&'static str),
    /// The metadata file is bigger than [`METADATA_SIZE_CAP`].
    #[error("release-metadata is {size} bytes, larger than the {METADATA_SIZE_CAP} byte cap")]
    TooLarge {
        /// The size in the tar header.
        size: u64,
    },
}

fn classify(error: io::Error) -> LayerError {
    if caused_by_source(&error) {
        LayerError::Source(error)
    } else {
        LayerError::Format(error)
    }
}

/// Walks the chain; `io::Error::source` skips its own payload, so look inside it too.
fn caused_by_source(error: &io::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    for _ in 0..32 {
        let Some(e) = current else { return false };
        if e.is::<SourceError>() {
            return true;
        }
        let inner = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
        if let Some(inner) = inner {
            let inner: &(dyn StdError + 'static) = inner;
            if inner.is::<SourceError>() {
                return true;
            }
            current = inner.source();
        } else {
            current = e.source();
        }
    }
    false
}

/// Layers whose manifest size is at most this are read into memory and searched on the
/// calling task: no blocking thread (each brings its own malloc arena, which cost more
/// peak memory than the layer itself), for the common case of a release's metadata layer.
pub const INLINE_LAYER_CAP: u64 = 1024 * 1024;

/// Searches a layer stream; `Ok(None)` when the layer has no release-metadata. `size` is
/// the manifest's claim: small layers are searched in memory, others (and small ones that
/// turn out larger than claimed) stream through a blocking thread.
pub async fn find_release_metadata<S>(
    mut stream: S,
    size: Option<u64>,
) -> Result<Option<Vec<u8>>, LayerError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
{
    use futures::StreamExt as _;
    if size.is_some_and(|size| size <= INLINE_LAYER_CAP) {
        let mut head = Vec::new();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(LayerError::Source)?;
            total += chunk.len() as u64;
            head.push(chunk);
            if total > INLINE_LAYER_CAP {
                // Larger than the manifest said: stream the rest like a large layer.
                let rest = futures::stream::iter(head.into_iter().map(Ok)).chain(stream);
                return scan_on_blocking_thread(rest).await;
            }
        }
        return scan_layer(&head.concat()[..]);
    }
    scan_on_blocking_thread(stream).await
}

async fn scan_on_blocking_thread<S>(stream: S) -> Result<Option<Vec<u8>>, LayerError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
{
    let reader = tokio_util::io::StreamReader::new(stream);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || scan_layer(bridge))
        .await
        .map_err(|e| LayerError::Source(io::Error::other(e)))?
}

/// The blocking half: sniff the compression, walk the tar entries.
pub fn scan_layer(reader: impl Read) -> Result<Option<Vec<u8>>, LayerError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf().map_err(classify)?;
    if head.starts_with(&GZIP_MAGIC) {
        scan_tar(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Err(LayerError::Unsupported("zstd"))
    } else {
        scan_tar(reader)
    }
}

fn scan_tar(reader: impl Read) -> Result<Option<Vec<u8>>, LayerError> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(classify)? {
        let entry = entry.map_err(classify)?;
        let path = entry.path_bytes();
        let path = path.strip_prefix(b"./").unwrap_or(&path);
        if path != crate::scrape::release_metadata::METADATA_PATH.as_bytes()
            || !entry.header().entry_type().is_file()
        {
            continue;
        }
        let size = entry.size();
        if size > METADATA_SIZE_CAP {
            return Err(LayerError::TooLarge { size });
        }
        let mut content = Vec::with_capacity(size as usize);
        entry
            .take(METADATA_SIZE_CAP + 1)
            .read_to_end(&mut content)
            .map_err(classify)?;
        return Ok(Some(content));
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write as _;

    /// A tar archive holding `files`, in order.
    pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn finds_metadata_in_gzip_and_plain_tar_with_or_without_dot_slash() {
        let tar = tar_of(&[
            ("etc/other", b"x"),
            ("./release-manifests/release-metadata", b"{\"a\":1}"),
        ]);
        assert_eq!(scan_layer(&tar[..]).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(scan_layer(&gzip(&tar)[..]).unwrap().unwrap(), b"{\"a\":1}");
        let plain = tar_of(&[("release-manifests/release-metadata", b"m")]);
        assert_eq!(scan_layer(&plain[..]).unwrap().unwrap(), b"m");
    }

    #[test]
    fn other_layers_have_none_and_bad_ones_are_format_errors() {
        let tar = tar_of(&[("release-manifests/image-references", b"x")]);
        assert_eq!(scan_layer(&gzip(&tar)[..]).unwrap(), None);
        let mut broken = gzip(&tar);
        broken.truncate(broken.len() / 2);
        broken[12] ^= 0xff;
        assert!(matches!(
            scan_layer(&broken[..]),
            Err(LayerError::Format(_))
        ));
        assert!(matches!(
            scan_layer(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..]),
            Err(LayerError::Unsupported("zstd"))
        ));
    }

    #[test]
    fn oversized_metadata_is_refused() {
        let big = vec![b' '; METADATA_SIZE_CAP as usize + 1];
        let tar = tar_of(&[("release-manifests/release-metadata", &big)]);
        assert!(matches!(
            scan_layer(&tar[..]),
            Err(LayerError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn stream_errors_are_source_errors_and_reading_stops_early() {
        let tar = gzip(&tar_of(&[("release-manifests/release-metadata", b"m")]));
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from(tar[..10].to_vec())),
            Err(SourceError::wrap("connection reset")),
        ];
        let result = find_release_metadata(futures::stream::iter(chunks), None).await;
        assert!(matches!(result, Err(LayerError::Source(_))), "{result:?}");
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from(tar[..10].to_vec())),
            Err(SourceError::wrap("connection reset")),
        ];
        let result = find_release_metadata(futures::stream::iter(chunks), Some(100)).await;
        assert!(matches!(result, Err(LayerError::Source(_))), "{result:?}");

        // The metadata comes first; the stream after it must never be polled.
        let mut chunks: Vec<io::Result<Bytes>> = vec![Ok(Bytes::from(tar_of(&[(
            "release-manifests/release-metadata",
            b"m",
        )])))];
        chunks.extend((0..4).map(|_| Ok(Bytes::from(vec![0u8; 512]))));
        chunks.push(Err(SourceError::wrap("must not be reached")));
        let found = find_release_metadata(futures::stream::iter(chunks), None)
            .await
            .unwrap();
        assert_eq!(found.unwrap(), b"m");
    }

    #[tokio::test]
    async fn small_layers_are_searched_in_memory_and_larger_than_claimed_ones_still_work() {
        let tar = gzip(&tar_of(&[("release-manifests/release-metadata", b"m")]));
        let one = vec![Ok::<_, io::Error>(Bytes::from(tar.clone()))];
        let found = find_release_metadata(futures::stream::iter(one), Some(tar.len() as u64));
        assert_eq!(found.await.unwrap().unwrap(), b"m");

        // Claims to be small, is 2 MiB: the metadata sits behind the inline cap.
        let filler = vec![b'x'; 2 * INLINE_LAYER_CAP as usize];
        let big = tar_of(&[
            ("filler", &filler[..]),
            ("release-manifests/release-metadata", b"late"),
        ]);
        let chunks: Vec<io::Result<Bytes>> = big
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::from(c.to_vec())))
            .collect();
        let found = find_release_metadata(futures::stream::iter(chunks), Some(10));
        assert_eq!(found.await.unwrap().unwrap(), b"late");
    }
}
