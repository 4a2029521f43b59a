//! The line-oriented output of the commands that are not a download run:
//! `verify` results, the `status` table (and its JSON), and short notes from `serve`,
//! `demo` and an interrupted `get`.
//!
//! Nothing here panics on a closed stdout (`haul verify | head -1`): `verify`
//! lines ignore write errors, as a download's renderers do, so the run goes
//! on and still reports problems on stderr and by its exit code; the
//! `status` text is returned for the caller to write.

use std::io::Write;
use std::path::Path;

use super::status::{Failure, StatusReport};
use super::{count, human_bytes};
use crate::shard::Shard;
use crate::store::manifest::{JobRecord, JobState, INTERRUPTED};
use crate::verify::{VerifyItem, VerifyOutcome, VerifySummary};

/// A note about the run itself, on stderr.
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

/// Something that went wrong without costing a download, on stderr.
pub fn warning(msg: &str) {
    eprintln!("warning: {msg}");
}

/// Tells an interrupted user how to carry on.
pub fn resume_hint(out_dir: &Path) {
    eprintln!(
        "interrupted: progress saved in {}; run the same command again to resume",
        out_dir.join(".haul").display()
    );
}

/// One verified file: `ok` lines on stdout (unless quiet), problems on stderr.
pub fn verify_result(item: &VerifyItem, outcome: &VerifyOutcome, quiet: bool) {
    match outcome {
        VerifyOutcome::Ok if !quiet => {
            let _ = writeln!(std::io::stdout().lock(), "ok       {}", item.path);
        }
        VerifyOutcome::Ok => {}
        VerifyOutcome::Mismatch { got } => eprintln!(
            "MISMATCH {}: expected sha256 {}, got {}",
            item.path,
            item.expected_hex().unwrap_or_default(),
            hex::encode(got)
        ),
        VerifyOutcome::Missing => eprintln!("MISSING  {}", item.path),
        VerifyOutcome::Unreadable(err) => eprintln!("UNREADABLE {}: {err}", item.path),
        VerifyOutcome::Unfinished(why) => eprintln!("UNFINISHED {}: {}", item.path, why.says()),
    }
}

/// `haul verify` without a list: a shard of the list that never ran.
pub fn verify_shard_not_started(shard: &Shard) {
    eprintln!(
        "NOT STARTED shard {shard} (no .haul/{}): its files are not checked; `haul verify -i LIST` names them",
        shard.dir_name()
    );
}

/// The closing line of `haul verify`; printed when quiet only if something is wrong.
pub fn verify_summary(summary: &VerifySummary, quiet: bool) {
    let bad = summary.problems();
    if quiet && bad == 0 {
        return;
    }
    // Said only when there are some, so a finished directory's line is
    // what it always was.
    let mut unfinished = match summary.unfinished {
        0 => String::new(),
        n => format!(", {} not done", count(n, "job")),
    };
    if summary.shards_not_started > 0 {
        let n = summary.shards_not_started;
        unfinished.push_str(&format!(", {} never started", count(n, "shard")));
    }
    eprintln!(
        "verified {} ({}): {} ok, {} mismatched, {} missing, {} unreadable{unfinished}",
        count(
            summary.ok + bad - summary.unfinished - summary.shards_not_started,
            "file"
        ),
        human_bytes(summary.bytes),
        summary.ok,
        summary.mismatched,
        summary.missing,
        summary.unreadable
    );
}

/// `haul status`: counts by state and bytes done and left, then one line
/// per unfinished job (failures with their last error), as text for stdout.
#[cfg(test)]
pub fn status(records: &[JobRecord]) -> String {
    let mut text = status_headline(&StatusReport::from_records(records));
    for rec in records {
        text.push_str(&status_line(rec).unwrap_or_default());
    }
    text
}

/// The first lines of `haul status`: counts and bytes.
pub fn status_headline(report: &StatusReport) -> String {
    let mut text = report.headline();
    text.push('\n');
    text.push_str(&report.list_lines());
    text
}

