//! The one contract between the engine and everything that shows its work.
//!
//! The engine sends [`Event`]s on a bounded channel and returns a [`Report`]
//! when the run ends; renderers (progress bars, plain lines, JSON lines, test
//! recorders) consume them. Nothing here prints or knows about terminals.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::http::range::ResumeMismatch;

mod cause;

pub use crate::safe_url::SafeUrl;
pub use cause::Cause;

/// Index of a job in the run's job list; stable for the whole run.
pub type JobId = usize;

/// Something that happened to one job, or to the run.
///
/// Serialises as the fields of its `--json` line after `event` and `time`
/// (README, "Machine-readable output"): durations as seconds named
/// `*_secs`. `Progress`, `Finished`, `Failed` and `MirrorSwitched` lines
/// carry what only the renderer knows (a job's URL and total) or keep an
/// older shape, so `ui::json` writes those itself; serialising a
/// `MirrorSwitched` directly is an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
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
    /// downloaded, right after `RunStarted`, or when a job added while the
    /// run is going arrives (a job already complete gets `Skipped` instead). `url` has its credentials hidden.
    Queued {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The URL, its credentials hidden.
        url: SafeUrl,
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
        /// Why: the error and its causes.
        reason: Cause,
        /// The wait before the next attempt.
        #[serde(rename = "delay_secs", serialize_with = "as_secs")]
        delay: Duration,
        /// The server's `Retry-After` when `--max-retry-wait` cut it down to
        /// `delay`, so the user learns the server wanted a longer pause.
        #[serde(rename = "capped_from_secs", serialize_with = "as_opt_secs")]
        capped_from: Option<Duration>,
    },
    /// The job, or one connection of its split, gave up a mirror for the
    /// next one in the list and tries it at once (no wait). The renderers
    /// show it as a retry, as they always have.
    #[serde(skip_serializing)]
    MirrorSwitched {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// The mirror given up, credentials hidden.
        from: SafeUrl,
        /// The mirror tried next, credentials hidden.
        to: SafeUrl,
        /// What went wrong with `from`: the error and its causes.
        reason: Cause,
        /// Whether the whole job moved, or one connection of a split.
        scope: SwitchScope,
    },
    /// The bytes on disk were dropped and the file starts again from zero.
    Restarted {
        /// The job.
        id: JobId,
        /// Where the file goes, relative to the output directory.
        path: String,
        /// Why, in words (its Display is the sentence users read).
        reason: RestartReason,
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
        /// What kind of cause: the download error's own kind, or
        /// [`FailureKind::Manifest`] or [`FailureKind::Internal`].
        kind: FailureKind,
        /// What went wrong: the error and its causes.
        error: Cause,
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
}

/// Why a job failed, as a short stable name that does not depend on the
/// message's wording. The serde names are the `kind` values of `--json`'s
/// `failed` line (README, "Machine-readable output"): rename none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made.
    Connect,
    /// The TLS handshake failed (a certificate problem, mostly).
    Tls,
    /// The request failed after connecting.
    Request,
    /// The server answered with an error status.
    HttpStatus,
    /// No byte arrived for `--stall-timeout`.
    Stalled,
    /// Slower than `--lowest-speed` for too long.
    TooSlow,
    /// Reading the body failed.
    Body,
    /// The body ended before its announced length.
    Truncated,
    /// The body ran past its announced length.
    TooLong,
    /// Larger than `--max-file-size`.
    TooLarge,
    /// The size on disk is not the one the server announced.
    SizeMismatch,
    /// A ranged answer that does not continue the bytes on disk.
    BadRange,
    /// The sha256 is not the one expected.
    Checksum,
    /// The target file exists and is not ours to overwrite.
    Exists,
    /// A local file operation failed.
    Io,
    /// A redirect was refused or looped.
    Redirect,
    /// The result could not be recorded in the manifest.
    Manifest,
    /// A job added while the run was going names a file another job of the
    /// run is still downloading.
    Duplicate,
    /// A bug: the job's task crashed.
    Internal,
}

