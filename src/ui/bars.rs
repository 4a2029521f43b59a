//! Live progress bars on stderr: one total bar and up to [`MAX_SHOWN`] job bars.
//!
//! This is the only file that imports indicatif (and console, the terminal
//! it draws on). It owns the bookkeeping that maps events onto bars (which
//! jobs are shown, which wait for a slot, the byte totals) and keeps it O(1)
//! per event so thousands of jobs stay cheap; indicatif's draw-rate limit
//! keeps the terminal work bounded. It accepts events in any order,
//! including for jobs it has never heard of, and must never panic on them.
//! Speeds are measured here, from bytes received, so a resumed prefix
//! appearing at once does not count as download speed.
//!
//! A row is named after its file from the first event that names it
//! (`Queued` does, before any attempt). A row waiting to retry gives its bar
//! to a note that leads with the short cause (`ui::cause`), then the URL, so
//! a narrow terminal cuts the URL rather than the cause.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use indicatif::{
    MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike,
};

use super::cause::cause;
use super::plain::{failed_line, hook_lines, unknown_path, Sink};
use super::{human_bytes, human_duration, human_speed, summary_line, Renderer};
use crate::event::{Event, JobId, Report};
use crate::hooks::{HookDone, HookTally};

/// Job bars drawn at once; the other active jobs wait for a slot.
pub const MAX_SHOWN: usize = 10;

/// Terminal redraws a second at most.
const REFRESH_HZ: u8 = 10;

/// Characters of a path shown in front of its bar.
const PATH_WIDTH: usize = 20;

/// How often a speed is re-estimated.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Least time a retry or restart note stays up once progress resumes (a
/// split file's other connections go on while one of them waits).
const NOTE_MIN: Duration = Duration::from_secs(2);

const TOTAL_TEMPLATE: &str =
    "{prefix:20.bold} [{bar:16.green/white}] {hpos:>9}/{hlen:<9} {wide_msg}";
const JOB_TEMPLATE: &str = "{prefix:20} [{bar:16.cyan/blue}] {hpos:>9}/{hlen:<9} {wide_msg}";
/// A job waiting to retry: the bar and byte counts, which do not move
/// meanwhile, give their room to the note, so the cause fits in 80 columns.
const NOTE_TEMPLATE: &str = "{prefix:20} {wide_msg}";

/// A bytes-received counter with a smoothed speed.
#[derive(Debug)]
struct Rate {
    bytes: u64,
    sampled_bytes: u64,
    sampled_at: Instant,
    speed: Option<f64>,
}

impl Rate {
    fn new(now: Instant) -> Self {
        Rate {
            bytes: 0,
            sampled_bytes: 0,
            sampled_at: now,
            speed: None,
        }
    }

    fn add(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// Takes a sample if the last one is old enough; true when the speed changed.
    fn sample(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.sampled_at);
        if dt < SAMPLE_EVERY {
            return false;
        }
        let current = (self.bytes - self.sampled_bytes) as f64 / dt.as_secs_f64();
        self.speed = Some(match self.speed {
            // Smooths over about three samples: steady, yet follows a stall.
            Some(prev) => 0.3 * current + 0.7 * prev,
            None => current,
        });
        self.sampled_bytes = self.bytes;
        self.sampled_at = now;
        true
    }
}

/// What the renderer knows of one active job.
struct Job {
    path: String,
    pos: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    /// Retry or restart notice shown instead of the bar until the next
    /// start, or until progress after `note_until`.
    note: Option<String>,
    /// `None`: the note stays until the next start.
    note_until: Option<Instant>,
    rate: Rate,
}

