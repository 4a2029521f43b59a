//! `--json`: one JSON object a line on stdout, for scripts and pipelines.
//!
//! This module owns the wire format (README, "Machine-readable output"):
//! an event is written as it was sent, its fields as [`Event`]'s (or a
//! hook's [`HookDone`]'s) `Serialize` names them, after `event` and `time`
//! (`Stamped`); the private `Line` enum holds the lines that are more than
//! one event (a job's URL and total remembered from earlier events, a
//! mirror switch in its `retrying` shape, the summaries, where the hooks'
//! counts join the engine's report). `tests/it/cli_json_golden.rs` pins
//! the result byte for byte. It also owns the per-job progress throttle.
//! Every line is flushed as it is written, so a reader sees each event as
//! it happens. Write errors are ignored, as in `plain`: a closed pipe must
//! not stop the download. Nothing here decides anything about a download.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Renderer, Sink};
use crate::event::{secs, Event, FailureKind, JobId, Report, SafeUrl};
use crate::hooks::{HookDone, HookTally};
use crate::verify::{VerifyItem, VerifyOutcome, VerifySummary};

/// Shortest gap between two `progress` lines of one job: at most two a
/// second, whatever rate the engine sends them at.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// A line that is one event as it was sent, the engine's or a hook's:
/// `"event"` and `"time"` (unix seconds, a float with millisecond
/// precision: `jq`'s `todate` reads it, and no time zone can be misread),
/// then the event's own fields as its `Serialize` names them.
#[derive(Debug, Serialize)]
struct Stamped<'a, T> {
    event: &'static str,
    time: f64,
    #[serde(flatten)]
    body: &'a T,
}

/// The lines that are more than an event's fields: the renderer adds what
/// it remembers of the job (its URL, its total), a mirror switch keeps the
/// `retrying` shape it has always had, and the summaries are not events.
/// Internally tagged, so every object starts with `"event"` and then
/// `"time"`, as a [`Stamped`] line does. Field names are stable: add
/// fields, never rename or drop them.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line<'a> {
    Progress {
        time: f64,
        id: JobId,
        path: &'a str,
        pos: u64,
        total: Option<u64>,
    },
    Retrying {
        time: f64,
        id: JobId,
        path: &'a str,
        attempt: u32,
        reason: &'a str,
        delay_secs: f64,
        capped_from_secs: Option<f64>,
    },
    Finished {
        time: f64,
        id: JobId,
        path: &'a str,
        url: Option<&'a str>,
        bytes: u64,
        sha256: &'a str,
    },
    Failed {
        time: f64,
        id: JobId,
        path: &'a str,
        url: Option<&'a str>,
        kind: FailureKind,
        error: &'a str,
    },
    Summary {
        time: f64,
        done: usize,
        failed: usize,
        skipped: usize,
        interrupted: usize,
        cancelled: bool,
        bytes: u64,
        elapsed_secs: f64,
        warnings: &'a [String],
        hooks_ok: usize,
        hooks_failed: usize,
        hooks_not_run: usize,
    },
    /// `haul verify --json`: one per file.
    Verified {
        time: f64,
        path: &'a str,
        /// `ok`, `mismatch`, `missing`, `unreadable` or `unfinished`.
        status: &'static str,
        /// None for an unfinished job.
        expected: Option<String>,
        /// Why a job is unfinished: `partial`, `pending`, `failed`,
        /// `not_recorded`, `no_sha256`.
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<&'static str>,
        got: Option<String>,
        error: Option<String>,
    },
    /// `haul verify --json`: the last line.
    VerifySummary {
        time: f64,
        files: usize,
        ok: usize,
        mismatched: usize,
        missing: usize,
        unreadable: usize,
        unfinished: usize,
        shards_not_started: usize,
        bytes: u64,
    },
    /// `haul verify` without a list: a shard the runs' list has, never run.
    ShardNotStarted {
        time: f64,
        /// `K/N`.
        shard: String,
    },
}

/// The `event` name of the line `ev` gives.
fn event_name(ev: &Event) -> &'static str {
    match ev {
        Event::RunStarted { .. } => "run_started",
        Event::Queued { .. } => "queued",
        Event::Skipped { .. } => "skipped",
        Event::Started { .. } => "started",
        Event::Progress { .. } => "progress",
        Event::Retrying { .. } | Event::MirrorSwitched { .. } => "retrying",
        Event::Restarted { .. } => "restarted",
        Event::Finished { .. } => "finished",
        Event::Failed { .. } => "failed",
        Event::Interrupted { .. } => "interrupted",
    }
}

/// Unix time in seconds, rounded to the millisecond.
fn unix_now() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_millis() as f64 / 1000.0
}

