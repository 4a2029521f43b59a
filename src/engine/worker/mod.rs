//! One job from start to finish: choosing where to resume, the attempt loop,
//! streaming the body into the `.part` file while hashing it, checkpoints,
//! the checksum check and the final rename.
//!
//! Every attempt starts from the bytes already on disk: resuming *is* the
//! retry. Any doubt about whether the server's bytes continue ours (a 200 to
//! a ranged request, a Content-Range that does not line up, a changed
//! validator) restarts the file from zero rather than splicing.
//!
//! A job with mirrors (TAB-separated URLs) moves to the next one when the
//! current one fails for good, keeping the bytes on disk only when the new
//! mirror can prove they are its own too (see `Worker::fail_over`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod limit;
mod segmented;
mod speed;

use limit::BodyLimit;

use super::recorder::Recorder;
use super::retry::Decision;
use super::segments::Plan;
use super::{host_key, ConnPermit, EngineConfig, Limits};
use crate::error::DownloadError;
use crate::event::{Event, FailureKind, JobId, RestartReason, SwitchScope};
use crate::http::range::{check_resumed, if_range_value, parse_content_range, ContentRange};
use crate::list::redact;
use crate::list::JobSpec;
use crate::store::manifest::{JobRecord, JobState};
use crate::store::part::{part_len, part_len_blocking, part_path, promote, PartFile};

/// Progress events per job are coalesced to this interval (about ten a second).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A body this small is not recorded until it is done.
const SMALL_BODY: u64 = 256 << 10;

/// Connections per file when splitting automatically.
const AUTO_SPLIT: usize = 4;

/// No range of a split file is cut smaller than this.
const MIN_PIECE: u64 = 1 << 20;

/// Resolves when `floor`'s verdict falls if no more bytes arrive; never
/// when there is no floor. The streaming loops select on it beside the read.
async fn until_due(floor: Option<&speed::SpeedFloor>) {
    match floor {
        Some(floor) => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(floor.deadline())).await;
        }
        None => std::future::pending().await,
    }
}

/// What the first answer told us to do next.
enum Next {
    /// The file is complete on disk.
    Complete,
    /// Fetch the rest over several connections; this answer streams from byte 0.
    Split(reqwest::Response),
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
    permit: ConnPermit,
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
    let mirrors: Vec<url::Url> = std::iter::once(spec.url.clone())
        .chain(spec.mirrors.iter().cloned())
        .collect();
    let mut worker = Worker {
        _permit: permit,
        mirror_errors: vec![None; mirrors.len()],
        mirrors,
        current: 0,
        no_split: false,
        seed,
        part_path: part_path(&final_path),
        final_path,
        url: redact(&spec.url),
        shared,
        id,
        spec,
        rec: record,
        loaded,
        touched: false,
        pos: 0,
        hasher: Sha256::new(),
        fetched: 0,
        last_progress: None,
        rng: StdRng::seed_from_u64(seed),
    };
    let outcome = worker.run().await;
    (outcome, worker.fetched)
}

