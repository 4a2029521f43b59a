//! What a run is fed: one job's spec, and the stream of them a run pulls
//! from. The engine reads the stream only a bounded window ahead of its
//! workers, so a producer behind a bounded channel (a list read lazily, a
//! client adding downloads to a running daemon) is held back rather than
//! buffered whole.

use std::collections::VecDeque;
use std::pin::Pin;

use futures::stream::{self, Stream, StreamExt};

use crate::list::Origin;
use crate::naming::RelPath;

/// Jobs a run reads ahead of its workers: enough to keep every worker and
/// host busy, small against the memory of a list of millions (a queued job
/// is a few hundred bytes).
pub const WINDOW: usize = 4096;

/// A job as the engine will run it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    /// The primary URL: what the manifest records and what names the file.
    pub url: url::Url,
    /// Other places serving the same file, tried after `url` in this order
    /// (see `engine::worker` for failover and split spreading).
    pub mirrors: Vec<url::Url>,
    /// Where the file goes, relative to the output directory.
    pub path: RelPath,
    pub checksum: Option<[u8; 32]>,
    pub headers: Vec<(String, String)>,
    /// The URL line this job came from.
    pub origin: Origin,
}

/// The jobs of one run, in order, and how far ahead of the workers the
/// engine may read them.
pub struct JobSource {
    /// Jobs handed over whole (a list already in memory), taken before the
    /// stream: moving them out frees their buffer as they are used, where a
    /// stream over the `Vec` would keep it for the whole run.
    given: VecDeque<JobSpec>,
    jobs: Pin<Box<dyn Stream<Item = JobSpec> + Send>>,
    /// How many jobs the run will have, when known before they arrive (the
    /// `jobs` of `RunStarted`, so a progress display has a total).
    expected: Option<usize>,
    /// Jobs read but not yet started, at most.
    window: usize,
    ended: bool,
}

impl JobSource {
    /// Jobs from `jobs`, which may wait between items and may never end
    /// (the run then lasts until it does, or is cancelled). An exact
    /// `size_hint` is taken as the run's job count.
    pub fn new(jobs: impl Stream<Item = JobSpec> + Send + 'static) -> JobSource {
        let expected = match jobs.size_hint() {
            (low, Some(high)) if low == high => Some(low),
            _ => None,
        };
        JobSource {
            given: VecDeque::new(),
            jobs: jobs.boxed(),
            expected,
            window: WINDOW,
            ended: false,
        }
    }

    /// `head`, handed over whole (announced before any work, as a list in
    /// memory is), then every job `rest` yields: `expected` jobs in all.
    pub fn with_head(
        head: Vec<JobSpec>,
        rest: impl Stream<Item = JobSpec> + Send + 'static,
        expected: usize,
    ) -> JobSource {
        JobSource {
            window: head.len().max(WINDOW),
            expected: Some(expected),
            given: head.into(),
            ..JobSource::new(rest)
        }
    }

    /// Reads at most `window` jobs ahead of the workers.
    #[cfg(test)]
    pub fn window(mut self, window: usize) -> JobSource {
        self.window = window.max(1);
        self
    }

    /// The jobs the stream holds ready now, up to `room`, without waiting
    /// for any: a run starts with these, and a daemon's empty queue does
    /// not hold the start back.
    pub(super) fn ready(&mut self, room: usize) -> Vec<JobSpec> {
        if !self.given.is_empty() {
            if room >= self.given.len() {
                return std::mem::take(&mut self.given).into();
            }
            return self.given.drain(..room).collect();
        }
        let mut ready = Vec::new();
        while ready.len() < room && !self.ended {
            match futures::FutureExt::now_or_never(self.jobs.next()) {
                Some(Some(job)) => ready.push(job),
                Some(None) => self.ended = true,
                None => break,
            }
        }
        ready
    }

    /// The next job, waiting for it; None once the stream has ended.
    /// Cancel-safe: a job is never lost to a dropped call.
    pub(super) async fn next(&mut self) -> Option<JobSpec> {
        if !self.given.is_empty() {
            return self.given.pop_front();
        }
        let job = self.jobs.next().await;
        self.ended |= job.is_none();
        job
    }

    pub(super) fn ended(&self) -> bool {
        self.ended && self.given.is_empty()
    }

    pub(super) fn expected(&self) -> Option<usize> {
        self.expected
    }

    pub(super) fn window_size(&self) -> usize {
        self.window
    }
}

/// A list already in memory: read whole before the run starts (it costs no
/// more memory than the list itself), so every job is reconciled and
/// announced before any work, and every host's jobs share the pool from the
/// start, whatever the list's length.
impl From<Vec<JobSpec>> for JobSource {
    fn from(jobs: Vec<JobSpec>) -> JobSource {
        JobSource {
            window: jobs.len().max(WINDOW),
            expected: Some(jobs.len()),
            given: jobs.into(),
            ..JobSource::new(stream::empty())
        }
    }
}
