//! One job from start to finish: the attempt loop and the job's state
//! (its record, position and hash), with the steps in their own modules:
//!
//! - `resume`: where to resume, and the re-hash of the prefix kept;
//! - `single`: one request streaming the rest of the file into the `.part`;
//! - `split`: whether and how a file is split, and what the split's end
//!   means; `split_state`: what its connections share (`Ctx`);
//! - `segmented`: a split file's connections, their scheduling and work
//!   stealing; `range`: one range from request to disk, and the hash that
//!   follows the written prefix;
//! - `body`: the wait for an answer and the read of its body (stall,
//!   `--lowest-speed`, `--max-speed`, cancellation), for every path;
//! - `pour`: the one loop from a body into the `.part`, for every path
//!   (what differs, a stream's or a range's, is its `Sink`'s);
//! - `limit`: how much of a body is kept (the answer's end, the cap);
//! - `job`: what every path of a job shares (events, progress, saves);
//! - `mirrors`: the job's mirrors (`MirrorSet`), a split's view of them
//!   (`SplitMirrors`) and fail-over;
//! - `finish`: checks, "done" recorded, rename; failure and interruption.
//!
//! Both paths write through the one `store::part::PartWriter`.
//!
//! Every attempt starts from the bytes already on disk: resuming *is* the
//! retry. Any doubt about whether the server's bytes continue ours (a 200 to
//! a ranged request, a Content-Range that does not line up, a changed
//! validator) restarts the file from zero rather than splicing.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod body;
mod finish;
mod job;
mod limit;
mod mirrors;
mod pour;
mod range;
mod resume;
mod segmented;
mod single;
mod speed;
mod split;
mod split_state;

use job::Job;
use limit::BodyLimit;
use mirrors::{fails_over, MirrorSet};

use super::recorder::Recorder;
use super::retry::{Backoff, RetryState};
use super::{ConnPermit, EngineConfig, JobSlot, Limits};
use crate::engine::JobSpec;
use crate::error::DownloadError;
use crate::event::{Event, JobId, RestartReason};
use crate::http::answer::Mismatch;
use crate::store::manifest::JobRecord;
use crate::store::part::part_path;

/// A body this small is not recorded until it is done.
const SMALL_BODY: u64 = 256 << 10;

/// Connections per file when splitting automatically.
const AUTO_SPLIT: usize = 4;

/// No range of a split file is cut smaller than this.
const MIN_PIECE: u64 = 1 << 20;

/// What the first answer told us to do next.
enum Next {
    /// The file is complete on disk.
    Complete,
    /// Fetch the rest over several connections; this answer streams from
    /// byte 0, to where it ends if it was asked bounded.
    Split(reqwest::Response, Option<u64>),
}

/// What the run-wide pieces every worker shares.
pub(crate) struct Shared {
    pub limits: Limits,
    /// The run's `--max-speed` bucket, drawn from by every connection.
    pub throttle: Option<super::throttle::Throttle>,
    pub client: crate::http::Fetcher,
    pub cfg: EngineConfig,
    pub events: mpsc::Sender<Event>,
    pub recorder: Recorder,
    pub cancel: CancellationToken,
    pub boot_id: Option<String>,
    /// The output directory held no files when the run began
    /// (`store::fresh_out_dir`).
    pub fresh_out_dir: bool,
}

impl Shared {
    /// Reports a retry after `backoff` and waits it out; false when `stop`
    /// fires first. The one place a backoff is announced and slept, for the
    /// single stream and every connection of a split file.
    async fn back_off(
        &self,
        stop: &CancellationToken,
        id: JobId,
        path: String,
        attempt: u32,
        reason: crate::event::Cause,
        backoff: Backoff,
    ) -> bool {
        let _ = self
            .events
            .send(Event::Retrying {
                id,
                path,
                attempt,
                reason,
                delay: backoff.delay,
                capped_from: backoff.capped_from,
            })
            .await;
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(backoff.delay) => true,
        }
    }
}

/// How a job ended, and how many bytes it pulled over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Finished,
    Failed,
    Interrupted,
}

