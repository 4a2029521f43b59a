//! A download split over several connections: each fetches a byte range of
//! the preallocated `.part` with its own file handle, idle connections steal
//! the back half of the largest range still running, and a hashing task
//! follows the contiguous written prefix, so the checksum is ready moments
//! after the last byte instead of costing a second read of the whole file.
//!
//! Every ranged answer must be a 206 whose Content-Range is exactly the
//! range asked for, of the same total, with the same ETag; anything else
//! means the file changed or ranges do not work, and the whole file restarts
//! as a single stream rather than splicing versions.
//!
//! With mirrors, connection i starts on mirror i mod M, under its own host's
//! connection limit. A mirror that answers wrong or fails for good is
//! dropped for this file while others remain: its connections move on (or
//! end) and its range goes back to the plan. Which mirrors may be spread
//! over, and what each must match, the worker decides ([`Mirror`],
//! [`MirrorState`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use reqwest::header::{IF_RANGE, RANGE};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::body::{within_stall, Body};
use super::job::Job;
use super::limit::BodyLimit;
use super::Stop;
use crate::engine::retry::RetryState;
use crate::engine::segments::{Claim, Plan};
use crate::engine::ConnPermit;
use crate::error::DownloadError;
use crate::event::{Event, RestartReason, SwitchScope};
use crate::http::answer::{classify, Answer, Asked, Ours};
use crate::http::range::if_range_value;
use crate::store::manifest::JobRecord;
use crate::store::part::{self, PartWriter, PrefixHash, Start};

/// Longest request of a split download: long enough that a request's round
/// trip is noise, short enough that the rest of a range stays stealable.
const MAX_REQUEST: u64 = 16 << 20;

/// Largest read of the hashing task, to keep its buffer bounded.
const HASH_BLOCK: u64 = 4 << 20;

/// How a segmented run ended.
pub(super) enum SegEnd {
    /// Every byte is on disk and synced; the sha256 of the whole file.
    Complete(String),
    /// Ranges cannot be trusted for this file: start over as one stream.
    Restart(RestartReason),
    Failed(DownloadError),
    Cancelled,
}

/// Why one connection stopped.
enum ConnEnd {
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

/// One place a split fetches from.
pub(super) struct Mirror {
    /// Its index in the job's mirror list.
    pub index: usize,
    pub url: url::Url,
    /// Redacted, for messages.
    pub url_text: String,
    /// For `--max-per-host`.
    pub host: String,
}

/// What a split has learnt of one mirror.
pub(super) struct MirrorState {
    /// Given up for this file; its last error is in `error`.
    pub dropped: bool,
    pub error: Option<String>,
    /// False until the validators below are what this mirror must match;
    /// until then requests go without If-Range (a checksum vouches).
    pub known: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Its 206s must carry `etag` itself: a mirror trusted on the first
    /// mirror's strong ETag alone may not leave it out.
    pub must_echo_etag: bool,
}

/// What the connections of one file share.
pub(super) struct Ctx {
    pub job: Arc<Job>,
    /// The mirrors to spread over; the first answered the first request.
    pub mirrors: Vec<Mirror>,
    pub mirror_state: Mutex<Vec<MirrorState>>,
    pub headers: Vec<(String, String)>,
    pub part_path: PathBuf,
    pub plan: Mutex<Plan>,
    /// The job's record; saves copy it with the plan's current ranges.
    pub rec: Mutex<JobRecord>,
    /// Stops this file's connections (a child of the run's token).
    pub stop: CancellationToken,
    pub wake_hasher: Notify,
    pub fetched: AtomicU64,
}

/// Lock that survives a poisoned mutex: the data is plain bookkeeping that
/// a panicking connection cannot leave half-updated in a harmful way.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ctx {
    /// Each mirror's error, if it failed during the split.
    pub(super) fn mirror_errors(&self) -> Vec<Option<String>> {
        lock(&self.mirror_state)
            .iter()
            .map(|m| m.error.clone())
            .collect()
    }

