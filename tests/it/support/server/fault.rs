//! The scripted misbehaviours a test can queue for a path, one consumed per
//! GET request, and their short names in the request log.

/// One scripted misbehaviour, consumed by one GET request of its path.
///
/// HEAD requests never consume a fault: they are always answered normally.
#[derive(Clone, PartialEq, Eq)]
pub enum Fault {
    /// Normal service: lets a script aim its faults at later requests.
    Pass,
    /// Answer with this status and a short text body.
    Status(u16),
    /// Answer with this status and a `Retry-After` header (delta-seconds or
    /// an HTTP date, sent verbatim).
    StatusRetryAfter(u16, String),
    /// Read the request, then drop the connection without any response.
    ResetBeforeHeaders,
    /// Normal headers (full Content-Length), then this many body bytes, then
    /// the body stream fails so hyper aborts the connection: the client sees a
    /// truncated body.
    CloseAfter(u64),
    /// Normal headers (full Content-Length), this many body bytes, then the
    /// connection is closed with a TCP reset (RST, `SO_LINGER` 0) instead of
    /// an orderly close: the client's read fails with "connection reset".
    ResetAfter(u64),
    /// Normal headers (full Content-Length), then the body one byte at a time
    /// with this many milliseconds before each: alive, but far too slow.
    Drip(u64),
    /// Normal headers (full Content-Length), this many body bytes at full
    /// speed, then the rest one byte at a time with this many milliseconds
    /// before each: a transfer that starts well and then all but stops.
    DripAfter(u64, u64),
    /// Normal headers, this many body bytes, then nothing at all while the
    /// connection stays open (until the server shuts down or 60 s pass).
    StallAfter(u64),
    /// The whole (possibly ranged) body without Content-Length (chunked), then
    /// the connection is held open without the final chunk: the client has
    /// every byte but never learns that the body ended.
    StallAtEnd,
    /// Answer a ranged request with 200 and the full body.
    IgnoreRange,
    /// Answer 206 with a Content-Range (and bytes) starting at a different
    /// offset than the one asked for.
    WrongContentRange,
    /// Replace the content (new ETag and Last-Modified) before serving this
    /// request normally.
    ChangeEtagThenServe(Vec<u8>),
}

impl Fault {
    /// Short name for the request log (never the bytes of a replacement body).
    pub fn label(&self) -> String {
        match self {
            Fault::Pass => "Pass".to_string(),
            Fault::Status(code) => format!("Status({code})"),
            Fault::StatusRetryAfter(code, after) => format!("StatusRetryAfter({code}, {after:?})"),
            Fault::ResetBeforeHeaders => "ResetBeforeHeaders".to_string(),
            Fault::CloseAfter(n) => format!("CloseAfter({n})"),
            Fault::ResetAfter(n) => format!("ResetAfter({n})"),
            Fault::Drip(ms) => format!("Drip({ms} ms)"),
            Fault::DripAfter(n, ms) => format!("DripAfter({n}, {ms} ms)"),
            Fault::StallAfter(n) => format!("StallAfter({n})"),
            Fault::StallAtEnd => "StallAtEnd".to_string(),
            Fault::IgnoreRange => "IgnoreRange".to_string(),
            Fault::WrongContentRange => "WrongContentRange".to_string(),
            Fault::ChangeEtagThenServe(body) => {
                format!("ChangeEtagThenServe(<{} bytes>)", body.len())
            }
        }
    }
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}
