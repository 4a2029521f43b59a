//! The in-process HTTP/1.1 server that haul's integration tests download from.
//!
//! It owns per-path files (each with a strong ETag and its own Last-Modified
//! date), paced bodies, scripted faults, redirects, gates that pause bodies
//! (the whole server's, or one path's), a request log and counters of body
//! bytes and of concurrent bodies. It runs on its own thread with its
//! own tokio runtime, so a test that blocks waiting on a child process cannot
//! starve it. Its Range / If-Range handling is written from RFC 9110 §13.1.5
//! and §14 independently of haul's client code, so one misreading cannot
//! confirm itself: it must never import anything from the `haul` crate.
//!
//! `fault` holds the scripted misbehaviours, `respond` decides each answer
//! (the RFC-reading part), `conn` runs the server thread and streams bodies
//! (pacing, byte counting, faults that cut a body short). This file holds
//! the shared state and the API the tests call; its waits (`wait_*`) all
//! go through `support::wait` and panic, saying what they saw, after their
//! bound.

mod conn;
mod fault;
mod respond;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::ranges::digits;
use super::wait::wait_until;

pub use fault::Fault;

/// Unique part of every ETag: distinct content never shares a validator,
/// without hashing multi-MiB bodies in an unoptimised test build.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

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
    /// Signalled when a gate of `hold_path_at` opens, for the bodies that
    /// wait on it inside the server's runtime.
    gate_opened: tokio::sync::Notify,
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
    /// Bodies streaming now, by request path.
    in_flight_path: HashMap<String, usize>,
    /// Total body bytes at which every body stops until released.
    hold_at: Option<u64>,
    /// Per path, the body bytes of it after which its bodies pause until
    /// released (`hold_path_at`).
    gates: HashMap<String, u64>,
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
            gate_opened: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{port}"))
            .spawn(move || conn::run(for_thread, listener))
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
    /// A `Bytes` body is shared, not copied: many paths can serve one buffer.
    pub fn add_file(&self, path: &str, body: impl Into<Bytes>) {
        let mut st = self.shared.lock();
        assert!(!st.files.contains_key(path), "{path} already added");
        st.put_file(path, body);
    }

    /// Replaces the content at `path`: new ETag and Last-Modified, as when a
    /// resource changes on the origin.
    pub fn replace_file(&self, path: &str, body: impl Into<Bytes>) {
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

    /// Body bytes of every path handed to hyper for writing, over all requests.
    pub fn total_served(&self) -> u64 {
        self.shared.lock().served.values().sum()
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

    /// Bodies of `path` streaming now (a body paused at a gate counts).
    pub fn in_flight_of(&self, path: &str) -> usize {
        self.shared.lock().in_flight_of(path)
    }

    // Waiting. Each wait blocks on the server's one condvar until what it
    // names holds, and panics after `timeout` saying what it saw: see
    // `support::wait`.

    /// Blocks until at least `n` body bytes of `path` were served.
    pub fn wait_served(&self, path: &str, n: u64, timeout: Duration) {
        let served = |st: &State| st.served.get(path).copied().unwrap_or(0);
        self.wait(
            timeout,
            &format!("{n} body bytes of {path} served"),
            |st| served(st) >= n,
            |st| format!("only {} of {n} bytes served", served(st)),
        );
    }

    /// Blocks until at least `n` body bytes were served over all paths.
    pub fn wait_total_served(&self, n: u64, timeout: Duration) {
        self.wait(
            timeout,
            &format!("{n} body bytes served over all paths"),
            |st| st.total_served() >= n,
            |st| format!("only {} of {n} bytes served", st.total_served()),
        );
    }

    /// Blocks until at least `n` bodies of `paths` together are streaming
    /// at once.
    pub fn wait_in_flight(&self, paths: &[&str], n: usize, timeout: Duration) {
        let now = |st: &State| paths.iter().map(|p| st.in_flight_of(p)).sum::<usize>();
        self.wait(
            timeout,
            &format!("{n} bodies of {paths:?} streaming at once"),
            |st| now(st) >= n,
            |st| format!("{} streaming", now(st)),
        );
    }

    /// Blocks until no body is streaming (a stopped client's bodies end at
    /// their next write).
    pub fn wait_idle(&self, timeout: Duration) {
        self.wait(
            timeout,
            "no body streaming",
            |st| st.in_flight_total == 0,
            |st| format!("{} bodies still streaming", st.in_flight_total),
        );
    }

    fn wait(
        &self,
        timeout: Duration,
        what: &str,
        done: impl FnMut(&State) -> bool,
        seen: impl FnOnce(&State) -> String,
    ) {
        let st = self.shared.lock();
        drop(wait_until(
            st,
            &self.shared.served_changed,
            timeout,
            what,
            done,
            seen,
        ));
    }

    // A gate on the whole server: once the total of body bytes reaches a
    // mark, nothing more is served until the test releases it, so a test can
    // stop a client at an exact byte count with no bytes flowing meanwhile.

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

    // A gate on one path: its bodies pause (each before its next chunk)
    // once `mark` body bytes of it were served in all, while the rest of
    // the server goes on, so a test can keep a download's connections
    // busy, or a file half done, for exactly as long as it needs.

    /// Pauses every body of `path` once `mark` bytes of it were served, 0
    /// before any, until [`TestServer::release_path`].
    pub fn hold_path_at(&self, path: &str, mark: u64) {
        self.shared.lock().gates.insert(path.to_string(), mark);
    }

    /// Lifts the gate of [`TestServer::hold_path_at`] on `path`.
    pub fn release_path(&self, path: &str) {
        self.shared.lock().gates.remove(path);
        self.shared.gate_opened.notify_waiters();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        // Under the lock, so a server thread held at the gate cannot miss
        // the wake-up between checking the token and waiting.
        drop(self.shared.lock());
        self.shared.served_changed.notify_all();
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
        // Blocks the server thread (deliberately: the whole server freezes)
        // while the gate of `TestServer::hold_at` is shut; shutdown opens it.
        let held = |st: &mut State| {
            st.hold_at.is_some_and(|mark| st.total_served() >= mark)
                && !self.shutdown.is_cancelled()
        };
        drop(
            self.served_changed
                .wait_while(st, held)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

impl State {
    fn total_served(&self) -> u64 {
        self.served.values().sum()
    }

    fn in_flight_of(&self, path: &str) -> usize {
        self.in_flight_path.get(path).copied().unwrap_or(0)
    }

    /// Whether the gate of `TestServer::hold_path_at` holds `path` now.
    fn gated(&self, path: &str) -> bool {
        let served = self.served.get(path).copied().unwrap_or(0);
        self.gates.get(path).is_some_and(|&mark| served >= mark)
    }

    fn put_file(&mut self, path: &str, body: impl Into<Bytes>) {
        let version = self.files.get(path).map_or(1, |r| r.version + 1);
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        // Each version gets its own date so If-Range by date also sees the change.
        let date = UNIX_EPOCH + Duration::from_secs(1_600_000_000 + version * 3600);
        self.files.insert(
            path.to_string(),
            Resource {
                body: body.into(),
                version,
                etag: format!("\"v{version}-{tag:08x}\""),
                last_modified: httpdate::fmt_http_date(date),
            },
        );
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