/// The line `haul status` shows for an unfinished job; None for a done one.
pub fn status_line(rec: &JobRecord) -> Option<String> {
    let state = match rec.state {
        JobState::Partial => "partial",
        JobState::Pending => "pending",
        JobState::Failed => "failed",
        JobState::Done => return None,
    };
    let total = rec.total.map_or("?".to_string(), human_bytes);
    // Escaped: an error text quotes what a server sent, and must not
    // drive the terminal.
    let error = match rec.last_error.as_deref() {
        Some(INTERRUPTED) => ", interrupted".to_string(),
        Some(e) => format!(", last error: {}", e.escape_debug()),
        None => String::new(),
    };
    Some(format!(
        "{state:<8} {}  {} / {}  (attempts {}{error})\n",
        rec.path,
        human_bytes(rec.bytes_done),
        total,
        rec.attempts
    ))
}

/// `haul status --json`: the [`StatusReport`] as one JSON line for stdout.
#[cfg(test)]
pub fn status_json(records: &[JobRecord]) -> String {
    let mut report = StatusReport::default();
    records.iter().for_each(|rec| report.count(rec.progress()));
    let mut text = status_json_head(&report);
    let mut first = true;
    for rec in records {
        text.push_str(&status_json_failure(rec, &mut first).unwrap_or_default());
    }
    text.push_str(STATUS_JSON_TAIL);
    text
}

/// `haul status --json` up to its list of failures, which is streamed
/// after it ([`status_json_failure`], then [`STATUS_JSON_TAIL`]): the
/// failures are the report's last field, so the line reads as if the
/// report with every failure had been serialised at once.
pub fn status_json_head(counts: &StatusReport) -> String {
    let head = StatusReport {
        failures: Vec::new(),
        ..counts.clone()
    };
    // A struct of numbers and strings always serialises.
    let text = serde_json::to_string(&head).unwrap_or_default();
    text.strip_suffix("]}").unwrap_or(&text).to_string()
}

/// A failed job's entry in the `--json` list of failures (with the comma
/// before it unless `first`); None for a job that did not fail.
pub fn status_json_failure(rec: &JobRecord, first: &mut bool) -> Option<String> {
    if rec.state != JobState::Failed {
        return None;
    }
    let entry = serde_json::to_string(&Failure::of(rec)).unwrap_or_default();
    let sep = if std::mem::take(first) { "" } else { "," };
    Some(format!("{sep}{entry}"))
}

/// The end of the `haul status --json` line.
pub const STATUS_JSON_TAIL: &str = "]}\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, state: JobState, last_error: Option<&str>) -> JobRecord {
        JobRecord {
            state,
            bytes_done: 1024,
            total: Some(4096),
            attempts: 2,
            last_error: last_error.map(str::to_string),
            ..JobRecord::pending(path.into(), format!("http://h/{path}"))
        }
    }

    #[test]
    fn status_says_interrupted_instead_of_an_error_and_escapes_real_ones() {
        let text = status(&[
            rec("a", JobState::Partial, Some(INTERRUPTED)),
            rec(
                "b",
                JobState::Failed,
                Some("http://h/b answered 404\x1b[2J"),
            ),
            rec("c", JobState::Pending, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "3 jobs: 0 done, 1 partial, 1 pending, 1 failed");
        assert_eq!(
            lines[2],
            "partial  a  1.0 KiB / 4.0 KiB  (attempts 2, interrupted)"
        );
        assert_eq!(
            lines[3],
            "failed   b  1.0 KiB / 4.0 KiB  (attempts 2, last error: http://h/b answered 404\\u{1b}[2J)"
        );
        assert_eq!(lines[4], "pending  c  1.0 KiB / 4.0 KiB  (attempts 2)");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn status_json_is_one_line() {
        let text = status_json(&[rec("a", JobState::Done, None)]);
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("{\"jobs\":1,"), "{text}");
        assert!(text.ends_with('\n'));
    }
}
