//! The in-process HTTP/1.1 server that haul's integration tests download from.
//!
//! It owns per-path files (each with a strong ETag and its own Last-Modified
//! date), paced bodies, scripted faults, redirects, a request log and counters
//! of body bytes and of concurrent bodies. It runs on its own thread with its
//! own tokio runtime, so a test that blocks waiting on a child process cannot
//! starve it. Its Range / If-Range handling is written from RFC 9110 §13.1.5
//! and §14 independently of haul's client code, so one misreading cannot
//! confirm itself: it must never import anything from the `haul` crate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::ranges::{digits, select_range, wrong_range, Selection};

/// Body and service errors; a concrete type keeps hyper's bounds simple.
type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Largest body chunk handed to hyper; small enough that pacing and byte
/// counting see many steps on multi-MiB bodies.
pub const CHUNK: usize = 16 * 1024;

/// How long a stalled body holds its connection if the server is not shut
/// down first.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Pause before a body stream errors: hyper drops buffered-but-unflushed
/// bytes when the body fails, so give it a turn to flush the last chunk.
const FLUSH_GRACE: Duration = Duration::from_millis(20);

/// Unique part of every ETag: distinct content never shares a validator,
/// without hashing multi-MiB bodies in an unoptimised test build.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

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

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request path exactly as sent (still percent-encoded, no query).
    pub path: String,
    /// The Host header without its port (`127.0.0.1`, `localhost`).
    pub host: String,
    /// Every request header, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Status sent; `None` when the connection was dropped before headers.
    pub status: Option<u16>,
    /// The scripted fault this request consumed, if any.
    pub fault: Option<String>,
    /// When the request's head had been read.
    pub at: Instant,
    /// The same moment on the wall clock, to compare with HTTP dates.
    pub wall: SystemTime,
}

impl LoggedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `N` of a `Range: bytes=N-` header, if the request carried one.
    pub fn range_start(&self) -> Option<u64> {
        let spec = self.header("range")?.trim().strip_prefix("bytes=")?;
        let (first, _) = spec.split_once('-')?;
        digits(first.trim())
    }
}

/// The in-process test server; see the module docs. Dropping it shuts it
/// down and panics if a scripted fault was never used.
pub struct TestServer {
    shared: Arc<Shared>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    served_changed: Condvar,
    shutdown: CancellationToken,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Resource>,
    rates: HashMap<String, u64>,
    /// Paths served like a server without range support (no Accept-Ranges, Range ignored).
    no_ranges: HashSet<String>,
    /// Paths served without Content-Length (chunked).
    no_length: HashSet<String>,
    scripts: HashMap<String, VecDeque<Fault>>,
    /// Faults only GET requests with a `Range` header consume.
    ranged_scripts: HashMap<String, VecDeque<Fault>>,
    redirects: HashMap<String, (String, u16)>,
    log: Vec<LoggedRequest>,
    served: HashMap<String, u64>,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    in_flight_total: usize,
    max_in_flight_total: usize,
    /// Total body bytes at which every body stops until released.
    hold_at: Option<u64>,
}

