//! Scripted faults: answers a real registry will not give on demand, chosen per request
//! path. Each [`Fault`] replaces (or, for [`Fault::HugeHeader`], decorates) the fake's
//! normal answer to every request whose path contains its needle.
//!
//! Bodies that take time (drips, endless streams) are counted in
//! [`State::open_bodies`](super::State::open_bodies) while the fake is sending them, so a
//! test can tell when the client has hung up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use bytes::Bytes;
use futures::StreamExt as _;

use super::{registry_error, Blob, Repo};

/// One misbehaviour.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, with a registry error body.
    Status(u16),
    /// 200 with an empty body.
    Empty,
    /// 200 with these bytes instead of the real ones (wrong digest, bad document).
    Body(Bytes),
    /// The stored blob cut to its first `n` bytes, sent as a complete answer.
    Truncated(usize),
    /// Headers at once, claiming `total` bytes, then `chunk` bytes every `every`: no read
    /// ever stalls, so only a whole-request (or whole-refresh) deadline stops it.
    Drip {
        /// The wait between two chunks.
        every: Duration,
        /// Bytes per chunk.
        chunk: usize,
        /// The length claimed and, at most, sent.
        total: u64,
    },
    /// 200 and zeros without end (no length), as fast as they are read.
    Endless,
    /// The normal answer with one extra header of this many bytes.
    HugeHeader(usize),
}

/// The most any scripted body sends, so that a client that never hangs up cannot keep a
/// test running for ever.
pub const SCRIPTED_BODY_CAP: u64 = 64 << 30;

/// Counts a body while it is being sent.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(counter: &Arc<AtomicUsize>) -> Open {
        counter.fetch_add(1, Ordering::SeqCst);
        Open(Arc::clone(counter))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The scripted answer, or `None` to answer normally (then decorated by
/// [`decorate`]). `blob` is the digest when the request is for a blob.
pub(super) fn respond(
    fault: &Fault,
    repo: Option<&Repo>,
    blob: Option<&str>,
    head: bool,
    open_bodies: &Arc<AtomicUsize>,
) -> Option<HttpResponse> {
    let octets = "application/octet-stream";
    if head && matches!(fault, Fault::Drip { .. } | Fault::Endless) {
        // A HEAD answer has no body to make slow or endless.
        return None;
    }
    Some(match fault {
        Fault::Status(status) => registry_error(*status, "UNAVAILABLE", "scripted failure"),
        Fault::Empty => HttpResponse::Ok().content_type(octets).finish(),
        Fault::Body(bytes) => HttpResponse::Ok().content_type(octets).body(bytes.clone()),
        Fault::Truncated(n) => {
            let stored = blob.and_then(|digest| repo?.blobs.get(digest));
            let Some(Blob::Stored(bytes)) = stored else {
                return Some(registry_error(404, "BLOB_UNKNOWN", "nothing to cut"));
            };
            let cut = bytes.slice(..(*n).min(bytes.len()));
            HttpResponse::Ok().content_type(octets).body(cut)
        }
        Fault::Drip {
            every,
            chunk,
            total,
        } => {
            let (every, chunk, total) = (*every, *chunk, *total);
            let open = Open::new(open_bodies);
            let chunks = total.div_ceil(chunk.max(1) as u64);
            let stream = futures::stream::iter(0..chunks).then(move |i| {
                let _open = &open;
                async move {
                    if i > 0 {
                        tokio::time::sleep(every).await;
                    }
                    Ok::<_, std::io::Error>(Bytes::from(vec![b' '; chunk]))
                }
            });
            HttpResponse::Ok()
                .content_type("application/json")
                .insert_header(("Content-Length", total.to_string()))
                .streaming(stream)
        }
        Fault::Endless => {
            let open = Open::new(open_bodies);
            let zeros = Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = SCRIPTED_BODY_CAP / zeros.len() as u64;
            let stream = futures::stream::iter(0..chunks).map(move |_| {
                let _open = &open;
                Ok::<_, std::io::Error>(zeros.clone())
            });
            HttpResponse::Ok().content_type(octets).streaming(stream)
        }
        Fault::HugeHeader(_) => return None,
    })
}

/// The normal answer, changed as `fault` says.
pub(super) fn decorate(fault: &Fault, mut response: HttpResponse) -> HttpResponse {
    if let Fault::HugeHeader(n) = fault {
        let value = "x".repeat(*n);
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-scripted-padding"),
            value.parse().expect("ASCII"),
        );
    }
    response
}
