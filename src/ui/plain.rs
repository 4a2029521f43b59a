//! Line renderers for logs and pipes: [`Plain`] (one line per file outcome,
//! retries, a summary) and [`Quiet`] (failures only).
//!
//! Results go to stdout so scripts can read them; diagnostics (failures,
//! retries, restarts, the summary) go to stderr. Progress is never printed.
//! Write errors are ignored: a closed pipe must not stop the download, and
//! there is nowhere left to report them.

use std::io::{self, Write};
use std::time::Duration;

use super::{human_bytes, human_duration, summary_line, Renderer};
use crate::event::{Event, JobId, Report};
use crate::hooks::{HookDone, HookTally};

/// An output sink; boxed so tests can capture what a renderer writes.
pub type Sink = Box<dyn Write + Send>;

/// `done   PATH  SIZE  sha256:HEX`
pub(crate) fn done_line(path: &str, bytes: u64, sha256: &str) -> String {
    format!("done   {path}  {}  sha256:{sha256}", human_bytes(bytes))
}

/// `failed PATH: ERROR`
pub(crate) fn failed_line(path: &str, error: &str) -> String {
    format!("failed {path}: {error}")
}

/// The stderr lines a hook's end earns: a failure gets a `hook failed`
/// line, then every hook shows its output (stdout's lines, then stderr's),
/// one `hook   PATH: LINE` each. With `failures_only`, a successful hook
/// shows nothing.
pub(crate) fn hook_lines(done: &HookDone, failures_only: bool) -> Vec<String> {
    let HookDone {
        path,
        status,
        error,
        stdout,
        stderr,
        elapsed,
        ..
    } = done;
    let failed = *status != Some(0);
    if !failed && failures_only {
        return Vec::new();
    }
    let mut lines = Vec::new();
    if failed {
        let why = match (status, error) {
            (_, Some(error)) => error.clone(),
            (Some(code), None) => format!("exit status {code}"),
            (None, None) => "no exit status".to_string(),
        };
        lines.push(format!(
            "hook failed {path}: {why} ({})",
            human_duration(*elapsed)
        ));
    }
    for line in stdout.lines().chain(stderr.lines()) {
        lines.push(format!("hook   {path}: {}", shown(line)));
    }
    lines
}

/// A line of a hook's output with control characters escaped, so what a
/// hook relays (from a server, say) cannot drive the terminal.
fn shown(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How a job is named before any event gave its path (a first attempt can
/// fail before `Started`).
pub(crate) fn unknown_path(id: JobId) -> String {
    format!("job #{id}")
}

/// One line per file outcome on stdout, diagnostics on stderr.
pub struct Plain {
    out: Sink,
    err: Sink,
}

impl Plain {
    /// Writes results to `out` and diagnostics and the summary to `err`.
    pub fn new(out: Sink, err: Sink) -> Self {
        Plain { out, err }
    }

    /// Writes to the process's stdout and stderr.
    pub fn stdio() -> Self {
        Plain::new(Box::new(io::stdout()), Box::new(io::stderr()))
    }
}

impl Renderer for Plain {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::RunStarted { .. } | Event::Queued { .. } | Event::Progress { .. } => {}
            Event::Started { .. } => {}
            Event::Skipped { path, .. } => {
                let _ = writeln!(self.out, "skip   {path}  (already complete)");
            }
            Event::Retrying {
                path,
                attempt,
                reason,
                delay,
                capped_from,
                ..
            } => {
                let wait = retry_wait(*delay, *capped_from);
                let _ = writeln!(
                    self.err,
                    "retry  {path}: {reason} (attempt {attempt}, {wait})"
                );
            }
            Event::MirrorSwitched {
                path,
                from,
                to,
                reason,
                scope,
                ..
            } => {
                let (attempt, reason) = super::mirror_retry(from, to, reason, *scope);
                let wait = retry_wait(Duration::ZERO, None);
                let _ = writeln!(
                    self.err,
                    "retry  {path}: {reason} (attempt {attempt}, {wait})"
                );
            }
            Event::Restarted { path, reason, .. } => {
                let _ = writeln!(self.err, "restart {path}: {reason}");
            }
            Event::Finished {
                path,
                bytes,
                sha256,
                ..
            } => {
                let _ = writeln!(self.out, "{}", done_line(path, *bytes, sha256));
            }
            Event::Failed { path, error, .. } => {
                let _ = writeln!(self.err, "{}", failed_line(path, error));
            }
            // The app prints one resume hint for the whole run.
            Event::Interrupted { .. } => {}
        }
    }

    fn hook(&mut self, done: &HookDone) {
        for line in hook_lines(done, false) {
            let _ = writeln!(self.err, "{line}");
        }
    }

    fn finish(&mut self, report: &Report, hooks: &HookTally) {
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{}", summary_line(report, hooks));
        let _ = self.err.flush();
    }
}

