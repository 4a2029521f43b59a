//! `haul status`: what a manifest amounts to — jobs per state, bytes done
//! and left, and the failures with their last error — as a table for people
//! or one JSON object for scripts (`--json`).
//!
//! [`StatusReport`] is computed from the records alone (no disk access, no
//! network), so it says what the manifest recorded, not what the disk holds
//! now. URLs are shown with their credentials hidden.

use serde::Serialize;

use super::{count, human_bytes};
use crate::safe_url::SafeUrl;
use crate::store::manifest::{JobRecord, JobState, Progress};

/// The summary of one output directory's manifest. Its field names are the
/// stable JSON of `haul status --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// All jobs the manifest records.
    pub jobs: usize,
    pub done: usize,
    pub partial: usize,
    pub pending: usize,
    pub failed: usize,
    /// Bytes on disk: complete files plus the synced prefix of unfinished ones.
    pub bytes_done: u64,
    /// Bytes still to fetch for the unfinished jobs whose length is known.
    pub bytes_left: u64,
    /// Unfinished jobs whose length no server has told yet (not in `bytes_left`).
    pub unknown_size: usize,
    /// Failed jobs, in manifest order (the order their paths were registered).
    pub failures: Vec<Failure>,
}

/// A job that gave up, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub path: String,
    /// Credentials hidden.
    pub url: String,
    pub attempts: u32,
    /// The last attempt's error, if one was recorded.
    pub error: Option<String>,
}

impl StatusReport {
    /// Sums up `records`.
    #[cfg(test)]
    pub fn from_records(records: &[JobRecord]) -> StatusReport {
        let mut report = StatusReport::default();
        for rec in records {
            report.count(rec.progress());
            if rec.state == JobState::Failed {
                report.failures.push(Failure::of(rec));
            }
        }
        report
    }

    /// Adds a record's progress to the counts. The failures are not
    /// collected here: `haul status --json` streams them (see
    /// `lines::status_json_head`).
    pub fn count(&mut self, rec: Progress) {
        self.jobs += 1;
        match rec.state {
            JobState::Done => self.done += 1,
            JobState::Partial => self.partial += 1,
            JobState::Pending => self.pending += 1,
            JobState::Failed => self.failed += 1,
        }
        if rec.state == JobState::Done {
            self.bytes_done = self
                .bytes_done
                .saturating_add(rec.total.unwrap_or(rec.bytes_done));
            return;
        }
        // Saturating: the numbers come from a file a user may have edited.
        self.bytes_done = self.bytes_done.saturating_add(rec.bytes_done);
        match rec.total {
            Some(total) => {
                let left = total.saturating_sub(rec.bytes_done);
                self.bytes_left = self.bytes_left.saturating_add(left);
            }
            None => self.unknown_size += 1,
        }
    }

    /// The counts and byte totals, two lines for people.
    pub fn headline(&self) -> String {
        let unknown = match self.unknown_size {
            0 => String::new(),
            n => format!(" (+ {} of unknown size)", count(n, "file")),
        };
        format!(
            "{}: {} done, {} partial, {} pending, {} failed\n{} done, {} left{unknown}",
            count(self.jobs, "job"),
            self.done,
            self.partial,
            self.pending,
            self.failed,
            human_bytes(self.bytes_done),
            human_bytes(self.bytes_left),
        )
    }
}

impl Failure {
    /// What `rec`, a failed job, shows.
    pub fn of(rec: &JobRecord) -> Failure {
        Failure {
            path: rec.path.clone(),
            url: shown_url(&rec.url),
            attempts: rec.attempts,
            error: rec.last_error.clone(),
        }
    }
}

/// The manifest keeps the URL as given; never show its credentials.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => SafeUrl::new(&parsed).to_string(),
        // The engine only records URLs that parsed; a hand-edited manifest
        // might not, and may hold anything.
        Err(_) => "(unparsable URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, state: JobState, done: u64, total: Option<u64>) -> JobRecord {
        JobRecord {
            state,
            bytes_done: done,
            total,
            ..JobRecord::pending(path.into(), format!("http://u:secret@h/{path}"))
        }
    }

    #[test]
    fn counts_states_and_bytes_done_and_left() {
        let mut failed = rec("d", JobState::Failed, 10, Some(50));
        failed.attempts = 5;
        failed.last_error = Some("http://h/d answered 404".into());
        let records = [
            rec("a", JobState::Done, 100, Some(100)),
            rec("b", JobState::Partial, 30, Some(80)),
            rec("c", JobState::Pending, 0, None),
            failed,
        ];

        let report = StatusReport::from_records(&records);

        assert_eq!(
            (
                report.jobs,
                report.done,
                report.partial,
                report.pending,
                report.failed
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(report.bytes_done, 100 + 30 + 10);
        assert_eq!(report.bytes_left, 50 + 40);
        assert_eq!(report.unknown_size, 1);
        assert_eq!(
            report.failures,
            vec![Failure {
                path: "d".into(),
                url: "http://u:***@h/d".into(),
                attempts: 5,
                error: Some("http://h/d answered 404".into()),
            }]
        );
    }

    #[test]
    fn headline_mentions_unknown_sizes_only_when_any() {
        let report = StatusReport::from_records(&[rec("a", JobState::Done, 2048, Some(2048))]);
        assert_eq!(
            report.headline(),
            "1 job: 1 done, 0 partial, 0 pending, 0 failed\n2.0 KiB done, 0 B left"
        );
        let report = StatusReport::from_records(&[rec("a", JobState::Pending, 0, None)]);
        assert!(report.headline().ends_with("(+ 1 file of unknown size)"));
    }

    #[test]
    fn hides_credentials_of_unparsable_urls_too() {
        assert_eq!(shown_url("http://user:pw@[bad/x"), "(unparsable URL)");
    }
}