impl FailureKind {
    /// The stable name, as `--json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Request => "request",
            FailureKind::HttpStatus => "http_status",
            FailureKind::Stalled => "stalled",
            FailureKind::TooSlow => "too_slow",
            FailureKind::Body => "body",
            FailureKind::Truncated => "truncated",
            FailureKind::TooLong => "too_long",
            FailureKind::TooLarge => "too_large",
            FailureKind::SizeMismatch => "size_mismatch",
            FailureKind::BadRange => "bad_range",
            FailureKind::Checksum => "checksum",
            FailureKind::Exists => "exists",
            FailureKind::Io => "io",
            FailureKind::Redirect => "redirect",
            FailureKind::Manifest => "manifest",
            FailureKind::Duplicate => "duplicate",
            FailureKind::Internal => "internal",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds as a float rounded to the millisecond, so a delay of 0.05 s
/// reads `0.05`, not `0.050000000000000003`.
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

pub(crate) fn as_secs<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(secs(*d))
}

fn as_opt_secs<S: Serializer>(d: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    d.map(secs).serialize(serializer)
}

/// What moved to another mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchScope {
    /// The whole job, after `attempt` attempts in all.
    Job {
        /// The attempt the old mirror failed.
        attempt: u32,
    },
    /// Connection `n` of a split; the others go on where they are.
    Connection(usize),
}

/// Why the bytes on disk were dropped. Displayed (and serialised) as one
/// sentence, the `reason` of `--json`'s `restarted` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartReason {
    /// A resume was answered 200: the range was ignored or the file changed.
    WholeFile,
    /// A 206 to a resume that does not continue the bytes on disk.
    BadResume(ResumeMismatch),
    /// The ETag is not the one the bytes on disk came with.
    EtagChanged {
        /// The ETag the bytes on disk came with.
        ours: String,
        /// The ETag the server sends now.
        theirs: String,
    },
    /// A resume was answered 416 without confirming the file is complete.
    Unsatisfiable {
        /// The 416's Content-Range, if it sent one.
        content_range: Option<String>,
        /// Where the resume asked to start.
        offset: u64,
    },
    /// The server's length is shorter than what is already on disk.
    LongerThanServer,
    /// The job moved to a mirror that cannot vouch for the bytes on disk.
    MirrorUnproven {
        /// The new mirror, credentials hidden.
        url: SafeUrl,
    },
    /// A connection of a split got a Content-Range other than the bytes
    /// `first..=last` of `total` it asked for.
    SplitWrongRange {
        /// The answer's Content-Range, if it sent one.
        content_range: Option<String>,
        /// The first byte asked for.
        first: u64,
        /// The last byte asked for.
        last: u64,
        /// The file's length.
        total: u64,
    },
    /// A split's mirror dropped the ETag that `If-Range` had to match.
    SplitEtagMissing {
        /// The ETag the bytes on disk came with.
        ours: String,
    },
    /// A connection of a split got the whole file for its range.
    SplitWholeFile,
    /// A connection of a split was answered 416.
    SplitUnsatisfiable {
        /// The first byte asked for.
        first: u64,
        /// The last byte asked for.
        last: u64,
        /// The file's length.
        total: u64,
    },
    /// Every connection of a split ended with ranges still missing.
    SplitUnfetched,
}

