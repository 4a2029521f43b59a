//! The download engine: reads a stream of jobs a bounded window ahead of its
//! workers, reconciles each with the manifest, and runs a bounded pool of
//! workers (`jobs` slots, more over HTTP/2, see `slots`; `max_per_host`
//! connections per host) until the stream has ended and every job has
//! finished, failed, or been interrupted.
//!
//! It reports through [`Event`]s and a [`Report`]; it never prints and knows
//! nothing of terminals or the command line.

pub mod job;
mod limits;
pub mod recorder;
pub mod retry;
pub mod segments;
mod siblings;
mod slots;
pub mod throttle;
pub mod worker;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event::{Cause, Event, FailureKind, JobId, Report};
use crate::safe_url::SafeUrl;
use crate::store::list_stamp::{self, ListStamp, ListStampError, Previous};
use crate::store::lock::{DirLock, LockError};
use crate::store::manifest::{boot_id, JobRecord, JobState, Manifest, ManifestError};
use recorder::Recorder;
use retry::RetryPolicy;
use siblings::Siblings;
use worker::{run_job, Outcome, Shared};

pub use job::{JobSource, JobSpec, WINDOW};
pub(crate) use limits::{host_key, ConnPermit, Limits};
pub(crate) use slots::JobSlot;
use slots::JobSlots;

/// `--lowest-speed` when not given: 1 KiB/s, low enough that a link that
/// works never trips it, high enough that a server dripping a byte every
/// few seconds does.
pub const DEFAULT_LOWEST_SPEED: u64 = 1024;

/// `--lowest-speed-time` when not given: 30 s, as curl's `--speed-time`.
pub const DEFAULT_LOWEST_SPEED_TIME: Duration = Duration::from_secs(30);

/// Engine settings, already validated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub out_dir: PathBuf,
    /// Downloads at once.
    pub jobs: usize,
    /// Connections to one host at once.
    pub max_per_host: usize,
    /// Connections at once over the whole run.
    pub max_connections: usize,
    /// Connections per file: None splits large files automatically.
    pub split: Option<usize>,
    /// Automatic splitting only for files at least this large.
    pub min_split_size: u64,
    /// Files larger than this fail (`--max-file-size`); None is no cap.
    pub max_file_size: Option<u64>,
    pub retry: RetryPolicy,
    /// An attempt that receives nothing for this long is aborted.
    pub stall_timeout: Duration,
    /// `--lowest-speed`: an attempt averaging fewer bytes a second than this
    /// over the last `speed_window` is aborted and retried; 0 is off.
    pub lowest_speed: u64,
    /// `--lowest-speed-time`: the sliding window `lowest_speed` is judged
    /// over.
    pub speed_window: Duration,
    /// `--max-speed`: bytes a second over all connections together; None is
    /// no limit.
    pub max_speed: Option<u64>,
    /// How often a running download syncs its data and records its offset.
    pub checkpoint_every: Duration,
    /// Replace final-named files that haul did not download.
    pub allow_overwrite: bool,
    /// `--shard K/N`: the manifest and lock live in the shard's own state
    /// directory (the jobs are already filtered).
    pub shard: Option<crate::shard::Shard>,
    /// The list the jobs come from, recorded in the state directory before
    /// the first request (`store::list_stamp`); None for jobs that are not
    /// one list known up front (the library's streams).
    pub list: Option<crate::store::list_stamp::ListStamp>,
}

/// Why a run could not start or could not save its state at the end.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot create output directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    ListStamp(#[from] ListStampError),
    #[error("the manifest writer stopped unexpectedly")]
    WriterPanicked,
    #[error("cannot start the manifest writer")]
    Spawn(#[source] std::io::Error),
}

