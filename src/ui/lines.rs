//! The line-oriented output of the commands that are not a download run:
//! `verify` results, the `status` table (and its JSON), and short notes from `serve`,
//! `demo` and an interrupted `get`.

use std::path::Path;

use super::human_bytes;
use super::status::StatusReport;
use crate::store::manifest::{JobRecord, JobState};
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
        VerifyOutcome::Ok if !quiet => println!("ok       {}", item.path),
        VerifyOutcome::Ok => {}
        VerifyOutcome::Mismatch { got } => eprintln!(
            "MISMATCH {}: expected sha256 {}, got {}",
            item.path,
            hex::encode(item.expected),
            hex::encode(got)
        ),
        VerifyOutcome::Missing => eprintln!("MISSING  {}", item.path),
        VerifyOutcome::Unreadable(err) => eprintln!("UNREADABLE {}: {err}", item.path),
    }
}

/// The closing line of `haul verify`; printed when quiet only if something is wrong.
pub fn verify_summary(summary: &VerifySummary, quiet: bool) {
    let bad = summary.mismatched + summary.missing + summary.unreadable;
    if quiet && bad == 0 {
        return;
    }
    eprintln!(
        "verified {} files ({}): {} ok, {} mismatched, {} missing, {} unreadable",
        summary.ok + bad,
        human_bytes(summary.bytes),
        summary.ok,
        summary.mismatched,
        summary.missing,
        summary.unreadable
    );
}

/// `haul status`: counts by state and bytes done and left, then one line
/// per unfinished job (failures with their last error).
pub fn status(records: &[JobRecord]) {
    println!("{}", StatusReport::from_records(records).headline());
    for rec in records.iter().filter(|r| r.state != JobState::Done) {
        let total = rec.total.map_or("?".to_string(), human_bytes);
        let state = match rec.state {
            JobState::Partial => "partial",
            JobState::Pending => "pending",
            JobState::Failed => "failed",
            JobState::Done => "done",
        };
        // Escaped: an error text quotes what a server sent, and must not
        // drive the terminal.
        let error = rec
            .last_error
            .as_deref()
            .map(|e| format!(", last error: {}", e.escape_debug()))
            .unwrap_or_default();
        println!(
            "{state:<8} {}  {} / {}  (attempts {}{error})",
            rec.path,
            human_bytes(rec.bytes_done),
            total,
            rec.attempts
        );
    }
}

/// `haul status --json`: the [`StatusReport`] as one JSON object on stdout.
pub fn status_json(records: &[JobRecord]) {
    let report = StatusReport::from_records(records);
    // A struct of numbers and strings always serialises.
    if let Ok(text) = serde_json::to_string(&report) {
        println!("{text}");
    }
}
