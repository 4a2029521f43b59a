//! A small static file server: `haul serve DIR` and the demo's built-in origin.
//!
//! It owns mapping request paths onto regular files under one root (never
//! outside it, not even through symlinks), the validators (strong ETag from
//! size and mtime, Last-Modified), single byte ranges with `If-Range` (RFC 9110
//! §13.1.5, §14), bodies streamed in bounded chunks, an optional per-connection
//! rate limit, and shutdown on a cancellation token. It must not print, list
//! directories, or read a whole file into memory.

use std::convert::Infallible;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use percent_encoding::percent_decode_str;
use tokio::fs::File;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest slice of a file held in memory per connection.
const CHUNK: usize = 64 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How the server behaves beyond mapping paths to files.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Bytes a second per connection; `None` (or `Some(0)`) means unlimited.
    pub limit_rate: Option<u64>,
}

/// The root directory given to [`serve`] could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve directory {path}")]
struct RootError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Serves `root` on an already-bound listener until `shutdown` is cancelled.
///
/// Only fails when `root` is not an accessible directory; per-connection
/// errors end that connection only. On cancellation it stops accepting, ends
/// in-flight bodies and returns once every connection task has finished.
pub async fn serve(
    listener: TcpListener,
    root: PathBuf,
    opts: ServeOptions,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let root_error = |source: io::Error| {
        io::Error::new(
            source.kind(),
            RootError {
                path: root.clone(),
                source,
            },
        )
    };
    let canonical = tokio::fs::canonicalize(&root).await.map_err(root_error)?;
    let meta = tokio::fs::metadata(&canonical).await.map_err(root_error)?;
    if !meta.is_dir() {
        return Err(root_error(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let ctx = Arc::new(Ctx {
        root: canonical,
        limit_rate: opts.limit_rate.filter(|&r| r > 0),
        shutdown: shutdown.clone(),
    });

    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(connection(stream, ctx.clone()));
                }
                Err(_) => {
                    // Accept errors concern one pending connection or a
                    // passing resource shortage; the listener stays usable.
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// What every request handler of one server shares.
struct Ctx {
    root: PathBuf,
    limit_rate: Option<u64>,
    shutdown: CancellationToken,
}

type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Runs one HTTP/1.1 connection until the peer leaves or shutdown ends it.
async fn connection(stream: tokio::net::TcpStream, ctx: Arc<Ctx>) {
    // HTTP/1.1 sends one response at a time per connection, so one pacer
    // shared by its responses limits the connection as a whole.
    let pacer = ctx
        .limit_rate
        .map(|rate| Arc::new(Mutex::new(Pacer::new(rate))));
    let service_ctx = ctx.clone();
    let service = service_fn(move |req| {
        let ctx = service_ctx.clone();
        let pacer = pacer.clone();
        async move { Ok::<_, Infallible>(respond(&ctx, pacer, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = ctx.shutdown.cancelled() => {
            // Bodies in flight watch the same token and end with an error,
            // so this does not wait for a slow download to complete.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Answers one request; every failure becomes a status code.
async fn respond(
    ctx: &Ctx,
    pacer: Option<Arc<Mutex<Pacer>>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut resp = status_response(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
    };
    let rel = match relative_path(req.uri().path()) {
        Ok(rel) => rel,
        Err(status) => return status_response(status),
    };
    let (file, meta) = match open_under(&ctx.root, &rel).await {
        Ok(opened) => opened,
        Err(status) => return status_response(status),
    };
    let total = meta.len();
    let validators = Validators::new(total, meta.modified().ok());
    let plan = plan_response(req.headers(), total, &validators);

    let mut resp = Response::new(empty());
    let headers = resp.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&validators.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(lm) = validators.last_modified_header() {
        headers.insert(header::LAST_MODIFIED, lm);
    }

    let (start, len) = match plan {
        RangeDecision::Full => {
            *resp.status_mut() = StatusCode::OK;
            (0, total)
        }
        RangeDecision::Partial { start, end } => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let headers = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
            return resp;
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if !head && len > 0 {
        let chunk = match ctx.limit_rate {
            // Smaller slices under a limit keep the pace smooth (about 16
            // sends a second) instead of bursting 64 KiB at a time.
            Some(rate) => usize::try_from(rate / 16).unwrap_or(CHUNK).clamp(1, CHUNK),
            None => CHUNK,
        };
        let body = FileBody {
            file,
            start,
            remaining: len,
            chunk,
            pacer,
            shutdown: ctx.shutdown.clone(),
        };
        *resp.body_mut() = StreamBody::new(body.into_stream()).boxed_unsync();
    }
    resp
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn status_response(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
    resp
}

/// Turns a request path into a path relative to the root.
///
/// Decoding comes first so that encoded forms (`%2e%2e`, `%2f`, `%5c`) meet
/// the same checks as literal ones. Every remaining segment must be a single
/// normal path component.
fn relative_path(raw: &str) -> Result<PathBuf, StatusCode> {
    let decoded: Vec<u8> = percent_decode_str(raw).collect();
    let decoded = String::from_utf8(decoded).map_err(|_| StatusCode::BAD_REQUEST)?;
    if decoded.contains(['\0', '\\']) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let mut rel = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(StatusCode::BAD_REQUEST),
            _ => {
                let mut comps = Path::new(segment).components();
                match (comps.next(), comps.next()) {
                    (Some(Component::Normal(_)), None) => rel.push(segment),
                    _ => return Err(StatusCode::BAD_REQUEST),
                }
            }
        }
    }
    if rel.as_os_str().is_empty() {
        // The root itself is a directory, and directories are not listed.
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(rel)
}

/// Opens `root/rel` if it resolves (symlinks included) to a regular file
/// inside `root`, which must already be canonical.
async fn open_under(root: &Path, rel: &Path) -> Result<(File, std::fs::Metadata), StatusCode> {
    let real = tokio::fs::canonicalize(root.join(rel))
        .await
        .map_err(|e| status_for(&e))?;
    if !real.starts_with(root) {
        return Err(StatusCode::NOT_FOUND);
    }
    // Checked before opening: opening a FIFO or a device could block.
    let meta = tokio::fs::metadata(&real)
        .await
        .map_err(|e| status_for(&e))?;
    if !meta.is_file() {
        return Err(StatusCode::NOT_FOUND);
    }
    let file = File::open(&real).await.map_err(|e| status_for(&e))?;
    let meta = file.metadata().await.map_err(|e| status_for(&e))?;
    if !meta.is_file() {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok((file, meta))
}

fn status_for(e: &io::Error) -> StatusCode {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The validators of one file version.
struct Validators {
    /// Strong entity tag, quotes included: `"<size hex>-<mtime ns hex>"`.
    etag: String,
    /// Modification time truncated to whole seconds, as HTTP dates carry it.
    modified: Option<SystemTime>,
}

impl Validators {
    fn new(size: u64, mtime: Option<SystemTime>) -> Self {
        let since_epoch = mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let nanos = since_epoch.map_or(0, |d| d.as_nanos());
        Validators {
            etag: format!("\"{size:x}-{nanos:x}\""),
            modified: since_epoch.map(|d| UNIX_EPOCH + Duration::from_secs(d.as_secs())),
        }
    }

    fn last_modified_header(&self) -> Option<HeaderValue> {
        let date = httpdate::fmt_http_date(self.modified?);
        HeaderValue::from_str(&date).ok()
    }

    /// RFC 9110 §13.1.5: the range applies only if the If-Range validator
    /// matches the current one, an entity tag by strong comparison, a date
    /// exactly.
    fn if_range_holds(&self, value: &str) -> bool {
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            // Our tag is strong, so a weak one never compares equal.
            return value == self.etag;
        }
        match (httpdate::parse_http_date(value), self.modified) {
            (Ok(date), Some(modified)) => date == modified,
            _ => false,
        }
    }
}

/// What to send for a request's Range / If-Range headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeDecision {
    /// 200 with the whole representation.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

fn plan_response(headers: &HeaderMap, total: u64, validators: &Validators) -> RangeDecision {
    let mut ranges = headers.get_all(header::RANGE).iter();
    let range = match (ranges.next(), ranges.next()) {
        (Some(range), None) => range,
        // No Range, or several header lines: a multi-range request we ignore.
        _ => return RangeDecision::Full,
    };
    let Ok(range) = range.to_str() else {
        return RangeDecision::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        let holds = if_range
            .to_str()
            .is_ok_and(|v| validators.if_range_holds(v));
        if !holds {
            return RangeDecision::Full;
        }
    }
    parse_range(range, total)
}

/// Interprets a Range header value for a representation of `total` bytes
/// (RFC 9110 §14.1.1, §14.1.2). Only a single range is honoured: several
/// ranges, another unit or a malformed value give [`RangeDecision::Full`],
/// which §14.2 allows since a server may ignore Range.
fn parse_range(value: &str, total: u64) -> RangeDecision {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeDecision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeDecision::Full;
    }
    // The list rule (RFC 9110 §5.6.1) lets empty elements through.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = match (specs.next(), specs.next()) {
        (Some(spec), None) => spec,
        _ => return RangeDecision::Full,
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeDecision::Full;
    };
    if first.is_empty() {
        let Some(suffix) = parse_pos(last) else {
            return RangeDecision::Full;
        };
        if suffix == 0 || total == 0 {
            return RangeDecision::Unsatisfiable;
        }
        return RangeDecision::Partial {
            start: total.saturating_sub(suffix),
            end: total - 1,
        };
    }
    let Some(first) = parse_pos(first) else {
        return RangeDecision::Full;
    };
    let last = if last.is_empty() {
        None
    } else {
        match parse_pos(last) {
            Some(last) if last >= first => Some(last),
            // last-pos before first-pos makes the whole field invalid.
            _ => return RangeDecision::Full,
        }
    };
    if first >= total {
        return RangeDecision::Unsatisfiable;
    }
    let end = last.map_or(total - 1, |last| last.min(total - 1));
    RangeDecision::Partial { start: first, end }
}

/// A run of ASCII digits; values beyond u64 saturate, which keeps their
/// meaning (past any end) without failing the parse.
fn parse_pos(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Schedules sends so that a connection averages `rate` bytes a second.
///
/// A virtual clock rather than a bucket with stored credit: idle time between
/// requests earns nothing, so no response starts with a burst.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    next: Option<Instant>,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Pacer {
            rate: rate.max(1),
            next: None,
        }
    }

    /// Books `n` bytes and returns when they may be sent.
    fn reserve(&mut self, n: u64, now: Instant) -> Instant {
        let start = match self.next {
            Some(next) if next > now => next,
            _ => now,
        };
        let nanos = u128::from(n) * 1_000_000_000 / u128::from(self.rate);
        let cost = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.next = Some(start + cost);
        start
    }
}

/// A byte range of an open file, read one chunk at a time.
struct FileBody {
    file: File,
    start: u64,
    remaining: u64,
    chunk: usize,
    pacer: Option<Arc<Mutex<Pacer>>>,
    shutdown: CancellationToken,
}

impl FileBody {
    fn into_stream(self) -> impl Stream<Item = io::Result<Frame<Bytes>>> + Send + 'static {
        futures::stream::try_unfold((self, false), |(mut body, positioned)| async move {
            if body.remaining == 0 {
                return Ok(None);
            }
            if !positioned && body.start > 0 {
                use tokio::io::AsyncSeekExt;
                body.file.seek(io::SeekFrom::Start(body.start)).await?;
            }
            let n = usize::try_from(body.remaining).map_or(body.chunk, |r| r.min(body.chunk));
            if let Some(pacer) = &body.pacer {
                let at = pacer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .reserve(n as u64, Instant::now());
                tokio::select! {
                    _ = body.shutdown.cancelled() => return Err(shutting_down()),
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            if body.shutdown.is_cancelled() {
                return Err(shutting_down());
            }
            let mut buf = vec![0u8; n];
            let mut filled = 0;
            while filled < n {
                let got = body.file.read(&mut buf[filled..]).await?;
                if got == 0 {
                    // Content-Length is already sent: failing the body makes
                    // hyper cut the connection, which the client sees as short.
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being served",
                    ));
                }
                filled += got;
            }
            body.remaining -= n as u64;
            Ok(Some((Frame::data(Bytes::from(buf)), (body, true))))
        })
    }
}

fn shutting_down() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "server shutting down")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn parse_range_table() {
        use RangeDecision::*;
        let p = |start, end| Partial { start, end };
        let cases: &[(&str, u64, RangeDecision)] = &[
            ("bytes=0-99", 1000, p(0, 99)),
            ("bytes=0-0", 1000, p(0, 0)),
            ("bytes=900-", 1000, p(900, 999)),
            ("bytes=-100", 1000, p(900, 999)),
            ("bytes=-5000", 1000, p(0, 999)),
            ("bytes=990-2000", 1000, p(990, 999)),
            ("bytes=999-999", 1000, p(999, 999)),
            ("BYTES=1-2", 1000, p(1, 2)),
            ("bytes=1-2,", 1000, p(1, 2)),
            ("bytes= 1-2 ", 1000, p(1, 2)),
            ("bytes=0-99999999999999999999999", 1000, p(0, 999)),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-1001", 1000, Unsatisfiable),
            ("bytes=99999999999999999999999-", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=0-1,5-6", 1000, Full),
            ("bytes=5-1", 1000, Full),
            ("bytes=abc", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=1-x", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes=", 1000, Full),
            ("items=0-1", 1000, Full),
            ("0-1", 1000, Full),
        ];
        for (value, total, want) in cases {
            assert_eq!(parse_range(value, *total), *want, "{value} of {total}");
        }
    }

    #[test]
    fn relative_path_rejects_escapes() {
        assert_eq!(relative_path("/a/b.bin").unwrap(), PathBuf::from("a/b.bin"));
        assert_eq!(
            relative_path("//a/./b%20c").unwrap(),
            PathBuf::from("a/b c")
        );
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/a/..%2fx",
            "/a%5cb",
            "/a%00b",
            "/%ff",
        ] {
            assert_eq!(relative_path(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
        }
        assert_eq!(relative_path("/"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn if_range_uses_strong_comparison_and_exact_dates() {
        let mtime = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let v = Validators::new(1000, Some(mtime));
        assert!(v.if_range_holds(&v.etag.clone()));
        assert!(!v.if_range_holds(&format!("W/{}", v.etag)));
        assert!(!v.if_range_holds("\"other\""));
        assert!(v.if_range_holds(&httpdate::fmt_http_date(mtime)));
        let later = mtime + Duration::from_secs(1);
        assert!(!v.if_range_holds(&httpdate::fmt_http_date(later)));
        assert!(!v.if_range_holds("not a date"));
    }

    #[test]
    fn etag_changes_with_size_and_mtime() {
        let t = UNIX_EPOCH + Duration::new(10, 5);
        let a = Validators::new(16, Some(t)).etag;
        assert_eq!(a, format!("\"10-{:x}\"", 10_000_000_005u64));
        assert_ne!(a, Validators::new(17, Some(t)).etag);
        assert_ne!(
            a,
            Validators::new(16, Some(t + Duration::from_nanos(1))).etag
        );
    }

    #[test]
    fn pacer_spaces_sends_without_idle_credit() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(1000);
        assert_eq!(pacer.reserve(500, t0), t0);
        assert_eq!(pacer.reserve(500, t0), t0 + Duration::from_millis(500));
        assert_eq!(pacer.reserve(100, t0), t0 + Duration::from_secs(1));
        // After a long idle pause the next send goes now, with no burst owed.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve(1000, later), later);
        assert_eq!(pacer.reserve(1, later), later + Duration::from_secs(1));
    }

    fn body_bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    struct TestServer {
        addr: std::net::SocketAddr,
        token: CancellationToken,
        task: tokio::task::JoinHandle<io::Result<()>>,
        // Holds the files until the test ends.
        dir: tempfile::TempDir,
        client: reqwest::Client,
    }

    impl TestServer {
        /// Serves `<tmp>/root`; `<tmp>/outside.txt` sits next to it.
        async fn start(limit_rate: Option<u64>) -> TestServer {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir(&root).unwrap();
            std::fs::create_dir(root.join("sub")).unwrap();
            std::fs::write(root.join("data.bin"), body_bytes(1000)).unwrap();
            std::fs::write(root.join("sub/empty.bin"), b"").unwrap();
            std::fs::write(dir.path().join("outside.txt"), b"secret").unwrap();
            #[cfg(unix)]
            {
                std::os::unix::fs::symlink("../outside.txt", root.join("escape")).unwrap();
                std::os::unix::fs::symlink("data.bin", root.join("alias.bin")).unwrap();
            }
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let token = CancellationToken::new();
            let task = tokio::spawn(serve(
                listener,
                root,
                ServeOptions { limit_rate },
                token.clone(),
            ));
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            TestServer {
                addr,
                token,
                task,
                dir,
                client,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{}", self.addr, path)
        }

        async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
            let mut req = self.client.get(self.url(path));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send().await.unwrap()
        }

        /// Sends a request target verbatim: reqwest would normalise `..`.
        async fn raw_status(&self, target: &str) -> u16 {
            let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = Vec::new();
            s.read_to_end(&mut resp).await.unwrap();
            let text = String::from_utf8_lossy(&resp);
            text.split(' ').nth(1).unwrap().parse().unwrap()
        }

        async fn stop(self) {
            self.token.cancel();
            self.task.await.unwrap().unwrap();
            drop(self.dir);
        }
    }

    fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[tokio::test]
    async fn get_sends_whole_file_with_validators() {
        let srv = TestServer::start(None).await;
        let resp = srv.get("/data.bin", &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-length"), "1000");
        assert_eq!(header(&resp, "accept-ranges"), "bytes");
        assert_eq!(header(&resp, "content-type"), "application/octet-stream");
        assert!(header(&resp, "etag").starts_with("\"3e8-"));
        httpdate::parse_http_date(header(&resp, "last-modified")).unwrap();
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            body_bytes(1000).as_slice()
        );
        srv.stop().await;
    }

    #[tokio::test]
    async fn each_range_form_gets_206_with_exact_content_range() {
        let srv = TestServer::start(None).await;
        let body = body_bytes(1000);
        for (range, content_range, start, end) in [
            ("bytes=0-99", "bytes 0-99/1000", 0, 99),
            ("bytes=900-", "bytes 900-999/1000", 900, 999),
            ("bytes=-100", "bytes 900-999/1000", 900, 999),
            ("bytes=990-5000", "bytes 990-999/1000", 990, 999),
        ] {
            let resp = srv.get("/data.bin", &[("range", range)]).await;
            assert_eq!(resp.status(), 206, "{range}");
            assert_eq!(header(&resp, "content-range"), content_range);
            let len = (end - start + 1).to_string();
            assert_eq!(header(&resp, "content-length"), len);
            assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[start..=end]);
        }
        srv.stop().await;
    }

    #[tokio::test]
    async fn unsatisfiable_range_gets_416() {
        let srv = TestServer::start(None).await;
        let resp = srv.get("/data.bin", &[("range", "bytes=1000-")]).await;
        assert_eq!(resp.status(), 416);
        assert_eq!(header(&resp, "content-range"), "bytes */1000");
        let resp = srv.get("/sub/empty.bin", &[("range", "bytes=0-")]).await;
        assert_eq!(resp.status(), 416);
        assert_eq!(header(&resp, "content-range"), "bytes */0");
        srv.stop().await;
    }

    #[tokio::test]
    async fn multiple_or_malformed_ranges_get_the_whole_file() {
        let srv = TestServer::start(None).await;
        for range in ["bytes=0-1,5-6", "bytes=x-y", "lines=1-2"] {
            let resp = srv.get("/data.bin", &[("range", range)]).await;
            assert_eq!(resp.status(), 200, "{range}");
            assert_eq!(resp.bytes().await.unwrap().len(), 1000);
        }
        srv.stop().await;
    }

    #[tokio::test]
    async fn if_range_match_gives_206_and_mismatch_gives_200() {
        let srv = TestServer::start(None).await;
        let first = srv.get("/data.bin", &[]).await;
        let etag = header(&first, "etag").to_owned();
        let date = header(&first, "last-modified").to_owned();
        drop(first);

        for validator in [etag.as_str(), date.as_str()] {
            let resp = srv
                .get(
                    "/data.bin",
                    &[("range", "bytes=10-"), ("if-range", validator)],
                )
                .await;
            assert_eq!(resp.status(), 206, "{validator}");
            assert_eq!(header(&resp, "content-range"), "bytes 10-999/1000");
        }
        let weak = format!("W/{etag}");
        for validator in [
            "\"0-0\"",
            weak.as_str(),
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "garbage",
        ] {
            let resp = srv
                .get(
                    "/data.bin",
                    &[("range", "bytes=10-"), ("if-range", validator)],
                )
                .await;
            assert_eq!(resp.status(), 200, "{validator}");
            assert!(resp.headers().get("content-range").is_none());
            assert_eq!(resp.bytes().await.unwrap().len(), 1000);
        }
        srv.stop().await;
    }

    #[tokio::test]
    async fn head_sends_headers_without_body() {
        let srv = TestServer::start(None).await;
        let resp = srv.client.head(srv.url("/data.bin")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-length"), "1000");
        assert!(resp.headers().contains_key("etag"));
        assert!(resp.bytes().await.unwrap().is_empty());
        let resp = srv
            .client
            .head(srv.url("/data.bin"))
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206);
        assert_eq!(header(&resp, "content-length"), "10");
        srv.stop().await;
    }

    #[tokio::test]
    async fn traversal_attempts_are_refused() {
        let srv = TestServer::start(None).await;
        for target in [
            "/../Cargo.toml",
            "/../outside.txt",
            "/%2e%2e/outside.txt",
            "/sub/..%2F..%2Foutside.txt",
            "/sub%5c..%5c..%5coutside.txt",
            "/data.bin%00",
        ] {
            assert_eq!(srv.raw_status(target).await, 400, "{target}");
        }
        #[cfg(unix)]
        {
            assert_eq!(srv.raw_status("/escape").await, 404);
            assert_eq!(srv.raw_status("/alias.bin").await, 200);
        }
        srv.stop().await;
    }

    #[tokio::test]
    async fn missing_files_and_directories_get_404() {
        let srv = TestServer::start(None).await;
        for path in ["/nope.bin", "/", "/sub", "/sub/", "/data.bin/x"] {
            let resp = srv.get(path, &[]).await;
            assert_eq!(resp.status(), 404, "{path}");
        }
        let resp = srv.client.post(srv.url("/data.bin")).send().await.unwrap();
        assert_eq!(resp.status(), 405);
        srv.stop().await;
    }

    #[tokio::test]
    async fn rate_limit_paces_the_body() {
        // 1000 bytes at 2000 B/s in 125-byte slices: the first goes at once,
        // the other seven wait 62.5 ms each.
        let srv = TestServer::start(Some(2000)).await;
        let started = std::time::Instant::now();
        let resp = srv.get("/data.bin", &[]).await;
        assert_eq!(resp.bytes().await.unwrap().len(), 1000);
        assert!(started.elapsed() >= Duration::from_millis(430));
        srv.stop().await;
    }

    #[tokio::test]
    async fn shutdown_ends_a_slow_body_in_flight() {
        let srv = TestServer::start(Some(10)).await;
        let mut resp = srv.get("/data.bin", &[]).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.chunk().await.unwrap().is_some());
        srv.token.cancel();
        // serve() returns although 990 bytes at 10 B/s are still owed.
        srv.task.await.unwrap().unwrap();
        assert!(resp.chunk().await.is_err());
    }

    #[tokio::test]
    async fn missing_root_is_an_error_naming_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(
            listener,
            PathBuf::from("/definitely/not/here"),
            ServeOptions::default(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/definitely/not/here"));
    }
}
