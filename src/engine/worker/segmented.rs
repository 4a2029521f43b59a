//! The connections of a split download and their scheduling: each claims
//! a byte range of the preallocated `.part` and fills it with bounded
//! requests, so that idle connections can steal what follows a request
//! (work in file order, see `segments`) or part of a range still running;
//! a failed connection backs off and resumes
//! its range, or hands it back. How one range is requested, checked and
//! written, and the hash following the written prefix, are `range`'s.
//!
//! Every ranged answer must be a 206 whose Content-Range is exactly the
//! range asked for, of the same total, with the same ETag; anything else
//! means the file changed or ranges do not work, and the whole file restarts
//! as a single stream rather than splicing versions.
//!
//! A file takes what connection slots are free when it starts; slots that
//! free up later, once the dispatcher has no queued job for them, bring in
//! more connections up to its count (`Growth`), each joining by stealing.
//!
//! With mirrors, connection i starts on mirror i mod M, under its own host's
//! connection limit. A mirror that answers wrong or fails for good is
//! dropped for this file while others remain: its connections move on (or
//! end) and its range goes back to the plan. Which mirrors may be spread
//! over, and what each must match, the worker decides
//! ([`super::mirrors::SplitMirrors`]).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::range::{fetch, hash_frontier, request, sync_file, ConnEnd};
use super::split_state::{lock, Ctx};
use crate::engine::retry::RetryState;
use crate::engine::segments::{Claim, MAX_REQUEST};
use crate::engine::ConnPermit;
use crate::error::DownloadError;
use crate::event::{Event, RestartReason, SwitchScope};

/// How a segmented run ended.
pub(super) enum SegEnd {
    /// Every byte is on disk and synced; the sha256 of the whole file.
    Complete(String),
    /// Ranges cannot be trusted for this file: start over as one stream.
    Restart(RestartReason),
    Failed(DownloadError),
    Cancelled,
}