    /// Gives up mirror `m` for this file because of `why`, unless it is the
    /// last one left; true when another mirror can take over.
    fn drop_mirror(&self, m: usize, why: &str) -> bool {
        let mut states = lock(&self.mirror_state);
        let others = states.iter().enumerate().any(|(i, s)| i != m && !s.dropped);
        states[m].error = Some(why.to_string());
        if others {
            states[m].dropped = true;
        }
        others
    }

    /// The live mirror after `m`, in order, wrapping round.
    fn next_live(&self, m: usize) -> Option<usize> {
        let states = lock(&self.mirror_state);
        let n = states.len();
        (0..n).map(|k| (m + k) % n).find(|&i| !states[i].dropped)
    }

    fn io_err(&self, source: std::io::Error) -> DownloadError {
        DownloadError::Io {
            path: self.part_path.clone(),
            source,
        }
    }

    /// Persists the plan; `durable` after a sync, else it only has to
    /// survive a killed process.
    fn save(&self, durable: bool) {
        let rec = {
            let plan = lock(&self.plan);
            let mut rec = lock(&self.rec);
            rec.segments = Some(plan.segments());
            rec.bytes_done = plan.synced_total();
            rec.boot_id = self.job.shared.boot_id.clone();
            rec.clone()
        };
        self.job.save(rec, durable);
    }

    fn progress(&self) {
        self.job.progress(|| lock(&self.plan).written_total());
    }
}

/// Runs the connections of one file until it is complete, must restart,
/// fails or is cancelled. `first` is the response already streaming the
/// file from byte 0, for a fresh plan.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    first: Option<reqwest::Response>,
    connections: usize,
    seed: u64,
) -> SegEnd {
    let hasher = tokio::spawn(hash_frontier(ctx.clone()));
    let mut conns = JoinSet::new();
    let mut first = first.map(|resp| (lock(&ctx.plan).take(0, 0), resp));
    // The job's own connection (its permit is held by the worker) is conn 0,
    // on the first mirror; extra ones need a permit of their own for their
    // mirror's host, taken only if one is free now.
    for conn in 0..connections.max(1) {
        let m = conn % ctx.mirrors.len().max(1);
        let permit = if conn == 0 {
            None
        } else {
            match ctx.job.shared.limits.try_acquire(&ctx.mirrors[m].host) {
                Some(permit) => Some(permit),
                None => continue,
            }
        };
        let task = connection(
            ctx.clone(),
            conn,
            m,
            first.take(),
            permit,
            seed ^ conn as u64,
        );
        conns.spawn(task);
    }
    let mut end: Option<ConnEnd> = None;
    while let Some(joined) = conns.join_next().await {
        let result = joined.unwrap_or_else(|err| {
            Err(ConnEnd::Failed(DownloadError::Io {
                path: ctx.part_path.clone(),
                source: std::io::Error::other(format!("a connection task failed: {err}")),
            }))
        });
        if let Err(stop) = result {
            // The first reason wins; the others were caused by stopping.
            if end.is_none() {
                ctx.stop.cancel();
                end = Some(stop);
            }
        }
    }
    let complete = lock(&ctx.plan).is_complete();
    if !complete {
        ctx.stop.cancel();
        hasher.abort();
    }
    ctx.wake_hasher.notify_one();
    if let Some(end) = end {
        ctx.save(true);
        return match end {
            ConnEnd::Cancelled => SegEnd::Cancelled,
            ConnEnd::Restart(reason) => SegEnd::Restart(reason),
            ConnEnd::Failed(err) => SegEnd::Failed(err),
        };
    }
    if !complete {
        if ctx.job.shared.cancel.is_cancelled() {
            ctx.save(true);
            return SegEnd::Cancelled;
        }
        return SegEnd::Restart(RestartReason::SplitUnfetched);
    }
    if let Err(err) = sync_file(&ctx).await {
        return SegEnd::Failed(err);
    }
    match hasher.await {
        Ok(Ok(digest)) => SegEnd::Complete(digest),
        Ok(Err(source)) => SegEnd::Failed(ctx.io_err(source)),
        Err(err) => SegEnd::Failed(ctx.io_err(std::io::Error::other(err))),
    }
}

