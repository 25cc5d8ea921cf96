//! Streaming search of one image layer for `release-manifests/release-metadata`.
//!
//! The layer arrives as a byte stream (HTTP body or file). A small one (a release's
//! metadata layer) is read into memory and searched in place; a large one is read through
//! `StreamReader` -> `SyncIoBridge` on a blocking thread -> gzip (sniffed by magic bytes,
//! [`crate::oci_layer::decompress`]; plain tar otherwise) -> `tar` entries. Reading stops at the first matching entry and the
//! stream is dropped, so peak memory is a few buffers, whatever the layer size (the
//! reference buffered whole layers). Tar records are read raw, each long-name or PAX
//! record capped before it is read (`graph_data::bounded_tar`), and a layer may
//! decompress to at most [`LAYER_DECOMPRESSED_CAP`] bytes (a small layer searched in place,
//! at most 64 MiB before it moves to a blocking thread).

use std::error::Error as StdError;
use std::io::{self, Read};

use bytes::Bytes;
use futures::Stream;
use graph_data::bounded_tar::{self, HeaderLimits, Limited, TarError};

// Whoever made the stream marks a failure of its source (network or disk) with this, so
// that it can be told apart from a decoding error after the gzip and tar readers.
use crate::oci_layer::{decompress, entry_whiteout, Decoded};
use crate::registry::blocking::{read_on_blocking_thread, Stop};
use crate::registry::BlobReadError as SourceError;

/// Largest release-metadata file we accept.
pub const METADATA_SIZE_CAP: u64 = 1024 * 1024;

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
    /// A tar record is above its cap (long name, PAX header), unsupported (extended
    /// sparse, PAX size override), or the layer decompresses past
    /// [`LAYER_DECOMPRESSED_CAP`].
    #[error("the layer is refused: {0}")]
    Header(#[source] TarError),
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

/// What one layer holds of `release-manifests/release-metadata`.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The file, with these bytes.
    Metadata(Vec<u8>),
    /// Neither the file nor a whiteout of it.
    Nothing,
    /// A whiteout (`release-manifests/.wh.release-metadata`, `.wh.release-manifests`, an
    /// opaque `release-manifests/.wh..wh..opq` or a root-level opaque `.wh..wh..opq`):
    /// the file is deleted from every layer below, as a container runtime would see the
    /// image. The rule is the graph-data unpacking's ([`crate::oci_layer::whiteout`]).
    Deleted,
}

/// Whether the layer entry at `path` is a whiteout hiding the release-metadata file of
/// lower layers.
fn hides_metadata(path: &[u8]) -> bool {
    // Most entries are not whiteouts: tell them by name before any allocation.
    let name = path.rsplit(|b| *b == b'/').find(|n| !n.is_empty());
    if !name.is_some_and(|n| n.starts_with(b".wh.")) {
        return false;
    }
    let (dir, file) = crate::scrape::release_metadata::METADATA_PATH
        .split_once('/')
        .expect("the metadata path is dir/file");
    entry_whiteout(&[dir.to_owned()], path).is_some_and(|w| w.hides(file))
}

/// Searches a layer stream (see [`Scan`]). `size` is
/// the manifest's claim: small layers are searched in memory, others (and small ones that
/// turn out larger than claimed) stream through a blocking thread.
pub async fn find_release_metadata<S>(mut stream: S, size: Option<u64>) -> Result<Scan, LayerError>
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
        let bytes = Bytes::from(head.concat());
        return match scan(&bytes[..], None, INLINE_DECOMPRESSED_CAP) {
            // A small layer that inflates a lot (a gzip bomb) is searched again where
            // it can take its time and be stopped: not on an async worker.
            Err(e) if over_cap(&e, INLINE_DECOMPRESSED_CAP) => {
                scan_on_blocking_thread(futures::stream::iter([Ok(bytes)])).await
            }
            scanned => scanned,
        };
    }
    scan_on_blocking_thread(stream).await
}

async fn scan_on_blocking_thread<S>(stream: S) -> Result<Scan, LayerError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
{
    // Dropping this future (a timed-out refresh) stops the thread and the stream with it.
    read_on_blocking_thread(stream, |reader, stop| {
        scan(reader, Some(&stop), LAYER_DECOMPRESSED_CAP)
    })
    .await
    .map_err(|e| LayerError::Source(io::Error::other(e)))?
}

/// The search itself: sniff the compression, walk the tar entries, decompressing at most
/// `cap` bytes. With a `stop`, every read of the decompressed bytes checks it too (a gzip
/// bomb decompresses for long between two reads of its source).
fn scan(reader: impl Read, stop: Option<&Stop>, cap: u64) -> Result<Scan, LayerError> {
    let decoded = match decompress(reader).map_err(classify)? {
        Decoded::Tar(tar) => tar,
        Decoded::Unsupported(kind) => return Err(LayerError::Unsupported(kind)),
    };
    match stop {
        Some(stop) => scan_tar(stop.guard(decoded), cap),
        None => scan_tar(decoded, cap),
    }
}