struct Worker {
    /// This job's first connection; extra ones of a split file take their own.
    _permit: ConnPermit,
    /// The job's URL then its mirrors.
    mirrors: Vec<url::Url>,
    /// The mirror in use, an index into `mirrors`.
    current: usize,
    /// Each mirror's last error, once it has failed for good this run.
    mirror_errors: Vec<Option<String>>,
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
    /// The current mirror, redacted, for messages.
    url: String,
    final_path: PathBuf,
    part_path: PathBuf,
    /// Bytes of the `.part` file that `hasher` has seen.
    pos: u64,
    hasher: Sha256,
    fetched: u64,
    last_progress: Option<Instant>,
    rng: StdRng,
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
        let mut failures = 0u32;
        loop {
            if self.shared.cancel.is_cancelled() {
                return self.interrupted().await;
            }
            self.rec.attempts += 1;
            let before = self.pos;
            let err = match self.attempt().await {
                Ok(Next::Complete) => return self.finish(self.stream_digest()).await,
                Ok(Next::Split(first)) => match self.segmented(Some(first)).await {
                    Some(outcome) => return outcome,
                    None => continue,
                },
                Err(Stop::Cancelled) => return self.interrupted().await,
                Err(Stop::Failed(err)) => err,
            };
            // An attempt that moved the file forward earns a fresh budget: a
            // flaky link that keeps making progress should still finish.
            failures = if err.earns_fresh_budget(self.pos > before) {
                1
            } else {
                failures + 1
            };
            let decision = self.shared.cfg.retry.decide(
                err.is_transient(),
                failures,
                err.retry_after(),
                &mut self.rng,
            );
            let Decision::RetryAfter(delay) = decision else {
                match self.fail_over(&err).await {
                    Ok(true) => {
                        failures = 0;
                        continue;
                    }
                    Ok(false) => return self.fail_all(err).await,
                    Err(Stop::Cancelled) => return self.interrupted().await,
                    Err(Stop::Failed(local)) => return self.fail(local).await,
                }
            };
            self.rec.last_error = Some(err.chain());
            self.save();
            self.emit(Event::Retrying {
                id: self.id,
                path: self.spec.path.to_string(),
                attempt: self.rec.attempts,
                reason: err.chain(),
                delay,
                capped_from: self.shared.cfg.retry.capped_retry_after(err.retry_after()),
            })
            .await;
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return self.interrupted().await,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Decides where to resume and re-hashes the prefix kept. Returns true
    /// when the file is already complete on disk and only needs its rename.
    async fn prepare(&mut self) -> Result<bool, DownloadError> {
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| DownloadError::Io { path, source }
        };
        // One trip to the blocking pool for every look at the disk.
        let (final_path, part) = (self.final_path.clone(), self.part_path.clone());
        let (root, rel) = (self.shared.cfg.out_dir.clone(), self.spec.path.clone());
        let looked = tokio::task::spawn_blocking(move || {
            crate::store::part::make_parents_blocking(&root, &rel)?;
            let final_exists = std::fs::symlink_metadata(&final_path).is_ok();
            part_len_blocking(&part).map(|len| (final_exists, len))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        let (final_exists, on_disk) = looked.map_err(io(&self.part_path))?;
        if final_exists && self.rec.state != JobState::Done && !self.shared.cfg.allow_overwrite {
            return Err(DownloadError::Exists {
                path: self.spec.path.to_string(),
            });
        }

        // Recorded as done but killed before the rename: the complete .part
        // is still there; promote it if it hashes to what was recorded, and
        // otherwise trust none of it.
        if self.rec.segments.is_some() && self.rec.state != JobState::Done {
            // A split file resumes range by range; see `segmented`.
            self.rec.state = JobState::Partial;
            return Ok(false);
        }
        let mut offset = resume_offset(&self.rec, on_disk, self.shared.boot_id.as_deref());
        if self.rec.state == JobState::Done && Some(on_disk) == self.rec.total {
            if let Some(recorded) = self.rec.sha256.clone() {
                self.hash_prefix(on_disk).await?;
                if hex::encode(self.hasher.clone().finalize()) == recorded {
                    return Ok(true);
                }
            }
            offset = 0;
        }

        self.hasher = Sha256::new();
        self.pos = 0;
        if offset > 0 {
            self.hash_prefix(offset).await?;
        } else {
            self.rec.bytes_done = 0;
        }
        self.rec.state = JobState::Partial;
        Ok(false)
    }

    async fn hash_prefix(&mut self, len: u64) -> Result<(), DownloadError> {
        let path = self.part_path.clone();
        let mut hasher = Sha256::new();
        let result = tokio::task::spawn_blocking(move || {
            crate::verify::hash_prefix(&path, len, &mut hasher).map(|()| hasher)
        })
        .await
        .map_err(|err| DownloadError::Io {
            path: self.part_path.clone(),
            source: std::io::Error::other(err),
        })?;
        self.hasher = result.map_err(|source| DownloadError::Io {
            path: self.part_path.clone(),
            source,
        })?;
        self.pos = len;
        Ok(())
    }

    /// One request and its body, from `self.pos` on. Ok means the file is
    /// complete on disk (synced), or that it is worth splitting.
    async fn attempt(&mut self) -> Result<Next, Stop> {
        let mut own = Vec::new();
        if self.pos > 0 {
            own.push((RANGE, format!("bytes={}-", self.pos)));
            let validator =
                if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref());
            if let Some(validator) = validator {
                own.push((IF_RANGE, validator));
            }
        }
        let sent = self
            .shared
            .client
            .get(&self.mirrors[self.current], &self.spec.headers, &own);
        let resp = self.cancellable(sent).await?;
        let resp = resp.map_err(|err| DownloadError::fetching(&self.url, err))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        match status {
            StatusCode::OK => {
                if self.pos > 0 {
                    self.restart(RestartReason::WholeFile).await?;
                }
                self.rec.total = resp.content_length();
                self.rec.etag = header_str(&headers, ETAG);
                self.rec.last_modified = header_str(&headers, LAST_MODIFIED);
                // Before a split preallocates it, and before a single byte.
                if let Some(total) = self.rec.total {
                    self.limit().check_total(total, &self.url)?;
                }
                if self.worth_splitting(&headers) {
                    return self.start_split(resp).await;
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                let content_range = header_str(&headers, CONTENT_RANGE);
                let total = check_resumed(content_range.as_deref(), self.pos, self.rec.total)
                    .map_err(RestartReason::BadResume)
                    .and_then(|total| self.same_validator(&headers).map(|()| total));
                match total {
                    Ok(total) => {
                        self.limit().check_total(total, &self.url)?;
                        self.rec.total = Some(total);
                        // A mirror taken over with a checksum to vouch for
                        // the bytes: its validators guard later resumes.
                        if self.rec.etag.is_none() && self.rec.last_modified.is_none() {
                            self.rec.etag = header_str(&headers, ETAG);
                            self.rec.last_modified = header_str(&headers, LAST_MODIFIED);
                        }
                    }
                    Err(reason) => {
                        let text = reason.to_string();
                        self.restart(reason).await?;
                        return Err(Stop::Failed(DownloadError::BadRange {
                            url: self.url.clone(),
                            reason: text,
                        }));
                    }
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if self.pos > 0 => {
                let content_range = header_str(&headers, CONTENT_RANGE);
                let complete = content_range.as_deref().and_then(parse_content_range);
                // Done only if the server's length is exactly what we hold
                // (and what we recorded, if we knew it) and its validator is
                // still ours; If-Range made a changed file answer 200 instead.
                let length_matches = complete
                    == Some(ContentRange::Unsatisfied { complete: self.pos })
                    && self.rec.total.is_none_or(|total| total == self.pos);
                if length_matches && self.same_validator(&headers).is_ok() {
                    self.rec.total = Some(self.pos);
                    return Ok(Next::Complete);
                }
                let reason = RestartReason::Unsatisfiable {
                    content_range,
                    offset: self.pos,
                };
                let text = reason.to_string();
                self.restart(reason).await?;
                return Err(Stop::Failed(DownloadError::BadRange {
                    url: self.url.clone(),
                    reason: text,
                }));
            }
            _ => {
                let err = DownloadError::status(&self.url, status.as_u16(), &headers);
                return Err(Stop::Failed(err));
            }
        }
        // The answer is accepted: its validators and length are ours now.
        self.touched = true;
        if self.rec.total.is_some_and(|total| self.pos > total) {
            self.restart(RestartReason::LongerThanServer).await?;
            return Err(Stop::Failed(DownloadError::BadRange {
                url: self.url.clone(),
                reason: "length shrank".into(),
            }));
        }
        // Validators and length go to the manifest before any byte they
        // vouch for; the first durable checkpoint makes them durable too. A
        // small body is written in one go and recorded once, as done: if a
        // kill comes first, no validator means the next run starts it over.
        if self
            .rec
            .total
            .is_none_or(|total| total - self.pos > SMALL_BODY)
        {
            self.save_written();
        }
        self.emit(Event::Started {
            id: self.id,
            path: self.spec.path.to_string(),
            offset: self.pos,
            total: self.rec.total,
        })
        .await;

        let mut part = PartFile::open_at(&self.part_path, self.pos)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        let streamed = self.stream(&mut part, resp).await;
        // Whatever happened, keep what arrived: sync, then let the manifest count it.
        part.sync().await.map_err(|source| DownloadError::Io {
            path: self.part_path.clone(),
            source,
        })?;
        self.rec.bytes_done = self.pos;
        // After a complete body the "done" record follows at once, synced
        // and waited for; only a failed one needs its checkpoint now.
        if streamed.is_err() {
            self.save();
        }
        streamed.map(|()| Next::Complete)
    }

    async fn stream(&mut self, part: &mut PartFile, resp: reqwest::Response) -> Result<(), Stop> {
        let stall = self.shared.cfg.stall_timeout;
        let mut body = resp.bytes_stream();
        let mut last_checkpoint = Instant::now();
        let cfg = &self.shared.cfg;
        let mut floor = speed::SpeedFloor::new(cfg.lowest_speed, cfg.speed_window, Instant::now());
        let mut read_by = tokio::time::Instant::now() + stall;
        loop {
            let next = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
                next = tokio::time::timeout_at(read_by, body.next()) => next,
                // A drip may be too slow to wait for its next byte: the
                // verdict falls when it is due, not when a byte comes.
                _ = until_due(floor.as_ref()) => {
                    match floor.as_mut().map(|f| f.check(Instant::now())) {
                        Some(Err(slow)) => return Err(Stop::Failed(slow.into_error(&self.url))),
                        _ => continue,
                    }
                }
            };
            let chunk = match next {
                Err(_) => {
                    return Err(Stop::Failed(DownloadError::Stalled {
                        url: self.url.clone(),
                        secs: stall.as_secs_f64(),
                    }))
                }
                Ok(None) => break,
                Ok(Some(Err(source))) => {
                    return Err(Stop::Failed(DownloadError::Body {
                        url: self.url.clone(),
                        got: self.pos,
                        source,
                    }))
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            // Keep what the answer vouched for (up to the known total, and
            // under the cap, which a known total already passed), then stop
            // reading: bytes past the total are a lying Content-Length (a 206
            // whose body outruns its Content-Range), the next attempt confirms
            // the end with a 416; bytes past the cap end the file.
            let len = chunk.len() as u64;
            let room = self
                .rec
                .total
                .map_or(len, |total| total.saturating_sub(self.pos));
            let keep = self.limit().fits(self.pos, len.min(room));
            let cut = if len > room {
                Some(DownloadError::TooLong {
                    url: self.url.clone(),
                    expected: self.rec.total.unwrap_or(0),
                })
            } else if keep < len {
                Some(self.limit().exceeded(&self.url))
            } else {
                None
            };
            let chunk = chunk.slice(..keep as usize);
            part.write(&chunk)
                .await
                .map_err(|source| DownloadError::Io {
                    path: self.part_path.clone(),
                    source,
                })?;
            self.hasher.update(&chunk);
            self.pos += chunk.len() as u64;
            self.fetched += chunk.len() as u64;
            self.progress();
            if let Some(err) = cut {
                return Err(Stop::Failed(err));
            }
            // After the write: what did arrive is kept for the next attempt;
            // a body that just completed is not worth a verdict.
            if let Some(floor) = floor.as_mut().filter(|_| self.rec.total != Some(self.pos)) {
                floor
                    .record(Instant::now(), chunk.len() as u64)
                    .map_err(|slow| Stop::Failed(slow.into_error(&self.url)))?;
            }
            if last_checkpoint.elapsed() >= self.shared.cfg.checkpoint_every {
                part.sync().await.map_err(|source| DownloadError::Io {
                    path: self.part_path.clone(),
                    source,
                })?;
                self.checkpoint();
                last_checkpoint = Instant::now();
            }
            // Before the next read, so while we wait the socket fills and
            // TCP slows the server down.
            if let Some(throttle) = &self.shared.throttle {
                let waiting = Instant::now();
                tokio::select! {
                    biased;
                    _ = self.shared.cancel.cancelled() => return Err(Stop::Cancelled),
                    _ = throttle.take(len) => {}
                }
                if let Some(floor) = floor.as_mut() {
                    floor.excuse(Instant::now(), waiting.elapsed());
                }
            }
            read_by = tokio::time::Instant::now() + stall;
        }
        match self.rec.total {
            Some(total) if self.pos < total => Err(Stop::Failed(DownloadError::Truncated {
                url: self.url.clone(),
                got: self.pos,
                expected: total,
            })),
            Some(_) => Ok(()),
            None => {
                self.rec.total = Some(self.pos);
                Ok(())
            }
        }
    }

    /// Checks the checksum, records "done" durably, then renames: a
    /// final-named file is always complete and verified.
    async fn finish(&mut self, got: String) -> Outcome {
        self.touched = true;
        if let Err(err) = self.check_length() {
            return self.fail(err).await;
        }
        if let Some(expected) = self.spec.checksum {
            let expected = hex::encode(expected);
            if got != expected {
                let err = DownloadError::Checksum {
                    path: self.spec.path.to_string(),
                    expected,
                    got,
                };
                // The bytes are wrong, so the next run must not resume
                // them: without a validator it starts from zero. The .part
                // stays for inspection.
                self.rec.bytes_done = 0;
                self.rec.etag = None;
                self.rec.last_modified = None;
                self.rec.segments = None;
                return self.fail(err).await;
            }
        }
        self.rec.state = JobState::Done;
        self.rec.bytes_done = self.pos;
        self.rec.total = Some(self.pos);
        self.rec.sha256 = Some(got.clone());
        self.rec.last_error = None;
        // Nothing resumes a finished file: its boot id would only cost memory.
        self.rec.boot_id = None;
        if let Err(err) = self.shared.recorder.save_synced(self.rec.clone()).await {
            let msg = crate::error::chain(&err);
            return self
                .fail_msg(
                    FailureKind::Manifest,
                    format!("cannot record {} as done: {msg}", self.spec.path),
                )
                .await;
        }
        if let Err(source) = promote(&self.part_path, &self.final_path).await {
            let err = DownloadError::Io {
                path: self.final_path.clone(),
                source,
            };
            return self.fail(err).await;
        }
        self.emit(Event::Finished {
            id: self.id,
            path: self.spec.path.to_string(),
            bytes: self.pos,
            sha256: got,
        })
        .await;
        Outcome::Finished
    }

    /// The `.part` must hold exactly the known total, whatever path led
    /// here: a surplus or a gap is never renamed into place, nor a file over
    /// the cap that an earlier run without it completed. `pos` is the length
    /// on disk on every path (a single stream's writes, a split plan's
    /// written total, a complete `.part` measured by `prepare`), so this
    /// costs no trip to the disk per file.
    fn check_length(&self) -> Result<(), DownloadError> {
        self.limit().check_total(self.pos, &self.url)?;
        let expected = self.rec.total.unwrap_or(self.pos);
        if self.pos != expected {
            return Err(DownloadError::SizeMismatch {
                path: self.part_path.clone(),
                got: self.pos,
                expected,
            });
        }
        Ok(())
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
        PartFile::open_at(&self.part_path, 0)
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

    /// A 206 must come from the same version of the file we hold.
    fn same_validator(&self, headers: &HeaderMap) -> Result<(), RestartReason> {
        match (&self.rec.etag, header_str(headers, ETAG)) {
            (Some(ours), Some(theirs)) if *ours != theirs => Err(RestartReason::EtagChanged {
                ours: ours.clone(),
                theirs,
            }),
            _ => Ok(()),
        }
    }

    /// The next mirror not yet failed this run, in list order after the
    /// current one.
    fn next_mirror(&self) -> Option<usize> {
        let n = self.mirrors.len();
        (1..n)
            .map(|k| (self.current + k) % n)
            .find(|&i| self.mirror_errors[i].is_none())
    }

    /// Records that the current mirror failed for good with `err` and, if
    /// the error is the server's (not our disk's) and another mirror is
    /// left, moves to it. Ok(true) means try again on the new mirror.
    ///
    /// The bytes on disk stay only if the new mirror will have to prove
    /// they are its own: with a checksum, its 206 must give the same total
    /// and the checksum judges the end result; with a strong ETag, If-Range
    /// makes any other version answer 200, which restarts the file. Anything
    /// else starts over on the new mirror: bytes from two servers are never
    /// spliced unverified. A split file always starts over.
    async fn fail_over(&mut self, err: &DownloadError) -> Result<bool, Stop> {
        self.mirror_errors[self.current] = Some(err.chain());
        self.switch_mirror(err).await
    }

    /// The second half of [`Worker::fail_over`], for a current mirror whose
    /// error is already recorded.
    async fn switch_mirror(&mut self, err: &DownloadError) -> Result<bool, Stop> {
        if !fails_over(err) {
            return Ok(false);
        }
        let Some(next) = self.next_mirror() else {
            return Ok(false);
        };
        let failed = std::mem::replace(&mut self.url, redact(&self.mirrors[next]));
        self.current = next;
        self.emit(Event::MirrorSwitched {
            id: self.id,
            path: self.spec.path.to_string(),
            from: failed,
            to: self.url.clone(),
            reason: err.chain(),
            scope: SwitchScope::Job {
                attempt: self.rec.attempts,
            },
        })
        .await;
        let strong_etag = self
            .rec
            .etag
            .as_deref()
            .is_some_and(|tag| !tag.starts_with("W/"));
        if self.rec.segments.is_none() && self.spec.checksum.is_some() {
            // The new mirror's own validators are learnt from its 206.
            self.rec.etag = None;
            self.rec.last_modified = None;
        } else if self.rec.segments.is_none() && strong_etag {
            self.rec.last_modified = None;
        } else if self.pos > 0 || self.rec.segments.is_some() {
            let reason = RestartReason::MirrorUnproven {
                url: self.url.clone(),
            };
            self.restart(reason).await?;
        }
        Ok(true)
    }

    /// Fails the job; with mirrors, the message gives each mirror's last
    /// error, so the user sees why every one of them was given up.
    async fn fail_all(&mut self, err: DownloadError) -> Outcome {
        if self.mirrors.len() < 2 || !fails_over(&err) {
            return self.fail(err).await;
        }
        let each: Vec<String> = self
            .mirrors
            .iter()
            .zip(&self.mirror_errors)
            .map(|(url, error)| {
                let error = error.as_deref().unwrap_or("not tried");
                format!("{}: {error}", redact(url))
            })
            .collect();
        let msg = format!(
            "all {} mirrors failed: {}",
            self.mirrors.len(),
            each.join("; ")
        );
        self.fail_msg(err.kind(), msg).await
    }

    async fn fail(&mut self, err: DownloadError) -> Outcome {
        self.fail_msg(err.kind(), err.chain()).await
    }

    async fn fail_msg(&mut self, kind: FailureKind, msg: String) -> Outcome {
        self.rec.state = JobState::Failed;
        self.rec.last_error = Some(msg.clone());
        let mut rec = self.to_record();
        // A complete file stays "done" (and verifiable) when a new URL
        // for it fails without touching it.
        if rec.state != JobState::Done {
            rec.state = JobState::Failed;
        }
        // Best effort: the failure itself is what the user needs to see.
        let _ = self.shared.recorder.save_synced(rec).await;
        self.emit(Event::Failed {
            id: self.id,
            path: self.spec.path.to_string(),
            kind,
            error: msg,
        })
        .await;
        Outcome::Failed
    }

    async fn interrupted(&mut self) -> Outcome {
        // An earlier attempt's error no longer says why the job is unfinished.
        self.rec.last_error = Some(crate::store::manifest::INTERRUPTED.to_string());
        self.save();
        self.emit(Event::Interrupted {
            id: self.id,
            path: self.spec.path.to_string(),
            pos: self.pos,
        })
        .await;
        Outcome::Interrupted
    }

    /// Records `pos` as durable: call only right after a sync.
    fn checkpoint(&mut self) {
        self.rec.bytes_done = self.pos;
        self.save();
    }

    fn save(&mut self) {
        self.rec.boot_id = self.shared.boot_id.clone();
        self.shared.recorder.save(self.to_record());
    }

    /// Like `save`, without asking for an fsync: for records that only
    /// have to survive a killed process, or that a synced one follows.
    fn save_written(&mut self) {
        self.rec.boot_id = self.shared.boot_id.clone();
        self.shared.recorder.save_written(self.to_record());
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

    fn progress(&mut self) {
        let now = Instant::now();
        if self
            .last_progress
            .is_some_and(|last| now.duration_since(last) < PROGRESS_EVERY)
        {
            return;
        }
        self.last_progress = Some(now);
        // Progress is droppable: a slow renderer must not slow the download.
        let _ = self.shared.events.try_send(Event::Progress {
            id: self.id,
            pos: self.pos,
        });
    }

    async fn emit(&self, event: Event) {
        let _ = self.shared.events.send(event).await;
    }

    async fn cancellable<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, Stop> {
        let stall = self.shared.cfg.stall_timeout;
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => Err(Stop::Cancelled),
            out = tokio::time::timeout(stall, fut) => out.map_err(|_| {
                Stop::Failed(DownloadError::Stalled { url: self.url.clone(), secs: stall.as_secs_f64() })
            }),
        }
    }
}

impl Worker {
    fn stream_digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Connections this file should use, given its length.
    fn connections_for(&self, total: u64) -> usize {
        let cfg = &self.shared.cfg;
        let wanted = match cfg.split {
            Some(n) => n,
            None if total >= cfg.min_split_size => AUTO_SPLIT,
            None => 1,
        };
        wanted.min((total / MIN_PIECE).max(1) as usize)
    }

    /// A fresh 200 may be split when it is large enough, the server says it
    /// serves byte ranges, and a validator lets every range prove it comes
    /// from the same version of the file.
    fn worth_splitting(&self, headers: &HeaderMap) -> bool {
        let ranges = headers
            .get(reqwest::header::ACCEPT_RANGES)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")));
        let validator = if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref());
        !self.no_split
            && self.pos == 0
            && ranges
            && validator.is_some()
            && self
                .rec
                .total
                .is_some_and(|total| self.connections_for(total) > 1)
    }

    /// Preallocates the file and records that it is split.
    async fn start_split(&mut self, first: reqwest::Response) -> Result<Next, Stop> {
        self.touched = true;
        let total = self.rec.total.unwrap_or(0);
        crate::store::part::preallocate(&self.part_path, total)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        self.rec.segments = Some(Plan::new(total, MIN_PIECE).segments());
        self.rec.bytes_done = 0;
        self.save();
        Ok(Next::Split(first))
    }

    /// Runs a split download (fresh with `first`, or resumed from the
    /// manifest). None means ranges failed and the file starts over as one
    /// stream; otherwise the job's outcome.
    async fn segmented(&mut self, first: Option<reqwest::Response>) -> Option<Outcome> {
        let total = self.rec.total?;
        // A resumed plan may come from a run without the cap.
        if let Err(err) = self.limit().check_total(total, &self.url) {
            return Some(self.fail(err).await);
        }
        let plan = match first {
            Some(_) => Plan::new(total, MIN_PIECE),
            None => {
                let on_disk = part_len(&self.part_path).await.unwrap_or(0);
                let same_boot =
                    self.shared.boot_id.is_some() && self.rec.boot_id == self.shared.boot_id;
                let segs = self.rec.segments.clone().unwrap_or_default();
                match Plan::resume(&segs, total, MIN_PIECE, same_boot) {
                    Some(plan) if on_disk == total && self.has_validator() => plan,
                    _ => {
                        self.rec.segments = None;
                        self.rec.bytes_done = 0;
                        return None;
                    }
                }
            }
        };
        self.touched = true;
        let pos = plan.written_total();
        self.emit(Event::Started {
            id: self.id,
            path: self.spec.path.to_string(),
            offset: pos,
            total: Some(total),
        })
        .await;
        let mirrors = self.spread_over();
        let ctx = Arc::new(segmented::Ctx {
            shared: self.shared.clone(),
            id: self.id,
            path: self.spec.path.to_string(),
            mirror_state: std::sync::Mutex::new(
                mirrors
                    .iter()
                    .enumerate()
                    .map(|(at, _)| self.mirror_start(at == 0))
                    .collect(),
            ),
            mirrors,
            headers: self.spec.headers.clone(),
            part_path: self.part_path.clone(),
            plan: std::sync::Mutex::new(plan),
            rec: std::sync::Mutex::new(self.rec.clone()),
            stop: self.shared.cancel.child_token(),
            wake_hasher: tokio::sync::Notify::new(),
            fetched: std::sync::atomic::AtomicU64::new(0),
            last_progress: std::sync::Mutex::new(None),
        });
        let connections = self.connections_for(total);
        let end = segmented::run(ctx.clone(), first, connections, self.seed).await;
        self.fetched += ctx.fetched.load(std::sync::atomic::Ordering::Relaxed);
        for (mirror, state) in ctx.mirrors.iter().zip(ctx.mirror_errors()) {
            if let Some(error) = state {
                self.mirror_errors[mirror.index] = Some(error);
            }
        }
        {
            let plan = ctx.plan.lock().unwrap_or_else(|e| e.into_inner());
            self.rec.segments = Some(plan.segments());
            self.rec.bytes_done = plan.synced_total();
            self.pos = plan.written_total();
        }
        match end {
            segmented::SegEnd::Complete(digest) => Some(self.finish(digest).await),
            segmented::SegEnd::Failed(err) => {
                // Every mirror of the split failed: on to one not tried yet.
                if self.mirror_errors[self.current].is_none() {
                    self.mirror_errors[self.current] = Some(err.chain());
                }
                match self.switch_mirror(&err).await {
                    Ok(true) => None,
                    Ok(false) => Some(self.fail_all(err).await),
                    Err(Stop::Cancelled) => Some(self.interrupted().await),
                    Err(Stop::Failed(err)) => Some(self.fail(err).await),
                }
            }
            segmented::SegEnd::Cancelled => Some(self.interrupted().await),
            segmented::SegEnd::Restart(reason) => {
                // The split's mirrors that failed are out of this run.
                if self.mirror_errors[self.current].is_some() {
                    if let Some(next) = self.next_mirror() {
                        self.current = next;
                        self.url = redact(&self.mirrors[next]);
                    }
                }
                self.no_split = true;
                match self.restart(reason).await {
                    Ok(()) => None,
                    Err(Stop::Cancelled) => Some(self.interrupted().await),
                    Err(Stop::Failed(err)) => Some(self.fail(err).await),
                }
            }
        }
    }

    /// The mirrors a split spreads over, the current one first: all that
    /// have not failed, when every range can be proven to come from the same
    /// file (a checksum judges the result, or a strong ETag goes with every
    /// request as If-Range); otherwise only the current one.
    fn spread_over(&self) -> Vec<segmented::Mirror> {
        let strong_etag = self
            .rec
            .etag
            .as_deref()
            .is_some_and(|tag| !tag.starts_with("W/"));
        let spread = self.spec.checksum.is_some() || strong_etag;
        let others = (0..self.mirrors.len())
            .filter(|&i| spread && i != self.current && self.mirror_errors[i].is_none());
        std::iter::once(self.current)
            .chain(others)
            .map(|index| segmented::Mirror {
                index,
                host: host_key(&self.mirrors[index]),
                url_text: redact(&self.mirrors[index]),
                url: self.mirrors[index].clone(),
            })
            .collect()
    }

    /// What a split assumes of a mirror before its first answer: the one
    /// that answered first (or whose validators the manifest holds) and,
    /// without a checksum, every other, must match our validators; with a
    /// checksum another mirror's validators are learnt from its first 206.
    fn mirror_start(&self, first: bool) -> segmented::MirrorState {
        let learn = !first && self.spec.checksum.is_some();
        segmented::MirrorState {
            dropped: false,
            error: None,
            known: !learn,
            etag: self.rec.etag.clone().filter(|_| !learn),
            last_modified: self.rec.last_modified.clone().filter(|_| !learn),
            must_echo_etag: !first && !learn,
        }
    }

    fn has_validator(&self) -> bool {
        if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref()).is_some()
    }
}

/// Whether another mirror could do better: not for our own disk's
/// troubles, nor for a final file in the way.
fn fails_over(err: &DownloadError) -> bool {
    !matches!(
        err,
        DownloadError::Io { .. }
            | DownloadError::Exists { .. }
            | DownloadError::SizeMismatch { .. }
            | DownloadError::Checksum { .. }
    )
}

/// Where to resume a job, given its record and the `.part` length on disk.
///
/// The manifest's `bytes_done` only counts synced bytes. While the kernel has
/// not rebooted since they were written, the page cache survived any kill,
/// so the whole `.part` is good; after a reboot only the synced prefix is.
/// Without a validator there is no way to tell a changed file from ours, so
/// nothing is resumed.
pub(crate) fn resume_offset(rec: &JobRecord, on_disk: u64, boot_id: Option<&str>) -> u64 {
    if rec.etag.is_none() && rec.last_modified.is_none() {
        return 0;
    }
    let same_boot = boot_id.is_some() && rec.boot_id.as_deref() == boot_id;
    let offset = if same_boot {
        on_disk
    } else {
        on_disk.min(rec.bytes_done)
    };
    match rec.total {
        Some(total) if offset > total => 0,
        _ => offset,
    }
}

fn header_str(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(bytes_done: u64, total: Option<u64>, boot: Option<&str>) -> JobRecord {
        JobRecord {
            state: JobState::Partial,
            bytes_done,
            total,
            etag: Some("\"e\"".into()),
            attempts: 1,
            boot_id: boot.map(str::to_string),
            ..JobRecord::pending("a".into(), "http://h/a".into())
        }
    }

    #[test]
    fn resumes_whole_part_within_the_same_boot() {
        assert_eq!(
            resume_offset(&rec(10, Some(100), Some("b1")), 40, Some("b1")),
            40
        );
    }

    #[test]
    fn resumes_only_synced_bytes_after_a_reboot() {
        assert_eq!(
            resume_offset(&rec(10, Some(100), Some("b1")), 40, Some("b2")),
            10
        );
        assert_eq!(resume_offset(&rec(10, Some(100), None), 40, None), 10);
    }

    #[test]
    fn a_part_cut_short_by_hand_resumes_from_what_is_left() {
        assert_eq!(
            resume_offset(&rec(50, Some(100), Some("b1")), 20, Some("b2")),
            20
        );
    }

    #[test]
    fn never_resumes_without_a_validator_or_past_the_end() {
        let mut r = rec(10, Some(100), Some("b1"));
        r.etag = None;
        assert_eq!(resume_offset(&r, 40, Some("b1")), 0);
        assert_eq!(
            resume_offset(&rec(10, Some(30), Some("b1")), 40, Some("b1")),
            0
        );
    }
}
