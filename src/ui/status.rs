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
use crate::shard::Shard;
use crate::store::manifest::{JobRecord, JobState, Progress};
use crate::store::runs::{Judged, ListInfo, Stray};

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
    /// The list the directory is for, when its runs recorded one (a run
    /// with `-i`); null for state from an older haul.
    pub list: Option<ListInfo>,
    /// Jobs the list names that no manifest holds yet: the list's count
    /// less the records (for one shard, the shard's count).
    pub unrecorded: u64,
    /// Shards of the list that never started (no state directory), as K/N.
    pub missing_shards: Vec<String>,
    /// State directories that do not fit the list (another N, another
    /// list): reported, never trusted over the others.
    pub strays: Vec<Stray>,
    /// Everything the list names (without a list, every record) is done:
    /// `haul status` then exits 0.
    pub complete: bool,
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

impl StatusReport {
    /// Adds what the runs' lists say to the counts (taken first): the
    /// list, the jobs it names that no record holds (`list_jobs` of them
    /// are expected in the manifests read), and whether all is done.
    pub fn judge(&mut self, judged: Judged, list_jobs: Option<u64>) {
        let counted = self.jobs as u64;
        self.unrecorded = list_jobs.map_or(0, |jobs| jobs.saturating_sub(counted));
        self.missing_shards = judged.missing.iter().map(Shard::to_string).collect();
        let vouched = !judged.strays.iter().any(|s| s.other_list);
        self.complete = self.done == self.jobs
            && self.unrecorded == 0
            && self.missing_shards.is_empty()
            && vouched;
        self.list = judged.list;
        self.strays = judged.strays;
    }

    /// What the list adds to the headline, a line each; empty without one.
    pub fn list_lines(&self) -> String {
        let Some(list) = &self.list else {
            return String::new();
        };
        let short: String = list.fingerprint.chars().take(12).collect();
        let run_as = match list.shards {
            Some(n) => format!(" in {}", count(n as usize, "shard")),
            None => String::new(),
        };
        let mut text = format!(
            "list: {}{run_as} (fingerprint {short})",
            count(list.jobs as usize, "job")
        );
        if self.unrecorded > 0 {
            text.push_str(&format!(
                "; {} in no manifest yet",
                count(self.unrecorded as usize, "job")
            ));
        }
        text.push('\n');
        for shard in &self.missing_shards {
            let dir = shard
                .parse::<Shard>()
                .map(|s| s.dir_name())
                .unwrap_or_default();
            text.push_str(&format!("never started: shard {shard} (no .haul/{dir})\n"));
        }
        for stray in &self.strays {
            text.push_str(&format!(
                "stray state {}: {}; not trusted over the others\n",
                stray.dir, stray.why
            ));
        }
        text
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
