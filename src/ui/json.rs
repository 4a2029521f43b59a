//! `--json`: one JSON object a line on stdout, for scripts and pipelines.
//!
//! This module owns the wire format (README, "Machine-readable output"):
//! an event is written as it was sent, its fields as [`Event`]'s
//! `Serialize` names them, after `event` and `time` (`Stamped`); the
//! private `Line` enum holds the lines that are more than one event (a
//! job's URL and total remembered from earlier events, a mirror switch in
//! its `retrying` shape, the summaries). `tests/it/cli_json_golden.rs` pins
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
        /// `ok`, `mismatch`, `missing` or `unreadable`.
        status: &'static str,
        expected: String,
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
        bytes: u64,
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
}

impl Renderer for Json {
    // One arm per event kind, each a few lines: splitting the match would
    // scatter the schema a reader wants to see in one place.
    fn event(&mut self, ev: &Event) {
        let time = unix_now();
        // What the job's later lines need, and the lines that are more
        // than the event; every other event is written as it came.
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
            Event::Progress { id, pos } => {
                let job = self.jobs.entry(*id).or_default();
                job.pos = *pos;
                if self.throttle.offer(*id, *pos, Instant::now()) {
                    let line = Line::Progress {
                        time,
                        id: *id,
                        path: &job.path,
                        pos: *pos,
                        total: job.total,
                    };
                    write_line(&mut self.out, &line);
                }
                return;
            }
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
                return;
            }
            Event::Restarted { id, path, .. } => {
                self.throttle.reset(*id);
                self.job(*id, path).pos = 0;
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
                return;
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
                return;
            }
            Event::Interrupted { id, path, pos } => {
                self.job(*id, path);
                self.final_progress(*id, *pos, time);
                self.jobs.remove(id);
            }
            Event::RunStarted { .. } | Event::Retrying { .. } => {}
        }
        let line = Stamped {
            event: event_name(ev),
            time,
            body: ev,
        };
        write_line(&mut self.out, &line);
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
    let (status, got, error) = match outcome {
        VerifyOutcome::Ok => ("ok", None, None),
        VerifyOutcome::Mismatch { got } => ("mismatch", Some(hex::encode(got)), None),
        VerifyOutcome::Missing => ("missing", None, None),
        VerifyOutcome::Unreadable(err) => ("unreadable", None, Some(err.to_string())),
    };
    let line = Line::Verified {
        time: unix_now(),
        path: &item.path,
        status,
        expected: hex::encode(item.expected),
        got,
        error,
    };
    write_line(&mut io::stdout().lock(), &line);
}

