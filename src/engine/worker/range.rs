//! One range of a split file, from request to disk: the bounded request
//! with Range and If-Range and the verdict on its answer
//! ([`crate::http::answer`]), its body into the `.part` through the range's
//! own [`PartWriter`] (each write's offset recorded once the kernel has the
//! bytes), and the hash that follows the contiguous written prefix, so the
//! checksum is ready moments after the last byte instead of costing a
//! second read of the whole file.
//!
//! Which range a connection fetches, and what it does when one fails, is
//! `segmented`'s business.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::header::{IF_RANGE, RANGE};

use super::body::{within_stall, Body};
use super::limit::{BodyLimit, Cut};
use super::mirrors::MirrorState;
use super::pour::{pour, Admit, Sink};
use super::split_state::{lock, Ctx};
use super::Stop;
use crate::engine::segments::Claim;
use crate::error::DownloadError;
use crate::event::RestartReason;
use crate::http::answer::{classify, Answer, Asked, Ours};
use crate::http::range::if_range_value;
use crate::http::redirect::redirected;
use crate::safe_url::SafeUrl;
use crate::store::part::{self, PartWriter, Start};

/// Largest read of the hashing task, to keep its buffer bounded.
const HASH_BLOCK: u64 = 4 << 20;

/// Why one connection stopped.
pub(super) enum ConnEnd {
    Failed(DownloadError),
    Restart(RestartReason),
    Cancelled,
}

impl From<DownloadError> for ConnEnd {
    fn from(err: DownloadError) -> Self {
        ConnEnd::Failed(err)
    }
}

impl From<Stop> for ConnEnd {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Failed(err) => ConnEnd::Failed(err),
            Stop::Cancelled => ConnEnd::Cancelled,
        }
    }
}

/// Asks mirror `m` for `[from, to)` and checks the answer continues our file.
pub(super) async fn request(
    ctx: &Ctx,
    m: usize,
    from: u64,
    to: u64,
) -> Result<reqwest::Response, ConnEnd> {
    let mirror = &ctx.mirrors[m];
    let MirrorState {
        known,
        etag,
        last_modified,
        must_echo_etag: must_echo,
        resolved,
        ..
    } = ctx.mirrors.state(m);
    let total = lock(&ctx.plan).total();
    let mut own = vec![(RANGE, format!("bytes={}-{}", from, to - 1))];
    if let Some(validator) = if_range_value(etag.as_deref(), last_modified.as_deref()) {
        own.push((IF_RANGE, validator));
    }
    let req = send(ctx, m, resolved.as_ref(), &own);
    let stall = ctx.job.shared.cfg.stall_timeout;
    let resp = within_stall(&ctx.stop, stall, &mirror.url_text, req)
        .await?
        .map_err(|err| DownloadError::fetching(&mirror.url_text, err))?;
    ctx.job.shared.limits.note_answer(&mirror.url, &resp);
    let asked = Asked::Span {
        first: from,
        last: to - 1,
        total,
    };
    let ours = Ours {
        etag: etag.as_deref(),
        must_echo_etag: must_echo,
    };
    match classify(
        resp.status(),
        resp.headers(),
        resp.content_length(),
        asked,
        ours,
    ) {
        Answer::Resumed { validators, .. } => {
            if !known {
                // Its first right answer: from now on it must keep to it.
                ctx.mirrors.learn(m, validators);
            }
            if redirected(&mirror.url, resp.url()) {
                ctx.mirrors.resolve(m, Some(resp.url().clone()));
            }
            Ok(resp)
        }
        // (A front is only ever the answer to the file's first request.)
        Answer::Whole { .. } | Answer::Front { .. } => {
            Err(ConnEnd::Restart(RestartReason::SplitWholeFile))
        }
        Answer::Mismatch(why) => Err(ConnEnd::Restart(why.into())),
        // A span never ends the file early: `AlreadyComplete` answers only
        // a request for the rest of it.
        Answer::AlreadyComplete => Err(ConnEnd::Restart(RestartReason::SplitUnsatisfiable {
            first: from,
            last: to - 1,
            total,
        })),
        Answer::Refused { status } => Err(ConnEnd::Failed(DownloadError::status(
            &mirror.url_text,
            status,
            resp.headers(),
        ))),
    }
}

