//! A raw-TCP HTTP/1.1 server that breaks the protocol on purpose, for the
//! cases a well-behaved server library refuses to produce: more body bytes
//! than Content-Length, a Content-Length larger than the Content-Range span,
//! a truncated body, header lines that never end, a chunked body that never
//! ends, and arbitrary extra headers (Content-Disposition).
//!
//! It writes responses by hand on plain threads (one accepting, one per
//! connection), serves keep-alive connections so a client's reuse of a
//! poisoned connection shows in the log, honours `Range: bytes=a-b` through
//! [`select_range`] (written from the RFC, not from haul), and logs every
//! request with the connection it came on. A body goes out in blocking
//! writes for as long as the socket takes them, whether or not the client
//! still reads (a client's early close is noticed only when a write
//! fails), and every body byte the kernel accepted is counted per path
//! ([`HostileServer::served`]): what a server's access log would call
//! served. Dropping it shuts every socket
//! down, joins every thread, and panics if a scripted behaviour was never
//! used. It must never import anything from the `haul` crate.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::ranges::{select_range, Selection};

/// Longest request head read before the connection is dropped.
const MAX_HEAD: usize = 64 << 10;

/// Bytes of each chunk of an endless chunked body.
const ENDLESS_CHUNK: usize = 64 << 10;

/// Largest single write of a body, so the count of accepted bytes stays
/// close to what the kernel took before a client hung up.
const BODY_WRITE: usize = 64 << 10;

/// Length of each filler header line of an endless head: long enough that
/// the client's head-size limit, not its header-count limit, trips first.
const FILLER_LINE: usize = 8 << 10;

/// How the server answers one request for a path.
#[derive(Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Honest service: 200, or 206 with Content-Range for a single byte
    /// range, 416 past the end; the connection is kept alive.
    Honest,
    /// Honest headers and body (Content-Length N), then these bytes nobody
    /// announced, on a connection kept alive: whatever reads next on it sees
    /// them first.
    TrailingBytes(Vec<u8>),
    /// For a ranged request: an honest Content-Range, but a Content-Length
    /// that also counts these bytes, which follow the range's real bytes.
    /// A request without Range gets honest service.
    OverlongRange(Vec<u8>),
    /// Honest headers, only this many body bytes, then the connection closes.
    Truncate(u64),
    /// A 200 status line, then header lines until the client hangs up.
    EndlessHeaders,
    /// A 200 with a chunked body that never ends (no Content-Length).
    EndlessChunked,
}

impl Behaviour {
    /// Short name for the request log (never the bytes themselves).
    pub fn label(&self) -> String {
        match self {
            Behaviour::Honest => "Honest".into(),
            Behaviour::TrailingBytes(extra) => format!("TrailingBytes(<{} bytes>)", extra.len()),
            Behaviour::OverlongRange(extra) => format!("OverlongRange(<{} bytes>)", extra.len()),
            Behaviour::Truncate(n) => format!("Truncate({n})"),
            Behaviour::EndlessHeaders => "EndlessHeaders".into(),
            Behaviour::EndlessChunked => "EndlessChunked".into(),
        }
    }
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Which accepted connection (0, 1, ...) carried it.
    pub conn: u64,
    pub method: String,
    /// The request target exactly as sent.
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// How it was answered.
    pub behaviour: String,
}

impl RawRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Route {
    body: Arc<Vec<u8>>,
    behaviour: Behaviour,
    headers: Vec<(String, String)>,
    etag: String,
    /// Body bytes the kernel accepted for this path, over every answer.
    served: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    scripts: HashMap<String, VecDeque<Behaviour>>,
    log: Vec<RawRequest>,
    /// Clones of every accepted socket, to shut them down on drop.
    streams: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
    next_conn: u64,
}