struct Resource {
    body: Bytes,
    version: u64,
    etag: String,
    last_modified: String,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts serving on a new thread; the port
    /// accepts connections as soon as this returns.
    pub fn start() -> TestServer {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let port = listener.local_addr().expect("listener address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            served_changed: Condvar::new(),
            shutdown: CancellationToken::new(),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{port}"))
            .spawn(move || run(for_thread, listener))
            .expect("spawn the test server thread");
        TestServer {
            shared,
            port,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        self.url_on("127.0.0.1", path)
    }

    /// The same server under another host name that resolves to 127.0.0.1
    /// (e.g. `localhost`), for per-host limits.
    pub fn url_on(&self, host: &str, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with '/': {path}");
        format!("http://{host}:{}{path}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `body` at `path` (exact, still percent-encoded request path).
    pub fn add_file(&self, path: &str, body: Vec<u8>) {
        let mut st = self.shared.lock();
        assert!(!st.files.contains_key(path), "{path} already added");
        st.put_file(path, body);
    }

    /// Replaces the content at `path`: new ETag and Last-Modified, as when a
    /// resource changes on the origin.
    pub fn replace_file(&self, path: &str, body: Vec<u8>) {
        let mut st = self.shared.lock();
        assert!(st.files.contains_key(path), "{path} was never added");
        st.put_file(path, body);
    }

    /// The current ETag of `path`, quotes included.
    pub fn etag(&self, path: &str) -> Option<String> {
        self.shared.lock().files.get(path).map(|r| r.etag.clone())
    }

    /// Paces every later body of `path` to about `bytes_per_sec`; 0 removes
    /// the limit.
    pub fn set_rate(&self, path: &str, bytes_per_sec: u64) {
        let mut st = self.shared.lock();
        if bytes_per_sec == 0 {
            st.rates.remove(path);
        } else {
            st.rates.insert(path.to_string(), bytes_per_sec);
        }
    }

    /// Serves `path` like a server without range support: no
    /// `Accept-Ranges`, and a `Range` header is ignored (200, whole body).
    pub fn without_ranges(&self, path: &str) {
        self.shared.lock().no_ranges.insert(path.to_string());
    }

    /// Serves `path` without `Content-Length` (chunked), so its length is
    /// unknown until the body ends.
    pub fn without_length(&self, path: &str) {
        self.shared.lock().no_length.insert(path.to_string());
    }

    /// Appends faults for `path`, consumed one per GET request in order;
    /// once they are used up the path gets normal service.
    pub fn script(&self, path: &str, faults: Vec<Fault>) {
        self.shared
            .lock()
            .scripts
            .entry(path.to_string())
            .or_default()
            .extend(faults);
    }

    /// Appends faults for `path` that only GET requests carrying a `Range`
    /// header consume (a segment of a split download, a resume), in order,
    /// before any fault of [`TestServer::script`].
    pub fn script_ranged(&self, path: &str, faults: Vec<Fault>) {
        self.shared
            .lock()
            .ranged_scripts
            .entry(path.to_string())
            .or_default()
            .extend(faults);
    }

    /// Faults of `path` not consumed yet, ranged ones included.
    pub fn pending_faults(&self, path: &str) -> usize {
        let st = self.shared.lock();
        let left =
            |scripts: &HashMap<String, VecDeque<Fault>>| scripts.get(path).map_or(0, VecDeque::len);
        left(&st.scripts) + left(&st.ranged_scripts)
    }

    /// Answers every request for `from` with `status` and `Location: to`
    /// (`to` is a path or an absolute URL, sent verbatim).
    pub fn redirect(&self, from: &str, to: &str, status: u16) {
        self.shared
            .lock()
            .redirects
            .insert(from.to_string(), (to.to_string(), status));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Every request for `path`, in arrival order.
    pub fn requests_for(&self, path: &str) -> Vec<LoggedRequest> {
        let st = self.shared.lock();
        st.log.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Every GET request for `path`, in arrival order.
    pub fn gets(&self, path: &str) -> Vec<LoggedRequest> {
        let st = self.shared.lock();
        let gets = st
            .log
            .iter()
            .filter(|r| r.path == path && r.method == "GET");
        gets.cloned().collect()
    }

    /// Body bytes of `path` handed to hyper for writing, over all requests.
    pub fn bytes_served(&self, path: &str) -> u64 {
        self.shared.lock().served.get(path).copied().unwrap_or(0)
    }

    /// Blocks until at least `n` body bytes of `path` were served; panics
    /// after `timeout`.
    pub fn wait_served(&self, path: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            let served = st.served.get(path).copied().unwrap_or(0);
            if served >= n {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                panic!("{path}: only {served} of {n} bytes served after {timeout:?}");
            }
            st = self
                .shared
                .served_changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Most bodies (GET 200/206 responses) ever streaming at once to clients
    /// that named `host` (without port) in their Host header.
    pub fn max_in_flight(&self, host: &str) -> usize {
        self.shared
            .lock()
            .max_in_flight
            .get(host)
            .copied()
            .unwrap_or(0)
    }

    /// Most bodies ever streaming at once, over all hosts.
    pub fn max_in_flight_total(&self) -> usize {
        self.shared.lock().max_in_flight_total
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if std::thread::panicking() {
            return;
        }
        let st = self.shared.lock();
        let mut unused: Vec<String> = st
            .scripts
            .iter()
            .chain(st.ranged_scripts.iter())
            .filter(|(_, faults)| !faults.is_empty())
            .map(|(path, faults)| format!("{path}: {faults:?}"))
            .collect();
        drop(st);
        unused.sort();
        assert!(
            unused.is_empty(),
            "scripted faults were never used: {}",
            unused.join("; ")
        );
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_served(&self, path: &str, n: u64) {
        let mut st = self.lock();
        *st.served.entry(path.to_string()).or_default() += n;
        self.served_changed.notify_all();
        self.wait_while_held(st);
    }

    /// Decides the whole answer under one lock; `None` means "drop the
    /// connection without a response".
    fn respond(
        self: &Arc<Self>,
        req: &RequestInfo,
        conn: &Arc<ResetSwitch>,
    ) -> Option<Response<Body>> {
        let mut st = self.lock();
        let fault = if req.method == Method::GET {
            let ranged = match req.header("range") {
                Some(_) => st
                    .ranged_scripts
                    .get_mut(&req.path)
                    .and_then(VecDeque::pop_front),
                None => None,
            };
            ranged.or_else(|| st.scripts.get_mut(&req.path).and_then(VecDeque::pop_front))
        } else {
            None
        };
        if let Some(Fault::ChangeEtagThenServe(body)) = &fault {
            st.put_file(&req.path, body.clone());
        }
        let response = match &fault {
            Some(Fault::ResetBeforeHeaders) => None,
            Some(Fault::Status(code)) => Some(status_reply(*code, None)),
            Some(Fault::StatusRetryAfter(code, after)) => Some(status_reply(*code, Some(after))),
            _ => Some(match st.redirects.get(&req.path) {
                Some((to, code)) => redirect_reply(to, *code),
                None => self.serve_file(&mut st, req, fault.as_ref(), conn),
            }),
        };
        st.log.push(LoggedRequest {
            method: req.method.to_string(),
            path: req.path.clone(),
            host: req.host.clone(),
            headers: req.headers.clone(),
            status: response.as_ref().map(|r| r.status().as_u16()),
            fault: fault.map(|f| f.label()),
            at: req.at,
            wall: req.wall,
        });
        response
    }

    fn serve_file(
        self: &Arc<Self>,
        st: &mut State,
        req: &RequestInfo,
        fault: Option<&Fault>,
        conn: &Arc<ResetSwitch>,
    ) -> Response<Body> {
        let Some(res) = st.files.get(&req.path) else {
            return text_reply(StatusCode::NOT_FOUND, "not found\n");
        };
        if req.method != Method::GET && req.method != Method::HEAD {
            return text_reply(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        }
        let len = res.body.len() as u64;
        let mut selection = match req.header("range") {
            // RFC 9110 §13.1.5: a validator that does not match means "send
            // the whole current representation".
            Some(range) if if_range_matches(req.header("if-range"), res) => {
                select_range(range, len)
            }
            _ => Selection::Full,
        };
        let ranges = !st.no_ranges.contains(&req.path);
        if !ranges {
            selection = Selection::Full;
        }
        match fault {
            Some(Fault::IgnoreRange) => selection = Selection::Full,
            Some(Fault::WrongContentRange) => selection = wrong_range(&selection, len),
            _ => {}
        }

        let mut builder = Response::builder()
            .header(header::ETAG, &res.etag)
            .header(header::LAST_MODIFIED, &res.last_modified)
            .header(header::CONTENT_TYPE, "application/octet-stream");
        if ranges {
            builder = builder.header(header::ACCEPT_RANGES, "bytes");
        }
        let (start, end) = match selection {
            Selection::Unsatisfiable => {
                return builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(empty())
                    .expect("valid 416 response");
            }
            Selection::Full => {
                builder = builder.status(StatusCode::OK);
                (0, len)
            }
            Selection::Partial(first, last) => {
                builder = builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}"));
                (first, last + 1)
            }
        };
        let count = end - start;
        let stall_at_end = matches!(fault, Some(Fault::StallAtEnd));
        if !stall_at_end && !st.no_length.contains(&req.path) {
            builder = builder.header(header::CONTENT_LENGTH, count);
        }
        if req.method == Method::HEAD {
            return builder.body(empty()).expect("valid HEAD response");
        }

        let (limit, end_with) = match fault {
            Some(Fault::CloseAfter(n)) => ((*n).min(count), StreamEnd::Error),
            Some(Fault::ResetAfter(n)) => ((*n).min(count), StreamEnd::Reset(Arc::clone(conn))),
            Some(Fault::StallAfter(n)) => ((*n).min(count), StreamEnd::Stall),
            Some(Fault::StallAtEnd) => (count, StreamEnd::Stall),
            _ => (count, StreamEnd::Finish),
        };
        let data = res.body.slice(start as usize..end as usize);
        let rate = st.rates.get(&req.path).copied();
        let drip = match fault {
            Some(Fault::Drip(ms)) => Some((0, Duration::from_millis(*ms))),
            Some(Fault::DripAfter(n, ms)) => Some((*n as usize, Duration::from_millis(*ms))),
            _ => None,
        };
        let guard = InFlight::enter(Arc::clone(self), st, &req.host);
        let pump = Pump {
            shared: Arc::clone(self),
            path: req.path.clone(),
            data,
            pos: 0,
            limit: limit as usize,
            end: end_with,
            rate,
            chunk: chunk_for(rate),
            drip,
            started: tokio::time::Instant::now(),
            guard: Some(guard),
        };
        builder.body(pump.into_body()).expect("valid file response")
    }
}

impl State {
    fn put_file(&mut self, path: &str, body: Vec<u8>) {
        let version = self.files.get(path).map_or(1, |r| r.version + 1);
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        // Each version gets its own date so If-Range by date also sees the change.
        let date = UNIX_EPOCH + Duration::from_secs(1_600_000_000 + version * 3600);
        self.files.insert(
            path.to_string(),
            Resource {
                body: Bytes::from(body),
                version,
                etag: format!("\"v{version}-{tag:08x}\""),
                last_modified: httpdate::fmt_http_date(date),
            },
        );
    }
}

fn if_range_matches(if_range: Option<&str>, res: &Resource) -> bool {
    match if_range.map(str::trim) {
        None => true,
        // Strong comparison: a weak tag never matches (RFC 9110 §13.1.5).
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == res.etag,
        Some(v) => v == res.last_modified,
    }
}

fn chunk_for(rate: Option<u64>) -> usize {
    // About 50 steps a second keeps paced bodies smooth.
    rate.map_or(CHUNK, |r| ((r / 50) as usize).clamp(1024, CHUNK))
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn full(text: &'static str) -> Body {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn text_reply(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(full(text))
        .expect("valid text response")
}

fn status_reply(code: u16, retry_after: Option<&String>) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = text_reply(status, "scripted fault\n");
    if let Some(after) = retry_after {
        let value = HeaderValue::from_str(after).expect("Retry-After value is a valid header");
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn redirect_reply(to: &str, code: u16) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND);
    Response::builder()
        .status(status)
        .header(header::LOCATION, to)
        .body(empty())
        .expect("valid redirect response")
}

/// What the service needs of a request, copied out of hyper's types.
struct RequestInfo {
    method: Method,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    at: Instant,
    wall: SystemTime,
}

impl RequestInfo {
    fn new(req: &Request<Incoming>) -> RequestInfo {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(strip_port)
            .unwrap_or_default();
        RequestInfo {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            host,
            headers,
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn strip_port(host: &str) -> String {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
        _ => host.to_string(),
    }
}

/// Counts one streaming body for its host until dropped.
struct InFlight {
    shared: Arc<Shared>,
    host: String,
}

impl InFlight {
    fn enter(shared: Arc<Shared>, st: &mut State, host: &str) -> InFlight {
        let now = st.in_flight.entry(host.to_string()).or_default();
        *now += 1;
        let now = *now;
        let max = st.max_in_flight.entry(host.to_string()).or_default();
        *max = (*max).max(now);
        st.in_flight_total += 1;
        st.max_in_flight_total = st.max_in_flight_total.max(st.in_flight_total);
        InFlight {
            shared,
            host: host.to_string(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
        st.in_flight_total = st.in_flight_total.saturating_sub(1);
        self.shared.served_changed.notify_all();
    }
}

enum StreamEnd {
    Finish,
    Error,
    /// Fail the body after switching its connection to reset on close.
    Reset(Arc<ResetSwitch>),
    Stall,
}

/// A second handle on one connection's socket, so a fault can make the close
/// that hyper performs a TCP reset while hyper owns the stream.
struct ResetSwitch {
    dup: Mutex<Option<std::net::TcpStream>>,
}

impl ResetSwitch {
    /// Splits an accepted stream into the stream hyper serves and its switch.
    fn split(
        stream: tokio::net::TcpStream,
    ) -> io::Result<(tokio::net::TcpStream, Arc<ResetSwitch>)> {
        let std_stream = stream.into_std()?;
        let dup = std_stream.try_clone()?;
        let stream = tokio::net::TcpStream::from_std(std_stream)?;
        let switch = ResetSwitch {
            dup: Mutex::new(Some(dup)),
        };
        Ok((stream, Arc::new(switch)))
    }

    /// Sets `SO_LINGER` 0 on the socket and closes this handle, so that
    /// hyper's close (the last one) sends RST instead of FIN.
    fn arm(&self) -> io::Result<()> {
        let dup = self
            .dup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(dup) = dup {
            // Registered only for this call; dropping it closes our handle.
            tokio::net::TcpStream::from_std(dup)?.set_zero_linger()?;
        }
        Ok(())
    }
}

/// Produces one response body chunk by chunk: pacing, counting, faults.
struct Pump {
    shared: Arc<Shared>,
    path: String,
    data: Bytes,
    pos: usize,
    limit: usize,
    end: StreamEnd,
    rate: Option<u64>,
    chunk: usize,
    /// `Fault::Drip` / `Fault::DripAfter`: the body offset the drip starts
    /// at, and the pause before each one-byte chunk from there on.
    drip: Option<(usize, Duration)>,
    started: tokio::time::Instant,
    /// `None` once the body is over (ended, failed or stalled out).
    guard: Option<InFlight>,
}

impl Pump {
    fn into_body(self) -> Body {
        let stream = futures::stream::unfold(self, |mut pump| async move {
            let item = pump.next().await?;
            Some((item, pump))
        });
        StreamBody::new(stream).boxed_unsync()
    }

    async fn next(&mut self) -> Option<Result<Frame<Bytes>, io::Error>> {
        self.guard.as_ref()?;
        if self.pos >= self.limit {
            let message = match self.end {
                StreamEnd::Finish => {
                    self.guard = None;
                    return None;
                }
                StreamEnd::Error => {
                    self.pause(FLUSH_GRACE).await;
                    "scripted fault: body cut short"
                }
                StreamEnd::Reset(ref conn) => {
                    self.pause(FLUSH_GRACE).await;
                    if let Err(err) = conn.arm() {
                        panic!("cannot arm a connection reset: {err}");
                    }
                    "scripted fault: connection reset"
                }
                StreamEnd::Stall => {
                    self.pause(STALL_LIMIT).await;
                    "scripted fault: stalled body given up"
                }
            };
            self.guard = None;
            return Some(Err(io::Error::other(message)));
        }
        let mut most = self.chunk;
        if let Some((from, pause)) = self.drip {
            if self.pos >= from {
                if !self.pause_until(tokio::time::Instant::now() + pause).await {
                    self.guard = None;
                    return Some(Err(io::Error::other("test server shutting down")));
                }
                most = 1;
            } else {
                most = most.min(from - self.pos);
            }
        }
        if let Some(rate) = self.rate {
            let due = self.started + Duration::from_secs_f64(self.pos as f64 / rate as f64);
            if !self.pause_until(due).await {
                self.guard = None;
                return Some(Err(io::Error::other("test server shutting down")));
            }
        }
        let n = most.min(self.limit - self.pos);
        let chunk = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        self.shared.record_served(&self.path, n as u64);
        Some(Ok(Frame::data(chunk)))
    }

    async fn pause(&self, d: Duration) {
        self.pause_until(tokio::time::Instant::now() + d).await;
    }

    /// Sleeps until `due`; false if the server is shutting down.
    async fn pause_until(&self, due: tokio::time::Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => true,
            _ = self.shared.shutdown.cancelled() => false,
        }
    }
}

/// The server thread: accept until shutdown, one task per connection; dropping
/// the runtime at the end cancels connections still open (stalled bodies).
fn run(shared: Arc<Shared>, listener: StdListener) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the test server runtime");
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).expect("register the test listener");
        loop {
            let stream = tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Avoid Nagle + delayed ACK stalls of 40 ms a response.
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    Err(_) => continue,
                },
            };
            let Ok((stream, switch)) = ResetSwitch::split(stream) else {
                continue;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let token = shared.shutdown.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let shared = Arc::clone(&shared);
                    let switch = Arc::clone(&switch);
                    async move {
                        let info = RequestInfo::new(&req);
                        shared
                            .respond(&info, &switch)
                            .ok_or_else(|| io::Error::other("scripted fault: reset before headers"))
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = token.cancelled() => {}
                }
            });
        }
    });
}

/// Body bytes over all paths, for tests that bound the whole run's traffic
/// (the chaos tests pick their kill moments by it).
impl TestServer {
    /// Body bytes of every path handed to hyper for writing, over all requests.
    pub fn total_served(&self) -> u64 {
        self.shared.lock().served.values().sum()
    }

    /// Blocks until at least `n` body bytes were served over all paths; false
    /// if `timeout` passed first (the caller decides what that means).
    pub fn wait_total_served(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.served.values().sum::<u64>() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .served_changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A gate on the whole server: once the total of body bytes reaches a mark,
/// nothing more is served until the test releases it, so a test can stop a
/// client at an exact byte count with no bytes flowing meanwhile.
impl TestServer {
    /// Freezes the server (every body, on every connection) as soon as
    /// `total` body bytes were served in all, until [`TestServer::release`].
    pub fn hold_at(&self, total: u64) {
        self.shared.lock().hold_at = Some(total);
        self.shared.served_changed.notify_all();
    }

    /// Lifts the gate of [`TestServer::hold_at`].
    pub fn release(&self) {
        self.shared.lock().hold_at = None;
        self.shared.served_changed.notify_all();
    }

    /// Blocks until no body is streaming (a stopped client's bodies end at
    /// their next write); false if `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.in_flight_total > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .served_changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Shared {
    /// Blocks the server thread (deliberately: the whole server freezes)
    /// while the gate of [`TestServer::hold_at`] is shut; shutdown opens it.
    fn wait_while_held(&self, mut st: MutexGuard<'_, State>) {
        let held = |st: &State| {
            st.hold_at
                .is_some_and(|mark| st.served.values().sum::<u64>() >= mark)
        };
        while held(&st) && !self.shutdown.is_cancelled() {
            // The timeout only bounds how late a shutdown is noticed.
            st = self
                .served_changed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A loopback port with nothing listening: the socket is bound but never
/// listens, so connecting is refused, and no other test can take the port
/// while it is held.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("create a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}