impl fmt::Display for RestartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartReason::WholeFile => {
                f.write_str("the server sent the whole file (range ignored or file changed)")
            }
            RestartReason::BadResume(why) => write!(f, "{why}"),
            RestartReason::EtagChanged { ours, theirs } => {
                write!(f, "ETag changed from {ours} to {theirs}")
            }
            RestartReason::Unsatisfiable {
                content_range,
                offset,
            } => write!(
                f,
                "416 with Content-Range {content_range:?} for bytes {offset}-"
            ),
            RestartReason::LongerThanServer => {
                f.write_str("the file on disk is longer than the server's")
            }
            RestartReason::MirrorUnproven { url } => write!(
                f,
                "mirror {url} cannot prove it serves the bytes already on disk"
            ),
            RestartReason::SplitWrongRange {
                content_range,
                first,
                last,
                total,
            } => write!(
                f,
                "Content-Range {content_range:?} does not answer bytes {first}-{last} of {total}"
            ),
            RestartReason::SplitEtagMissing { ours } => {
                write!(f, "no ETag where {ours} was required")
            }
            RestartReason::SplitWholeFile => f.write_str(
                "the server answered a ranged request with the whole file \
                 (range ignored or file changed)",
            ),
            RestartReason::SplitUnsatisfiable { first, last, total } => {
                write!(f, "416 for bytes {first}-{last} of a {total}-byte file")
            }
            RestartReason::SplitUnfetched => {
                f.write_str("connections ended with ranges left unfetched")
            }
        }
    }
}

/// As its sentence: `--json` shows a reason, not its structure.
impl Serialize for RestartReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_reasons_read_as_the_sentences_users_saw_before_they_were_typed() {
        let cases = [
            (
                RestartReason::WholeFile,
                "the server sent the whole file (range ignored or file changed)",
            ),
            (
                RestartReason::EtagChanged {
                    ours: "\"a\"".into(),
                    theirs: "\"b\"".into(),
                },
                "ETag changed from \"a\" to \"b\"",
            ),
            (
                RestartReason::Unsatisfiable {
                    content_range: Some("bytes */10".into()),
                    offset: 20,
                },
                "416 with Content-Range Some(\"bytes */10\") for bytes 20-",
            ),
            (
                RestartReason::LongerThanServer,
                "the file on disk is longer than the server's",
            ),
            (
                RestartReason::MirrorUnproven {
                    url: "http://m/f".parse().expect("a URL"),
                },
                "mirror http://m/f cannot prove it serves the bytes already on disk",
            ),
            (
                RestartReason::SplitWrongRange {
                    content_range: None,
                    first: 0,
                    last: 9,
                    total: 100,
                },
                "Content-Range None does not answer bytes 0-9 of 100",
            ),
            (
                RestartReason::SplitEtagMissing {
                    ours: "\"a\"".into(),
                },
                "no ETag where \"a\" was required",
            ),
            (
                RestartReason::SplitWholeFile,
                "the server answered a ranged request with the whole file \
                 (range ignored or file changed)",
            ),
            (
                RestartReason::SplitUnsatisfiable {
                    first: 10,
                    last: 19,
                    total: 15,
                },
                "416 for bytes 10-19 of a 15-byte file",
            ),
            (
                RestartReason::SplitUnfetched,
                "connections ended with ranges left unfetched",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            let json = serde_json::to_string(&reason).unwrap_or_default();
            assert_eq!(json, serde_json::to_string(text).unwrap_or_default());
        }
    }

    #[test]
    fn failure_kinds_serialise_to_the_names_the_readme_documents() {
        use FailureKind::*;
        // README, "Machine-readable output": the list of `kind` values.
        let documented = [
            (Connect, "connect"),
            (Tls, "tls"),
            (Request, "request"),
            (HttpStatus, "http_status"),
            (Stalled, "stalled"),
            (TooSlow, "too_slow"),
            (Body, "body"),
            (Truncated, "truncated"),
            (TooLong, "too_long"),
            (TooLarge, "too_large"),
            (SizeMismatch, "size_mismatch"),
            (BadRange, "bad_range"),
            (Checksum, "checksum"),
            (Exists, "exists"),
            (Io, "io"),
            (Redirect, "redirect"),
            (Manifest, "manifest"),
            (Duplicate, "duplicate"),
            (Internal, "internal"),
        ];
        for (kind, name) in documented {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{name}\""));
        }
    }
}
