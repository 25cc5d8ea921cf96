//! How far the scrape in progress is: tags done out of tags listed, readable at any time
//! by `/status`, `/readiness` and `/metrics`, and logged at INFO every few seconds while a
//! long scrape runs (a first scrape of a large mirror takes minutes).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Least time between two progress log records.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The progress of the current (or last) scrape; shared by the scraper and the readers.
#[derive(Debug)]
pub struct ScrapeProgress {
    /// Least time between two progress records ([`LOG_EVERY`]; tests shorten it).
    log_every: Duration,
    running: AtomicBool,
    total: AtomicUsize,
    done: AtomicUsize,
    times: Mutex<Times>,
    /// The registry client's errors by cause, when the scrape reads a registry.
    errors: Option<Arc<crate::registry::ErrorTally>>,
}

#[derive(Debug, Default)]
struct Times {
    started: Option<(Instant, SystemTime)>,
    last_log: Option<Instant>,
}

/// A reading of [`ScrapeProgress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressReading {
    /// Whether a scrape is running.
    pub running: bool,
    /// Tags handled so far (releases or not).
    pub done: usize,
    /// Tags listed; 0 until the listing is complete.
    pub total: usize,
    /// When the scrape started.
    pub started: Option<SystemTime>,
}

impl Default for ScrapeProgress {
    fn default() -> Self {
        ScrapeProgress {
            log_every: LOG_EVERY,
            running: AtomicBool::default(),
            total: AtomicUsize::default(),
            done: AtomicUsize::default(),
            times: Mutex::default(),
            errors: None,
        }
    }
}

impl ScrapeProgress {
    /// Progress that also reports `errors`, the tally of the scrape's registry client.
    pub(crate) fn with_errors(errors: Arc<crate::registry::ErrorTally>) -> Self {
        ScrapeProgress {
            errors: Some(errors),
            ..ScrapeProgress::default()
        }
    }

    /// The registry errors met so far, by cause (empty without a registry).
    pub fn registry_errors(&self) -> Vec<(&'static str, u64)> {
        self.errors.as_ref().map(|e| e.counts()).unwrap_or_default()
    }

    /// A scrape starts: nothing listed yet.
    pub(crate) fn start(&self) {
        self.total.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
        times.started = Some((Instant::now(), SystemTime::now()));
        times.last_log = None;
        self.running.store(true, Ordering::Relaxed);
    }

    /// The tag listing is complete.
    pub(crate) fn listed(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// One more tag handled; logs progress at INFO at most every `log_every`.
    pub(crate) fn tag_done(&self, repository: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((started, _)) = times.started else {
            return;
        };
        let now = Instant::now();
        let due = now.duration_since(times.last_log.unwrap_or(started)) >= self.log_every;
        if due && done < total {
            times.last_log = Some(now);
            drop(times);
            tracing::info!(
                repository,
                tags_done = done,
                tags_total = total,
                seconds = now.duration_since(started).as_secs(),
                "scrape in progress: {done}/{total} tags"
            );
        }
    }

    /// The scrape ended (finished or failed).
    pub(crate) fn finish(&self) {
        self.running.store(false, Ordering::Relaxed);
    }

    /// The current reading.
    pub fn read(&self) -> ProgressReading {
        let times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
        ProgressReading {
            running: self.running.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            started: times.started.map(|(_, wall)| wall),
        }
    }
}

/// Marks the scrape finished when dropped, so a failed or cancelled scrape is not shown
/// as running.
pub(crate) struct Running<'a>(pub(crate) &'a ScrapeProgress);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_running_flag() {
        let progress = ScrapeProgress::default();
        assert!(!progress.read().running);
        {
            progress.start();
            let _running = Running(&progress);
            progress.listed(3);
            progress.tag_done("r");
            progress.tag_done("r");
            let reading = progress.read();
            assert_eq!((reading.running, reading.done, reading.total), (true, 2, 3));
            assert!(reading.started.is_some());
        }
        let reading = progress.read();
        assert_eq!(
            (reading.running, reading.done, reading.total),
            (false, 2, 3)
        );
    }

    /// A buffer the test subscriber writes to.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn progress_is_logged_at_info_while_tags_remain() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let progress = ScrapeProgress {
            log_every: Duration::ZERO,
            ..ScrapeProgress::default()
        };
        tracing::subscriber::with_default(subscriber, || {
            progress.start();
            progress.listed(3);
            for _ in 0..3 {
                progress.tag_done("ocp/release");
            }
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Not after the last tag: "scrape finished" says that.
        assert_eq!(
            lines,
            [
                " INFO graph_builder::scrape::progress: scrape in progress: 1/3 tags repository=\"ocp/release\" tags_done=1 tags_total=3 seconds=0",
                " INFO graph_builder::scrape::progress: scrape in progress: 2/3 tags repository=\"ocp/release\" tags_done=2 tags_total=3 seconds=0",
            ]
        );
    }
}
