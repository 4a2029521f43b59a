//! Waiting on the network for one answer: its headers, then its body chunk
//! by chunk, each wait under the stop token, the stall deadline and the
//! `--lowest-speed` floor, with the run's `--max-speed` throttle between
//! chunks. The single stream and every connection of a split file read
//! through this one loop.
//!
//! Where the bytes go, and how much of each chunk the answer vouches for,
//! is the caller's business (the `.part` at the end of a single stream, a
//! range's slot of a split plan): this module never touches the disk or
//! the manifest, and does not decide when a body is complete.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::speed::SpeedFloor;
use super::{Shared, Stop};
use crate::engine::throttle::Throttle;
use crate::error::DownloadError;
use crate::safe_url::SafeUrl;

/// Resolves when `floor`'s verdict falls if no more bytes arrive; never
/// when there is no floor. [`Body::next`] selects on it beside the read.
async fn until_due(floor: Option<&SpeedFloor>) {
    match floor {
        Some(floor) => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(floor.deadline())).await;
        }
        None => std::future::pending().await,
    }
}

/// Waits for `fut` (a request, until its answer's headers) under `stop`
/// and the stall timeout; `url` names the server in the stall error.
pub(super) async fn within_stall<T>(
    stop: &CancellationToken,
    stall: Duration,
    url: &SafeUrl,
    fut: impl Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => Err(Stop::Cancelled),
        out = tokio::time::timeout(stall, fut) => out.map_err(|_| {
            Stop::Failed(DownloadError::Stalled { url: url.clone(), secs: stall.as_secs_f64() })
        }),
    }
}

/// One answer's body being read.
pub(super) struct Body<'a> {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    /// The server, for errors.
    url: &'a SafeUrl,
    stop: &'a CancellationToken,
    stall: Duration,
    /// When the next chunk must have come by.
    read_by: tokio::time::Instant,
    floor: Option<SpeedFloor>,
    throttle: Option<&'a Throttle>,
}

impl<'a> Body<'a> {
    /// Starts reading `resp`'s body; the stall clock and the speed floor's
    /// window start now.
    pub fn new(
        resp: reqwest::Response,
        shared: &'a Shared,
        stop: &'a CancellationToken,
        url: &'a SafeUrl,
    ) -> Body<'a> {
        let cfg = &shared.cfg;
        Body {
            chunks: resp.bytes_stream().boxed(),
            url,
            stop,
            stall: cfg.stall_timeout,
            read_by: tokio::time::Instant::now() + cfg.stall_timeout,
            floor: SpeedFloor::new(cfg.lowest_speed, cfg.speed_window, Instant::now()),
            throttle: shared.throttle.as_ref(),
        }
    }

    /// The next chunk, or None at the end of the body. `got` is the file
    /// offset reached so far, for the error if the body breaks off.
    pub async fn next(&mut self, got: u64) -> Result<Option<Bytes>, Stop> {
        let next = loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Err(Stop::Cancelled),
                next = tokio::time::timeout_at(self.read_by, self.chunks.next()) => break next,
                // A drip may be too slow to wait for its next byte: the
                // verdict falls when it is due, not when a byte comes.
                _ = until_due(self.floor.as_ref()) => {
                    if let Some(Err(slow)) = self.floor.as_mut().map(|f| f.check(Instant::now())) {
                        return Err(Stop::Failed(slow.into_error(self.url)));
                    }
                }
            }
        };
        match next {
            Err(_) => Err(Stop::Failed(DownloadError::Stalled {
                url: self.url.clone(),
                secs: self.stall.as_secs_f64(),
            })),
            Ok(None) => Ok(None),
            Ok(Some(Err(source))) => Err(Stop::Failed(DownloadError::Body {
                url: self.url.clone(),
                got,
                source,
            })),
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        }
    }

    /// Counts `kept` bytes of a chunk towards the speed floor; an error
    /// when the body has fallen below it.
    pub fn record(&mut self, kept: u64) -> Result<(), Stop> {
        match self.floor.as_mut() {
            Some(floor) => floor
                .record(Instant::now(), kept)
                .map_err(|slow| Stop::Failed(slow.into_error(self.url))),
            None => Ok(()),
        }
    }

    /// Between chunks: takes `len` bytes (every byte that arrived, kept or
    /// not) from the run's throttle, then starts the stall clock for the
    /// next read. Before the next read, so while we wait the socket fills
    /// and TCP slows the server down; the wait is ours, so it is not held
    /// against the server's speed.
    pub async fn pace(&mut self, len: u64) -> Result<(), Stop> {
        if let Some(throttle) = self.throttle {
            let waiting = Instant::now();
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Err(Stop::Cancelled),
                _ = throttle.take(len) => {}
            }
            if let Some(floor) = self.floor.as_mut() {
                floor.excuse(Instant::now(), waiting.elapsed());
            }
        }
        self.read_by = tokio::time::Instant::now() + self.stall;
        Ok(())
    }
}