/// Writes `line` and a newline, then flushes.
fn write_line(out: &mut dyn Write, line: &impl Serialize) {
    // Serialising our own types cannot fail (a bare `MirrorSwitched`
    // would, but it always becomes a `Line`); should it ever, a missing
    // line beats a half-written one.
    let Ok(mut buf) = serde_json::to_vec(line) else {
        return;
    };
    buf.push(b'\n');
    let _ = out.write_all(&buf);
    let _ = out.flush();
}

/// Decides which progress positions of which job are worth a line: the
/// first one, then one per [`PROGRESS_INTERVAL`], and the final position
/// when the job ends. Pure: the caller passes the time.
#[derive(Debug, Default)]
pub struct ProgressThrottle {
    jobs: HashMap<JobId, Gate>,
    interval: Duration,
}

#[derive(Debug)]
struct Gate {
    last: Instant,
    /// The position of the last line written.
    sent: u64,
}

impl ProgressThrottle {
    /// At most one line per `interval` per job.
    pub fn new(interval: Duration) -> Self {
        ProgressThrottle {
            jobs: HashMap::new(),
            interval,
        }
    }

    /// Whether `pos`, reported at `now`, gets a line.
    pub fn offer(&mut self, id: JobId, pos: u64, now: Instant) -> bool {
        match self.jobs.get_mut(&id) {
            Some(gate) if now.saturating_duration_since(gate.last) < self.interval => false,
            Some(gate) => {
                gate.last = now;
                gate.sent = pos;
                true
            }
            None => {
                self.jobs.insert(
                    id,
                    Gate {
                        last: now,
                        sent: pos,
                    },
                );
                true
            }
        }
    }

    /// The job ended at `pos`: returns `pos` if a line should carry it,
    /// i.e. the job had progress lines and the last one showed less. A job
    /// that never had one (a small file) gets none: its end event says it.
    pub fn end(&mut self, id: JobId, pos: u64) -> Option<u64> {
        let gate = self.jobs.remove(&id)?;
        (gate.sent != pos).then_some(pos)
    }

    /// The job starts over from zero: the next position gets a line.
    pub fn reset(&mut self, id: JobId) {
        self.jobs.remove(&id);
    }
}

/// What the renderer remembers of a job so every line can name it.
#[derive(Debug, Default)]
struct Job {
    path: String,
    url: Option<SafeUrl>,
    total: Option<u64>,
    /// The latest position seen, shown or not.
    pos: u64,
}

/// The `--json` renderer for `haul get`.
pub struct Json {
    out: Sink,
    throttle: ProgressThrottle,
    jobs: HashMap<JobId, Job>,
}

impl Json {
    /// Writes JSON lines to `out`.
    pub fn new(out: Sink) -> Self {
        Json {
            out,
            throttle: ProgressThrottle::new(PROGRESS_INTERVAL),
            jobs: HashMap::new(),
        }
    }

    /// Writes to the process's stdout.
    pub fn stdio() -> Self {
        Json::new(Box::new(io::stdout()))
    }

    /// The job's entry, created with `path` if this is the first word of it
    /// (a job can fail before any event named it).
    fn job(&mut self, id: JobId, path: &str) -> &mut Job {
        let job = self.jobs.entry(id).or_default();
        if job.path.is_empty() {
            job.path = path.to_string();
        }
        job
    }

    /// A progress line carrying the job's final position, if it needs one.
    fn final_progress(&mut self, id: JobId, pos: u64, time: f64) {
        if let Some(pos) = self.throttle.end(id, pos) {
            let job = self.jobs.get(&id);
            let line = Line::Progress {
                time,
                id,
                path: job.map_or("", |j| j.path.as_str()),
                pos,
                total: job.and_then(|j| j.total),
            };
            write_line(&mut self.out, &line);
        }
    }

    /// A `progress` line, when the throttle lets `pos` through.
    fn progress(&mut self, id: JobId, pos: u64, time: f64) {
        let job = self.jobs.entry(id).or_default();
        job.pos = pos;
        if self.throttle.offer(id, pos, Instant::now()) {
            let line = Line::Progress {
                time,
                id,
                path: &job.path,
                pos,
                total: job.total,
            };
            write_line(&mut self.out, &line);
        }
    }

    /// Learns what the job's later lines need from an event that is
    /// written as it came, and ends its progress lines when it ends.
    fn remember(&mut self, ev: &Event, time: f64) {
        match ev {
            Event::Queued { id, path, url } => self.job(*id, path).url = Some(url.clone()),
            Event::Skipped { id, .. } => {
                // Nothing more will be said of this job.
                self.jobs.remove(id);
            }
            Event::Started {
                id,
                path,
                offset,
                total,
            } => {
                let job = self.job(*id, path);
                job.total = *total;
                job.pos = *offset;
            }
            Event::Restarted { id, path, .. } => {
                self.throttle.reset(*id);
                self.job(*id, path).pos = 0;
            }
            Event::Interrupted { id, path, pos } => {
                self.job(*id, path);
                self.final_progress(*id, *pos, time);
                self.jobs.remove(id);
            }
            _ => {}
        }
    }
}