/// The progress-bar renderer.
pub struct Bars {
    mp: MultiProgress,
    total: ProgressBar,
    job_style: ProgressStyle,
    note_style: ProgressStyle,
    /// Paths of queued jobs that no other event named yet.
    queued: HashMap<JobId, String>,
    /// Where the summary goes once the bars are cleared.
    err: Sink,
    /// Jobs that started (or were mentioned) and have not ended.
    jobs: HashMap<JobId, Job>,
    /// Active jobs without a bar, oldest first; may hold ids that ended or
    /// got a bar since, which are skipped when popped.
    waiting: VecDeque<JobId>,
    shown: usize,
    run_jobs: usize,
    completed: usize,
    failed: usize,
    /// Sum of totals the manifest knew when the run started.
    known_bytes: u64,
    /// Sum of totals learnt from events (skipped, started, finished jobs).
    learnt_bytes: u64,
    /// Sum of every job's bytes on disk, resumed prefixes included.
    on_disk: u64,
    length: u64,
    /// False until some size is known (or every job ended): the total bar
    /// is then empty with an unknown length, not full at "0 B/0 B".
    length_known: bool,
    rate: Rate,
}

impl Bars {
    /// Draws on stderr at most ten times a second; the summary goes to stderr.
    /// Like indicatif's own stderr target, it draws nothing unless stderr is
    /// a terminal and `TERM` is not `dumb`.
    pub fn stderr() -> Self {
        let term = console::Term::buffered_stderr();
        let target = if term.is_term() && !console::is_dumb() {
            ProgressDrawTarget::term_like_with_hz(Box::new(LineStart(term)), REFRESH_HZ)
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars::with_target(target, Box::new(io::stderr()))
    }

    /// Draws on `target` and writes the summary to `err`; tests pass a hidden
    /// target.
    pub fn with_target(target: ProgressDrawTarget, err: Sink) -> Self {
        let mp = MultiProgress::with_draw_target(target);
        let total = mp.add(
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
                .with_style(style(TOTAL_TEMPLATE)),
        );
        let mut bars = Bars {
            mp,
            total,
            job_style: style(JOB_TEMPLATE),
            note_style: style(NOTE_TEMPLATE),
            queued: HashMap::new(),
            err,
            jobs: HashMap::new(),
            waiting: VecDeque::new(),
            shown: 0,
            run_jobs: 0,
            completed: 0,
            failed: 0,
            known_bytes: 0,
            learnt_bytes: 0,
            on_disk: 0,
            length: 0,
            length_known: false,
            rate: Rate::new(Instant::now()),
        };
        bars.refresh_files();
        bars
    }

    /// Returns the job, creating it (and giving it a bar or a place in the
    /// queue) if it is not active yet. `path` is the one the event names,
    /// if it names one; a job is named after the freshest path known.
    fn job(&mut self, id: JobId, path: Option<&str>) -> Option<&mut Job> {
        if let Entry::Vacant(slot) = self.jobs.entry(id) {
            let queued = self.queued.remove(&id);
            let path = match (path, queued) {
                (Some(path), _) => path.to_owned(),
                (None, Some(queued)) => queued,
                (None, None) => unknown_path(id),
            };
            slot.insert(Job {
                path,
                pos: 0,
                total: None,
                bar: None,
                note: None,
                note_until: None,
                rate: Rate::new(Instant::now()),
            });
            if self.shown < MAX_SHOWN {
                self.attach(id);
            } else {
                self.waiting.push_back(id);
            }
        }
        let job = self.jobs.get_mut(&id)?;
        if let Some(path) = path.filter(|p| *p != job.path) {
            job.path = path.to_owned();
            if let Some(bar) = &job.bar {
                bar.set_prefix(short_path(path));
            }
        }
        Some(job)
    }

    /// Gives a job a bar, drawn from its current state.
    fn attach(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.bar.is_some() {
            return;
        }
        let style = if job.note.is_some() {
            &self.note_style
        } else {
            &self.job_style
        };
        let bar = ProgressBar::with_draw_target(job.total, ProgressDrawTarget::hidden())
            .with_style(style.clone())
            .with_prefix(short_path(&job.path))
            .with_position(job.pos)
            .with_message(job.note.clone().unwrap_or_default());
        job.bar = Some(self.mp.add(bar));
        self.shown += 1;
    }

    /// Forgets a job and hands its bar's slot to the oldest waiting job.
    fn end(&mut self, id: JobId) -> Option<Job> {
        self.queued.remove(&id);
        let job = self.jobs.remove(&id)?;
        if let Some(bar) = &job.bar {
            self.mp.remove(bar);
            self.shown = self.shown.saturating_sub(1);
            while self.shown < MAX_SHOWN {
                let Some(next) = self.waiting.pop_front() else {
                    break;
                };
                self.attach(next);
            }
        }
        Some(job)
    }

    /// Replaces a job's contribution to the byte totals.
    fn account(&mut self, old_pos: u64, new_pos: u64, old_total: u64, new_total: u64) {
        self.on_disk = self.on_disk.saturating_sub(old_pos).saturating_add(new_pos);
        self.learnt_bytes = self
            .learnt_bytes
            .saturating_sub(old_total)
            .saturating_add(new_total);
    }

    fn refresh_total(&mut self) {
        // The manifest's sum and the learnt sum may cover the same jobs, so
        // the larger is the best guess; it is exact once every job reported.
        let length = self.known_bytes.max(self.learnt_bytes);
        // Nothing known yet is not "0 bytes to go": indicatif would draw a
        // zero length as a full bar. Once every job is done, a
        // zero length is the truth (empty files); a failed one never told.
        let all_done = self.run_jobs > 0 && self.completed >= self.run_jobs;
        let known = length > 0 || all_done;
        if length != self.length || known != self.length_known {
            self.length = length;
            self.length_known = known;
            if known {
                self.total.set_length(length);
            } else {
                self.total.unset_length();
            }
        }
        self.total.set_position(self.on_disk);
    }

    /// Counts a job streamed in after `RunStarted`: ids are given in order
    /// of arrival, so the run has at least `id + 1` jobs.
    fn arrived(&mut self, id: JobId) {
        if id >= self.run_jobs {
            self.run_jobs = id + 1;
            self.refresh_files();
        }
    }

    fn refresh_files(&mut self) {
        let all = self.run_jobs.max(self.completed + self.failed);
        let mut prefix = format!("{}/{} files", self.completed, all);
        if self.failed > 0 {
            prefix.push_str(&format!(", {} failed", self.failed));
        }
        self.total.set_prefix(prefix);
    }

    fn refresh_speed(&mut self, now: Instant) {
        if !self.rate.sample(now) {
            return;
        }
        let speed = self.rate.speed.unwrap_or(0.0);
        let mut msg = human_speed(speed);
        let remaining = self.length.saturating_sub(self.on_disk);
        if speed >= 1.0 && remaining > 0 {
            let eta = Duration::from_secs_f64((remaining as f64 / speed).min(1e9));
            msg.push_str(&format!(" ETA {}", human_duration(eta)));
        }
        self.total.set_message(msg);
    }

    fn println(&self, line: &str) {
        let _ = self.mp.println(line);
    }

    fn clear(&mut self) {
        for job in self.jobs.values() {
            if let Some(bar) = &job.bar {
                self.mp.remove(bar);
            }
        }
        self.jobs.clear();
        self.queued.clear();
        self.waiting.clear();
        self.shown = 0;
        self.total.finish_and_clear();
        self.mp.remove(&self.total);
        let _ = self.mp.clear();
    }

    fn started(&mut self, id: JobId, path: &str, offset: u64, total: Option<u64>) {
        if self.job(id, Some(path)).is_none() {
            return;
        }
        // Fields borrowed apart: the job, and the style to restore.
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let (old_pos, old_total) = (job.pos, job.total.unwrap_or(0));
        job.pos = offset;
        job.total = total;
        job.rate = Rate::new(Instant::now());
        if job.note.take().is_some() {
            if let Some(bar) = &job.bar {
                // Setting a style draws nothing; the message first, so no
                // frame shows the note squeezed behind the bar.
                bar.set_message("");
                bar.set_style(self.job_style.clone());
            }
        }
        if let Some(bar) = &job.bar {
            match total {
                Some(len) => bar.set_length(len),
                None => bar.unset_length(),
            }
            bar.set_position(offset);
            bar.set_message("");
        }
        self.account(old_pos, offset, old_total, total.unwrap_or(0));
        self.refresh_total();
    }

    fn progress(&mut self, id: JobId, pos: u64) {
        let now = Instant::now();
        if self.job(id, None).is_none() {
            return;
        }
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let old_pos = job.pos;
        let received = pos.saturating_sub(old_pos);
        job.pos = pos;
        job.rate.add(received);
        // A split file's other connections keep going while one waits to
        // retry: once its wait is over, the bar comes back.
        let expired = job.note_until.is_some_and(|until| now >= until);
        if received > 0 && expired && job.note.take().is_some() {
            job.note_until = None;
            if let Some(bar) = &job.bar {
                bar.set_style(self.job_style.clone());
                bar.set_message(human_speed(job.rate.speed.unwrap_or(0.0)));
            }
        }
        if let Some(bar) = &job.bar {
            bar.set_position(pos);
            if job.rate.sample(now) && job.note.is_none() {
                bar.set_message(human_speed(job.rate.speed.unwrap_or(0.0)));
            }
        }
        self.rate.add(received);
        self.account(old_pos, pos, 0, 0);
        self.refresh_total();
        self.refresh_speed(now);
    }

    /// A job whose file is complete (skipped or finished) at `bytes`.
    fn file_complete(&mut self, id: JobId, bytes: u64) {
        let (pos, total) = self
            .end(id)
            .map_or((0, 0), |j| (j.pos, j.total.unwrap_or(0)));
        self.account(pos, bytes, total, bytes);
        self.completed += 1;
        self.refresh_files();
        self.refresh_total();
    }

    /// Shows `note` in place of the job's bar until its next start, or
    /// until progress comes after `wait` (and at least [`NOTE_MIN`]).
    fn note(&mut self, id: JobId, path: &str, note: String, wait: Duration, restart: bool) {
        if self.job(id, Some(path)).is_none() {
            return;
        }
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let old_pos = job.pos;
        if restart {
            job.pos = 0;
        }
        if let Some(bar) = &job.bar {
            if restart {
                bar.set_position(0);
            }
            if job.note.is_none() {
                bar.set_style(self.note_style.clone());
            }
            bar.set_message(note.clone());
        }
        job.note = Some(note);
        job.note_until = Instant::now().checked_add(wait.max(NOTE_MIN));
        if restart {
            self.account(old_pos, 0, 0, 0);
            self.refresh_total();
        }
    }
}

impl Renderer for Bars {
    // One arm per event kind, each handing off to a method: the length is
    // the number of events, not one long procedure.
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::RunStarted { jobs, known_bytes } => {
                self.run_jobs = *jobs;
                self.known_bytes = *known_bytes;
                self.refresh_files();
                self.refresh_total();
            }
            Event::Queued { id, path, .. } => {
                self.arrived(*id);
                // Remembered, not shown: a row goes to a job that started
                // (or retries), so a long queue takes no rows.
                if let Some(job) = self.jobs.get(id) {
                    if job.path != *path {
                        self.job(*id, Some(path));
                    }
                } else {
                    self.queued.insert(*id, path.clone());
                }
            }
            Event::Skipped { id, bytes, .. } => {
                self.arrived(*id);
                self.file_complete(*id, *bytes);
            }
            Event::Started {
                id,
                path,
                offset,
                total,
            } => self.started(*id, path, *offset, *total),
            Event::Progress { id, pos } => self.progress(*id, *pos),
            Event::Retrying {
                id,
                path,
                attempt,
                reason,
                delay,
                capped_from,
            } => {
                let note = retry_note(*attempt, reason, *delay, *capped_from);
                self.note(*id, path, note, *delay, false);
            }
            Event::MirrorSwitched {
                id,
                path,
                from,
                to,
                reason,
                scope,
            } => {
                let (attempt, reason) = super::mirror_retry(from, to, reason, *scope);
                let note = retry_note(attempt, &reason, Duration::ZERO, None);
                self.note(*id, path, note, Duration::ZERO, false);
            }
            Event::Restarted { id, path, reason } => {
                let note = format!("restarted: {reason}");
                self.note(*id, path, note, Duration::ZERO, true);
            }
            Event::Finished {
                id, path, bytes, ..
            } => {
                self.file_complete(*id, *bytes);
                // Printing forces a redraw, which then shows the new counts.
                self.println(&format!("done   {path}  {}", human_bytes(*bytes)));
            }
            Event::Failed {
                id, path, error, ..
            } => {
                // What the job will never fetch leaves the total, so the ETA
                // stays honest; what it wrote stays counted.
                if let Some(job) = self.end(*id) {
                    self.account(job.pos, job.pos, job.total.unwrap_or(0), job.pos);
                }
                self.failed += 1;
                self.refresh_files();
                self.refresh_total();
                self.println(&failed_line(path, error));
            }
            Event::Interrupted { id, .. } => {
                // The app prints one resume hint for the whole run.
                self.end(*id);
            }
        }
    }

    fn hook(&mut self, done: &HookDone) {
        for line in hook_lines(done, false) {
            self.println(&line);
        }
    }

    fn finish(&mut self, report: &Report, hooks: &HookTally) {
        self.clear();
        let _ = writeln!(self.err, "{}", summary_line(report, hooks));
        let _ = self.err.flush();
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        // Without this, dropped bars would draw themselves one last time and
        // stay on the terminal if the run ends without `finish`.
        self.clear();
    }
}

