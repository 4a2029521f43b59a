//! `--on-complete PROGRAM`: runs the user's program for each file a run
//! finishes, as aria2's `--on-download-complete` does.
//!
//! This module owns the hook runner: which files get a hook (those this run
//! finished, never those skipped as already complete), what the program is
//! given (`PROGRAM PATH URL SHA256` and `HAUL_*` variables), how many run at
//! once (`--on-complete-jobs`, the rest wait in order), how long one may take
//! (`--on-complete-timeout`), what is kept of its output (the last
//! [`OUTPUT_LIMIT`] bytes of stdout and of stderr), and what a Ctrl-C does
//! to hooks (running ones are killed, queued ones never start).
//!
//! It sits beside the engine, never inside it: `app` passes the engine's
//! events through [`tee`], which hands every event on unchanged, starts a
//! hook for each `Finished` one and hands on each hook's end as a
//! [`HookDone`], an app-level event the engine knows nothing of; their
//! counts ([`HookTally`]) go beside the engine's `Report`. A hook's outcome
//! never changes a download's: the file stays done and the exit code is the
//! download's. Nothing here prints.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::{as_secs, Event, JobId, SafeUrl};
use crate::naming::RelPath;

/// Bytes kept of each of a hook's stdout and stderr: the last ones, where
/// a failing program says why. Enough for any sane hook, and bounded so a
/// chatty one cannot grow haul's memory.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long a hook's pipes are still read after it exited: a background
/// child it left behind may hold them open forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// The `error` of a hook that a signal to haul stopped or kept from starting.
pub const INTERRUPTED: &str = "the run was interrupted";

/// The checked `--on-complete*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    /// The program, as given: a path, or a name looked up on `$PATH`.
    pub program: PathBuf,
    /// Hooks running at once, at least 1.
    pub jobs: usize,
    /// Kill a hook that runs longer; `None` lets it run.
    pub timeout: Option<Duration>,
}

/// A `--on-complete*` setting that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HookConfigError {
    #[error("--on-complete program {} not found (give a path to an executable file, or a name on $PATH)", .0.display())]
    NotFound(PathBuf),
    #[error("--on-complete-jobs must be at least 1")]
    ZeroJobs,
}

impl HookConfig {
    /// Checks the settings; `path_var` is `$PATH`, where a bare name is
    /// looked for. A missing program is refused before anything is
    /// downloaded: finding out after a long run, from one failed hook per
    /// file, would be too late to fix.
    pub fn new(
        program: PathBuf,
        jobs: usize,
        timeout_secs: f64,
        path_var: Option<&OsStr>,
    ) -> Result<HookConfig, HookConfigError> {
        if jobs == 0 {
            return Err(HookConfigError::ZeroJobs);
        }
        if find_program(&program, path_var).is_none() {
            return Err(HookConfigError::NotFound(program));
        }
        Ok(HookConfig {
            program,
            jobs,
            timeout: (timeout_secs > 0.0)
                .then(|| Duration::try_from_secs_f64(timeout_secs).ok())
                .flatten(),
        })
    }
}

/// Where `program` would be run from: itself if it names a path (has a
/// separator), else the first regular file of that name in a `$PATH`
/// directory, as `execvp` searches.
pub fn find_program(program: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 || program.is_absolute() {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The `--on-complete` hook of a finished file ended (or will never run):
/// `--json`'s `hook` line, its fields in this order. The download stays
/// done whatever the hook did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookDone {
    /// The job.
    pub id: JobId,
    /// Where the file goes, relative to the output directory.
    pub path: String,
    /// The exit code; `None` when there is none (see `error`).
    pub status: Option<i32>,
    /// Why there is no exit code: it could not start, timed out, was
    /// killed by a signal, or the run was interrupted.
    pub error: Option<String>,
    /// The last bytes of its stdout ([`OUTPUT_LIMIT`] at most).
    pub stdout: String,
    /// The last bytes of its stderr ([`OUTPUT_LIMIT`] at most).
    pub stderr: String,
    /// How long it ran.
    #[serde(rename = "elapsed_secs", serialize_with = "as_secs")]
    pub elapsed: Duration,
}

/// What a run shows, in the order it happened: the engine's events as they
/// came, and the ends of the hooks they started.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// An event of the engine, unchanged.
    Engine(Event),
    /// A hook ended, or will never run.
    Hook(HookDone),
}