fn scan_tar(reader: impl Read, cap: u64) -> Result<Scan, LayerError> {
    // Raw records, each capped before it is read: the tar crate's default mode would
    // read a multi-GB long name into memory (see `graph_data::bounded_tar`).
    let mut archive = tar::Archive::new(Limited::new(reader, cap));
    let entries = bounded_tar::entries(&mut archive, HeaderLimits::default()).map_err(bounded)?;
    let mut deleted = false;
    for entry in entries {
        let entry = entry.map_err(bounded)?;
        let path = entry.path.strip_prefix(b"./").unwrap_or(&entry.path);
        // A whiteout hides lower layers only: the file in this same layer still counts.
        deleted |= hides_metadata(path);
        if path != crate::scrape::release_metadata::METADATA_PATH.as_bytes()
            || !entry.kind.is_file()
        {
            continue;
        }
        let size = entry.size;
        if size > METADATA_SIZE_CAP {
            return Err(LayerError::TooLarge { size });
        }
        let mut content = Vec::with_capacity(size as usize);
        entry
            .data
            .take(METADATA_SIZE_CAP + 1)
            .read_to_end(&mut content)
            .map_err(classify)?;
        return Ok(Scan::Metadata(content));
    }
    // "No metadata here" is remembered by digest, so the layer is read to its very end
    // (tar padding, gzip trailer) and the source's own checks (size, digest) have run:
    // a body cut short at a record boundary looks like a shorter, valid archive.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| bounded(TarError::Io(e)))?;
    Ok(if deleted {
        Scan::Deleted
    } else {
        Scan::Nothing
    })
}

/// Most bytes one layer may decompress to: a gzip bomb or an endless layer ends here.
pub const LAYER_DECOMPRESSED_CAP: u64 = 8 << 30;

/// Most bytes a small layer searched on the calling task may decompress to (a real
/// metadata layer is a few hundred KiB); past it the search moves to a blocking thread.
const INLINE_DECOMPRESSED_CAP: u64 = 64 << 20;

/// Whether `error` is the decompressed-bytes cap `cap` being reached.
fn over_cap(error: &LayerError, cap: u64) -> bool {
    let io = match error {
        LayerError::Header(TarError::Io(e)) | LayerError::Format(e) | LayerError::Source(e) => e,
        _ => return false,
    };
    Limited::<&[u8]>::exceeded(io).is_some_and(|too_long| too_long.cap == cap)
}

