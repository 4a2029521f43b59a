//! The download engine: reconciles the job list with the manifest, then runs
//! a bounded pool of workers (at most `jobs` at once and `max_per_host` per
//! host) until every job has finished, failed, or been interrupted.
//!
//! It reports through [`Event`]s and a [`Report`]; it never prints and knows
//! nothing of terminals or the command line.

pub mod recorder;
pub mod retry;
pub mod segments;
pub mod throttle;
pub mod worker;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event::{Event, FailureKind, JobId, Report};
use crate::list::JobSpec;
use crate::safe_url::SafeUrl;
use crate::store::lock::{DirLock, LockError};
use crate::store::manifest::{boot_id, JobRecord, JobState, Manifest, ManifestError};
use recorder::Recorder;
use retry::RetryPolicy;
use worker::{run_job, Outcome, Shared};

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
    #[error("the manifest writer stopped unexpectedly")]
    WriterPanicked,
    #[error("cannot start the manifest writer")]
    Spawn(#[source] std::io::Error),
}

/// Downloads `specs` into `cfg.out_dir`, resuming whatever an earlier run left.
pub async fn run(
    cfg: EngineConfig,
    client: crate::http::Fetcher,
    specs: Vec<JobSpec>,
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
    let (queue, skipped, manifest) = tokio::task::spawn_blocking(move || {
        let mut manifest = Manifest::open_shard(&out_dir, shard)?;
        let (queue, skipped, changed) = reconcile(&manifest, specs, &out_dir);
        // Records for new jobs are built as they are written, not all at once.
        manifest.insert_all(changed.iter().map(|&i| {
            let spec = &queue[i].spec;
            JobRecord::pending(spec.path.to_string(), spec.url.to_string())
        }))?;
        Ok::<_, ManifestError>((queue, skipped, manifest))
    })
    .await
    .map_err(|_| EngineError::WriterPanicked)??;

    let mut report = Report::default();
    let known_bytes = queue
        .iter()
        .filter_map(|job| job.record.as_ref().and_then(|r| r.total))
        .chain(skipped.iter().map(|s| s.bytes))
        .sum();
    let _ = events
        .send(Event::RunStarted {
            jobs: queue.len() + skipped.len(),
            known_bytes,
        })
        .await;
    for job in &queue {
        let _ = events
            .send(Event::Queued {
                id: job.id,
                path: job.spec.path.to_string(),
                url: SafeUrl::new(&job.spec.url),
            })
            .await;
    }
    for skip in skipped {
        report.skipped += 1;
        let _ = events
            .send(Event::Skipped {
                id: skip.id,
                path: skip.path,
                bytes: skip.bytes,
            })
            .await;
    }

    let (recorder, writer) = Recorder::spawn(manifest).map_err(EngineError::Spawn)?;
    let shared = Arc::new(Shared {
        limits: Limits::new(cfg.max_connections, cfg.max_per_host),
        throttle: cfg.max_speed.map(throttle::Throttle::new),
        client,
        cfg: cfg.clone(),
        events,
        recorder,
        cancel: cancel.clone(),
        boot_id: boot_id(),
    });
    dispatch(&shared, queue, &mut report).await;
    report.cancelled = cancel.is_cancelled();
    // Dropping the last Recorder lets the writer compact and close the manifest.
    drop(shared);
    report.warnings = writer.join().await?;
    report.elapsed = started.elapsed();
    Ok(report)
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

/// Matches each job with what the manifest knows. A job is its output path:
/// the URL is only where to fetch it now, so a record is found by path
/// whatever URL it was last fetched from (presigned links change on every
/// listing, mirrors move, http becomes https). Complete files are skipped
/// without a request; a partial one resumes under the usual If-Range rule,
/// which makes a new origin prove it serves the same bytes. Returns the
/// queue, the skipped jobs and the queue positions of jobs that need a new
/// record.
fn reconcile(
    manifest: &Manifest,
    specs: Vec<JobSpec>,
    out_dir: &std::path::Path,
) -> (Vec<Queued>, Vec<Skip>, Vec<usize>) {
    let mut queue = Vec::new();
    let mut skipped = Vec::new();
    let mut changed = Vec::new();
    for (id, spec) in specs.into_iter().enumerate() {
        let path = spec.path.to_string();
        let record = match manifest.get(&path) {
            // A pending record holds nothing but its URL: rewrite it when
            // the URL changed, so `status` shows where the job goes now.
            Some(rec) if rec.state != JobState::Pending || rec.url == spec.url.as_str() => rec,
            _ => {
                changed.push(queue.len());
                queue.push(Queued {
                    id,
                    spec: Arc::new(spec),
                    record: None,
                });
                continue;
            }
        };
        if is_complete(record, &spec, out_dir) {
            skipped.push(Skip {
                id,
                path,
                bytes: record.total.unwrap_or(0),
            });
        } else {
            let record = (record.state != JobState::Pending).then(|| Box::new(record.clone()));
            queue.push(Queued {
                id,
                spec: Arc::new(spec),
                record,
            });
        }
    }
    (queue, skipped, changed)
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
struct HostQueues {
    waiting: HashMap<String, VecDeque<Queued>>,
    /// Hosts in first-seen order, for a fair round robin.
    order: Vec<String>,
    next: usize,
}

impl HostQueues {
    fn new(jobs: Vec<Queued>) -> Self {
        let mut waiting: HashMap<String, VecDeque<Queued>> = HashMap::new();
        let mut order = Vec::new();
        for job in jobs {
            let host = host_key(&job.spec.url);
            waiting
                .entry(host)
                .or_insert_with_key(|host| {
                    order.push(host.clone());
                    VecDeque::new()
                })
                .push_back(job);
        }
        HostQueues {
            waiting,
            order,
            next: 0,
        }
    }

    /// The next job whose host has a free connection, with that connection.
    fn pop(&mut self, limits: &Limits) -> Option<(Queued, ConnPermit)> {
        for step in 0..self.order.len() {
            let idx = (self.next + step) % self.order.len();
            let host = &self.order[idx];
            let Some(queue) = self.waiting.get_mut(host) else {
                continue;
            };
            if queue.is_empty() {
                continue;
            }
            let Some(permit) = limits.try_acquire(host) else {
                continue;
            };
            let job = queue.pop_front()?;
            self.next = idx + 1;
            return Some((job, permit));
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.waiting.values().all(VecDeque::is_empty)
    }
}

/// Connection slots: a budget for the whole run and one per host. Every
/// connection holds a [`ConnPermit`], the first of a job and the extra ones
/// of a segmented download alike.
pub(crate) struct Limits {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    freed: Arc<Notify>,
}

/// One connection's right to exist; dropping it wakes the dispatcher.
pub(crate) struct ConnPermit {
    global: Option<OwnedSemaphorePermit>,
    host: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        // Release before notifying, or the woken dispatcher could find the
        // slot still taken and sleep on a notification already spent.
        self.global.take();
        self.host.take();
        self.freed.notify_one();
    }
}

impl Limits {
    fn new(global: usize, per_host: usize) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(global)),
            per_host,
            hosts: Mutex::new(HashMap::new()),
            freed: Arc::new(Notify::new()),
        }
    }

    /// A connection to `host` if both budgets allow one now.
    pub(crate) fn try_acquire(&self, host: &str) -> Option<ConnPermit> {
        let host_sem = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let host = host_sem.try_acquire_owned().ok()?;
        let global = self.global.clone().try_acquire_owned().ok()?;
        Some(ConnPermit {
            global: Some(global),
            host: Some(host),
            freed: self.freed.clone(),
        })
    }
}