/// Why an attempt stopped short.
enum Stop {
    Failed(DownloadError),
    Cancelled,
}

/// The reason users read for an answer that does not continue our bytes.
impl From<Mismatch> for RestartReason {
    fn from(why: Mismatch) -> Self {
        match why {
            Mismatch::Resume(why) => RestartReason::BadResume(why),
            Mismatch::EtagChanged { ours, theirs } => RestartReason::EtagChanged { ours, theirs },
            Mismatch::EtagMissing { ours } => RestartReason::SplitEtagMissing { ours },
            Mismatch::Unsatisfiable {
                content_range,
                offset,
            } => RestartReason::Unsatisfiable {
                content_range,
                offset,
            },
            Mismatch::WrongSpan {
                content_range,
                first,
                last,
                total,
            } => RestartReason::SplitWrongRange {
                content_range,
                first,
                last,
                total,
            },
            Mismatch::UnsatisfiableSpan { first, last, total } => {
                RestartReason::SplitUnsatisfiable { first, last, total }
            }
        }
    }
}

impl From<DownloadError> for Stop {
    fn from(err: DownloadError) -> Self {
        Stop::Failed(err)
    }
}

/// Runs one job to its end; returns the outcome and the bytes fetched.
pub(crate) async fn run_job(
    shared: Arc<Shared>,
    id: JobId,
    spec: Arc<JobSpec>,
    record: Option<Box<JobRecord>>,
    slot: (JobSlot, ConnPermit),
    seed: u64,
) -> (Outcome, u64) {
    let final_path = spec.path.to_path(&shared.cfg.out_dir);
    let (record, loaded) = match record {
        None => (
            JobRecord::pending(spec.path.to_string(), spec.url.to_string()),
            None,
        ),
        Some(boxed) => {
            let mut record = (*boxed).clone();
            record.url = spec.url.to_string();
            (record, Some(boxed))
        }
    };
    let job = Arc::new(Job::new(shared.clone(), id, spec.path.to_string()));
    let mut worker = Worker {
        _slot: slot,
        job,
        mirrors: MirrorSet::new(&spec),
        no_split: false,
        seed,
        part_path: part_path(&final_path),
        final_path,
        shared,
        id,
        spec,
        rec: record,
        loaded,
        touched: false,
        unsynced: None,
        pos: 0,
        hasher: Sha256::new(),
        fetched: 0,
    };
    let outcome = worker.run().await;
    (outcome, worker.fetched)
}

struct Worker {
    /// This job's slot and its first connection (extra ones of a split file
    /// take their own).
    _slot: (JobSlot, ConnPermit),
    /// What this job's paths share: its events, progress and saves.
    job: Arc<Job>,
    /// The job's URL then its mirrors, the one in use and each one's fate.
    mirrors: MirrorSet,
    /// Ranges failed us for this file in this run: stay on one stream.
    no_split: bool,
    seed: u64,
    shared: Arc<Shared>,
    id: JobId,
    spec: Arc<JobSpec>,
    /// What the manifest knows of this job; every save sends a copy.
    rec: JobRecord,
    /// The record an earlier run left, until this run changes the file on
    /// disk: a new URL that fails before a byte arrives must not cost the
    /// progress, validators or "done" state fetched from the old one.
    loaded: Option<Box<JobRecord>>,
    /// Whether this run has changed the `.part` or the validators that
    /// vouch for it; from then on `rec` is what gets recorded.
    touched: bool,
    final_path: PathBuf,
    part_path: PathBuf,
    /// The `.part` of a whole small file, written but not yet synced: its
    /// "done" record carries it to the manifest's syncer, which syncs it
    /// before the rename (see `PartWriter::land`).
    unsynced: Option<std::fs::File>,
    /// Bytes of the `.part` file that `hasher` has seen.
    pos: u64,
    hasher: Sha256,
    fetched: u64,
}

