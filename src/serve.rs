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
                    // Headers and body go out in separate writes: with Nagle
                    // on, the body waits for the client's delayed ACK (40 ms
                    // a response on Linux).
                    let _ = stream.set_nodelay(true);
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
    let Some((start, len)) = write_head(&mut resp, plan, total, &validators) else {
        return resp;
    };
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

/// Sets the status and headers for `plan`; returns the byte range to send,
/// or None when the answer is complete without a body (a 416).
fn write_head(
    resp: &mut Response<Body>,
    plan: RangeDecision,
    total: u64,
    validators: &Validators,
) -> Option<(u64, u64)> {
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
            return None;
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Some((start, len))
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
mod tests;