/// Sends a range request for mirror `m`: straight to where its redirects
/// led before (`resolved`), if they did. Anything but a 206 from there (an
/// expired link, a moved file) goes back through the redirects before it
/// counts against the mirror.
async fn send(
    ctx: &Ctx,
    m: usize,
    resolved: Option<&url::Url>,
    own: &[(reqwest::header::HeaderName, String)],
) -> Result<reqwest::Response, crate::http::FetchError> {
    let (client, url) = (&ctx.job.shared.client, &ctx.mirrors[m].url);
    if let Some(at) = resolved {
        match client.get_at(url, Some(at), &ctx.headers, own).await {
            Ok(resp) if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT => return Ok(resp),
            _ => ctx.mirrors.resolve(m, None),
        }
    }
    client.get(url, &ctx.headers, own).await
}

/// Streams one answer into the file at `from` until it ends or the slot's
/// range (which a thief may shrink) is filled. On error, returns how many
/// bytes it wrote, so the caller knows whether the attempt made progress.
pub(super) async fn fetch(
    ctx: &Ctx,
    m: usize,
    claim: Claim,
    from: u64,
    resp: reqwest::Response,
) -> Result<(), (ConnEnd, u64)> {
    let total = lock(&ctx.plan).total();
    // Each connection's share of the file, halved: a kill can cost every
    // connection its buffer and the write in flight (see `write_buffer`).
    let share = total / ctx.connections.max(1) as u64 / 2;
    let mut file = PartWriter::new(&ctx.part_path, Start::Within(from), Some(share))
        .hashing(ctx.prefix.clone());
    let url_text = &ctx.mirrors[m].url_text;
    let body = Body::new(resp, &ctx.job.shared, &ctx.stop, url_text);
    let mut slot = Slot {
        ctx,
        claim,
        from,
        pos: from,
        recorded: from,
        limit: BodyLimit::new(ctx.job.shared.cfg.max_file_size),
        url_text,
    };
    let every = ctx.job.shared.cfg.checkpoint_every;
    let streamed = pour(&mut slot, body, &mut file, every).await;
    let pos = slot.pos;
    // Keep whatever arrived, whatever happened.
    let flushed = flush(ctx, claim, &mut file, pos).await;
    let got = pos - from;
    match (streamed, flushed) {
        (Err(end), _) => Err((end.into(), got)),
        (Ok(()), Err(err)) => Err((ConnEnd::Failed(err), got)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// One range's answer as a [`Sink`]: its bytes go to the slot the
/// connection claimed, as far as the plan still gives it.
struct Slot<'a> {
    ctx: &'a Ctx,
    claim: Claim,
    /// Where this answer's body starts: what its announced length counts from.
    from: u64,
    pos: u64,
    /// The offset up to which the plan counts this range written.
    recorded: u64,
    limit: BodyLimit,
    url_text: &'a SafeUrl,
}

impl Sink for Slot<'_> {
    fn pos(&self) -> u64 {
        self.pos
    }

    /// Under the plan's lock: another connection may have stolen our tail.
    /// A bounded request's answer was checked to span exactly what we
    /// asked; bytes past that (a Content-Length larger than the
    /// Content-Range) are not vouched for and are never written.
    fn admit(&mut self, len: u64) -> Admit {
        let mut plan = lock(&self.ctx.plan);
        let slot = self.claim.slot;
        let (allowed, cut) = self.limit.keep(self.pos, len, plan.asked(slot));
        let keep = plan.receive(slot, allowed);
        // Once the slot is filled, the rest of this answer belongs to a
        // range someone else owns.
        let done = plan.slot_done(slot);
        Admit {
            keep,
            filled: done,
            stop: done,
            cut,
        }
    }

    fn wrote(&mut self, kept: u64) {
        self.pos += kept;
        self.ctx.fetched.fetch_add(kept, Ordering::Relaxed);
    }

    /// Records what the kernel has taken without waiting for the write in
    /// flight, so the receive goes on while it lands.
    fn landed(&mut self, file: &PartWriter) {
        let landed = file.landed();
        if landed > self.recorded {
            self.recorded = landed;
            note_written(self.ctx, self.claim, landed);
        }
    }

    async fn flush(&mut self, file: &mut PartWriter) -> Result<(), DownloadError> {
        flush(self.ctx, self.claim, file, self.pos).await?;
        self.recorded = self.pos;
        Ok(())
    }

    async fn sync(&mut self, file: &mut PartWriter) -> Result<(), DownloadError> {
        let ctx = self.ctx;
        file.sync().await.map_err(|e| ctx.io_err(e))?;
        let mut plan = lock(&ctx.plan);
        // The sync wrote out any bytes still buffered: count them too.
        plan.written(self.claim.slot, self.pos - self.claim.start);
        plan.synced(self.claim.slot);
        drop(plan);
        ctx.save(true);
        ctx.wake_hasher.notify_one();
        Ok(())
    }

    fn cut(&self, cut: Cut) -> DownloadError {
        cut.into_error(&self.limit, self.url_text, self.from)
    }

    fn io_err(&self, source: std::io::Error) -> DownloadError {
        self.ctx.io_err(source)
    }

    fn ended(&mut self) -> Result<(), DownloadError> {
        let plan = lock(&self.ctx.plan);
        let slot = self.claim.slot;
        if plan.slot_done(slot) || plan.asked(slot) == Some(self.pos) {
            return Ok(());
        }
        Err(DownloadError::Truncated {
            url: self.url_text.clone(),
            got: self.pos,
            expected: plan.asked(slot).unwrap_or(self.claim.end),
        })
    }
}

/// Hands the gathered bytes to the kernel and records the new written offset.
async fn flush(
    ctx: &Ctx,
    claim: Claim,
    file: &mut PartWriter,
    pos: u64,
) -> Result<(), DownloadError> {
    if file.all_landed() {
        return Ok(());
    }
    // In the kernel before the manifest counts them.
    file.flush().await.map_err(|e| ctx.io_err(e))?;
    note_written(ctx, claim, pos);
    Ok(())
}

/// The range is in the kernel up to file offset `upto`: the plan and the
/// manifest may count it, and the hash may read it back if no write offered
/// it in order.
fn note_written(ctx: &Ctx, claim: Claim, upto: u64) {
    lock(&ctx.plan).written(claim.slot, upto - claim.start);
    ctx.save(false);
    ctx.wake_hasher.notify_one();
    ctx.progress();
}

/// Follows the written prefix to the end of the file: the writers' offers
/// hash the bytes that continue it as they land; what they could not (a
/// range written before the ones ahead of it, a resumed plan's ranges) is
/// read back here, from the page cache.
pub(super) async fn hash_frontier(ctx: Arc<Ctx>) -> std::io::Result<String> {
    let total = lock(&ctx.plan).total();
    let prefix = &ctx.prefix;
    loop {
        let frontier = lock(&ctx.plan).frontier();
        let len = prefix.len();
        if frontier > len {
            prefix.extend_to(frontier.min(len + HASH_BLOCK)).await?;
            continue;
        }
        if prefix.len() == total {
            return Ok(prefix.digest());
        }
        ctx.wake_hasher.notified().await;
    }
}

/// Syncs the whole `.part` once every range is written, before the file
/// may be recorded as done.
pub(super) async fn sync_file(ctx: &Ctx) -> Result<(), DownloadError> {
    part::sync_all(&ctx.part_path)
        .await
        .map_err(|e| ctx.io_err(e))?;
    lock(&ctx.plan).sync_all();
    Ok(())
}