pub(crate) fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Runs the queue with bounded parallelism. A connection is taken before a
/// task is spawned, so the queue only moves when one is free; a panicking
/// worker counts as a failed job.
async fn dispatch(shared: &Arc<Shared>, queue: Vec<Queued>, report: &mut Report) {
    let mut hosts = HostQueues::new(queue);
    let mut running = JoinSet::new();
    // Each running task's job and path, so a crashed one can be named.
    let mut in_flight: HashMap<tokio::task::Id, (JobId, String)> = HashMap::new();
    let run_seed: u64 = rand::rngs::StdRng::from_os_rng().random();
    loop {
        while running.len() < shared.cfg.jobs && !shared.cancel.is_cancelled() {
            let Some((job, permit)) = hosts.pop(&shared.limits) else {
                break;
            };
            let seed = run_seed ^ (job.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let path = job.spec.path.to_string();
            let task = run_job(shared.clone(), job.id, job.spec, job.record, permit, seed);
            let handle = running.spawn(task);
            in_flight.insert(handle.id(), (job.id, path));
        }
        if running.is_empty() && (hosts.is_empty() || shared.cancel.is_cancelled()) {
            break;
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id(), if !running.is_empty() => joined,
            // An extra connection of a segmented download ended: a queued
            // job may fit now.
            _ = shared.limits.freed.notified() => continue,
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