struct Shared {
    state: Mutex<State>,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The server; see the module docs.
pub struct HostileServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Binds `127.0.0.1:0` and accepts on a thread of its own.
    pub fn start() -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stopping: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(format!("hostile-{}", addr.port()))
            .spawn(move || accept_loop(&for_thread, &listener))
            .expect("spawn the accept thread");
        HostileServer {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with '/': {path}");
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` at `path`, answering every request with `behaviour`
    /// unless a script says otherwise.
    pub fn add(&self, path: &str, body: Vec<u8>, behaviour: Behaviour) {
        let mut st = self.shared.lock();
        let etag = format!("\"hostile-{}\"", st.routes.len());
        let route = Route {
            body: Arc::new(body),
            behaviour,
            headers: Vec::new(),
            etag,
            served: Arc::new(AtomicU64::new(0)),
        };
        assert!(
            st.routes.insert(path.to_string(), route).is_none(),
            "{path} already added"
        );
    }

    /// Adds a header (sent verbatim) to every answer for `path`.
    pub fn add_header(&self, path: &str, name: &str, value: &str) {
        let mut st = self.shared.lock();
        let route = st.routes.get_mut(path).expect("add the path first");
        route.headers.push((name.to_string(), value.to_string()));
    }

    /// Answers `path` without an ETag (and it never had a Last-Modified):
    /// nothing proves two answers come from one version.
    pub fn without_etag(&self, path: &str) {
        let mut st = self.shared.lock();
        let route = st.routes.get_mut(path).expect("add the path first");
        route.etag.clear();
    }

    /// Behaviours for the next requests of `path`, one each, before the
    /// path's own behaviour takes over again.
    pub fn script(&self, path: &str, behaviours: Vec<Behaviour>) {
        self.shared
            .lock()
            .scripts
            .entry(path.to_string())
            .or_default()
            .extend(behaviours);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.shared.lock().log.clone()
    }

    /// Every GET of `path`, in arrival order.
    pub fn gets(&self, path: &str) -> Vec<RawRequest> {
        let st = self.shared.lock();
        let gets = st
            .log
            .iter()
            .filter(|r| r.path == path && r.method == "GET");
        gets.cloned().collect()
    }

    /// Body bytes of `path` the kernel accepted so far, over every answer:
    /// what was delivered plus whatever sat in socket buffers when the
    /// client hung up.
    pub fn served(&self, path: &str) -> u64 {
        let st = self.shared.lock();
        let route = st.routes.get(path).expect("add the path first");
        route.served.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.lock().next_conn
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let (streams, threads) = {
            let mut st = self.shared.lock();
            (
                std::mem::take(&mut st.streams),
                std::mem::take(&mut st.threads),
            )
        };
        // Unblocks every connection thread, reading or writing.
        for stream in &streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for thread in threads {
            let _ = thread.join();
        }
        if std::thread::panicking() {
            return;
        }
        let st = self.shared.lock();
        let unused: Vec<String> = st
            .scripts
            .iter()
            .filter(|(_, left)| !left.is_empty())
            .map(|(path, left)| format!("{path}: {left:?}"))
            .collect();
        drop(st);
        assert!(
            unused.is_empty(),
            "scripted behaviours never used: {unused:?}"
        );
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let mut st = shared.lock();
        let conn = st.next_conn;
        st.next_conn += 1;
        if let Ok(clone) = stream.try_clone() {
            st.streams.push(clone);
        }
        let for_conn = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name(format!("hostile-conn-{conn}"))
            .spawn(move || serve_connection(&for_conn, stream, conn));
        if let Ok(thread) = thread {
            st.threads.push(thread);
        }
    }
}

/// Answers requests on one connection until the client hangs up, the
/// server stops, or a behaviour ends the connection.
fn serve_connection(shared: &Shared, stream: TcpStream, conn: u64) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut out = write_half;
    while let Some(Head {
        method,
        path,
        headers,
    }) = read_head(&mut reader)
    {
        let picked = {
            let mut st = shared.lock();
            let scripted = st.scripts.get_mut(&path).and_then(VecDeque::pop_front);
            let answer = st.routes.get(&path).map(|route| {
                let behaviour = scripted.unwrap_or_else(|| route.behaviour.clone());
                (
                    behaviour,
                    Arc::clone(&route.body),
                    route.headers.clone(),
                    route.etag.clone(),
                    Arc::clone(&route.served),
                )
            });
            let label = answer
                .as_ref()
                .map_or_else(|| "NotFound".to_string(), |a| a.0.label());
            st.log.push(RawRequest {
                conn,
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
                behaviour: label,
            });
            answer
        };
        let keep_going = match picked {
            None => write_all(
                &mut out,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            ),
            Some((behaviour, body, extra, etag, served)) => {
                let range = headers
                    .iter()
                    .find(|(n, _)| n == "range")
                    .map(|(_, v)| v.as_str());
                let ask = Ask {
                    head_only: method == "HEAD",
                    range,
                    body: &body,
                    extra: &extra,
                    etag: &etag,
                    served: &served,
                };
                answer(&mut out, &behaviour, &ask)
            }
        };
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        if !keep_going || close {
            let _ = out.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Reads one request head; None at EOF, on a broken or oversized head.
/// A request line and its headers (names lowercased).
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut read = 0;
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let left = (MAX_HEAD + 1 - read) as u64;
        let n = reader
            .by_ref()
            .take(left)
            .read_until(b'\n', &mut line)
            .ok()?;
        read += n;
        if n == 0 || read > MAX_HEAD {
            return None;
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate stray CRLF between requests (RFC 9112 §2.2)
            }
            break;
        }
        lines.push(line);
    }
    let mut words = lines[0].split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.to_string();
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Head {
        method,
        path,
        headers,
    })
}

/// What one request asks of a route.
struct Ask<'a> {
    head_only: bool,
    range: Option<&'a str>,
    body: &'a [u8],
    extra: &'a [(String, String)],
    etag: &'a str,
    served: &'a AtomicU64,
}

/// Writes one answer; false when the connection must end (or broke).
fn answer(out: &mut TcpStream, behaviour: &Behaviour, ask: &Ask<'_>) -> bool {
    match behaviour {
        Behaviour::EndlessHeaders => {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            head.push_str(&extra_headers(ask.extra));
            if !write_all(out, head.as_bytes()) {
                return false;
            }
            let filler = "a".repeat(FILLER_LINE);
            // Ends when the client hangs up (or the server stops).
            for i in 0u64.. {
                if !write_all(out, format!("X-Filler-{i}: {filler}\r\n").as_bytes()) {
                    break;
                }
            }
            false
        }
        Behaviour::EndlessChunked => {
            let mut head = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n");
            head.push_str(&extra_headers(ask.extra));
            head.push_str("\r\n");
            if !write_all(out, head.as_bytes()) || ask.head_only {
                return false;
            }
            let mut chunk = format!("{ENDLESS_CHUNK:x}\r\n").into_bytes();
            chunk.extend((0..ENDLESS_CHUNK).map(|i| (i % 251) as u8));
            chunk.extend_from_slice(b"\r\n");
            while write_all(out, &chunk) {}
            false
        }
        _ => answer_body(out, behaviour, ask),
    }
}

/// The answers that carry the route's (possibly ranged) body.
fn answer_body(out: &mut TcpStream, behaviour: &Behaviour, ask: &Ask<'_>) -> bool {
    let len = ask.body.len() as u64;
    let selection = ask.range.map_or(Selection::Full, |r| select_range(r, len));
    let (status, first, last, content_range) = match selection {
        Selection::Full => ("200 OK", 0, len, None),
        Selection::Partial(a, b) => (
            "206 Partial Content",
            a,
            b + 1,
            Some(format!("bytes {a}-{b}/{len}")),
        ),
        Selection::Unsatisfiable => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n"
            );
            return write_all(out, head.as_bytes());
        }
    };
    let span = &ask.body[first as usize..last as usize];
    let surplus: &[u8] = match behaviour {
        Behaviour::OverlongRange(extra) if content_range.is_some() => extra,
        _ => &[],
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
        span.len() + surplus.len(),
    );
    if !ask.etag.is_empty() {
        head.push_str(&format!("ETag: {}\r\n", ask.etag));
    }
    if let Some(content_range) = &content_range {
        head.push_str(&format!("Content-Range: {content_range}\r\n"));
    }
    head.push_str(&extra_headers(ask.extra));
    head.push_str("\r\n");
    if !write_all(out, head.as_bytes()) {
        return false;
    }
    if ask.head_only {
        return true;
    }
    match behaviour {
        Behaviour::Truncate(n) => {
            let cut = (*n as usize).min(span.len());
            let _ = write_body(out, &span[..cut], ask.served);
            false
        }
        Behaviour::TrailingBytes(extra) => {
            write_body(out, span, ask.served) && write_all(out, extra)
        }
        // One write, so the surplus tends to arrive in the same read as the
        // range's last bytes.
        Behaviour::OverlongRange(_) => {
            let sent = write_all(out, &[span, surplus].concat());
            if sent {
                ask.served.fetch_add(span.len() as u64, Ordering::SeqCst);
            }
            sent
        }
        _ => write_body(out, span, ask.served),
    }
}

fn extra_headers(extra: &[(String, String)]) -> String {
    extra.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect()
}

/// Writes a body in bounded writes, counting every byte the kernel took;
/// true if all of it went out.
fn write_body(out: &mut TcpStream, mut bytes: &[u8], served: &AtomicU64) -> bool {
    while !bytes.is_empty() {
        let n = match out.write(&bytes[..bytes.len().min(BODY_WRITE)]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        served.fetch_add(n as u64, Ordering::SeqCst);
        bytes = &bytes[n..];
    }
    out.flush().is_ok()
}

/// True if every byte went out; a client that hung up is not an error here.
fn write_all(out: &mut TcpStream, bytes: &[u8]) -> bool {
    out.write_all(bytes).and_then(|()| out.flush()).is_ok()
}

#[cfg(test)]
mod tests {
    //! The server's own contract, spoken to over a raw socket.

    use std::io::Read;

    use super::*;

    fn exchange(server: &HostileServer, request: &str, limit: usize) -> Vec<u8> {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("send");
        let mut got = Vec::new();
        let _ = (&mut stream).take(limit as u64).read_to_end(&mut got);
        got
    }

    fn get(path: &str, extra: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
    }

    #[test]
    fn trailing_bytes_follow_an_honest_ranged_answer() {
        let server = HostileServer::start();
        server.add(
            "/t",
            b"0123456789".to_vec(),
            Behaviour::TrailingBytes(b"JUNK".to_vec()),
        );
        let got = exchange(&server, &get("/t", "Range: bytes=2-5\r\n"), 4096);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 206"), "{text}");
        assert!(text.contains("Content-Range: bytes 2-5/10\r\n"), "{text}");
        assert!(text.contains("Content-Length: 4\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n2345JUNK"), "{text}");
        let log = server.requests();
        assert_eq!(log[0].header("range"), Some("bytes=2-5"));
    }

    #[test]
    fn overlong_range_counts_its_surplus_in_content_length_only() {
        let server = HostileServer::start();
        server.add(
            "/o",
            b"0123456789".to_vec(),
            Behaviour::OverlongRange(b"XY".to_vec()),
        );
        let got = exchange(&server, &get("/o", "Range: bytes=0-3\r\n"), 4096);
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains("Content-Range: bytes 0-3/10\r\n"), "{text}");
        assert!(text.contains("Content-Length: 6\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n0123XY"), "{text}");
    }

    #[test]
    fn scripted_truncation_then_the_default_behaviour() {
        let server = HostileServer::start();
        server.add("/c", b"0123456789".to_vec(), Behaviour::Honest);
        server.add_header("/c", "Content-Disposition", "attachment; filename=\"x\"");
        server.script("/c", vec![Behaviour::Truncate(3)]);
        let cut = exchange(&server, &get("/c", ""), 4096);
        assert!(String::from_utf8_lossy(&cut).ends_with("\r\n\r\n012"));
        let whole = String::from_utf8_lossy(&exchange(&server, &get("/c", ""), 4096)).to_string();
        assert!(whole.contains("Content-Disposition: attachment; filename=\"x\"\r\n"));
        assert!(whole.ends_with("\r\n\r\n0123456789"), "{whole}");
        assert_eq!(server.connections(), 2);
    }

    #[test]
    fn endless_answers_keep_coming_and_stop_on_drop() {
        let server = HostileServer::start();
        server.add("/h", Vec::new(), Behaviour::EndlessHeaders);
        server.add("/b", Vec::new(), Behaviour::EndlessChunked);
        let head = exchange(&server, &get("/h", ""), 1 << 20);
        assert_eq!(head.len(), 1 << 20);
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
        let body = exchange(&server, &get("/b", ""), 1 << 20);
        assert_eq!(body.len(), 1 << 20);
        // Dropping the server ends both writers (the test would hang otherwise).
    }
}