/// Downloads the jobs of `jobs` into `cfg.out_dir`, resuming whatever an
/// earlier run left, until the stream ends and every job has ended (or
/// `cancel` fires).
///
/// The jobs ready at the start are reconciled with the manifest and
/// announced (`RunStarted`, then `Queued` and `Skipped`) before any work;
/// jobs that arrive later are reconciled and announced as they arrive.
pub async fn run(
    cfg: EngineConfig,
    client: crate::http::Fetcher,
    jobs: JobSource,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) -> Result<Report, EngineError> {
    let started = Instant::now();
    let out_dir = cfg.out_dir.clone();
    std::fs::create_dir_all(&out_dir).map_err(|source| EngineError::CreateDir {
        path: out_dir.clone(),
        source,
    })?;
    let shard = cfg.shard;
    let _lock = DirLock::acquire_shard(&out_dir, shard)?;
    let mut intake = Intake::new(jobs);
    let first = intake.source.ready(intake.source.window_size());
    let arrived = first.len();
    let (admitted, refused) = intake.admit(first);
    let list = cfg.list.clone();
    let (found, manifest, siblings, list_changed, fresh_out_dir) =
        tokio::task::spawn_blocking(move || {
            // Looked at before the manifest or anything else is written.
            let fresh_out_dir = crate::store::fresh_out_dir(&out_dir);
            let mut siblings = Siblings::find(&out_dir, shard);
            let mut manifest = Manifest::open_shard(&out_dir, shard)?;
            let list_changed = match &list {
                Some(stamp) => stamp_list(manifest.dir(), stamp)?,
                None => None,
            };
            let mut found = reconcile(&manifest, admitted, &out_dir, &mut siblings)?;
            // Records for new jobs are built as they are written, not all at once.
            let pending = found.changed.iter().map(|&i| {
                let spec = &found.queue[i].spec;
                JobRecord::pending(spec.path.to_string(), spec.url.to_string())
            });
            let adopted = std::mem::take(&mut found.adopted);
            manifest.insert_all(pending.chain(adopted))?;
            Ok::<_, EngineError>((found, manifest, siblings, list_changed, fresh_out_dir))
        })
        .await
        .map_err(|_| EngineError::WriterPanicked)??;

    let mut report = Report::default();
    let known_bytes = found
        .queue
        .iter()
        .filter_map(|job| job.record.as_ref().and_then(|r| r.total))
        .chain(found.skipped.iter().map(|s| s.bytes))
        .sum();
    let _ = events
        .send(Event::RunStarted {
            jobs: intake.source.expected().unwrap_or(0).max(arrived),
            known_bytes,
        })
        .await;
    let (recorder, writer) = Recorder::spawn(manifest, siblings)?;
    let shared = Arc::new(Shared {
        limits: Limits::new(cfg.max_connections, cfg.max_per_host),
        throttle: cfg.max_speed.map(throttle::Throttle::new),
        client,
        cfg: cfg.clone(),
        events,
        recorder,
        cancel: cancel.clone(),
        boot_id: boot_id(),
        fresh_out_dir,
    });
    let mut hosts = HostQueues::default();
    intake
        .announce(&shared, found, refused, &mut hosts, &mut report)
        .await;
    dispatch(&shared, hosts, intake, &mut report).await;
    report.cancelled = cancel.is_cancelled();
    // Dropping the last Recorder lets the writer compact and close the manifest.
    drop(shared);
    report.warnings = list_changed.into_iter().collect();
    report.warnings.extend(writer.join().await?);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Records the run's list in its state directory `dir`; what to say if
/// that state came from another list. Not an error: people edit lists, and
/// the manifest keys on paths, so what the two lists share is kept.
fn stamp_list(dir: &std::path::Path, stamp: &ListStamp) -> Result<Option<String>, EngineError> {
    Ok(match list_stamp::record(dir, stamp)? {
        Previous::Same => None,
        Previous::Other(old) => Some(format!(
            "the state in {} was kept for another list ({}); it now records this one ({})",
            dir.display(),
            old.describe(),
            stamp.describe()
        )),
        Previous::Unreadable => Some(format!(
            "{} did not read; it now records this run's list ({})",
            dir.join(list_stamp::LIST_STAMP_NAME).display(),
            stamp.describe()
        )),
    })
}

/// Where jobs enter the run: numbers them, refuses one whose file another
/// job of this run is still on, and announces the rest once reconciled.
struct Intake {
    source: JobSource,
    next_id: JobId,
    /// Output paths of the jobs queued or running: a stream cannot be
    /// checked for repeats up front, and two jobs on one `.part` would
    /// splice it.
    busy: HashSet<BusyPath>,
}

/// A job's output path as a key of `Intake::busy`, sharing the job's spec:
/// a pointer to the job rather than a copy of its path, for every job of
/// a list handed over whole.
struct BusyPath(Arc<JobSpec>);

impl std::borrow::Borrow<str> for BusyPath {
    fn borrow(&self) -> &str {
        self.0.path.as_str()
    }
}

impl std::hash::Hash for BusyPath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, so lookups by `&str` find it.
        self.0.path.as_str().hash(state)
    }
}