fn bounded(error: TarError) -> LayerError {
    match error {
        TarError::Io(e) if Limited::<&[u8]>::exceeded(&e).is_some() => {
            LayerError::Header(TarError::Io(e))
        }
        TarError::Io(e) => classify(e),
        other => LayerError::Header(other),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The blocking search with the full cap, over bytes in memory.
    fn scan_layer(reader: impl Read) -> Result<Scan, LayerError> {
        scan(reader, None, LAYER_DECOMPRESSED_CAP)
    }
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
        assert_eq!(
            scan_layer(&tar[..]).unwrap(),
            Scan::Metadata(b"{\"a\":1}".to_vec())
        );
        assert_eq!(
            scan_layer(&gzip(&tar)[..]).unwrap(),
            Scan::Metadata(b"{\"a\":1}".to_vec())
        );
        let plain = tar_of(&[("release-manifests/release-metadata", b"m")]);
        assert_eq!(
            scan_layer(&plain[..]).unwrap(),
            Scan::Metadata(b"m".to_vec())
        );
    }

    #[test]
    fn other_layers_have_none_and_bad_ones_are_format_errors() {
        let tar = tar_of(&[("release-manifests/image-references", b"x")]);
        assert_eq!(scan_layer(&gzip(&tar)[..]).unwrap(), Scan::Nothing);
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

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_multi_gigabyte_long_name_is_refused_before_it_is_read() {
        // A GNU long-name record claiming 3 GiB, its zeros gzip-compressed on the fly:
        // about 3 MB of gzip that the tar crate alone would read into one `Vec`.
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(3 << 30);
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        header.set_cksum();
        let plain = io::Cursor::new(header.as_bytes().to_vec()).chain(io::repeat(0).take(3 << 30));
        let read = std::rc::Rc::default();
        let gzip = Counting {
            inner: flate2::read::GzEncoder::new(plain, flate2::Compression::fast()),
            read: std::rc::Rc::clone(&read),
        };
        let err = scan_layer(gzip).unwrap_err();
        assert!(
            matches!(
                &err,
                LayerError::Header(TarError::HeaderTooLarge { record: "GNU long name", size, .. }) if *size == 3 << 30
            ),
            "{err:?}"
        );
        assert!(read.get() < 1 << 20, "read {} bytes of gzip", read.get());
        assert_eq!(
            err.to_string(),
            "the layer is refused: GNU long name record of 3221225472 bytes is above the 65536 byte limit"
        );
    }

    #[test]
    fn whiteouts_delete_the_metadata_of_lower_layers_only() {
        for whiteout in [
            "release-manifests/.wh.release-metadata",
            ".wh.release-manifests",
            "release-manifests/.wh..wh..opq",
        ] {
            let upper = tar_of(&[("etc/motd", b"x"), (whiteout, b"")]);
            assert_eq!(scan_layer(&upper[..]).unwrap(), Scan::Deleted, "{whiteout}");
            let dotted = tar_of(&[(&format!("./{whiteout}")[..], b"")]);
            assert_eq!(
                scan_layer(&dotted[..]).unwrap(),
                Scan::Deleted,
                "{whiteout}"
            );
        }
        // An opaque directory in the same layer as the file keeps the file.
        let same = tar_of(&[
            ("release-manifests/.wh..wh..opq", b""),
            ("release-manifests/release-metadata", b"m"),
        ]);
        assert_eq!(
            scan_layer(&same[..]).unwrap(),
            Scan::Metadata(b"m".to_vec())
        );
        // Whiteouts of other files change nothing.
        let other = tar_of(&[("release-manifests/.wh.image-references", b"")]);
        assert_eq!(scan_layer(&other[..]).unwrap(), Scan::Nothing);
    }

    /// An opaque whiteout at the layer's root hides every lower layer, the release
    /// metadata included; one of another directory hides nothing of it.
    #[test]
    fn a_root_level_opaque_whiteout_deletes_the_metadata_of_lower_layers() {
        for root in [".wh..wh..opq", "./.wh..wh..opq"] {
            let upper = tar_of(&[("etc/motd", b"x"), (root, b"")]);
            assert_eq!(scan_layer(&upper[..]).unwrap(), Scan::Deleted, "{root}");
        }
        let elsewhere = tar_of(&[
            ("etc/.wh..wh..opq", b""),
            ("release-manifests2/.wh..wh..opq", b""),
        ]);
        assert_eq!(scan_layer(&elsewhere[..]).unwrap(), Scan::Nothing);
    }

    #[tokio::test]
    async fn a_small_layer_that_inflates_past_the_inline_cap_is_searched_on_a_thread() {
        // 80 MiB of zeros gzip to about 80 KiB; the metadata comes after them.
        let zeros = vec![0u8; 80 << 20];
        let tar = gzip(&tar_of(&[
            ("zeros", &zeros[..]),
            ("release-manifests/release-metadata", b"m"),
        ]));
        drop(zeros);
        assert!(tar.len() as u64 <= INLINE_LAYER_CAP, "{}", tar.len());
        let size = Some(tar.len() as u64);
        let one = vec![Ok::<_, io::Error>(Bytes::from(tar))];
        let found = find_release_metadata(futures::stream::iter(one), size).await;
        assert_eq!(found.unwrap(), Scan::Metadata(b"m".to_vec()));
        let inline = scan(
            &gzip(&tar_of(&[("z", &vec![0u8; 80 << 20][..])]))[..],
            None,
            INLINE_DECOMPRESSED_CAP,
        );
        assert!(over_cap(&inline.unwrap_err(), INLINE_DECOMPRESSED_CAP));
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
        assert_eq!(found, Scan::Metadata(b"m".to_vec()));
    }

    #[tokio::test]
    async fn small_layers_are_searched_in_memory_and_larger_than_claimed_ones_still_work() {
        let tar = gzip(&tar_of(&[("release-manifests/release-metadata", b"m")]));
        let one = vec![Ok::<_, io::Error>(Bytes::from(tar.clone()))];
        let found = find_release_metadata(futures::stream::iter(one), Some(tar.len() as u64));
        assert_eq!(found.await.unwrap(), Scan::Metadata(b"m".to_vec()));

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
        assert_eq!(found.await.unwrap(), Scan::Metadata(b"late".to_vec()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ))]

        /// Whatever a layer holds (flipped bytes in a tar with long names, PAX records,
        /// links, the metadata file), the scan returns a value or an error, never a
        /// panic; an intact layer always yields its metadata.
        #[test]
        fn the_layer_scan_never_panics(
            names in proptest::collection::vec("[a-z./]{1,12}|.{90,200}", 0..6),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1u8..), 0..4),
            gzipped in proptest::prelude::any::<bool>(),
        ) {
            let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
            files.push(("release-manifests/release-metadata", b"{}"));
            let mut builder = tar::Builder::new(Vec::new());
            for (path, content) in &files {
                let mut header = tar::Header::new_gnu();
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                // Long names become GNU long-name records; invalid ones are skipped.
                let _ = builder.append_data(&mut header, path, *content);
            }
            let tar = builder.into_inner().unwrap();
            let intact = scan_layer(&tar[..]).unwrap();
            proptest::prop_assert_eq!(intact, Scan::Metadata(b"{}".to_vec()));
            let mut bytes = if gzipped { gzip(&tar) } else { tar };
            for (at, xor) in flips {
                let at = at % bytes.len();
                bytes[at] ^= xor;
            }
            match scan_layer(&bytes[..]) {
                Ok(Scan::Metadata(found)) => proptest::prop_assert!(found.len() as u64 <= METADATA_SIZE_CAP),
                Ok(Scan::Nothing | Scan::Deleted) | Err(LayerError::Format(_) | LayerError::Header(_) | LayerError::TooLarge { .. } | LayerError::Unsupported(_)) => {}
                Err(other) => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }
}
