//! Why a download attempt failed, and whether another attempt could help.
//!
//! `is_transient` sits beside the variants so that a new variant forces the
//! decision. Messages name the URL (credentials redacted) or the path; causes
//! stay in `source()` and are printed as a chain at the top.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::{FetchError, RedirectError};

/// One attempt's failure.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("no data from {url} for {secs:.1} s")]
    Stalled { url: String, secs: f64 },
    /// `--lowest-speed`: the body kept coming, too slowly to be worth waiting on.
    #[error("{url} was slower than {min_per_sec} B/s for {secs:.1} s ({got} bytes)")]
    TooSlow {
        url: String,
        min_per_sec: u64,
        got: u64,
        secs: f64,
    },
    #[error("reading the body of {url} failed after {got} bytes")]
    Body {
        url: String,
        got: u64,
        #[source]
        source: reqwest::Error,
    },
    #[error("body of {url} ended after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("body of {url} is longer than the announced {expected} bytes")]
    TooLong { url: String, expected: u64 },
    /// Over `--max-file-size`: announced as larger (`declared`), or cut
    /// at the cap when a body without a length grew past it.
    #[error(
        "{url} is larger than the --max-file-size limit of {limit} bytes{}",
        declared.map(|d| format!(" (it announces {d})")).unwrap_or_else(|| "; cut there".into())
    )]
    TooLarge {
        url: String,
        limit: u64,
        declared: Option<u64>,
    },
    /// The `.part` about to be renamed does not have the length the server
    /// announced: never promoted, whatever the bookkeeping said.
    #[error("{} holds {got} bytes, expected {expected}; not renamed", path.display())]
    SizeMismatch {
        path: PathBuf,
        got: u64,
        expected: u64,
    },
    #[error("bad ranged answer from {url}: {reason}")]
    BadRange { url: String, reason: String },
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {got}")]
    Checksum {
        path: String,
        expected: String,
        got: String,
    },
    #[error("{path} exists and was not downloaded by haul (pass --allow-overwrite to replace it)")]
    Exists { path: String },
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A redirect haul will not follow (downgrade, loop, too many hops, a bad
    /// Location). Its own message names the URLs involved, so the per-file
    /// failure line reads e.g. "redirect from https://a/x to http://b/x
    /// refused: ... (use --allow-insecure-redirect)".
    #[error(transparent)]
    Redirect(#[from] RedirectError),
}

impl DownloadError {
    /// A request that got no answer: could it connect at all?
    pub fn sending(url: &str, source: reqwest::Error) -> DownloadError {
        let url = url.to_string();
        if source.is_connect() {
            DownloadError::Connect { url, source }
        } else {
            DownloadError::Request { url, source }
        }
    }

    /// A [`crate::http::Fetcher::get`] that got no usable answer for the job
    /// whose (redacted) URL is `url`. A send failure on a redirect target
    /// names both, "URL (redirected to TARGET)".
    pub fn fetching(url: &str, err: FetchError) -> DownloadError {
        match err {
            FetchError::Send {
                url: hop,
                redirected,
                source,
            } => {
                if redirected {
                    DownloadError::sending(&format!("{url} (redirected to {hop})"), source)
                } else {
                    DownloadError::sending(url, source)
                }
            }
            FetchError::Redirect(err) => DownloadError::Redirect(err),
        }
    }

    /// An answer with a status we cannot use, and when to come back if the
    /// server said (`Retry-After`, RFC 9110 §10.2.3).
    pub fn status(url: &str, status: u16, headers: &reqwest::header::HeaderMap) -> DownloadError {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::engine::retry::parse_retry_after(v, std::time::SystemTime::now()));
        DownloadError::Status {
            url: url.to_string(),
            status,
            retry_after,
        }
    }

    /// Whether another attempt, resuming from the bytes on disk, may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Stalled { .. }
            | Self::TooSlow { .. }
            | Self::Body { .. }
            | Self::Truncated { .. }
            | Self::TooLong { .. }
            | Self::BadRange { .. } => true,
            Self::Connect { source, .. } => !is_tls_failure(source),
            Self::Request { source, .. } => request_is_transient(source),
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            // A cap the file is over stays over; a wrong length on disk
            // after a complete body points at a bug, not at the network.
            Self::TooLarge { .. } | Self::SizeMismatch { .. } => false,
            Self::Checksum { .. } | Self::Exists { .. } | Self::Io { .. } => false,
            Self::Redirect(_) => false,
        }
    }

    /// A short, stable name for what went wrong, for scripts (`--json`'s
    /// `failed.kind`): it never changes with the wording of the message.
    /// TLS failures get their own kind because no retry or flag but
    /// `--ca-cert` fixes them.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { source, .. } | Self::Request { source, .. }
                if is_tls_failure(source) =>
            {
                "tls"
            }
            Self::Connect { .. } => "connect",
            Self::Request { .. } => "request",
            Self::Status { .. } => "http_status",
            Self::Stalled { .. } => "stalled",
            Self::TooSlow { .. } => "too_slow",
            Self::Body { .. } => "body",
            Self::Truncated { .. } => "truncated",
            Self::TooLong { .. } => "too_long",
            Self::TooLarge { .. } => "too_large",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::BadRange { .. } => "bad_range",
            Self::Checksum { .. } => "checksum",
            Self::Exists { .. } => "exists",
            Self::Io { .. } => "io",
            Self::Redirect(_) => "redirect",
        }
    }

    /// Whether an attempt that moved the file forward earns a fresh retry
    /// budget. One stopped by `--lowest-speed` never does: it always moves
    /// a little, so a server that drips forever would be retried forever.
    pub fn earns_fresh_budget(&self, progressed: bool) -> bool {
        progressed && !matches!(self, Self::TooSlow { .. })
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The message with its causes, for events and the manifest's last_error.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// An error and its causes on one line, "a: b: c", for events and the
/// manifest's last_error (the CLI prints causes on lines of their own).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let msg = err.to_string();
        // reqwest's own layer only repeats the URL our message already names
        // ("error sending request for url (...)"); its cause is what helps.
        let echo = err.is::<reqwest::Error>() && err.source().is_some();
        if !echo && !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cause = err.source();
    }
    out
}

