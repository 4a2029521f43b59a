//! The one contract between the engine and everything that shows its work.
//!
//! The engine sends [`Event`]s on a bounded channel and returns a [`Report`]
//! when the run ends; renderers (progress bars, plain lines, JSON lines, test
//! recorders) consume them. Nothing here prints or knows about terminals.

use std::time::Duration;

/// Index of a job in the run's job list; stable for the whole run.
pub type JobId = usize;

/// Something that happened to one job, or to the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The run starts with this many jobs; `known_bytes` sums the totals the
    /// manifest already knows (lengths of unfinished jobs not yet contacted are
    /// unknown).
    RunStarted {
        /// Jobs in the run.
        jobs: usize,
        /// Sum of the lengths the manifest already knows.
        known_bytes: u64,
    },
    /// The job waits for a connection: sent once per job that will be
    /// downloaded, right after `RunStarted` (a job already complete gets
    /// `Skipped` instead). `url` has its credentials hidden.
    Queued {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The URL, its credentials hidden.
        url: String,
    },
    /// The file is already complete on disk: no request was made.
    Skipped {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The file's length.
        bytes: u64,
    },
    /// An attempt got a response and starts writing at `offset`.
    Started {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// Where this attempt starts writing.
        offset: u64,
        /// The file's length, when the server gave it.
        total: Option<u64>,
    },
    /// Absolute position of the job (bytes on disk, including a resumed prefix).
    /// Coalesced by the engine to about ten a second per job.
    Progress {
        /// The job.
        id: JobId,
        /// Bytes on disk.
        pos: u64,
    },
    /// The attempt failed with a transient error; another follows after `delay`.
    Retrying {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The attempt's number.
        attempt: u32,
        /// Why, in words.
        reason: String,
        /// The wait before the next attempt.
        delay: Duration,
        /// The server's `Retry-After` when `--max-retry-wait` cut it down to
        /// `delay`, so the user learns the server wanted a longer pause.
        capped_from: Option<Duration>,
    },
    /// The bytes on disk were dropped and the file starts again from zero.
    Restarted {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// Complete, verified and renamed to its final name.
    Finished {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The file's length.
        bytes: u64,
        /// Its sha256, in hex.
        sha256: String,
    },
    /// Gave up on this job; the rest of the run goes on.
    Failed {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// A short, stable name for the cause: `DownloadError::kind`,
        /// or `manifest` (the result could not be recorded) or `internal`.
        kind: &'static str,
        /// What went wrong, in words.
        error: String,
    },
    /// Stopped by Ctrl-C / SIGTERM with its progress saved.
    Interrupted {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// Bytes on disk.
        pos: u64,
    },
    /// The `--on-complete` hook of a finished file ended (or will never
    /// run). Sent by `hooks`, not the engine; the download stays done
    /// whatever the hook did.
    HookDone {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The exit code; `None` when there is none (see `error`).
        status: Option<i32>,
        /// Why there is no exit code: it could not start, timed out, was
        /// killed by a signal, or the run was interrupted.
        error: Option<String>,
        /// The last bytes of its stdout (`hooks::OUTPUT_LIMIT` at most).
        stdout: String,
        /// The last bytes of its stderr (`hooks::OUTPUT_LIMIT` at most).
        stderr: String,
        /// How long it ran.
        elapsed: Duration,
    },
}

/// What a finished run amounts to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Jobs downloaded and verified in this run.
    pub done: usize,
    /// Jobs that gave up.
    pub failed: usize,
    /// Jobs already complete on disk.
    pub skipped: usize,
    /// Jobs stopped by cancellation, their progress saved.
    pub interrupted: usize,
    /// Bytes received over the network in this run.
    pub bytes: u64,
    /// How long the run took.
    pub elapsed: Duration,
    /// True when the run was stopped by a signal.
    pub cancelled: bool,
    /// Trouble that cost no download but deserves a line (a manifest
    /// the full disk kept from being compacted, a `--split` above
    /// `--max-per-host`).
    pub warnings: Vec<String>,
    /// `--on-complete` hooks that exited 0 (filled in by `app`, not the engine).
    pub hooks_ok: usize,
    /// Hooks that exited non-zero, were killed or could not start.
    pub hooks_failed: usize,
    /// Hooks that never started because the run was interrupted.
    pub hooks_not_run: usize,
}

impl Report {
    /// Mean network speed over the run, in bytes a second.
    pub fn mean_speed(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        }
    }
}