impl PartialEq for BusyPath {
    fn eq(&self, other: &BusyPath) -> bool {
        self.0.path == other.0.path
    }
}

impl Eq for BusyPath {}

/// A job refused on arrival, and why.
struct Refused {
    id: JobId,
    path: String,
    url: SafeUrl,
    kind: FailureKind,
    error: Cause,
}

impl Intake {
    fn new(source: JobSource) -> Intake {
        Intake {
            source,
            next_id: 0,
            busy: HashSet::new(),
        }
    }

    /// Numbers `jobs` and splits off those whose path is busy.
    fn admit(&mut self, jobs: Vec<JobSpec>) -> (Vec<(JobId, Arc<JobSpec>)>, Vec<Refused>) {
        let mut admitted = Vec::with_capacity(jobs.len());
        let mut refused = Vec::new();
        for spec in jobs {
            let id = self.next_id;
            self.next_id += 1;
            if !self.busy.contains(spec.path.as_str()) {
                let spec = Arc::new(spec);
                self.busy.insert(BusyPath(spec.clone()));
                admitted.push((id, spec));
            } else {
                let path = spec.path.to_string();
                // As aria2 refuses a download of a file it is already
                // downloading; once that job ends, the path may come again.
                let error = format!(
                    "{path} is already being downloaded by this run (add it again once that job ends)"
                );
                refused.push(Refused {
                    id,
                    path,
                    url: SafeUrl::new(&spec.url),
                    kind: FailureKind::Duplicate,
                    error: error.into(),
                });
            }
        }
        (admitted, refused)
    }

    /// Reconciles jobs that arrived while the run was going (through the
    /// recorder, which owns the manifest by then) and announces them.
    async fn arrive(
        &mut self,
        shared: &Arc<Shared>,
        jobs: Vec<JobSpec>,
        hosts: &mut HostQueues,
        report: &mut Report,
    ) {
        let (admitted, mut refused) = self.admit(jobs);
        let names: Vec<(JobId, String, SafeUrl)> = admitted
            .iter()
            .map(|(id, spec)| (*id, spec.path.to_string(), SafeUrl::new(&spec.url)))
            .collect();
        let found = match shared
            .recorder
            .reconcile(admitted, &shared.cfg.out_dir)
            .await
        {
            Ok(found) => found,
            Err(err) => {
                for (id, path, url) in names {
                    self.busy.remove(path.as_str());
                    refused.push(Refused {
                        id,
                        error: format!("cannot look up {path} in the manifest: {err}").into(),
                        path,
                        url,
                        kind: FailureKind::Manifest,
                    });
                }
                Reconciled::default()
            }
        };
        self.announce(shared, found, refused, hosts, report).await;
    }

    /// Sends `Queued` for every job to run (and queues it), then `Skipped`
    /// for the complete ones, then `Queued` and `Failed` for each refused
    /// one: every job is announced once and a queued one ends once, which
    /// is what consumers count on.
    async fn announce(
        &mut self,
        shared: &Shared,
        found: Reconciled,
        refused: Vec<Refused>,
        hosts: &mut HostQueues,
        report: &mut Report,
    ) {
        for job in found.queue {
            let _ = shared
                .events
                .send(Event::Queued {
                    id: job.id,
                    path: job.spec.path.to_string(),
                    url: SafeUrl::new(&job.spec.url),
                })
                .await;
            hosts.push(job);
        }
        for skip in found.skipped {
            report.skipped += 1;
            self.busy.remove(skip.path.as_str());
            let _ = shared
                .events
                .send(Event::Skipped {
                    id: skip.id,
                    path: skip.path,
                    bytes: skip.bytes,
                })
                .await;
        }
        for refuse in refused {
            report.failed += 1;
            let _ = shared
                .events
                .send(Event::Queued {
                    id: refuse.id,
                    path: refuse.path.clone(),
                    url: refuse.url,
                })
                .await;
            let _ = shared
                .events
                .send(Event::Failed {
                    id: refuse.id,
                    path: refuse.path,
                    kind: refuse.kind,
                    error: refuse.error,
                })
                .await;
        }
    }
}