/// How the hooks of a run went, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookTally {
    /// Exited with status 0.
    pub ok: usize,
    /// Exited non-zero, were killed (timeout, signal, Ctrl-C) or could not start.
    pub failed: usize,
    /// Never started: the run was interrupted first.
    pub not_run: usize,
}

/// Passes every event from `rx` to `show`, and with a runner starts a hook
/// for each `Finished` event and shows its [`HookDone`] when it ends.
/// Returns once the engine closed the channel and every hook ended.
pub async fn tee(
    mut rx: mpsc::Receiver<Event>,
    runner: Option<HookRunner>,
    mut show: impl FnMut(RunEvent),
) -> HookTally {
    let Some(mut runner) = runner else {
        while let Some(ev) = rx.recv().await {
            show(RunEvent::Engine(ev));
        }
        return HookTally::default();
    };
    let cancel = runner.cancel.clone();
    let mut engine_open = true;
    while engine_open || !runner.is_idle() {
        tokio::select! {
            ev = rx.recv(), if engine_open => match ev {
                Some(ev) => {
                    let not_run = runner.observe(&ev);
                    show(RunEvent::Engine(ev));
                    if let Some(not_run) = not_run {
                        show(RunEvent::Hook(not_run));
                    }
                }
                None => engine_open = false,
            },
            Some(done) = runner.next_done() => show(RunEvent::Hook(done)),
            () = cancel.cancelled(), if !runner.cancelled => {
                for not_run in runner.stop() {
                    show(RunEvent::Hook(not_run));
                }
            }
            // Unreachable: a runner that is not idle has a hook running.
            else => break,
        }
    }
    runner.tally
}

/// One hook to run.
#[derive(Debug, Clone)]
struct Request {
    id: JobId,
    /// As the other events name the file: relative to the output directory.
    rel: String,
    /// Absolute: what a script can use from any working directory.
    path: PathBuf,
    /// `None` when no `Queued` event named it.
    url: Option<SafeUrl>,
    sha256: String,
    bytes: u64,
}

/// Starts hooks for finished files, at most `jobs` at once, in the order
/// the files finished. Driven by [`tee`]; it never blocks the event stream.
pub struct HookRunner {
    cfg: HookConfig,
    out_dir: PathBuf,
    /// Each queued job's URL, from its `Queued` event: `Finished` does not
    /// repeat it.
    urls: HashMap<JobId, SafeUrl>,
    queue: VecDeque<Request>,
    running: JoinSet<HookDone>,
    /// Which job each running task serves, to name it should the task panic.
    tasks: HashMap<tokio::task::Id, (JobId, String)>,
    cancel: CancellationToken,
    cancelled: bool,
    tally: HookTally,
}

impl HookRunner {
    /// A runner for files under `out_dir`; `cancel` (the run's Ctrl-C)
    /// kills running hooks and keeps queued ones from starting.
    pub fn new(cfg: HookConfig, out_dir: &Path, cancel: CancellationToken) -> HookRunner {
        // Hooks get absolute paths; the output directory's own spelling
        // would mean nothing to a script that changes directory.
        let out_dir = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
        HookRunner {
            cfg,
            out_dir,
            urls: HashMap::new(),
            queue: VecDeque::new(),
            running: JoinSet::new(),
            tasks: HashMap::new(),
            cancel,
            cancelled: false,
            tally: HookTally::default(),
        }
    }

