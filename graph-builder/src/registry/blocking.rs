//! A blob stream read by blocking code (gzip and tar readers) on a blocking thread, that
//! stops when the task that asked for it goes away.
//!
//! A timed-out refresh is dropped at its next await point, but a blocking thread cannot
//! be dropped: left alone it would keep the connection open and keep decompressing until
//! the layer ends. So the caller holds a cancel flag that fires when it is dropped; the
//! stream ends at once with an error (even while waiting for bytes) and every read, on
//! the compressed and the decompressed side, checks the flag first.

use std::io::{self, Read};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::client::BlobReadError;

/// Why a blocking read stopped early.
#[derive(Debug, thiserror::Error)]
#[error("the read was abandoned: whoever asked for it timed out or stopped")]
pub struct Abandoned;

fn abandoned() -> io::Error {
    BlobReadError::wrap(Abandoned)
}

/// The flag a blocking reader checks; [`Stop::guard`] puts it in front of any reader.
#[derive(Debug, Clone)]
pub struct Stop(CancellationToken);

impl Stop {
    /// `reader`, failing with [`Abandoned`] once the caller is gone.
    pub fn guard<R: Read>(&self, reader: R) -> Guarded<R> {
        Guarded {
            inner: reader,
            stop: self.clone(),
        }
    }

    /// Whether the caller is gone.
    pub fn is_stopped(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// A reader that checks the [`Stop`] flag before every read.
#[derive(Debug)]
pub struct Guarded<R> {
    inner: R,
    stop: Stop,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_stopped() {
            return Err(abandoned());
        }
        self.inner.read(buf)
    }
}

/// The blocking reader a `work` closure gets: the stream, bridged and guarded.
pub type BlockingReader = Guarded<
    tokio_util::io::SyncIoBridge<
        tokio_util::io::StreamReader<futures::stream::BoxStream<'static, io::Result<Bytes>>, Bytes>,
    >,
>;

/// Runs `work` on a blocking thread over `stream`. When the returned future is dropped,
/// the stream ends with [`Abandoned`] and `work`'s reads fail, so the thread and the
/// connection end with it. `Err` only when `work` panicked or the runtime shut down.
pub async fn read_on_blocking_thread<S, T, F>(
    stream: S,
    work: F,
) -> Result<T, tokio::task::JoinError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    F: FnOnce(BlockingReader, Stop) -> T + Send + 'static,
    T: Send + 'static,
{
    let token = CancellationToken::new();
    let _stop_when_dropped = token.clone().drop_guard();
    let at_end = token.clone();
    let stream = stream
        .take_until(token.clone().cancelled_owned())
        .chain(
            futures::stream::once(async move { at_end.is_cancelled() })
                .filter_map(|stopped| async move { stopped.then(|| Err(abandoned())) }),
        )
        .boxed();
    let stop = Stop(token);
    let bridge = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let reader = stop.guard(bridge);
    tokio::task::spawn_blocking(move || work(reader, stop)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// An endless, slow stream; the blocking reader is dropped mid-way and must stop,
    /// dropping the stream (the connection) too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_caller_stops_the_blocking_reader_and_its_stream() {
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let marker = Dropped(Arc::clone(&dropped));
        let stream = futures::stream::unfold(marker, |marker| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Some((Ok(Bytes::from_static(&[0u8; 64])), marker))
        });
        let read = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let counted = Arc::clone(&read);
        let work = read_on_blocking_thread(stream, move |mut reader, _stop| {
            let mut buf = [0u8; 64];
            let result = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => counted.fetch_add(n as u64, Ordering::SeqCst),
                    Err(e) => break Err(e),
                };
            };
            tx.send(result).unwrap();
        });
        // Times out like a refresh would: the future is dropped.
        assert!(tokio::time::timeout(Duration::from_millis(200), work)
            .await
            .is_err());
        let ended = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("the blocking reader stopped");
        let error = ended.unwrap_err();
        assert!(
            graph_data::keys::chain(&error).contains("abandoned"),
            "{error}"
        );
        assert!(read.load(Ordering::SeqCst) > 0);
        // The stream was dropped with the reader.
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(dropped.load(Ordering::SeqCst));
    }
}
