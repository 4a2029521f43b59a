//! The test server's thread and connections, and the body stream of each
//! answer: pacing to a rate, counting bytes served and bodies in flight,
//! and the faults that cut a body short, stall it or reset its connection.

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::respond::RequestInfo;
use super::{Shared, State};

/// Body and service errors; a concrete type keeps hyper's bounds simple.
pub(super) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Largest body chunk handed to hyper; small enough that pacing and byte
/// counting see many steps on multi-MiB bodies.
const CHUNK: usize = 16 * 1024;

/// How long a stalled body holds its connection if the server is not shut
/// down first.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Pause before a body stream errors: hyper drops buffered-but-unflushed
/// bytes when the body fails, so give it a turn to flush the last chunk.
const FLUSH_GRACE: Duration = Duration::from_millis(20);

/// Body chunk size for a paced (or unpaced) body.
pub(super) fn chunk_for(rate: Option<u64>) -> usize {
    // About 50 steps a second keeps paced bodies smooth.
    rate.map_or(CHUNK, |r| ((r / 50) as usize).clamp(1024, CHUNK))
}

/// Counts one streaming body for its host and its path until dropped.
pub(super) struct InFlight {
    shared: Arc<Shared>,
    host: String,
    path: String,
}

impl InFlight {
    pub(super) fn enter(shared: Arc<Shared>, st: &mut State, host: &str, path: &str) -> InFlight {
        let now = st.in_flight.entry(host.to_string()).or_default();
        *now += 1;
        let now = *now;
        let max = st.max_in_flight.entry(host.to_string()).or_default();
        *max = (*max).max(now);
        *st.in_flight_path.entry(path.to_string()).or_default() += 1;
        st.in_flight_total += 1;
        st.max_in_flight_total = st.max_in_flight_total.max(st.in_flight_total);
        // A test may be waiting for this body to start.
        shared.served_changed.notify_all();
        InFlight {
            shared,
            host: host.to_string(),
            path: path.to_string(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = st.in_flight_path.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
        st.in_flight_total = st.in_flight_total.saturating_sub(1);
        self.shared.served_changed.notify_all();
    }
}

pub(super) enum StreamEnd {
    Finish,
    Error,
    /// Fail the body after switching its connection to reset on close.
    Reset(Arc<ResetSwitch>),
    Stall,
}

/// A second handle on one connection's socket, so a fault can make the close
/// that hyper performs a TCP reset while hyper owns the stream.
pub(super) struct ResetSwitch {
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
pub(super) struct Pump {
    pub(super) shared: Arc<Shared>,
    pub(super) path: String,
    pub(super) data: Bytes,
    pub(super) pos: usize,
    pub(super) limit: usize,
    pub(super) end: StreamEnd,
    pub(super) rate: Option<u64>,
    pub(super) chunk: usize,
    /// `Fault::Drip` / `Fault::DripAfter`: the body offset the drip starts
    /// at, and the pause before each one-byte chunk from there on.
    pub(super) drip: Option<(usize, Duration)>,
    pub(super) started: tokio::time::Instant,
    /// `None` once the body is over (ended, failed or stalled out).
    pub(super) guard: Option<InFlight>,
}

impl Pump {
    pub(super) fn into_body(self) -> Body {
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
        if !self.pass_gate().await {
            self.guard = None;
            return Some(Err(io::Error::other("test server shutting down")));
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

    /// Waits while the gate of `TestServer::hold_path_at` holds this
    /// path's bodies, without blocking the server's other connections;
    /// false if the server is shutting down.
    async fn pass_gate(&self) -> bool {
        loop {
            let opened = self.shared.gate_opened.notified();
            tokio::pin!(opened);
            // Enabled before the check, so a release in between still wakes it.
            opened.as_mut().enable();
            if !self.shared.lock().gated(&self.path) {
                return true;
            }
            tokio::select! {
                () = opened => {}
                () = self.shared.shutdown.cancelled() => return false,
            }
        }
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
pub(super) fn run(shared: Arc<Shared>, listener: StdListener) {
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
