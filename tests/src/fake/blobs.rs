//! Blob responses: stored bytes, a stream broken half-way, and huge layers generated while
//! being sent (so a 64 MiB layer costs the fake no memory either).

use std::io::Write as _;

use actix_web::HttpResponse;
use bytes::Bytes;

use super::{registry_error, Blob, Repo};

pub(super) fn blob(repo: &Repo, digest: &str) -> HttpResponse {
    match repo.blobs.get(digest) {
        None => registry_error(404, "BLOB_UNKNOWN", "unknown blob"),
        Some(Blob::Stored(bytes)) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(bytes.clone()),
        Some(Blob::Generated {
            size,
            metadata_first,
        }) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .streaming(generated_layer(*size, metadata_first.clone())),
    }
}

/// Half of a stored blob, then a dropped connection.
pub(super) fn broken_blob(repo: &Repo, digest: &str) -> HttpResponse {
    let Some(Blob::Stored(bytes)) = repo.blobs.get(digest) else {
        return registry_error(404, "BLOB_UNKNOWN", "unknown blob");
    };
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("connection dropped by the fake")),
    ];
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Length", bytes.len().to_string()))
        .streaming(futures::stream::iter(chunks))
}

/// A gzip (stored blocks) tar stream: optional release-metadata, then one entry of `size`
/// pseudo-random bytes, produced 64 KiB at a time.
fn generated_layer(
    size: u64,
    metadata_first: Option<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::iter(generated_chunks(size, metadata_first).map(Ok))
}

/// The digest and length of [`Blob::Generated`] with these settings, computed by
/// generating it once (no memory kept).
pub fn generated_descriptor(size: u64, metadata_first: Option<Bytes>) -> (String, u64) {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    for chunk in generated_chunks(size, metadata_first) {
        hasher.update(&chunk);
        len += chunk.len() as u64;
    }
    (format!("sha256:{}", hex::encode(hasher.finalize())), len)
}

/// The chunks of a generated layer, produced on demand.
fn generated_chunks(size: u64, metadata_first: Option<Bytes>) -> impl Iterator<Item = Bytes> {
    let mut head = Vec::new();
    if let Some(metadata) = &metadata_first {
        head.extend(tar_header(
            "release-manifests/release-metadata",
            metadata.len() as u64,
        ));
        head.extend_from_slice(metadata);
        head.resize(head.len().next_multiple_of(512), 0);
    }
    head.extend(tar_header("var/lib/big.bin", size));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    let mut head = Some(head);
    let (mut sent, mut rng, mut done) = (0u64, 0x9e37_79b9_7f4a_7c15u64, false);
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if let Some(head) = head.take() {
            enc.write_all(&head).unwrap();
        }
        if sent < size {
            let n = (size - sent).min(64 * 1024) as usize;
            let mut chunk = vec![0u8; n];
            for word in chunk.chunks_mut(8) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                word.copy_from_slice(&rng.to_le_bytes()[..word.len()]);
            }
            enc.write_all(&chunk).unwrap();
            sent += n as u64;
        }
        if sent >= size {
            let padding = (size.next_multiple_of(512) - size) as usize + 1024;
            enc.write_all(&vec![0u8; padding]).unwrap();
            enc.try_finish().unwrap();
            done = true;
        }
        Some(Bytes::from(std::mem::take(enc.get_mut())))
    })
}

pub(super) fn tar_header(path: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header.as_bytes().to_vec()
}
