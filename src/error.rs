//! Why a download attempt failed, and whether another attempt could help.
//!
//! `is_transient` sits beside the variants so that a new variant forces the
//! decision. Messages name the URL (a [`SafeUrl`], so its credentials are
//! hidden) or the path; causes stay in `source()` and are printed as a chain
//! at the top.

use std::path::PathBuf;
use std::time::Duration;

use crate::event::{Cause, FailureKind, RestartReason};
use crate::http::{FetchError, RedirectError};
use crate::safe_url::SafeUrl;

/// One attempt's failure.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot connect to {to}")]
    Connect {
        to: SentTo,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {to} failed")]
    Request {
        to: SentTo,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: SafeUrl,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("no data from {url} for {secs:.1} s")]
    Stalled { url: SafeUrl, secs: f64 },
    /// `--lowest-speed`: the body kept coming, too slowly to be worth waiting on.
    #[error("{url} was slower than {min_per_sec} B/s for {secs:.1} s ({got} bytes)")]
    TooSlow {
        url: SafeUrl,
        min_per_sec: u64,
        got: u64,
        secs: f64,
    },
    #[error("reading the body of {url} failed after {got} bytes")]
    Body {
        url: SafeUrl,
        got: u64,
        #[source]
        source: reqwest::Error,
    },
    #[error("body of {url} ended after {got} of {expected} bytes")]
    Truncated {
        url: SafeUrl,
        got: u64,
        expected: u64,
    },
    #[error("body of {url} is longer than the announced {expected} bytes")]
    TooLong { url: SafeUrl, expected: u64 },
    /// Over `--max-file-size`: announced as larger (`declared`), or cut
    /// at the cap when a body without a length grew past it.
    #[error(
        "{url} is larger than the --max-file-size limit of {limit} bytes{}",
        declared.map(|d| format!(" (it announces {d})")).unwrap_or_else(|| "; cut there".into())
    )]
    TooLarge {
        url: SafeUrl,
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
    BadRange { url: SafeUrl, reason: RangeFault },
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {got}")]
    Checksum {
        path: String,
        expected: String,
        got: String,
    },
    // The command line adds which flag replaces it (`app::flag_hint`).
    #[error("{path} exists and was not downloaded by haul")]
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

/// What was wrong with a ranged answer ([`DownloadError::BadRange`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeFault {
    /// It does not continue the bytes on disk, which were dropped for it.
    Restarted(RestartReason),
    /// The server's length is now shorter than the bytes on disk.
    LengthShrank,
}

impl std::fmt::Display for RangeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Restarted(reason) => write!(f, "{reason}"),
            Self::LengthShrank => f.write_str("length shrank"),
        }
    }
}

/// Where a request that got no answer went: the job's URL and, when the
/// send failed on a redirect target, that target too, so that the message
/// names the URL the user gave as well as the server that did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTo {
    pub url: SafeUrl,
    pub redirected_to: Option<SafeUrl>,
}

/// "URL", or "URL (redirected to TARGET)".
impl std::fmt::Display for SentTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.redirected_to {
            Some(hop) => write!(f, "{} (redirected to {hop})", self.url),
            None => write!(f, "{}", self.url),
        }
    }
}

impl DownloadError {
    /// A request that got no answer: could it connect at all?
    pub fn sending(to: SentTo, source: reqwest::Error) -> DownloadError {
        if source.is_connect() {
            DownloadError::Connect { to, source }
        } else {
            DownloadError::Request { to, source }
        }
    }

    /// A [`crate::http::Fetcher::get`] that got no usable answer for the job
    /// whose URL is `url`. A send failure on a redirect target names both.
    pub fn fetching(url: &SafeUrl, err: FetchError) -> DownloadError {
        match err {
            FetchError::Send {
                url: hop,
                redirected,
                source,
            } => {
                let to = SentTo {
                    url: url.clone(),
                    redirected_to: redirected.then_some(hop),
                };
                DownloadError::sending(to, source)
            }
            FetchError::Redirect(err) => DownloadError::Redirect(err),
        }
    }

