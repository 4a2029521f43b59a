//! The worker's side of a split download: whether a fresh answer is worth
//! splitting and over how many connections, preallocating the `.part`,
//! resuming a recorded plan, and turning how the connections ended
//! ([`segmented::SegEnd`]) into the job's next step. What the connections
//! of a split file share is `split_state`'s; the connections themselves,
//! their scheduling and work stealing are `segmented`'s.

use std::sync::Arc;

use super::segmented;
use super::split_state::{lock, Ctx};
use super::{Next, Outcome, Stop, Worker, AUTO_SPLIT, MIN_PIECE};
use crate::engine::segments::Plan;
use crate::error::DownloadError;
use crate::http::range::if_range_value;
use crate::http::redirect::redirected;
use crate::store::part::part_len;

impl Worker {
    /// Connections this file should use, given its length.
    pub(super) fn connections_for(&self, total: u64) -> usize {
        let cfg = &self.shared.cfg;
        let wanted = match cfg.split {
            Some(n) => n,
            None if total >= cfg.min_split_size => AUTO_SPLIT,
            None => 1,
        };
        wanted.min((total / MIN_PIECE).max(1) as usize)
    }

    /// A fresh 200 may be split when it is large enough, the server says it
    /// serves byte ranges, and a validator lets every range prove it comes
    /// from the same version of the file.
    pub(super) fn worth_splitting(&self, ranges: bool) -> bool {
        let validator = if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref());
        !self.no_split
            && self.pos == 0
            && ranges
            && validator.is_some()
            && self
                .rec
                .total
                .is_some_and(|total| self.connections_for(total) > 1)
    }

    /// Preallocates the file and records that it is split. `end`: where
    /// the first answer ends, if it was asked bounded.
    pub(super) async fn start_split(
        &mut self,
        first: reqwest::Response,
        end: Option<u64>,
    ) -> Result<Next, Stop> {
        self.touched = true;
        let total = self.rec.total.unwrap_or(0);
        crate::store::part::preallocate(&self.part_path, total)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        self.rec.segments = Some(Plan::new(total, MIN_PIECE).segments());
        self.rec.bytes_done = 0;
        self.save();
        Ok(Next::Split(first, end))
    }

    /// Runs a split download (fresh with `first` and where it ends, if it
    /// was asked bounded, or resumed from the manifest). None means ranges
    /// failed and the file starts over as one stream; otherwise the job's
    /// outcome.
    pub(super) async fn segmented(
        &mut self,
        first: Option<(reqwest::Response, Option<u64>)>,
    ) -> Option<Outcome> {
        let total = self.rec.total?;
        // A resumed plan may come from a run without the cap.
        if let Err(err) = self.limit().check_total(total, self.mirrors.text()) {
            return Some(self.fail(err).await);
        }
        let plan = match &first {
            Some((_, end)) => Plan::new(total, MIN_PIECE).first_asked(*end),
            None => self.resumed_plan(total).await?,
        };
        let first = first.map(|(resp, _)| resp);
        self.touched = true;
        self.job.started(plan.written_total(), Some(total)).await;
        let ctx = Arc::new(Ctx {
            job: self.job.clone(),
            mirrors: self.split_mirrors(),
            headers: self.spec.headers.clone(),
            part_path: self.part_path.clone(),
            plan: std::sync::Mutex::new(plan),
            rec: std::sync::Mutex::new(self.rec.clone()),
            stop: self.shared.cancel.child_token(),
            prefix: crate::store::prefix_hash::PrefixHash::new(&self.part_path),
            wake_hasher: tokio::sync::Notify::new(),
            fetched: std::sync::atomic::AtomicU64::new(0),
            connections: self.connections_for(total),
        });
        if let Some(first) = &first {
            // The first answer walked the redirects once for the file: the
            // ranges go where they led (mirror 0 is the one that answered).
            if redirected(self.mirrors.url(), first.url()) {
                ctx.mirrors.resolve(0, Some(first.url().clone()));
            }
        }
        let end = segmented::run(ctx.clone(), first, self.seed).await;
        self.fetched += ctx.fetched.load(std::sync::atomic::Ordering::Relaxed);
        self.split_ended(&ctx.mirrors);
        {
            let plan = lock(&ctx.plan);
            self.rec.segments = Some(plan.segments());
            self.rec.bytes_done = plan.synced_total();
            self.pos = plan.written_total();
        }
        self.after_split(end).await
    }

    /// The recorded plan, if the `.part` still holds what it counts (its
    /// full preallocated length, and a validator to prove the version);
    /// otherwise None, and the file starts over as one stream.
    async fn resumed_plan(&mut self, total: u64) -> Option<Plan> {
        let on_disk = part_len(&self.part_path).await.unwrap_or(0);
        let same_boot = self.shared.boot_id.is_some() && self.rec.boot_id == self.shared.boot_id;
        let segs = self.rec.segments.clone().unwrap_or_default();
        match Plan::resume(&segs, total, MIN_PIECE, same_boot) {
            Some(plan) if on_disk == total && self.has_validator() => Some(plan),
            _ => {
                self.rec.segments = None;
                self.rec.bytes_done = 0;
                None
            }
        }
    }

    /// The job's next step once the split's connections have all ended:
    /// None to go on as one stream (on another mirror, or from zero).
    async fn after_split(&mut self, end: segmented::SegEnd) -> Option<Outcome> {
        match end {
            segmented::SegEnd::Complete(digest) => Some(self.finish(digest).await),
            segmented::SegEnd::Failed(err) => {
                // Every mirror of the split failed: on to one not tried yet.
                if !self.mirrors.current_failed() {
                    self.mirrors.fail_current(err.cause());
                }
                match self.switch_mirror(&err).await {
                    Ok(true) => None,
                    Ok(false) => Some(self.fail_all(err).await),
                    Err(Stop::Cancelled) => Some(self.interrupted().await),
                    Err(Stop::Failed(err)) => Some(self.fail(err).await),
                }
            }
            segmented::SegEnd::Cancelled => Some(self.interrupted().await),
            segmented::SegEnd::Restart(reason) => {
                // The split's mirrors that failed are out of this run.
                if self.mirrors.current_failed() {
                    if let Some(next) = self.mirrors.next_untried() {
                        self.mirrors.switch_to(next);
                    }
                }
                self.no_split = true;
                match self.restart(reason).await {
                    Ok(()) => None,
                    Err(Stop::Cancelled) => Some(self.interrupted().await),
                    Err(Stop::Failed(err)) => Some(self.fail(err).await),
                }
            }
        }
    }

    pub(super) fn has_validator(&self) -> bool {
        if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref()).is_some()
    }
}
