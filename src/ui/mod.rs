//! Renderers: turn engine [`Event`]s, and the ends of the `--on-complete`
//! hooks they started ([`HookDone`]), into what a person or a script sees.
//!
//! This module owns the choice of renderer, the [`Renderer`] trait and the
//! human units every renderer shares. Progress bars live in `bars` (the only
//! place indicatif is imported) with the short retry causes of `cause`,
//! plain and quiet lines in `plain`, JSON lines
//! in `json`, the `status` summary in `status`. Renderers
//! only read events; they never drive the engine, and nothing outside `ui`
//! and `main` prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bars;
mod cause;
pub mod json;
pub mod lines;
mod plain;
pub mod status;

use std::io::IsTerminal;
use std::time::Duration;

use crate::event::{Event, Report, SwitchScope};
use crate::hooks::{HookDone, HookTally};

pub use bars::Bars;
pub use json::Json;
pub use plain::{Plain, Quiet, Sink};

/// Something that shows a run's events.
pub trait Renderer: Send {
    /// Shows one event; must accept any order (e.g. progress of an unknown job).
    fn event(&mut self, ev: &Event);
    /// Shows how a file's `--on-complete` hook ended.
    fn hook(&mut self, done: &HookDone);
    /// Prints the final summary: the engine's report and the hooks' counts.
    fn finish(&mut self, report: &Report, hooks: &HookTally);
}

/// A mirror switch as the retry every renderer has always shown it as: the
/// `attempt` number (a connection's number when one connection of a split
/// moved) and the reason sentence. The wait is zero.
pub(crate) fn mirror_retry(
    from: &str,
    to: &str,
    reason: &str,
    scope: SwitchScope,
) -> (u32, String) {
    match scope {
        SwitchScope::Job { attempt } => (
            attempt,
            format!("mirror {from} failed: {reason}; trying {to}"),
        ),
        SwitchScope::Connection(conn) => (
            conn as u32,
            format!("dropped mirror for this file ({reason}); connection {conn} moves to {to}"),
        ),
    }
}

/// Which renderer a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMode {
    /// Live progress bars on stderr.
    Bars,
    /// One line per finished, skipped, failed or retried file.
    Plain,
    /// Failed files only.
    Quiet,
    /// `--json`: one JSON object a line on stdout, no bars.
    Json,
}

/// Bars when stderr is a terminal and not quiet, else Plain (or Quiet with -q).
pub fn choose(quiet: bool) -> UiMode {
    if quiet {
        UiMode::Quiet
    } else if std::io::stderr().is_terminal() {
        UiMode::Bars
    } else {
        UiMode::Plain
    }
}

/// Builds the renderer for `mode`, writing to the process's stdout/stderr.
pub fn renderer(mode: UiMode) -> Box<dyn Renderer> {
    match mode {
        UiMode::Bars => Box::new(Bars::stderr()),
        UiMode::Plain => Box::new(Plain::stdio()),
        UiMode::Quiet => Box::new(Quiet::stdio()),
        UiMode::Json => Box::new(Json::stdio()),
    }
}

/// Binary units with one decimal: "512 B", "1.5 KiB", "12.3 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // Move up before rounding would print "1024.0".
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate in bytes a second: "4.5 MiB/s".
pub fn human_speed(bytes_per_sec: f64) -> String {
    let rate = if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
        bytes_per_sec.round() as u64
    } else {
        0
    };
    format!("{}/s", human_bytes(rate))
}