async fn sync_file(ctx: &Ctx) -> Result<(), DownloadError> {
    part::sync_all(&ctx.part_path)
        .await
        .map_err(|e| ctx.io_err(e))?;
    lock(&ctx.plan).sync_all();
    Ok(())
}

/// One connection: fetch a claimed range, then claim or steal the next,
/// retrying its own failures with backoff from where it stopped.
async fn connection(
    ctx: Arc<Ctx>,
    conn: usize,
    mut m: usize,
    mut first: Option<(Claim, reqwest::Response)>,
    mut permit: Option<ConnPermit>,
    seed: u64,
) -> Result<(), ConnEnd> {
    let mut retry = RetryState::new(ctx.job.shared.cfg.retry, seed);
    let mut attempt = 0u32;
    loop {
        if ctx.stop.is_cancelled() {
            return Err(ConnEnd::Cancelled);
        }
        let (claim, resp) = match first.take() {
            Some(started) => (started.0, Some(started.1)),
            None => match lock(&ctx.plan).claim(conn) {
                Some(claim) => (claim, None),
                None => return Ok(()),
            },
        };
        attempt += 1;
        let result = match resp {
            // The open-ended first answer runs until its range is filled
            // (or cut short by a thief).
            Some(resp) => fetch(&ctx, m, claim, claim.from, resp).await,
            None => fill(&ctx, m, claim).await,
        };
        lock(&ctx.plan).release(claim.slot);
        let (end, got) = match result {
            Ok(()) => {
                retry.reset();
                continue;
            }
            Err(failed) => failed,
        };
        let err = match end {
            ConnEnd::Failed(err) => err,
            ConnEnd::Restart(reason) => {
                // A wrong answer from one mirror: the others may still be right.
                let why = format!("{}: {reason}", ctx.mirrors[m].url_text);
                if !ctx.drop_mirror(m, &why) {
                    return Err(ConnEnd::Restart(reason));
                }
                match move_on(&ctx, conn, &mut m, &mut permit, &why).await {
                    true => {
                        retry.reset();
                        continue;
                    }
                    false => return Ok(()),
                }
            }
            ConnEnd::Cancelled => return Err(ConnEnd::Cancelled),
        };
        let Some(backoff) = retry.next(&err, got > 0) else {
            if !super::fails_over(&err) || !ctx.drop_mirror(m, &err.chain()) {
                return Err(ConnEnd::Failed(err));
            }
            match move_on(&ctx, conn, &mut m, &mut permit, &err.chain()).await {
                true => {
                    retry.reset();
                    continue;
                }
                false => return Ok(()),
            }
        };
        // HTTP byte ranges name their last byte, not the end.
        let reason = format!(
            "bytes {}-{}: {}",
            claim.from,
            claim.end.saturating_sub(1),
            err.chain()
        );
        let path = ctx.job.path.clone();
        if !ctx
            .job
            .shared
            .back_off(&ctx.stop, ctx.job.id, path, attempt, reason, backoff)
            .await
        {
            return Err(ConnEnd::Cancelled);
        }
    }
}

/// Moves a connection whose mirror was dropped to the next live one, with a
/// permit for that host if one is free; false when the connection should
/// end instead (its range is already back in the plan for the others).
async fn move_on(
    ctx: &Ctx,
    conn: usize,
    m: &mut usize,
    permit: &mut Option<ConnPermit>,
    why: &str,
) -> bool {
    let Some(next) = ctx.next_live(*m) else {
        return false;
    };
    let Some(new_permit) = ctx.job.shared.limits.try_acquire(&ctx.mirrors[next].host) else {
        return false;
    };
    // The old host's permit goes back before the new one is used.
    *permit = Some(new_permit);
    let from = std::mem::replace(m, next);
    ctx.job
        .emit(Event::MirrorSwitched {
            id: ctx.job.id,
            path: ctx.job.path.clone(),
            from: ctx.mirrors[from].url_text.clone(),
            to: ctx.mirrors[next].url_text.clone(),
            reason: why.to_string(),
            scope: SwitchScope::Connection(conn),
        })
        .await;
    true
}