/// Failed files on stderr and nothing else, not even a summary.
pub struct Quiet {
    err: Sink,
}

impl Quiet {
    /// Writes failure lines to `err`.
    pub fn new(err: Sink) -> Self {
        Quiet { err }
    }

    /// Writes to the process's stderr.
    pub fn stdio() -> Self {
        Quiet::new(Box::new(io::stderr()))
    }
}

impl Renderer for Quiet {
    fn event(&mut self, ev: &Event) {
        if let Event::Failed { path, error, .. } = ev {
            let _ = writeln!(self.err, "{}", failed_line(path, error));
        }
    }

    fn hook(&mut self, done: &HookDone) {
        for line in hook_lines(done, true) {
            let _ = writeln!(self.err, "{line}");
        }
    }

    fn finish(&mut self, _report: &Report, _hooks: &HookTally) {
        let _ = self.err.flush();
    }
}

/// When the next attempt comes, and, if `--max-retry-wait` shortened the
/// server's `Retry-After`, what the server had asked for.
pub(crate) fn retry_wait(delay: Duration, capped_from: Option<Duration>) -> String {
    match capped_from {
        Some(asked) => format!(
            "server asked to wait {}; waiting {} (--max-retry-wait)",
            human_duration(asked),
            human_duration(delay)
        ),
        None => format!("next in {}", human_duration(delay)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::event::{FailureKind, RestartReason, SwitchScope};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A sink whose bytes the test can read after the renderer wrote them.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A run touching every event kind, in an order the engine could send.
    pub(crate) fn script() -> Vec<Event> {
        vec![
            Event::RunStarted {
                jobs: 5,
                known_bytes: 100,
            },
            Event::Skipped {
                id: 0,
                path: "out/a.bin".into(),
                bytes: 100,
            },
            Event::Retrying {
                id: 1,
                path: "out/b.bin".into(),
                attempt: 1,
                reason: "connection refused".into(),
                delay: Duration::from_millis(1200),
                capped_from: None,
            },
            Event::Started {
                id: 1,
                path: "out/b.bin".into(),
                offset: 0,
                total: Some(2048),
            },
            Event::Progress { id: 1, pos: 1024 },
            Event::Retrying {
                id: 1,
                path: "out/b.bin".into(),
                attempt: 2,
                reason: "body stalled".into(),
                delay: Duration::from_millis(400),
                capped_from: None,
            },
            Event::Started {
                id: 1,
                path: "out/b.bin".into(),
                offset: 1024,
                total: Some(2048),
            },
            Event::Restarted {
                id: 1,
                path: "out/b.bin".into(),
                reason: RestartReason::EtagChanged {
                    ours: "\"a\"".into(),
                    theirs: "\"b\"".into(),
                },
            },
            Event::Finished {
                id: 1,
                path: "out/b.bin".into(),
                bytes: 2048,
                sha256: "ab12".into(),
            },
            Event::Started {
                id: 2,
                path: "out/c.bin".into(),
                offset: 0,
                total: None,
            },
            Event::Failed {
                id: 2,
                path: "out/c.bin".into(),
                kind: FailureKind::HttpStatus,
                error: "http 404 for http://x/c.bin".into(),
            },
            Event::Started {
                id: 3,
                path: "out/d.bin".into(),
                offset: 0,
                total: Some(10),
            },
            Event::Interrupted {
                id: 3,
                path: "out/d.bin".into(),
                pos: 5,
            },
        ]
    }

    pub(crate) fn report() -> Report {
        Report {
            done: 1,
            failed: 1,
            skipped: 1,
            interrupted: 1,
            bytes: 3072,
            elapsed: Duration::from_secs(2),
            cancelled: true,
            ..Report::default()
        }
    }

    #[test]
    fn plain_prints_outcomes_on_stdout_and_diagnostics_on_stderr() {
        let (out, err) = (Captured::default(), Captured::default());
        let mut plain = Plain::new(Box::new(out.clone()), Box::new(err.clone()));
        for ev in script() {
            plain.event(&ev);
        }
        plain.finish(&report(), &HookTally::default());
        assert_eq!(
            out.text(),
            "skip   out/a.bin  (already complete)\n\
             done   out/b.bin  2.0 KiB  sha256:ab12\n"
        );
        assert_eq!(
            err.text(),
            "retry  out/b.bin: connection refused (attempt 1, next in 1.2s)\n\
             retry  out/b.bin: body stalled (attempt 2, next in 0.4s)\n\
             restart out/b.bin: ETag changed from \"a\" to \"b\"\n\
             failed out/c.bin: http 404 for http://x/c.bin\n\
             1 done, 1 failed, 1 skipped, 1 interrupted, 3.0 KiB in 2.0s (1.5 KiB/s)\n"
        );
    }

    #[test]
    fn quiet_prints_only_failures() {
        let err = Captured::default();
        let mut quiet = Quiet::new(Box::new(err.clone()));
        for ev in script() {
            quiet.event(&ev);
        }
        quiet.finish(&report(), &HookTally::default());
        assert_eq!(
            err.text(),
            "failed out/c.bin: http 404 for http://x/c.bin\n"
        );
    }

    fn hook_done(status: Option<i32>, error: Option<&str>, stdout: &str) -> HookDone {
        HookDone {
            id: 0,
            path: "a.bin".into(),
            status,
            error: error.map(str::to_string),
            stdout: stdout.into(),
            stderr: "warn\x1b[2J\n".into(),
            elapsed: Duration::from_millis(200),
        }
    }

    #[test]
    fn hooks_show_their_output_and_failures_a_headline_and_quiet_only_failures() {
        let (err, quiet_err) = (Captured::default(), Captured::default());
        let mut plain = Plain::new(Box::new(Captured::default()), Box::new(err.clone()));
        let mut quiet = Quiet::new(Box::new(quiet_err.clone()));
        for ev in [
            hook_done(Some(0), None, "uploaded\n"),
            hook_done(Some(3), None, ""),
            hook_done(None, Some("killed: the run was interrupted"), ""),
        ] {
            plain.hook(&ev);
            quiet.hook(&ev);
        }
        let failures = "hook failed a.bin: exit status 3 (0.2s)\n\
             hook   a.bin: warn\\u{1b}[2J\n\
             hook failed a.bin: killed: the run was interrupted (0.2s)\n\
             hook   a.bin: warn\\u{1b}[2J\n";
        assert_eq!(
            err.text(),
            format!("hook   a.bin: uploaded\nhook   a.bin: warn\\u{{1b}}[2J\n{failures}")
        );
        assert_eq!(quiet_err.text(), failures);
    }

    #[test]
    fn a_mirror_switch_reads_as_the_retry_line_it_always_was() {
        let err = Captured::default();
        let mut plain = Plain::new(Box::new(Captured::default()), Box::new(err.clone()));
        for scope in [SwitchScope::Job { attempt: 4 }, SwitchScope::Connection(2)] {
            plain.event(&Event::MirrorSwitched {
                id: 0,
                path: "f.bin".into(),
                from: "http://a/f.bin".parse().expect("a URL"),
                to: "http://b/f.bin".parse().expect("a URL"),
                reason: "http://a/f.bin answered 404".into(),
                scope,
            });
        }
        assert_eq!(
            err.text(),
            "retry  f.bin: mirror http://a/f.bin failed: http://a/f.bin answered 404; \
             trying http://b/f.bin (attempt 4, next in 0.0s)\n\
             retry  f.bin: dropped mirror for this file (http://a/f.bin answered 404); \
             connection 2 moves to http://b/f.bin (attempt 2, next in 0.0s)\n"
        );
    }

    #[test]
    fn retry_line_names_a_retry_after_cut_by_max_retry_wait() {
        let err = Captured::default();
        let mut plain = Plain::new(Box::new(Captured::default()), Box::new(err.clone()));
        plain.event(&Event::Retrying {
            id: 0,
            path: "f.bin".into(),
            attempt: 1,
            reason: "http://x/f.bin answered 503".into(),
            delay: Duration::from_secs(2),
            capped_from: Some(Duration::from_secs(3600)),
        });
        assert_eq!(
            err.text(),
            "retry  f.bin: http://x/f.bin answered 503 (attempt 1, \
             server asked to wait 1h 00m 00s; waiting 2.0s (--max-retry-wait))\n"
        );
    }
}