/// A retry's note, cause first so a narrow row still shows it:
/// `connection refused, retry 2 in 1.0s: http://host/file`.
fn retry_note(
    attempt: u32,
    reason: &str,
    delay: Duration,
    capped_from: Option<Duration>,
) -> String {
    let short = cause(reason);
    let mut note = short.cause;
    if !note.is_empty() {
        note.push_str(", ");
    }
    if delay.is_zero() {
        note.push_str(&format!("retry {attempt} now"));
    } else {
        note.push_str(&format!("retry {attempt} in {}", human_duration(delay)));
    }
    if let Some(asked) = capped_from {
        note.push_str(&format!(
            " (server asked {}, capped by --max-retry-wait)",
            human_duration(asked)
        ));
    }
    if let Some(url) = short.url {
        note.push_str(": ");
        note.push_str(url);
    }
    note
}

/// stderr as indicatif's terminal, with the cursor sent back to the start
/// of its line after each frame.
///
/// indicatif pads every bar's line to the full width (the terminal's wrap
/// then starts the next one), so a frame ends with the cursor past the last
/// column. The `^C` that the terminal echoes on Ctrl-C there wraps onto a
/// new line, and the clear that follows, which counts lines up from the
/// cursor, starts one line too low and leaves the top bar, the total, on
/// screen. A carriage return keeps the cursor on the last
/// bar's line, where the echo lands and the clear wipes it; indicatif
/// starts every redraw with a carriage return anyway, so nothing else moves.
#[derive(Debug)]
struct LineStart(console::Term);

impl TermLike for LineStart {
    fn width(&self) -> u16 {
        self.0.size().1
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.write_str("\r")?;
        self.0.flush()
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants covered by a test, so the fallback is
    // only a guard against a future indicatif changing its syntax.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("hpos", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&human_bytes(s.pos()));
        })
        .with_key("hlen", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = match s.len() {
                Some(len) => w.write_str(&human_bytes(len)),
                None => w.write_str("?"),
            };
        })
}

/// The tail of a path, which names the file, in at most [`PATH_WIDTH`] chars.
fn short_path(path: &str) -> String {
    let count = path.chars().count();
    if count <= PATH_WIDTH {
        return path.to_owned();
    }
    let tail: String = path.chars().skip(count - (PATH_WIDTH - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests;