/// Fills a claimed range with bounded requests on a kept-alive connection,
/// each for part of what is left, so the rest stays free to steal.
async fn fill(ctx: &Ctx, m: usize, claim: Claim) -> Result<(), (ConnEnd, u64)> {
    let mut got = 0;
    loop {
        let (from, to) = {
            let mut plan = lock(&ctx.plan);
            let from = plan.position(claim.slot);
            match plan.next_request(claim.slot, MAX_REQUEST) {
                Some(to) => (from, to),
                None => return Ok(()),
            }
        };
        let resp = request(ctx, m, from, to).await.map_err(|end| (end, got))?;
        match fetch(ctx, m, claim, from, resp).await {
            Ok(()) => got += to - from,
            Err((end, more)) => return Err((end, got + more)),
        }
    }
}

/// Asks mirror `m` for `[from, to)` and checks the answer continues our file.
async fn request(ctx: &Ctx, m: usize, from: u64, to: u64) -> Result<reqwest::Response, ConnEnd> {
    let mirror = &ctx.mirrors[m];
    let (known, etag, last_modified, must_echo) = {
        let states = lock(&ctx.mirror_state);
        let state = &states[m];
        (
            state.known,
            state.etag.clone(),
            state.last_modified.clone(),
            state.must_echo_etag,
        )
    };
    let total = lock(&ctx.plan).total();
    let mut own = vec![(RANGE, format!("bytes={}-{}", from, to - 1))];
    if let Some(validator) = if_range_value(etag.as_deref(), last_modified.as_deref()) {
        own.push((IF_RANGE, validator));
    }
    let req = ctx.job.shared.client.get(&mirror.url, &ctx.headers, &own);
    let stall = ctx.job.shared.cfg.stall_timeout;
    let resp = within_stall(&ctx.stop, stall, &mirror.url_text, req)
        .await?
        .map_err(|err| DownloadError::fetching(&mirror.url_text, err))?;
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
                let mut states = lock(&ctx.mirror_state);
                states[m].known = true;
                states[m].etag = validators.etag;
                states[m].last_modified = validators.last_modified;
            }
            Ok(resp)
        }
        Answer::Whole { .. } => Err(ConnEnd::Restart(RestartReason::SplitWholeFile)),
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

