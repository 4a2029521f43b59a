//! The mirrors of one job: the job's URL then the TAB-separated others,
//! which one is in use, and each one's last error once it has failed for
//! good this run ([`MirrorSet`]); and the worker's side of failing over:
//! when another mirror may take over, whether the bytes on disk stay, and
//! which mirrors a split file may spread over.
//!
//! Bytes from two servers are never spliced unverified: a new mirror keeps
//! the bytes only when it must prove they are its own too.

use url::Url;

use super::{segmented, Stop, Worker};
use crate::engine::{host_key, JobSpec};
use crate::error::DownloadError;
use crate::event::{Event, RestartReason, SwitchScope};
use crate::http::range::is_strong_etag;
use crate::safe_url::SafeUrl;

/// A job's mirrors, in list order, and the one in use.
pub(super) struct MirrorSet {
    urls: Vec<Url>,
    /// The mirror in use, an index into `urls`.
    current: usize,
    /// Each mirror's last error, once it has failed for good this run.
    errors: Vec<Option<String>>,
    /// The current mirror, for messages.
    text: SafeUrl,
}

impl MirrorSet {
    /// The job's URL, then its mirrors; the first in use.
    pub fn new(spec: &JobSpec) -> MirrorSet {
        let urls: Vec<Url> = std::iter::once(spec.url.clone())
            .chain(spec.mirrors.iter().cloned())
            .collect();
        MirrorSet {
            errors: vec![None; urls.len()],
            text: SafeUrl::new(&spec.url),
            urls,
            current: 0,
        }
    }

    /// The mirror in use.
    pub fn url(&self) -> &Url {
        &self.urls[self.current]
    }

    /// The mirror in use, for messages.
    pub fn text(&self) -> &SafeUrl {
        &self.text
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// The next mirror not yet failed this run, in list order after the
    /// current one.
    pub fn next_untried(&self) -> Option<usize> {
        let n = self.urls.len();
        (1..n)
            .map(|k| (self.current + k) % n)
            .find(|&i| self.errors[i].is_none())
    }

    /// Records that the mirror in use failed for good with `error`.
    pub fn fail_current(&mut self, error: String) {
        self.errors[self.current] = Some(error);
    }

    /// Records that mirror `index` failed for good (during a split).
    pub fn failed(&mut self, index: usize, error: String) {
        self.errors[index] = Some(error);
    }

    /// Whether the mirror in use has failed for good.
    pub fn current_failed(&self) -> bool {
        self.errors[self.current].is_some()
    }

    /// Moves to mirror `next`; returns the one left.
    pub fn switch_to(&mut self, next: usize) -> SafeUrl {
        self.current = next;
        std::mem::replace(&mut self.text, SafeUrl::new(&self.urls[next]))
    }

    /// "all N mirrors failed: URL: error; ...", each mirror's last error.
    pub fn summary(&self) -> String {
        let each: Vec<String> = self
            .urls
            .iter()
            .zip(&self.errors)
            .map(|(url, error)| {
                let error = error.as_deref().unwrap_or("not tried");
                format!("{}: {error}", SafeUrl::new(url))
            })
            .collect();
        format!(
            "all {} mirrors failed: {}",
            self.urls.len(),
            each.join("; ")
        )
    }

    /// The mirrors a split spreads over: the current one first, then, if
    /// `all`, every other that has not failed.
    pub fn spread(&self, all: bool) -> Vec<segmented::Mirror> {
        let others =
            (0..self.urls.len()).filter(|&i| all && i != self.current && self.errors[i].is_none());
        std::iter::once(self.current)
            .chain(others)
            .map(|index| segmented::Mirror {
                index,
                host: host_key(&self.urls[index]),
                url_text: SafeUrl::new(&self.urls[index]),
                url: self.urls[index].clone(),
            })
            .collect()
    }
}

/// Whether another mirror could do better: not for our own disk's
/// troubles, nor for a final file in the way.
pub(super) fn fails_over(err: &DownloadError) -> bool {
    !matches!(
        err,
        DownloadError::Io { .. }
            | DownloadError::Exists { .. }
            | DownloadError::SizeMismatch { .. }
            | DownloadError::Checksum { .. }
    )
}

impl Worker {
    /// Records that the current mirror failed for good with `err` and, if
    /// the error is the server's (not our disk's) and another mirror is
    /// left, moves to it. Ok(true) means try again on the new mirror.
    ///
    /// The bytes on disk stay only if the new mirror will have to prove
    /// they are its own: with a checksum, its 206 must give the same total
    /// and the checksum judges the end result; with a strong ETag, If-Range
    /// makes any other version answer 200, which restarts the file. Anything
    /// else starts over on the new mirror: bytes from two servers are never
    /// spliced unverified. A split file always starts over.
    pub(super) async fn fail_over(&mut self, err: &DownloadError) -> Result<bool, Stop> {
        self.mirrors.fail_current(err.chain());
        self.switch_mirror(err).await
    }

    /// The second half of [`Worker::fail_over`], for a current mirror whose
    /// error is already recorded.
    pub(super) async fn switch_mirror(&mut self, err: &DownloadError) -> Result<bool, Stop> {
        if !fails_over(err) {
            return Ok(false);
        }
        let Some(next) = self.mirrors.next_untried() else {
            return Ok(false);
        };
        let failed = self.mirrors.switch_to(next);
        self.emit(Event::MirrorSwitched {
            id: self.id,
            path: self.spec.path.to_string(),
            from: failed,
            to: self.mirrors.text().clone(),
            reason: err.cause(),
            scope: SwitchScope::Job {
                attempt: self.rec.attempts,
            },
        })
        .await;
        let strong_etag = self.rec.etag.as_deref().is_some_and(is_strong_etag);
        if self.rec.segments.is_none() && self.spec.checksum.is_some() {
            // The new mirror's own validators are learnt from its 206.
            self.rec.etag = None;
            self.rec.last_modified = None;
        } else if self.rec.segments.is_none() && strong_etag {
            self.rec.last_modified = None;
        } else if self.pos > 0 || self.rec.segments.is_some() {
            let reason = RestartReason::MirrorUnproven {
                url: self.mirrors.text().clone(),
            };
            self.restart(reason).await?;
        }
        Ok(true)
    }

    /// The mirrors a split spreads over, the current one first: all that
    /// have not failed, when every range can be proven to come from the same
    /// file (a checksum judges the result, or a strong ETag goes with every
    /// request as If-Range); otherwise only the current one.
    pub(super) fn spread_over(&self) -> Vec<segmented::Mirror> {
        let strong_etag = self.rec.etag.as_deref().is_some_and(is_strong_etag);
        let spread = self.spec.checksum.is_some() || strong_etag;
        self.mirrors.spread(spread)
    }

    /// What a split assumes of a mirror before its first answer: the one
    /// that answered first (or whose validators the manifest holds) and,
    /// without a checksum, every other, must match our validators; with a
    /// checksum another mirror's validators are learnt from its first 206.
    pub(super) fn mirror_start(&self, first: bool) -> segmented::MirrorState {
        let learn = !first && self.spec.checksum.is_some();
        segmented::MirrorState {
            dropped: false,
            error: None,
            known: !learn,
            etag: self.rec.etag.clone().filter(|_| !learn),
            last_modified: self.rec.last_modified.clone().filter(|_| !learn),
            must_echo_etag: !first && !learn,
        }
    }
}
