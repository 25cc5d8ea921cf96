//! How far the scrape in progress is: tags done out of tags listed, readable at any time
//! by `/status`, `/readiness` and `/metrics`, and logged at INFO every few seconds while a
//! long scrape runs (a first scrape of a large mirror takes minutes).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Least time between two progress log records.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The progress of the current (or last) scrape; shared by the scraper and the readers.
#[derive(Debug, Default)]
pub struct ScrapeProgress {
    running: AtomicBool,
    total: AtomicUsize,
    done: AtomicUsize,
    times: Mutex<Times>,
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

impl ScrapeProgress {
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

    /// One more tag handled; logs progress at INFO at most every [`LOG_EVERY`].
    pub(crate) fn tag_done(&self, repository: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((started, _)) = times.started else {
            return;
        };
        let now = Instant::now();
        let due = now.duration_since(times.last_log.unwrap_or(started)) >= LOG_EVERY;
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
}