    /// Nothing running and nothing queued.
    fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queue.is_empty()
    }

    /// Learns URLs from `Queued` and queues a hook for `Finished`; returns
    /// the `HookDone` of a hook that will not run because the run was
    /// interrupted.
    fn observe(&mut self, ev: &Event) -> Option<HookDone> {
        match ev {
            Event::Queued { id, url, .. } => {
                self.urls.insert(*id, url.clone());
                None
            }
            Event::Finished {
                id,
                path,
                bytes,
                sha256,
            } => {
                let abs = match RelPath::parse(path) {
                    Ok(rel) => rel.to_path(&self.out_dir),
                    Err(_) => self.out_dir.join(path),
                };
                let request = Request {
                    id: *id,
                    rel: path.clone(),
                    path: abs,
                    url: self.urls.remove(id),
                    sha256: sha256.clone(),
                    bytes: *bytes,
                };
                if self.cancelled {
                    self.tally.not_run += 1;
                    return Some(not_run(request));
                }
                self.queue.push_back(request);
                self.fill();
                None
            }
            Event::Failed { id, .. } | Event::Interrupted { id, .. } => {
                self.urls.remove(id);
                None
            }
            _ => None,
        }
    }

    /// Starts queued hooks while a slot is free.
    fn fill(&mut self) {
        while self.running.len() < self.cfg.jobs && !self.cancelled {
            let Some(request) = self.queue.pop_front() else {
                return;
            };
            let name = (request.id, request.rel.clone());
            let handle = self.running.spawn(run_hook(
                request,
                self.cfg.clone(),
                self.out_dir.clone(),
                self.cancel.clone(),
            ));
            self.tasks.insert(handle.id(), name);
        }
    }

    /// The next hook to end, or `None` at once if none is running.
    async fn next_done(&mut self) -> Option<HookDone> {
        let joined = self.running.join_next_with_id().await?;
        let done = match joined {
            Ok((task, done)) => {
                self.tasks.remove(&task);
                done
            }
            Err(err) => {
                let (id, path) = self.tasks.remove(&err.id()).unwrap_or_default();
                HookDone {
                    id,
                    path,
                    status: None,
                    error: Some("the hook's task crashed".into()),
                    stdout: String::new(),
                    stderr: String::new(),
                    elapsed: Duration::ZERO,
                }
            }
        };
        if done.status == Some(0) {
            self.tally.ok += 1;
        } else {
            self.tally.failed += 1;
        }
        self.fill();
        Some(done)
    }

    /// Ctrl-C: running hooks kill themselves (they watch the same token);
    /// queued ones are dropped and reported as not run.
    fn stop(&mut self) -> Vec<HookDone> {
        self.cancelled = true;
        let dropped: Vec<HookDone> = self.queue.drain(..).map(not_run).collect();
        self.tally.not_run += dropped.len();
        dropped
    }
}

/// The `HookDone` of a hook that never started.
fn not_run(request: Request) -> HookDone {
    HookDone {
        id: request.id,
        path: request.rel,
        status: None,
        error: Some(format!("not run: {INTERRUPTED}")),
        stdout: String::new(),
        stderr: String::new(),
        elapsed: Duration::ZERO,
    }
}

/// Why a hook was killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    Timeout(Duration),
    Interrupted,
}