    /// An answer with a status we cannot use, and when to come back if the
    /// server said (`Retry-After`, RFC 9110 §10.2.3).
    pub fn status(
        url: &SafeUrl,
        status: u16,
        headers: &reqwest::header::HeaderMap,
    ) -> DownloadError {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                crate::http::retry_after::parse_retry_after(v, std::time::SystemTime::now())
            });
        DownloadError::Status {
            url: url.clone(),
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
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Connect { source, .. } | Self::Request { source, .. }
                if is_tls_failure(source) =>
            {
                FailureKind::Tls
            }
            Self::Connect { .. } => FailureKind::Connect,
            Self::Request { .. } => FailureKind::Request,
            Self::Status { .. } => FailureKind::HttpStatus,
            Self::Stalled { .. } => FailureKind::Stalled,
            Self::TooSlow { .. } => FailureKind::TooSlow,
            Self::Body { .. } => FailureKind::Body,
            Self::Truncated { .. } => FailureKind::Truncated,
            Self::TooLong { .. } => FailureKind::TooLong,
            Self::TooLarge { .. } => FailureKind::TooLarge,
            Self::SizeMismatch { .. } => FailureKind::SizeMismatch,
            Self::BadRange { .. } => FailureKind::BadRange,
            Self::Checksum { .. } => FailureKind::Checksum,
            Self::Exists { .. } => FailureKind::Exists,
            Self::Io { .. } => FailureKind::Io,
            Self::Redirect(_) => FailureKind::Redirect,
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

    /// The message with its causes, for events. A failed connection whose
    /// cause a user can act on is told in words ([`ConnectProblem`]) in
    /// place of the libraries' cause chain.
    pub fn cause(&self) -> Cause {
        match self {
            Self::Connect { source, .. } | Self::Request { source, .. } => {
                match ConnectProblem::of(source) {
                    Some(problem) => Cause::from_links([self.to_string(), problem.to_string()]),
                    None => cause(self),
                }
            }
            _ => cause(self),
        }
    }

    /// [`DownloadError::cause`] on one line, for the manifest's last_error.
    pub fn chain(&self) -> String {
        self.cause().to_string()
    }
}

/// Why a connection failed, when the cause chain says something a user
/// can act on. Found by walking `source()` and downcasting to rustls'
/// errors; only the DNS case is matched by text (see [`ConnectProblem::of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectProblem {
    /// The host name did not resolve; `detail` is the resolver's own words
    /// ("Name or service not known"), when it gave some.
    Dns {
        host: String,
        detail: Option<String>,
    },
    /// Nothing listens on the port: the server is down, or the port or
    /// scheme is wrong. The URL beside the message names host and port.
    Refused,
    /// The certificate chain ends at no CA haul trusts.
    UntrustedCertificate { host: String },
    /// The certificate is for another name.
    WrongName { host: String },
    /// The certificate has expired, or is not valid yet.
    OutOfDate { host: String },
    /// The server answered the TLS handshake with something else, most
    /// often plain HTTP: an `https://` URL with an `http://` port.
    NotTls,
}

impl std::fmt::Display for ConnectProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns { host, detail } => match detail {
                Some(detail) => write!(f, "host {host} not found (DNS: {detail})"),
                None => write!(f, "host {host} not found (DNS)"),
            },
            Self::Refused => write!(
                f,
                "connection refused (is the server up, and the port right?)"
            ),
            Self::UntrustedCertificate { host } => write!(
                f,
                "the TLS certificate of {host} is not trusted (unknown issuer; \
                 pass --ca-cert FILE if this server uses a private CA)"
            ),
            Self::WrongName { host } => {
                write!(
                    f,
                    "the TLS certificate the server sent is not valid for {host}"
                )
            }
            Self::OutOfDate { host } => write!(
                f,
                "the TLS certificate of {host} has expired or is not valid yet \
                 (or this machine's clock is wrong)"
            ),
            Self::NotTls => write!(
                f,
                "the server does not speak TLS on this port (is the URL http://?)"
            ),
        }
    }
}

impl ConnectProblem {
    /// What `err` comes down to, if it is one of the cases above.
    ///
    /// hyper-util does not export the error type of a failed lookup, so a
    /// DNS failure is recognised by its message, "dns error" (hyper-util
    /// 0.1's `ConnectError::dns`); a later wording falls back to the raw
    /// chain, never to a wrong explanation. The resolver's words below it
    /// lose std's "failed to lookup address information: " prefix.
    pub fn of(err: &reqwest::Error) -> Option<ConnectProblem> {
        let host = || {
            err.url()
                .and_then(|url| url.host_str())
                .unwrap_or("the server")
                .to_string()
        };
        let mut causes = causes(err);
        while let Some(cause) = causes.next() {
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return Self::of_tls(tls, host());
            }
            if cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
            {
                return Some(ConnectProblem::Refused);
            }
            if cause.to_string() == "dns error" {
                let detail = causes.next().map(|inner| {
                    let text = inner.to_string();
                    text.strip_prefix("failed to lookup address information: ")
                        .unwrap_or(&text)
                        .to_string()
                });
                return Some(ConnectProblem::Dns {
                    host: host(),
                    detail,
                });
            }
        }
        None
    }

    fn of_tls(err: &rustls::Error, host: String) -> Option<ConnectProblem> {
        use rustls::{CertificateError as Cert, InvalidMessage};
        match err {
            rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => {
                Some(ConnectProblem::UntrustedCertificate { host })
            }
            rustls::Error::InvalidCertificate(
                Cert::NotValidForName | Cert::NotValidForNameContext { .. },
            ) => Some(ConnectProblem::WrongName { host }),
            rustls::Error::InvalidCertificate(
                Cert::Expired
                | Cert::ExpiredContext { .. }
                | Cert::NotValidYet
                | Cert::NotValidYetContext { .. },
            ) => Some(ConnectProblem::OutOfDate { host }),
            // The first bytes back were no TLS record: "HTTP/1.1 400 ..."
            // starts with 'H', which is no record type.
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) => {
                Some(ConnectProblem::NotTls)
            }
            _ => None,
        }
    }
}