/// A job waiting for a worker.
struct Queued {
    id: JobId,
    spec: Arc<JobSpec>,
    /// What an earlier run left; None for a job never started, whose record
    /// is rebuilt from the spec when it runs (a long fresh list then holds
    /// no second copy of every URL while it waits). Boxed: a record is
    /// ten times the size of the rest of a queue entry.
    record: Option<Box<JobRecord>>,
}

/// A job already complete on disk.
struct Skip {
    id: JobId,
    path: String,
    bytes: u64,
}

/// Jobs matched with the manifest.
#[derive(Default)]
struct Reconciled {
    queue: Vec<Queued>,
    skipped: Vec<Skip>,
    /// Positions in `queue` of the jobs that need a new record.
    changed: Vec<usize>,
    /// Records of skipped jobs another run of the directory finished, to
    /// be written into this run's manifest (its `--write-sums` and its
    /// next run then know them as done).
    adopted: Vec<JobRecord>,
}

/// Matches each job with what the manifest knows. A job is its output path:
/// the URL is only where to fetch it now, so a record is found by path
/// whatever URL it was last fetched from (presigned links change on every
/// listing, mirrors move, http becomes https). Complete files are skipped
/// without a request; a partial one resumes under the usual If-Range rule,
/// which makes a new origin prove it serves the same bytes. A file not
/// done here whose final name is in the way may have been finished by
/// another run of the directory (another `--shard`): see [`Siblings`].
fn reconcile(
    manifest: &Manifest,
    specs: Vec<(JobId, Arc<JobSpec>)>,
    out_dir: &std::path::Path,
    siblings: &mut Siblings,
) -> Result<Reconciled, ManifestError> {
    let mut queue = Vec::new();
    let mut skipped = Vec::new();
    let mut changed = Vec::new();
    let mut adopted = Vec::new();
    for (id, spec) in specs {
        let path = spec.path.to_string();
        let own = manifest.get(&path)?;
        if own.as_ref().is_none_or(|rec| rec.state != JobState::Done) {
            if let Some(rec) = done_by_sibling(siblings, &spec, out_dir) {
                skipped.push(Skip {
                    id,
                    path,
                    bytes: rec.total.unwrap_or(0),
                });
                adopted.push(rec);
                continue;
            }
        }
        let record = match own {
            // A pending record holds nothing but its URL: rewrite it when
            // the URL changed, so `status` shows where the job goes now.
            Some(rec) if rec.state != JobState::Pending || rec.url == spec.url.as_str() => rec,
            _ => {
                changed.push(queue.len());
                queue.push(Queued {
                    id,
                    spec,
                    record: None,
                });
                continue;
            }
        };
        if is_complete(&record, &spec, out_dir) {
            skipped.push(Skip {
                id,
                path,
                bytes: record.total.unwrap_or(0),
            });
        } else {
            let record = (record.state != JobState::Pending).then(|| Box::new(record));
            queue.push(Queued { id, spec, record });
        }
    }
    Ok(Reconciled {
        queue,
        skipped,
        changed,
        adopted,
    })
}

/// Another run's record of `spec`'s file, made this run's own, if that run
/// finished it and the file in place is what it recorded (as
/// [`is_complete`] judges this run's records). Only a file whose final
/// name exists is asked about.
fn done_by_sibling(
    siblings: &mut Siblings,
    spec: &JobSpec,
    out_dir: &std::path::Path,
) -> Option<JobRecord> {
    if siblings.is_empty() || std::fs::symlink_metadata(spec.path.to_path(out_dir)).is_err() {
        return None;
    }
    let rec = siblings.done(spec.path.as_str())?;
    if !is_complete(&rec, spec, out_dir) {
        return None;
    }
    Some(JobRecord {
        segments: None,
        last_error: None,
        ..rec
    })
}