/// Builder errors (and redirect-policy errors, should a client ever follow
/// redirects itself) are final; timeouts and connection-level failures are
/// worth another attempt.
fn request_is_transient(err: &reqwest::Error) -> bool {
    if err.is_redirect() || err.is_builder() || is_tls_failure(err) {
        return false;
    }
    err.is_timeout() || err.is_connect() || err.is_request() || err.is_body()
}

/// A TLS failure (an untrusted or invalid certificate, a protocol mismatch)
/// will fail the same way next time, as curl's exit 60 does: found by
/// walking the cause chain down to rustls.
fn is_tls_failure(err: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.is::<rustls::Error>() {
            return true;
        }
        // io::Error::source() skips the error it wraps (rustls' errors come
        // wrapped twice), so step into it instead.
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_short_snake_case_names_that_ignore_the_message() {
        let url = "http://h/f".to_string();
        let cases = [
            (
                DownloadError::Status {
                    url: url.clone(),
                    status: 404,
                    retry_after: None,
                },
                "http_status",
            ),
            (
                DownloadError::Stalled {
                    url: url.clone(),
                    secs: 1.0,
                },
                "stalled",
            ),
            (
                DownloadError::Truncated {
                    url: url.clone(),
                    got: 1,
                    expected: 2,
                },
                "truncated",
            ),
            (
                DownloadError::TooLarge {
                    url: url.clone(),
                    limit: 1,
                    declared: None,
                },
                "too_large",
            ),
            (
                DownloadError::Checksum {
                    path: "f".into(),
                    expected: "a".into(),
                    got: "b".into(),
                },
                "checksum",
            ),
            (
                DownloadError::Io {
                    path: "f".into(),
                    source: std::io::Error::other("disk full"),
                },
                "io",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.kind(), want, "{err}");
            assert!(want.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