/// The hook's command: `PROGRAM PATH URL SHA256` and the `HAUL_*`
/// variables, its output piped to be kept.
fn command(request: &Request, program: &Path, out_dir: &Path) -> Command {
    let url = request.url.as_deref().unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.arg(&request.path)
        .arg(url)
        .arg(&request.sha256)
        .env("HAUL_PATH", &request.path)
        .env("HAUL_URL", url)
        .env("HAUL_SHA256", &request.sha256)
        .env("HAUL_BYTES", request.bytes.to_string())
        .env("HAUL_OUT_DIR", out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Should this task be dropped (a runtime shutting down), the
        // hook must not outlive it unwatched.
        .kill_on_drop(true);
    cmd
}

/// Runs one hook to its end and describes it.
async fn run_hook(
    request: Request,
    cfg: HookConfig,
    out_dir: PathBuf,
    cancel: CancellationToken,
) -> HookDone {
    let started = Instant::now();
    let mut cmd = command(&request, &cfg.program, &out_dir);
    let done = |status, error, out: &Tail, err: &Tail| HookDone {
        id: request.id,
        path: request.rel.clone(),
        status,
        error,
        stdout: out.text(),
        stderr: err.text(),
        elapsed: started.elapsed(),
    };
    let (mut out_tail, mut err_tail) = (Tail::new(OUTPUT_LIMIT), Tail::new(OUTPUT_LIMIT));
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            let error = format!("cannot run {}: {err}", cfg.program.display());
            return done(None, Some(error), &out_tail, &err_tail);
        }
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let deadline = cfg.timeout.map(|t| (started + t, t));
    let mut killed: Option<Kill> = None;
    let mut exit: Option<std::io::Result<std::process::ExitStatus>> = None;
    let mut grace_until: Option<Instant> = None;
    while exit.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            n = read_from(&mut stdout, &mut out_buf) => match n {
                Ok(n) if n > 0 => out_tail.push(&out_buf[..n]),
                _ => stdout = None,
            },
            n = read_from(&mut stderr, &mut err_buf) => match n {
                Ok(n) if n > 0 => err_tail.push(&err_buf[..n]),
                _ => stderr = None,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                grace_until = Some(Instant::now() + OUTPUT_GRACE);
            }
            () = sleep_until(deadline.map(|(at, _)| at)), if exit.is_none() && killed.is_none() => {
                killed = deadline.map(|(_, limit)| Kill::Timeout(limit));
                let _ = child.start_kill();
            }
            () = cancel.cancelled(), if exit.is_none() && killed.is_none() => {
                killed = Some(Kill::Interrupted);
                let _ = child.start_kill();
            }
            () = sleep_until(grace_until) => break,
        }
    }
    let (status, error) = verdict(killed, exit);
    done(status, error, &out_tail, &err_tail)
}

/// The exit code of a hook that ended, or why there is none.
fn verdict(
    killed: Option<Kill>,
    exit: Option<std::io::Result<std::process::ExitStatus>>,
) -> (Option<i32>, Option<String>) {
    match (killed, exit) {
        (Some(Kill::Timeout(limit)), _) => (
            None,
            Some(format!(
                "timed out after {}s and was killed",
                limit.as_secs_f64()
            )),
        ),
        (Some(Kill::Interrupted), _) => (None, Some(format!("killed: {INTERRUPTED}"))),
        (None, Some(Ok(status))) => match status.code() {
            Some(code) => (Some(code), None),
            None => (None, Some(describe_signal(&status))),
        },
        (None, Some(Err(err))) => (None, Some(format!("cannot wait for the hook: {err}"))),
        // The loop only ends with an exit status.
        (None, None) => (None, Some("the hook's end was not seen".into())),
    }
}

/// Reads from a pipe, or waits forever once it is closed (so a `select!`
/// branch on it never fires again).
async fn read_from<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "killed by signal 9" for a status without an exit code.
fn describe_signal(status: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    format!("ended without an exit code ({status})")
}

/// The last `limit` bytes written to it, and how many came before them.
#[derive(Debug)]
struct Tail {
    buf: VecDeque<u8>,
    limit: usize,
    dropped: u64,
}

impl Tail {
    fn new(limit: usize) -> Tail {
        Tail {
            buf: VecDeque::new(),
            limit,
            dropped: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let keep = &bytes[bytes.len().saturating_sub(self.limit)..];
        self.dropped += (bytes.len() - keep.len()) as u64;
        let excess = (self.buf.len() + keep.len()).saturating_sub(self.limit);
        self.buf.drain(..excess);
        self.dropped += excess as u64;
        self.buf.extend(keep);
    }

    /// The kept bytes as text (invalid UTF-8 replaced), after a note of how
    /// much was dropped.
    fn text(&self) -> String {
        let (front, back) = self.buf.as_slices();
        let bytes = [front, back].concat();
        let text = String::from_utf8_lossy(&bytes);
        if self.dropped > 0 {
            format!("[{} earlier bytes dropped]\n{text}", self.dropped)
        } else {
            text.into_owned()
        }
    }
}

/// `$PATH` of this process, for [`HookConfig::new`].
pub fn path_var() -> Option<OsString> {
    std::env::var_os("PATH")
}

#[cfg(test)]
mod tests;