/// `haul verify --json`: the closing `verify_summary` line, on stdout.
pub fn verify_summary(summary: &VerifySummary) {
    let line = Line::VerifySummary {
        time: unix_now(),
        files: summary.ok + summary.mismatched + summary.missing + summary.unreadable,
        ok: summary.ok,
        mismatched: summary.mismatched,
        missing: summary.missing,
        unreadable: summary.unreadable,
        bytes: summary.bytes,
    };
    write_line(&mut io::stdout().lock(), &line);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    #[test]
    fn throttle_lets_the_first_position_through_then_two_a_second() {
        let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Ten reports a second for three seconds, as the engine sends them.
        let shown: Vec<u64> = (0..30u64)
            .filter(|&i| gate.offer(7, i, t0 + ms(100 * i)))
            .collect();
        assert_eq!(shown, vec![0, 5, 10, 15, 20, 25]);
    }

    #[test]
    fn throttle_keeps_jobs_apart() {
        let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
        let t0 = Instant::now();
        assert!(gate.offer(1, 10, t0));
        assert!(gate.offer(2, 10, t0));
        assert!(!gate.offer(1, 20, t0 + Duration::from_millis(10)));
    }

    #[test]
    fn throttle_shows_the_final_position_only_when_the_last_line_missed_it() {
        let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
        let t0 = Instant::now();
        assert!(gate.offer(1, 100, t0));
        assert!(!gate.offer(1, 900, t0 + Duration::from_millis(100)));
        assert_eq!(gate.end(1, 1000), Some(1000));
        // Ended jobs are forgotten.
        assert_eq!(gate.end(1, 1000), None);

        assert!(gate.offer(2, 1000, t0));
        assert_eq!(gate.end(2, 1000), None, "already shown");
        assert_eq!(gate.end(3, 1000), None, "a job without progress lines");
    }

    #[test]
    fn throttle_restart_lets_the_next_position_through() {
        let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
        let t0 = Instant::now();
        assert!(gate.offer(1, 500, t0));
        gate.reset(1);
        assert!(gate.offer(1, 10, t0 + Duration::from_millis(1)));
    }

    /// A sink tests can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
            String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
                .collect()
        }
    }

    fn render(events: &[Event], report: &Report) -> Vec<Value> {
        let sink = Captured::default();
        let mut json = Json::new(Box::new(sink.clone()));
        for ev in events {
            json.event(ev);
        }
        json.finish(report, &HookTally::default());
        sink.lines()
    }

    #[test]
    fn every_line_starts_with_event_and_time() {
        let lines = render(
            &[Event::RunStarted {
                jobs: 1,
                known_bytes: 0,
            }],
            &Report::default(),
        );
        for line in &lines {
            let keys: Vec<&String> = line.as_object().expect("an object").keys().collect();
            assert!(line["time"].as_f64().is_some_and(|t| t > 1.5e9), "{line}");
            assert!(keys.iter().any(|k| *k == "event"), "{line}");
        }
        assert_eq!(lines[0]["event"], "run_started");
        assert_eq!(lines[1]["event"], "summary");
    }

    #[test]
    fn finished_and_failed_carry_the_url_from_queued() {
        let lines = render(
            &[
                Event::Queued {
                    id: 0,
                    path: "a.bin".into(),
                    url: "http://h/a.bin".parse().expect("a URL"),
                },
                Event::Queued {
                    id: 1,
                    path: "b.bin".into(),
                    url: "http://h/b.bin".parse().expect("a URL"),
                },
                Event::Finished {
                    id: 0,
                    path: "a.bin".into(),
                    bytes: 3,
                    sha256: "ab".into(),
                },
                Event::Failed {
                    id: 1,
                    path: "b.bin".into(),
                    kind: FailureKind::Internal,
                    error: "boom".into(),
                },
            ],
            &Report::default(),
        );
        let finished = &lines[2];
        assert_eq!(finished["event"], "finished");
        assert_eq!(finished["url"], "http://h/a.bin");
        assert_eq!(finished["bytes"], 3);
        assert_eq!(finished["sha256"], "ab");
        let failed = &lines[3];
        assert_eq!(failed["event"], "failed");
        assert_eq!(failed["path"], "b.bin");
        assert_eq!(failed["url"], "http://h/b.bin");
        assert_eq!(failed["kind"], "internal");
        assert_eq!(failed["error"], "boom");
    }

    #[test]
    fn a_finished_job_with_progress_lines_ends_them_at_its_size() {
        let lines = render(
            &[
                Event::Started {
                    id: 0,
                    path: "a.bin".into(),
                    offset: 0,
                    total: Some(100),
                },
                Event::Progress { id: 0, pos: 10 },
                Event::Progress { id: 0, pos: 60 },
                Event::Finished {
                    id: 0,
                    path: "a.bin".into(),
                    bytes: 100,
                    sha256: "ab".into(),
                },
            ],
            &Report::default(),
        );
        let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
        assert_eq!(
            events,
            ["started", "progress", "progress", "finished", "summary"]
        );
        assert_eq!(lines[1]["pos"], 10);
        assert_eq!(lines[1]["total"], 100);
        assert_eq!(lines[1]["path"], "a.bin");
        assert_eq!(lines[2]["pos"], 100);
    }

    /// The raw lines of a render of `events` then `hooks`, `time` blanked.
    fn raw(events: &[Event], hooks: &[HookDone]) -> Vec<String> {
        let sink = Captured::default();
        let mut json = Json::new(Box::new(sink.clone()));
        for ev in events {
            json.event(ev);
        }
        for done in hooks {
            json.hook(done);
        }
        let bytes = sink.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| {
                let at = l.find(r#""time":"#).map_or(0, |at| at + 7);
                let end = l[at..].find(',').map_or(l.len(), |e| at + e);
                format!("{}T{}", &l[..at], &l[end..])
            })
            .collect()
    }

    #[test]
    fn a_mirror_switch_is_the_retrying_line_it_always_was() {
        let lines = raw(
            &[
                Event::MirrorSwitched {
                    id: 3,
                    path: "f.bin".into(),
                    from: "http://a/f.bin".parse().expect("a URL"),
                    to: "http://b/f.bin".parse().expect("a URL"),
                    reason: "http://a/f.bin answered 404".into(),
                    scope: crate::event::SwitchScope::Job { attempt: 2 },
                },
                Event::MirrorSwitched {
                    id: 3,
                    path: "f.bin".into(),
                    from: "http://a/f.bin".parse().expect("a URL"),
                    to: "http://b/f.bin".parse().expect("a URL"),
                    reason: "timed out".into(),
                    scope: crate::event::SwitchScope::Connection(5),
                },
            ],
            &[],
        );
        assert_eq!(
            lines,
            [
                r#"{"event":"retrying","time":T,"id":3,"path":"f.bin","attempt":2,"reason":"mirror http://a/f.bin failed: http://a/f.bin answered 404; trying http://b/f.bin","delay_secs":0.0,"capped_from_secs":null}"#,
                r#"{"event":"retrying","time":T,"id":3,"path":"f.bin","attempt":5,"reason":"dropped mirror for this file (timed out); connection 5 moves to http://b/f.bin","delay_secs":0.0,"capped_from_secs":null}"#,
            ]
        );
    }

    #[test]
    fn events_written_whole_keep_the_schema_field_order() {
        let events = [
            Event::Retrying {
                id: 0,
                path: "a.bin".into(),
                attempt: 1,
                reason: "r".into(),
                delay: Duration::from_millis(50),
                capped_from: None,
            },
            Event::Restarted {
                id: 0,
                path: "a.bin".into(),
                reason: crate::event::RestartReason::WholeFile,
            },
        ];
        let hook = HookDone {
            id: 0,
            path: "a.bin".into(),
            status: None,
            error: Some("timed out".into()),
            stdout: "o".into(),
            stderr: String::new(),
            elapsed: Duration::from_millis(1250),
        };
        let lines = raw(&events, &[hook]);
        assert_eq!(
            lines,
            [
                r#"{"event":"retrying","time":T,"id":0,"path":"a.bin","attempt":1,"reason":"r","delay_secs":0.05,"capped_from_secs":null}"#,
                r#"{"event":"restarted","time":T,"id":0,"path":"a.bin","reason":"the server sent the whole file (range ignored or file changed)"}"#,
                r#"{"event":"hook","time":T,"id":0,"path":"a.bin","status":null,"error":"timed out","stdout":"o","stderr":"","elapsed_secs":1.25}"#,
            ]
        );
    }

    #[test]
    fn retrying_and_summary_use_seconds() {
        let report = Report {
            done: 2,
            failed: 1,
            skipped: 3,
            interrupted: 0,
            bytes: 42,
            elapsed: Duration::from_millis(1500),
            cancelled: false,
            warnings: vec!["manifest not compacted".into()],
        };
        let lines = render(
            &[Event::Retrying {
                id: 0,
                path: "a.bin".into(),
                attempt: 1,
                reason: "http://h/a.bin answered 503".into(),
                delay: Duration::from_millis(50),
                capped_from: Some(Duration::from_secs(120)),
            }],
            &report,
        );
        assert_eq!(lines[0]["delay_secs"], 0.05);
        assert_eq!(lines[0]["capped_from_secs"], 120.0);
        assert_eq!(lines[0]["attempt"], 1);
        let summary = &lines[1];
        assert_eq!(summary["done"], 2);
        assert_eq!(summary["failed"], 1);
        assert_eq!(summary["skipped"], 3);
        assert_eq!(summary["bytes"], 42);
        assert_eq!(summary["elapsed_secs"], 1.5);
        assert_eq!(summary["warnings"][0], "manifest not compacted");
    }
}
