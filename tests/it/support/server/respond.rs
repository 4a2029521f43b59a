//! How the test server answers one request: scripted faults first, then
//! redirects, then files with Range / If-Range handled from RFC 9110
//! §13.1.5 and §14. The whole answer is decided under one lock; the body
//! itself is streamed by `conn`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::conn::{chunk_for, Body, InFlight, Pump, ResetSwitch, StreamEnd};
use super::{Fault, LoggedRequest, Resource, Shared, State};
use crate::support::ranges::{select_range, wrong_range, Selection};

impl Shared {
    /// Decides the whole answer under one lock; `None` means "drop the
    /// connection without a response".
    pub(super) fn respond(
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
        let ranges = !st.no_ranges.contains(&req.path);
        let selection = select(req, res, ranges, fault);

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
        let data = res.body.slice(start as usize..end as usize);
        let body = self.pump(st, req, fault, conn, data);
        builder.body(body).expect("valid file response")
    }

    /// The body of a GET answer: `data` paced, counted and cut short as
    /// `fault` says.
    fn pump(
        self: &Arc<Self>,
        st: &mut State,
        req: &RequestInfo,
        fault: Option<&Fault>,
        conn: &Arc<ResetSwitch>,
        data: Bytes,
    ) -> Body {
        let count = data.len() as u64;
        let (limit, end_with) = match fault {
            Some(Fault::CloseAfter(n)) => ((*n).min(count), StreamEnd::Error),
            Some(Fault::ResetAfter(n)) => ((*n).min(count), StreamEnd::Reset(Arc::clone(conn))),
            Some(Fault::StallAfter(n)) => ((*n).min(count), StreamEnd::Stall),
            Some(Fault::StallAtEnd) => (count, StreamEnd::Stall),
            _ => (count, StreamEnd::Finish),
        };
        let rate = st.rates.get(&req.path).copied();
        let drip = match fault {
            Some(Fault::Drip(ms)) => Some((0, Duration::from_millis(*ms))),
            Some(Fault::DripAfter(n, ms)) => Some((*n as usize, Duration::from_millis(*ms))),
            _ => None,
        };
        let guard = InFlight::enter(Arc::clone(self), st, &req.host, &req.path);
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
        pump.into_body()
    }
}

/// The part of `res` a request gets: what its Range and If-Range ask for
/// when the path serves ranges (else all of it), then bent by `fault`.
fn select(req: &RequestInfo, res: &Resource, ranges: bool, fault: Option<&Fault>) -> Selection {
    let len = res.body.len() as u64;
    let selection = match req.header("range") {
        // RFC 9110 §13.1.5: a validator that does not match means "send
        // the whole current representation".
        Some(range) if ranges && if_range_matches(req.header("if-range"), res) => {
            select_range(range, len)
        }
        _ => Selection::Full,
    };
    match fault {
        Some(Fault::IgnoreRange) => Selection::Full,
        Some(Fault::WrongContentRange) => wrong_range(&selection, len),
        _ => selection,
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
pub(super) struct RequestInfo {
    method: Method,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    at: Instant,
    wall: SystemTime,
}

impl RequestInfo {
    pub(super) fn new(req: &Request<Incoming>) -> RequestInfo {
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