impl Worker {
    async fn run(&mut self) -> Outcome {
        match self.prepare().await {
            Ok(true) => return self.finish(self.stream_digest()).await,
            Ok(false) => {}
            Err(err) => return self.fail(err).await,
        }
        if self.rec.segments.is_some() {
            if let Some(outcome) = self.segmented(None).await {
                return outcome;
            }
        }
        let mut retry = RetryState::new(self.shared.cfg.retry, self.seed);
        loop {
            if self.shared.cancel.is_cancelled() {
                return self.interrupted().await;
            }
            self.rec.attempts += 1;
            let before = self.pos;
            let err = match self.attempt().await {
                Ok(Next::Complete) => return self.finish(self.stream_digest()).await,
                Ok(Next::Split(first, end)) => match self.segmented(Some((first, end))).await {
                    Some(outcome) => return outcome,
                    None => continue,
                },
                Err(Stop::Cancelled) => return self.interrupted().await,
                Err(Stop::Failed(err)) => err,
            };
            let Some(backoff) = retry.next(&err, self.pos > before) else {
                match self.fail_over(&err).await {
                    Ok(true) => {
                        retry.reset();
                        continue;
                    }
                    Ok(false) => return self.fail_all(err).await,
                    Err(Stop::Cancelled) => return self.interrupted().await,
                    Err(Stop::Failed(local)) => return self.fail(local).await,
                }
            };
            self.rec.last_error = Some(err.chain());
            self.save();
            let (id, path, attempt) = (self.id, self.spec.path.to_string(), self.rec.attempts);
            let cancel = &self.shared.cancel;
            if !self
                .shared
                .back_off(cancel, id, path, attempt, err.cause(), backoff)
                .await
            {
                return self.interrupted().await;
            }
        }
    }

    fn limit(&self) -> BodyLimit {
        BodyLimit::new(self.shared.cfg.max_file_size)
    }

    /// Drops the bytes on disk and starts over from zero.
    async fn restart(&mut self, reason: RestartReason) -> Result<(), Stop> {
        self.touched = true;
        self.pos = 0;
        self.rec.segments = None;
        self.hasher = Sha256::new();
        self.rec.bytes_done = 0;
        self.rec.total = None;
        self.rec.etag = None;
        self.rec.last_modified = None;
        // Truncate now so a kill before the next write cannot resurrect the old bytes.
        crate::store::part::truncate(&self.part_path)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        self.checkpoint();
        self.emit(Event::Restarted {
            id: self.id,
            path: self.spec.path.to_string(),
            reason,
        })
        .await;
        Ok(())
    }

    /// Records `pos` as durable: call only right after a sync.
    fn checkpoint(&mut self) {
        self.rec.bytes_done = self.pos;
        self.save();
    }

    fn save(&mut self) {
        self.rec.boot_id = self.shared.boot_id.clone();
        self.job.save(self.to_record(), true);
    }

    /// Like `save`, without asking for an fsync: for records that only
    /// have to survive a killed process, or that a synced one follows.
    fn save_written(&mut self) {
        self.rec.boot_id = self.shared.boot_id.clone();
        self.job.save(self.to_record(), false);
    }

    /// What to record now: `rec`, or, while this run has not touched the
    /// file, the record as loaded with only its attempts and last error
    /// brought up to date (its boot id included: stamping the current one
    /// would vouch for unsynced bytes of an earlier boot).
    fn to_record(&self) -> JobRecord {
        match &self.loaded {
            Some(loaded) if !self.touched => JobRecord {
                attempts: self.rec.attempts,
                last_error: self.rec.last_error.clone(),
                ..(**loaded).clone()
            },
            _ => self.rec.clone(),
        }
    }

    async fn emit(&self, event: Event) {
        self.job.emit(event).await;
    }

    fn stream_digest(&self) -> String {
        // Through a buffer: `hex::encode` collects char by char, ten times
        // the work (1,700 instructions a file, on many small files).
        let mut text = [0u8; 64];
        let digest = self.hasher.clone().finalize();
        match hex::encode_to_slice(digest, &mut text) {
            Ok(()) => String::from_utf8_lossy(&text).into_owned(),
            Err(_) => hex::encode(digest),
        }
    }

    async fn cancellable<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, Stop> {
        let stall = self.shared.cfg.stall_timeout;
        body::within_stall(&self.shared.cancel, stall, self.mirrors.text(), fut).await
    }
}