/// Done in the manifest, the final file present with the recorded length,
/// and no different checksum asked for since.
fn is_complete(rec: &JobRecord, spec: &JobSpec, out_dir: &std::path::Path) -> bool {
    if rec.state != JobState::Done {
        return false;
    }
    if let Some(expected) = spec.checksum {
        if rec.sha256.as_deref() != Some(hex::encode(expected).as_str()) {
            return false;
        }
    }
    let len = std::fs::metadata(spec.path.to_path(out_dir)).map(|m| m.len());
    matches!((len, rec.total), (Ok(len), Some(total)) if len == total)
}

/// Jobs waiting for a connection, grouped by host so one busy host never
/// blocks the queue for the others.
#[derive(Default)]
struct HostQueues {
    waiting: HashMap<String, VecDeque<Queued>>,
    /// Hosts in first-seen order, for a fair round robin.
    order: Vec<String>,
    next: usize,
    len: usize,
}

impl HostQueues {
    fn push(&mut self, job: Queued) {
        let host = host_key(&job.spec.url);
        let order = &mut self.order;
        self.waiting
            .entry(host)
            .or_insert_with_key(|host| {
                order.push(host.clone());
                VecDeque::new()
            })
            .push_back(job);
        self.len += 1;
    }

    /// The next job whose host has a free connection and a job slot, with
    /// both.
    fn pop(&mut self, limits: &Limits, slots: &JobSlots) -> Option<(Queued, ConnPermit, JobSlot)> {
        if slots.full() {
            return None;
        }
        for step in 0..self.order.len() {
            let idx = (self.next + step) % self.order.len();
            let host = &self.order[idx];
            let Some(queue) = self.waiting.get_mut(host) else {
                continue;
            };
            if queue.is_empty() {
                continue;
            }
            // The slot first: a connection permit taken and given back
            // wakes the dispatcher, which would spin on a full house; a
            // slot given back wakes no one.
            let Some(slot) = slots.try_take(limits.multiplexed(host)) else {
                continue;
            };
            let Some(permit) = limits.try_acquire(host) else {
                continue;
            };
            let job = queue.pop_front()?;
            self.len -= 1;
            if queue.is_empty() {
                // A host with nothing waiting leaves the round: however many
                // hosts a long stream names, only those of queued jobs are
                // kept. The host after it moves into its place.
                let host = self.order.remove(idx);
                self.waiting.remove(&host);
                self.next = idx;
            } else {
                self.next = idx + 1;
            }
            return Some((job, permit, slot));
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Runs the queue with bounded parallelism, topping it up from the source
/// while it holds fewer jobs than the source's window: the stream is read
/// only as fast as jobs start (back-pressure). A connection is taken before
/// a task is spawned, so the queue only moves when one is free; a panicking
/// worker counts as a failed job.
async fn dispatch(
    shared: &Arc<Shared>,
    mut hosts: HostQueues,
    mut intake: Intake,
    report: &mut Report,
) {
    let mut running = JoinSet::new();
    // Each running task's job and path, so a crashed one can be named.
    let mut in_flight: HashMap<tokio::task::Id, (JobId, String)> = HashMap::new();
    let run_seed: u64 = rand::rngs::StdRng::from_os_rng().random();
    let slots = JobSlots::new(shared.cfg.jobs);
    loop {
        while !shared.cancel.is_cancelled() {
            let Some((job, permit, slot)) = hosts.pop(&shared.limits, &slots) else {
                break;
            };
            let seed = run_seed ^ (job.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let path = job.spec.path.to_string();
            let task = run_job(
                shared.clone(),
                job.id,
                job.spec,
                job.record,
                (slot, permit),
                seed,
            );
            // A job's future is a few KiB: boxed once here, tokio moves a
            // pointer instead of copying it into the task and out again
            // (five copies a job, 2 % of a small file's instructions).
            let handle = running.spawn(Box::pin(task));
            in_flight.insert(handle.id(), (job.id, path));
        }
        // Queued jobs come first: what they leave (nothing queued, or every
        // queued host at its cap) may go to running files. At the `jobs`
        // cap a freed slot may be a job's that is ending, not yet joined,
        // whose successor must not lose it.
        if hosts.is_empty() || running.len() < shared.cfg.jobs {
            shared.limits.offer_spare();
        }
        let cancelled = shared.cancel.is_cancelled();
        let ended = intake.source.ended();
        if running.is_empty() && (cancelled || (hosts.is_empty() && ended)) {
            break;
        }
        let room = intake.source.window_size().saturating_sub(hosts.len);
        let feed = room > 0 && !ended && !cancelled;
        let joined = tokio::select! {
            joined = running.join_next_with_id(), if !running.is_empty() => joined,
            job = intake.source.next(), if feed => {
                if let Some(job) = job {
                    let mut jobs = vec![job];
                    jobs.extend(intake.source.ready(room - 1));
                    intake.arrive(shared, jobs, &mut hosts, report).await;
                }
                continue;
            }
            // Waiting on a source that has nothing yet (a daemon's idle
            // queue) must not outlast a cancel.
            () = shared.cancel.cancelled(), if feed => continue,
            // An extra connection of a segmented download ended: a queued
            // job may fit now, or else a running file may grow.
            _ = shared.limits.freed() => continue,
        };
        let Some(joined) = joined else {
            continue;
        };
        let (task, result) = match joined {
            Ok((task, result)) => (task, Ok(result)),
            Err(err) => (err.id(), Err(err)),
        };
        let Some((id, path)) = in_flight.remove(&task) else {
            continue;
        };
        intake.busy.remove(path.as_str());
        match result {
            Ok((outcome, fetched)) => {
                report.bytes += fetched;
                match outcome {
                    Outcome::Finished => report.done += 1,
                    Outcome::Failed => report.failed += 1,
                    Outcome::Interrupted => report.interrupted += 1,
                }
            }
            Err(err) => {
                report.failed += 1;
                let _ = shared
                    .events
                    .send(Event::Failed {
                        id,
                        path,
                        kind: FailureKind::Internal,
                        error: crate::event::Cause::new(err.to_string()).context("internal error"),
                    })
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: JobId, url: &str) -> Queued {
        let url = url::Url::parse(url).expect("a valid URL");
        let path = crate::naming::RelPath::parse(&id.to_string()).expect("a valid path");
        let origin = crate::list::Origin {
            source: Arc::from("test"),
            line: id + 1,
        };
        Queued {
            id,
            spec: Arc::new(JobSpec {
                url,
                mirrors: Vec::new(),
                path,
                checksum: None,
                headers: Vec::new(),
                origin,
            }),
            record: None,
        }
    }

    #[test]
    fn hosts_take_turns_and_an_emptied_host_leaves_the_round() {
        let mut hosts = HostQueues::default();
        let urls = [
            "http://a/",
            "http://a/",
            "http://b/",
            "http://c/",
            "http://a/",
        ];
        for (id, url) in urls.into_iter().enumerate() {
            hosts.push(queued(id, url));
        }
        let (limits, slots) = (Limits::new(100, 100), JobSlots::new(100));
        let mut order = Vec::new();
        while let Some((job, _permit, _slot)) = hosts.pop(&limits, &slots) {
            order.push(job.id);
            if job.id == 2 {
                // b emptied: only the hosts with queued jobs are kept.
                assert_eq!(hosts.order, ["a:80", "c:80"]);
            }
        }
        // As when every host stayed in the round: a, b, c, then a's rest.
        assert_eq!(order, [0, 2, 3, 1, 4]);
        assert!(hosts.is_empty() && hosts.waiting.is_empty() && hosts.order.is_empty());
        // A host seen again joins the end of the round.
        hosts.push(queued(5, "http://b/"));
        assert_eq!(hosts.order, ["b:80"]);
    }
}