/// An error and its causes on one line, "a: b: c", for the manifest's
/// last_error (the CLI prints causes on lines of their own).
pub fn chain(err: &dyn std::error::Error) -> String {
    cause(err).to_string()
}

/// An error's message and its causes' for an event, leaving out the ones
/// that only repeat what is already said.
pub fn cause(err: &dyn std::error::Error) -> Cause {
    let mut links = vec![err.to_string()];
    // What the line says so far: a cause it already contains adds nothing.
    let mut line = links[0].clone();
    let mut cause = err.source();
    while let Some(err) = cause {
        let msg = err.to_string();
        // reqwest's own layer only repeats the URL our message already names
        // ("error sending request for url (...)"); its cause is what helps.
        let echo = err.is::<reqwest::Error>() && err.source().is_some();
        if !echo && !line.contains(&msg) {
            line.push_str(": ");
            line.push_str(&msg);
            links.push(msg);
        }
        cause = err.source();
    }
    Cause::from_links(links)
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
    causes(err).any(|e| e.is::<rustls::Error>())
}

/// `err` and every cause below it.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| match e.downcast_ref::<std::io::Error>() {
        // io::Error::source() skips the error it wraps (rustls' errors come
        // wrapped twice), so step into it instead.
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_problems_name_the_host_and_what_to_do() {
        let host = || "h.example".to_string();
        let cases = [
            (
                ConnectProblem::Dns {
                    host: host(),
                    detail: Some("Name or service not known".into()),
                },
                "host h.example not found (DNS: Name or service not known)",
            ),
            (
                ConnectProblem::Dns {
                    host: host(),
                    detail: None,
                },
                "host h.example not found (DNS)",
            ),
            (
                ConnectProblem::UntrustedCertificate { host: host() },
                "the TLS certificate of h.example is not trusted (unknown issuer; \
                 pass --ca-cert FILE if this server uses a private CA)",
            ),
            (
                ConnectProblem::NotTls,
                "the server does not speak TLS on this port (is the URL http://?)",
            ),
            (
                ConnectProblem::Refused,
                "connection refused (is the server up, and the port right?)",
            ),
        ];
        for (problem, want) in cases {
            assert_eq!(problem.to_string(), want);
        }
        let name = ConnectProblem::WrongName { host: host() }.to_string();
        assert!(name.contains("not valid for h.example"), "{name}");
        let date = ConnectProblem::OutOfDate { host: host() }.to_string();
        assert!(date.contains("expired"), "{date}");
    }

    #[test]
    fn a_bad_range_reads_as_the_sentence_it_was_before_it_was_typed() {
        let url: SafeUrl = "http://h/f".parse().expect("a valid URL");
        let restarted = DownloadError::BadRange {
            url: url.clone(),
            reason: RangeFault::Restarted(RestartReason::Unsatisfiable {
                content_range: None,
                offset: 5,
            }),
        };
        assert_eq!(
            restarted.chain(),
            "bad ranged answer from http://h/f: 416 with Content-Range None for bytes 5-"
        );
        let shrank = DownloadError::BadRange {
            url,
            reason: RangeFault::LengthShrank,
        };
        assert_eq!(
            shrank.chain(),
            "bad ranged answer from http://h/f: length shrank"
        );
    }

    #[test]
    fn a_send_failure_on_a_redirect_names_the_url_then_the_target() {
        let url: SafeUrl = "http://user:pw@h/f".parse().expect("a valid URL");
        let hop: SafeUrl = "http://m/f".parse().expect("a valid URL");
        let direct = SentTo {
            url: url.clone(),
            redirected_to: None,
        };
        assert_eq!(direct.to_string(), "http://user:***@h/f");
        let redirected = SentTo {
            url,
            redirected_to: Some(hop),
        };
        assert_eq!(
            redirected.to_string(),
            "http://user:***@h/f (redirected to http://m/f)"
        );
    }

    #[test]
    fn kinds_are_short_snake_case_names_that_ignore_the_message() {
        let url: SafeUrl = "http://h/f".parse().expect("a valid URL");
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
            assert_eq!(err.kind().as_str(), want, "{err}");
            assert!(want.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