impl Renderer for Json {
    fn event(&mut self, ev: &Event) {
        let time = unix_now();
        // The lines that are more than the event; every other event is
        // written as it came.
        match ev {
            Event::Progress { id, pos } => self.progress(*id, *pos, time),
            Event::MirrorSwitched {
                id,
                path,
                from,
                to,
                reason,
                scope,
            } => {
                // Today's schema has no line of its own for a mirror
                // switch: it stays a `retrying` line with no wait.
                let (attempt, reason) = super::mirror_retry(from, to, reason, *scope);
                let line = Line::Retrying {
                    time,
                    id: *id,
                    path,
                    attempt,
                    reason: &reason,
                    delay_secs: secs(Duration::ZERO),
                    capped_from_secs: None,
                };
                write_line(&mut self.out, &line);
            }
            Event::Finished {
                id,
                path,
                bytes,
                sha256,
            } => {
                self.job(*id, path);
                self.final_progress(*id, *bytes, time);
                let job = self.jobs.remove(id).unwrap_or_default();
                let line = Line::Finished {
                    time,
                    id: *id,
                    path,
                    url: job.url.as_deref(),
                    bytes: *bytes,
                    sha256,
                };
                write_line(&mut self.out, &line);
            }
            Event::Failed {
                id,
                path,
                kind,
                error,
            } => {
                let pos = self.job(*id, path).pos;
                self.final_progress(*id, pos, time);
                let job = self.jobs.remove(id).unwrap_or_default();
                let line = Line::Failed {
                    time,
                    id: *id,
                    path,
                    url: job.url.as_deref(),
                    kind: *kind,
                    error,
                };
                write_line(&mut self.out, &line);
            }
            _ => {
                self.remember(ev, time);
                let line = Stamped {
                    event: event_name(ev),
                    time,
                    body: ev,
                };
                write_line(&mut self.out, &line);
            }
        }
    }

    fn hook(&mut self, done: &HookDone) {
        let line = Stamped {
            event: "hook",
            time: unix_now(),
            body: done,
        };
        write_line(&mut self.out, &line);
    }

    fn finish(&mut self, report: &Report, hooks: &HookTally) {
        write_line(
            &mut self.out,
            &Line::Summary {
                time: unix_now(),
                done: report.done,
                failed: report.failed,
                skipped: report.skipped,
                interrupted: report.interrupted,
                cancelled: report.cancelled,
                bytes: report.bytes,
                elapsed_secs: secs(report.elapsed),
                warnings: &report.warnings,
                hooks_ok: hooks.ok,
                hooks_failed: hooks.failed,
                hooks_not_run: hooks.not_run,
            },
        );
    }
}

/// `haul verify --json`: one `verified` line for a file, on stdout.
pub fn verify_result(item: &VerifyItem, outcome: &VerifyOutcome) {
    let mut state = None;
    let (status, got, error) = match outcome {
        VerifyOutcome::Ok => ("ok", None, None),
        VerifyOutcome::Mismatch { got } => ("mismatch", Some(hex::encode(got)), None),
        VerifyOutcome::Missing => ("missing", None, None),
        VerifyOutcome::Unreadable(err) => ("unreadable", None, Some(err.to_string())),
        VerifyOutcome::Unfinished(why) => {
            state = Some(why.as_str());
            ("unfinished", None, Some(why.says().to_string()))
        }
    };
    let line = Line::Verified {
        time: unix_now(),
        path: &item.path,
        status,
        expected: item.expected_hex(),
        state,
        got,
        error,
    };
    write_line(&mut io::stdout().lock(), &line);
}

/// `haul verify --json`: a `shard_not_started` line, on stdout.
pub fn verify_shard_not_started(shard: &crate::shard::Shard) {
    let line = Line::ShardNotStarted {
        time: unix_now(),
        shard: shard.to_string(),
    };
    write_line(&mut io::stdout().lock(), &line);
}

/// `haul verify --json`: the closing `verify_summary` line, on stdout.
pub fn verify_summary(summary: &VerifySummary) {
    let line = Line::VerifySummary {
        time: unix_now(),
        files: summary.ok + summary.problems(),
        ok: summary.ok,
        mismatched: summary.mismatched,
        missing: summary.missing,
        unreadable: summary.unreadable,
        unfinished: summary.unfinished,
        shards_not_started: summary.shards_not_started,
        bytes: summary.bytes,
    };
    write_line(&mut io::stdout().lock(), &line);
}

#[cfg(test)]
mod tests;
