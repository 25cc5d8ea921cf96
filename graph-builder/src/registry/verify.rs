//! Checking a streamed blob against its descriptor: the bytes must hash to the digest
//! they were fetched by and add up to the descriptor's size. A stream is only known good
//! once it has ended, so the check fails the stream's last read; a stream that runs past
//! the size fails as soon as it does, so an endless body cannot run on.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use super::client::{BlobReadError, BlobStream};

/// How a blob differs from its descriptor.
#[derive(Debug, thiserror::Error)]
pub enum BlobMismatch {
    /// More bytes arrived than the descriptor's size.
    #[error("blob {digest} runs past the {expected} bytes its descriptor gives")]
    TooLong {
        /// The digest it was fetched by.
        digest: String,
        /// The descriptor's size.
        expected: u64,
    },
    /// The stream ended before the descriptor's size.
    #[error("blob {digest} is {actual} bytes, its descriptor gives {expected}")]
    Size {
        /// The digest it was fetched by.
        digest: String,
        /// The descriptor's size.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// The bytes hash to another digest.
    #[error("blob {digest} hashes to {actual}")]
    Digest {
        /// The digest it was fetched by.
        digest: String,
        /// The sha256 of the bytes received.
        actual: String,
    },
}

/// `stream` checked against `digest` (`sha256:<hex>`) and, when given, `size`. A mismatch
/// is a [`BlobReadError`] (a failure of the source, read again like a broken stream)
/// holding a [`BlobMismatch`].
pub(crate) fn verified(stream: BlobStream, digest: &str, size: Option<u64>) -> BlobStream {
    Box::pin(Verified {
        inner: stream,
        hasher: Sha256::new(),
        received: 0,
        digest: digest.to_string(),
        size,
        done: false,
    })
}

struct Verified {
    inner: BlobStream,
    hasher: Sha256,
    received: u64,
    digest: String,
    size: Option<u64>,
    done: bool,
}

impl Verified {
    fn fail(&mut self, mismatch: BlobMismatch) -> Poll<Option<std::io::Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(BlobReadError::wrap(mismatch))))
    }

    /// The check at the end of the stream.
    fn finish(&mut self) -> Poll<Option<std::io::Result<Bytes>>> {
        let digest = self.digest.clone();
        if let Some(expected) = self.size.filter(|size| *size != self.received) {
            let actual = self.received;
            return self.fail(BlobMismatch::Size {
                digest,
                expected,
                actual,
            });
        }
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if actual != digest {
            return self.fail(BlobMismatch::Digest { digest, actual });
        }
        self.done = true;
        Poll::Ready(None)
    }
}

impl Stream for Verified {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if let Some(expected) = self.size.filter(|size| self.received > *size) {
                    let digest = self.digest.clone();
                    return self.fail(BlobMismatch::TooLong { digest, expected });
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;

    fn stream_of(chunks: &[&'static [u8]]) -> BlobStream {
        let chunks: Vec<std::io::Result<Bytes>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures::stream::iter(chunks))
    }

    async fn read(stream: BlobStream) -> Result<Vec<u8>, String> {
        let chunks: Vec<Bytes> = stream
            .try_collect()
            .await
            .map_err(|e| graph_data::keys::chain(&e))?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn intact_blobs_pass_and_every_mismatch_is_named() {
        let digest = crate::registry::manifest::sha256_digest(b"hello world");
        let whole = read(verified(
            stream_of(&[b"hello ", b"world"]),
            &digest,
            Some(11),
        ));
        assert_eq!(whole.await.unwrap(), b"hello world");
        let unsized_ = read(verified(stream_of(&[b"hello world"]), &digest, None));
        assert_eq!(unsized_.await.unwrap(), b"hello world");

        /// Chunks sent, descriptor size, the end of the error expected.
        type Case = (&'static [&'static [u8]], Option<u64>, String);
        let cases: [Case; 4] = [
            (
                &[],
                Some(11),
                format!("blob {digest} is 0 bytes, its descriptor gives 11"),
            ),
            (
                &[b"hello "],
                Some(11),
                format!("blob {digest} is 6 bytes, its descriptor gives 11"),
            ),
            (
                &[b"hello ", b"world!"],
                Some(11),
                format!("blob {digest} runs past the 11 bytes its descriptor gives"),
            ),
            (
                &[b"hello worle"],
                Some(11),
                format!(
                    "blob {digest} hashes to {}",
                    crate::registry::manifest::sha256_digest(b"hello worle")
                ),
            ),
        ];
        for (chunks, size, expected) in cases {
            let error = read(verified(stream_of(chunks), &digest, size))
                .await
                .unwrap_err();
            assert!(error.ends_with(&expected), "{error}");
        }
    }

    #[tokio::test]
    async fn an_endless_stream_stops_at_the_size() {
        let endless = futures::stream::repeat_with(|| Ok(Bytes::from_static(&[0u8; 1024])));
        let mut stream = verified(Box::pin(endless), "sha256:00", Some(10 * 1024));
        let mut chunks = 0;
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => chunks += 1,
                Err(e) => {
                    let text = graph_data::keys::chain(&e);
                    assert!(
                        text.ends_with("runs past the 10240 bytes its descriptor gives"),
                        "{text}"
                    );
                    break;
                }
            }
        }
        assert_eq!(chunks, 10);
        assert!(stream.next().await.is_none());
    }
}