/// Runs the connections of one file until it is complete, must restart,
/// fails or is cancelled. `first` is the response already streaming the
/// file from byte 0, for a fresh plan (its bound, if any, is in the plan).
pub(super) async fn run(ctx: Arc<Ctx>, first: Option<reqwest::Response>, seed: u64) -> SegEnd {
    let connections = ctx.connections;
    let hasher = tokio::spawn(hash_frontier(ctx.clone()));
    // Subscribed before the first slots are taken, so no slot freed
    // after that goes unoffered.
    let growth = Growth {
        offers: ctx.job.shared.limits.spare_offers(),
        connections: connections.max(1),
        next_conn: connections.max(1),
        seed,
    };
    let conns = spawn_connections(&ctx, first, connections, seed);
    let end = first_failure(&ctx, conns, growth).await;
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

/// Starts up to `connections` connections. The job's own (its permit is
/// held by the worker) is conn 0, on the first mirror, with `first`; extra
/// ones need a permit of their own for their mirror's host, taken only if
/// one is free now.
fn spawn_connections(
    ctx: &Arc<Ctx>,
    first: Option<reqwest::Response>,
    connections: usize,
    seed: u64,
) -> JoinSet<Result<(), ConnEnd>> {
    let mut conns = JoinSet::new();
    let mut first = first.map(|resp| (lock(&ctx.plan).take(0, 0), Some(resp)));
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
    conns
}

/// Connections that join a running split as slots are offered.
struct Growth {
    offers: watch::Receiver<u64>,
    /// The file's connection count: it grows no further.
    connections: usize,
    /// The id of the next connection to join.
    next_conn: usize,
    seed: u64,
}

impl Growth {
    /// Adds connections while the file has fewer than its count, a free
    /// slot is found on one of its live mirrors, and the plan has a range
    /// worth another connection. False once it has none: the ranges left
    /// only shrink (a failed one goes back to the connections still
    /// running), so the file stops asking.
    fn join(&mut self, ctx: &Arc<Ctx>, conns: &mut JoinSet<Result<(), ConnEnd>>) -> bool {
        while conns.len() < self.connections && !ctx.stop.is_cancelled() {
            let conn = self.next_conn;
            let Some((m, permit)) = free_mirror(ctx, conn) else {
                return true;
            };
            // A claim only after the permit, or a slot taken by another
            // file in between would leave a claimed range with no one on it.
            let Some(claim) = lock(&ctx.plan).claim(conn) else {
                return false;
            };
            self.next_conn += 1;
            let task = connection(
                ctx.clone(),
                conn,
                m,
                Some((claim, None)),
                Some(permit),
                self.seed ^ conn as u64,
            );
            conns.spawn(task);
        }
        true
    }
}

/// A live mirror, tried from connection `conn`'s own (i mod M) on, whose
/// host has a slot free now, with that slot.
fn free_mirror(ctx: &Ctx, conn: usize) -> Option<(usize, ConnPermit)> {
    let count = ctx.mirrors.len().max(1);
    let mut tried = Vec::with_capacity(count);
    let mut at = conn % count;
    while let Some(m) = ctx.mirrors.next_live(at) {
        if tried.contains(&m) {
            return None;
        }
        tried.push(m);
        if let Some(permit) = ctx.job.shared.limits.try_acquire(&ctx.mirrors[m].host) {
            return Some((m, permit));
        }
        at = m + 1;
    }
    None
}

/// Waits for every connection, letting more join as slots are offered;
/// the first that stopped the split says why (the others were stopped by
/// it). None when all ended on their own.
async fn first_failure(
    ctx: &Arc<Ctx>,
    mut conns: JoinSet<Result<(), ConnEnd>>,
    mut growth: Growth,
) -> Option<ConnEnd> {
    let mut end: Option<ConnEnd> = None;
    let mut growing = true;
    loop {
        let wanted = growing && end.is_none() && conns.len() < growth.connections;
        let joined = tokio::select! {
            joined = conns.join_next() => match joined {
                Some(joined) => joined,
                None => break,
            },
            offered = growth.offers.changed(), if wanted => {
                // The dispatcher outlives every job; if it is gone, so is
                // the point of growing.
                growing = offered.is_ok() && growth.join(ctx, &mut conns);
                continue;
            }
        };
        let result = joined.unwrap_or_else(|err| {
            Err(ConnEnd::Failed(DownloadError::Io {
                path: ctx.part_path.clone(),
                source: std::io::Error::other(format!("a connection task failed: {err}")),
            }))
        });
        if let Err(stop) = result {
            if end.is_none() {
                ctx.stop.cancel();
                end = Some(stop);
            }
        }
    }
    end
}

/// One connection: fetch a claimed range, then claim or steal the next,
/// retrying its own failures with backoff from where it stopped.
async fn connection(
    ctx: Arc<Ctx>,
    conn: usize,
    m: usize,
    mut first: Option<(Claim, Option<reqwest::Response>)>,
    permit: Option<ConnPermit>,
    seed: u64,
) -> Result<(), ConnEnd> {
    let mut me = Conn {
        retry: RetryState::new(ctx.job.shared.cfg.retry, seed),
        attempt: 0,
        ctx,
        conn,
        m,
        _permit: permit,
    };
    loop {
        let ctx = me.ctx.clone();
        if ctx.stop.is_cancelled() {
            return Err(ConnEnd::Cancelled);
        }
        let (claim, resp) = match first.take() {
            Some(started) => started,
            None => match lock(&ctx.plan).claim(conn) {
                Some(claim) => (claim, None),
                None => return Ok(()),
            },
        };
        me.attempt += 1;
        let result = match resp {
            // The first answer runs until what it was asked for arrives,
            // or, open-ended, until its range is filled (or cut short by
            // a thief).
            Some(resp) => fetch(&ctx, me.m, claim, claim.from, resp).await,
            None => fill(&ctx, me.m, claim).await,
        };
        lock(&ctx.plan).release(claim.slot);
        match result {
            Ok(()) => me.retry.reset(),
            Err((end, got)) => match me.recover(claim, end, got).await? {
                After::Again => {}
                After::Quit => return Ok(()),
            },
        }
    }
}

/// One connection's own state between its requests.
struct Conn {
    ctx: Arc<Ctx>,
    conn: usize,
    /// The mirror it fetches from, an index into `ctx.mirrors`.
    m: usize,
    /// The permit for its mirror's host; None for the job's own connection,
    /// whose permit the worker holds.
    _permit: Option<ConnPermit>,
    retry: RetryState,
    attempt: u32,
}

/// What a connection does after a failed range (now back in the plan).
enum After {
    /// Claim the next range (after a backoff, or on another mirror).
    Again,
    /// End: the other connections finish the file.
    Quit,
}

impl Conn {
    /// Decides what follows a range that ended with `end` after `got`
    /// bytes: a backoff and another try, a move to another mirror, or the
    /// end of this connection; an error ends the whole split.
    async fn recover(&mut self, claim: Claim, end: ConnEnd, got: u64) -> Result<After, ConnEnd> {
        let err = match end {
            ConnEnd::Failed(err) => err,
            ConnEnd::Restart(reason) => {
                // A wrong answer from one mirror: the others may still be right.
                let why = crate::event::Cause::new(reason.to_string())
                    .context(self.ctx.mirrors[self.m].url_text.to_string());
                if !self.ctx.mirrors.drop_mirror(self.m, &why) {
                    return Err(ConnEnd::Restart(reason));
                }
                return Ok(self.move_on(&why).await);
            }
            ConnEnd::Cancelled => return Err(ConnEnd::Cancelled),
        };
        let Some(backoff) = self.retry.next(&err, got > 0) else {
            let why = err.cause();
            if !super::fails_over(&err) || !self.ctx.mirrors.drop_mirror(self.m, &why) {
                return Err(ConnEnd::Failed(err));
            }
            return Ok(self.move_on(&why).await);
        };
        // HTTP byte ranges name their last byte, not the end.
        let reason = err.cause().context(format!(
            "bytes {}-{}",
            claim.from,
            claim.end.saturating_sub(1)
        ));
        let ctx = &self.ctx;
        let (id, path) = (ctx.job.id, ctx.job.path.clone());
        let shared = &ctx.job.shared;
        if !shared
            .back_off(&ctx.stop, id, path, self.attempt, reason, backoff)
            .await
        {
            return Err(ConnEnd::Cancelled);
        }
        Ok(After::Again)
    }

    /// Moves a connection whose mirror was dropped to the next live one,
    /// with a permit for that host if one is free; else the connection ends
    /// (its range is already back in the plan for the others).
    async fn move_on(&mut self, why: &crate::event::Cause) -> After {
        let ctx = &self.ctx;
        let Some(next) = ctx.mirrors.next_live(self.m) else {
            return After::Quit;
        };
        let Some(permit) = ctx.job.shared.limits.try_acquire(&ctx.mirrors[next].host) else {
            return After::Quit;
        };
        // The old host's permit goes back before the new one is used.
        self._permit = Some(permit);
        let from = std::mem::replace(&mut self.m, next);
        ctx.job
            .emit(Event::MirrorSwitched {
                id: ctx.job.id,
                path: ctx.job.path.clone(),
                from: ctx.mirrors[from].url_text.clone(),
                to: ctx.mirrors[next].url_text.clone(),
                reason: why.clone(),
                scope: SwitchScope::Connection(self.conn),
            })
            .await;
        self.retry.reset();
        After::Again
    }
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