/// "0.4s" and "12.3s" under a minute, then "1m 02s", then "1h 02m 03s".
pub fn human_duration(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths < 600 {
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let secs = (d.as_millis() + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h == 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{h}h {m:02}m {s:02}s")
    }
}

/// A count and its noun, singular for one: "1 job", "0 jobs", "2 jobs"
/// (the nouns used take a plain "s").
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The closing line of Bars and Plain:
/// `3 done, 1 failed, 0 skipped, 12.3 MiB in 4.2s (2.9 MiB/s)`, with
/// `, N interrupted` after the skipped count when a signal stopped jobs,
/// and `; hooks: 2 ok, 1 failed` when `--on-complete` hooks ran.
pub fn summary_line(report: &Report, tally: &HookTally) -> String {
    let interrupted = if report.interrupted > 0 {
        format!(", {} interrupted", report.interrupted)
    } else {
        String::new()
    };
    let hooks = if tally.ok + tally.failed + tally.not_run == 0 {
        String::new()
    } else if tally.not_run == 0 {
        format!("; hooks: {} ok, {} failed", tally.ok, tally.failed)
    } else {
        format!(
            "; hooks: {} ok, {} failed, {} not run",
            tally.ok, tally.failed, tally.not_run
        )
    };
    format!(
        "{} done, {} failed, {} skipped{interrupted}, {} in {} ({}){hooks}",
        report.done,
        report.failed,
        report.skipped,
        human_bytes(report.bytes),
        human_duration(report.elapsed),
        human_speed(report.mean_speed()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        let cases = [
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (256 * 1024, "256.0 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (12_897_485, "12.3 MiB"),
            (24 * 1024 * 1024, "24.0 MiB"),
            (3 << 30, "3.0 GiB"),
            (5 << 40, "5.0 TiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_bytes(n), want, "{n}");
        }
    }

    #[test]
    fn human_speed_table() {
        assert_eq!(human_speed(4.5 * 1024.0 * 1024.0), "4.5 MiB/s");
        assert_eq!(human_speed(100.4), "100 B/s");
        assert_eq!(human_speed(0.0), "0 B/s");
        assert_eq!(human_speed(f64::NAN), "0 B/s");
        assert_eq!(human_speed(f64::INFINITY), "0 B/s");
    }

    #[test]
    fn human_duration_table() {
        let ms = Duration::from_millis;
        let cases = [
            (ms(0), "0.0s"),
            (ms(40), "0.0s"),
            (ms(250), "0.3s"),
            (ms(1200), "1.2s"),
            (ms(59_940), "59.9s"),
            (ms(59_960), "1m 00s"),
            (ms(62_000), "1m 02s"),
            (ms(3_599_000), "59m 59s"),
            (ms(3_723_000), "1h 02m 03s"),
            (Duration::from_secs(100 * 3600), "100h 00m 00s"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(count(0, "job"), "0 jobs");
        assert_eq!(count(1, "job"), "1 job");
        assert_eq!(count(2, "file"), "2 files");
    }

    #[test]
    fn summary_mentions_interrupted_only_when_any() {
        let mut report = Report {
            done: 3,
            failed: 1,
            skipped: 0,
            interrupted: 0,
            bytes: 12_897_485,
            elapsed: Duration::from_millis(4200),
            cancelled: false,
            ..Report::default()
        };
        assert_eq!(
            summary_line(&report, &HookTally::default()),
            "3 done, 1 failed, 0 skipped, 12.3 MiB in 4.2s (2.9 MiB/s)"
        );
        report.interrupted = 2;
        report.cancelled = true;
        assert_eq!(
            summary_line(&report, &HookTally::default()),
            "3 done, 1 failed, 0 skipped, 2 interrupted, 12.3 MiB in 4.2s (2.9 MiB/s)"
        );
    }

    #[test]
    fn summary_counts_hooks_only_when_any_ran() {
        let report = Report {
            done: 3,
            elapsed: Duration::from_secs(1),
            ..Report::default()
        };
        let mut hooks = HookTally {
            ok: 2,
            failed: 1,
            not_run: 0,
        };
        assert_eq!(
            summary_line(&report, &hooks),
            "3 done, 0 failed, 0 skipped, 0 B in 1.0s (0 B/s); hooks: 2 ok, 1 failed"
        );
        hooks.not_run = 4;
        assert!(summary_line(&report, &hooks).ends_with("; hooks: 2 ok, 1 failed, 4 not run"));
    }

    #[test]
    fn quiet_wins_over_terminal() {
        assert_eq!(choose(true), UiMode::Quiet);
    }
}