/// Streams one answer into the file at `from` until it ends or the slot's
/// range (which a thief may shrink) is filled. On error, returns how many
/// bytes it wrote, so the caller knows whether the attempt made progress.
async fn fetch(
    ctx: &Ctx,
    m: usize,
    claim: Claim,
    from: u64,
    resp: reqwest::Response,
) -> Result<(), (ConnEnd, u64)> {
    let total = lock(&ctx.plan).total();
    let mut file = match PartWriter::open(&ctx.part_path, Start::Within(from), Some(total)).await {
        Ok(file) => file,
        Err(err) => return Err((ConnEnd::Failed(ctx.io_err(err)), 0)),
    };
    let mut pos = from;
    let url_text = &ctx.mirrors[m].url_text;
    let streamed = stream(ctx, url_text, claim, resp, &mut file, &mut pos).await;
    // Keep whatever arrived, whatever happened.
    let flushed = flush(ctx, claim, &mut file, pos).await;
    let got = pos - from;
    match (streamed, flushed) {
        (Err(end), _) => Err((end, got)),
        (Ok(()), Err(err)) => Err((ConnEnd::Failed(err), got)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

async fn stream(
    ctx: &Ctx,
    url_text: &str,
    claim: Claim,
    resp: reqwest::Response,
    file: &mut PartWriter,
    pos: &mut u64,
) -> Result<(), ConnEnd> {
    let mut body = Body::new(resp, &ctx.job.shared, &ctx.stop, url_text);
    let from = *pos;
    let limit = BodyLimit::new(ctx.job.shared.cfg.max_file_size);
    while let Some(chunk) = body.next(*pos).await? {
        // Under the plan's lock: another connection may have stolen our tail.
        // A bounded request's answer was checked to span exactly what we
        // asked; bytes past that (a Content-Length larger than the
        // Content-Range) are not vouched for and are never written.
        let (take, done, cut) = {
            let mut plan = lock(&ctx.plan);
            let len = chunk.len() as u64;
            let (allowed, cut) = limit.keep(*pos, len, plan.asked(claim.slot));
            let take = plan.receive(claim.slot, allowed);
            (take, plan.slot_done(claim.slot), cut)
        };
        file.write(&chunk[..take as usize])
            .await
            .map_err(|e| ConnEnd::Failed(ctx.io_err(e)))?;
        *pos += take;
        ctx.fetched.fetch_add(take, Ordering::Relaxed);
        if file.flush_due() || done {
            flush(ctx, claim, file, *pos)
                .await
                .map_err(ConnEnd::Failed)?;
            ctx.progress();
        }
        if file.sync_due(ctx.job.shared.cfg.checkpoint_every) {
            file.sync()
                .await
                .map_err(|e| ConnEnd::Failed(ctx.io_err(e)))?;
            let mut plan = lock(&ctx.plan);
            // The sync wrote out any bytes still buffered: count them too.
            plan.written(claim.slot, *pos - claim.start);
            plan.synced(claim.slot);
            drop(plan);
            ctx.save(true);
            ctx.wake_hasher.notify_one();
        }
        // Every byte that arrived counts, kept or not.
        body.pace(chunk.len() as u64).await?;
        // Reported even when the range is complete: the server is lying,
        // and the retry only costs this connection a backoff.
        if let Some(cut) = cut {
            return Err(ConnEnd::Failed(cut.into_error(&limit, url_text, from)));
        }
        if done {
            // The rest of this answer belongs to a range someone else owns.
            return Ok(());
        }
        body.record(take)?;
    }
    let plan = lock(&ctx.plan);
    if plan.slot_done(claim.slot) || plan.asked(claim.slot) == Some(*pos) {
        return Ok(());
    }
    Err(ConnEnd::Failed(DownloadError::Truncated {
        url: url_text.to_string(),
        got: *pos,
        expected: plan.asked(claim.slot).unwrap_or(claim.end),
    }))
}

/// Hands the gathered bytes to the kernel and records the new written offset.
async fn flush(
    ctx: &Ctx,
    claim: Claim,
    file: &mut PartWriter,
    pos: u64,
) -> Result<(), DownloadError> {
    if file.unflushed() == 0 {
        return Ok(());
    }
    // In the kernel before the manifest counts them.
    file.flush().await.map_err(|e| ctx.io_err(e))?;
    lock(&ctx.plan).written(claim.slot, pos - claim.start);
    ctx.save(false);
    ctx.wake_hasher.notify_one();
    Ok(())
}

/// Hashes the file front to back as the written prefix grows; the bytes are
/// still in the page cache, so this costs CPU, not a second trip to disk.
async fn hash_frontier(ctx: Arc<Ctx>) -> std::io::Result<String> {
    let total = lock(&ctx.plan).total();
    let mut prefix = PrefixHash::new(&ctx.part_path);
    loop {
        let frontier = lock(&ctx.plan).frontier();
        if frontier > prefix.len() {
            prefix
                .extend((frontier - prefix.len()).min(HASH_BLOCK))
                .await?;
            continue;
        }
        if prefix.len() == total {
            return Ok(prefix.digest());
        }
        ctx.wake_hasher.notified().await;
    }
}
