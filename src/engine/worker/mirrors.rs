//! The mirrors of one job: the job's URL then the TAB-separated others,
//! which one is in use, and each one's last error once it has failed for
//! good this run ([`MirrorSet`]); the mirrors a split file spreads over and
//! what its connections learn of each ([`SplitMirrors`], shared by them
//! and handed back to the set when the split ends); and the worker's side
//! of failing over: when another mirror may take over, whether the bytes on
//! disk stay, and which mirrors a split file may spread over.
//!
//! Bytes from two servers are never spliced unverified: a new mirror keeps
//! the bytes only when it must prove they are its own too.

use std::sync::{Mutex, MutexGuard};

use url::Url;

use super::{Stop, Worker};
use crate::engine::{host_key, JobSpec};
use crate::error::DownloadError;
use crate::event::{Cause, Event, RestartReason, SwitchScope};
use crate::http::answer::Validators;
use crate::http::range::is_strong_etag;
use crate::safe_url::SafeUrl;

/// A job's mirrors, in list order, and the one in use.
pub(super) struct MirrorSet {
    urls: Vec<Url>,
    /// The mirror in use, an index into `urls`.
    current: usize,
    /// Each mirror's last error, once it has failed for good this run.
    errors: Vec<Option<Cause>>,
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
    pub fn fail_current(&mut self, error: Cause) {
        self.errors[self.current] = Some(error);
    }

    /// Records that mirror `index` failed for good (during a split).
    pub fn failed(&mut self, index: usize, error: Cause) {
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
    pub fn summary(&self) -> Cause {
        let each: Vec<String> = self
            .urls
            .iter()
            .zip(&self.errors)
            .map(|(url, error)| {
                let error = error.as_deref().unwrap_or("not tried");
                format!("{}: {error}", SafeUrl::new(url))
            })
            .collect();
        // One message for the list: its entries stand side by side, they
        // are not causes of each other.
        Cause::new(each.join("; ")).context(format!("all {} mirrors failed", self.urls.len()))
    }

    /// The mirrors a split spreads over: the current one first, then, if
    /// `all`, every other that has not failed.
    pub fn spread(&self, all: bool) -> Vec<Mirror> {
        let others =
            (0..self.urls.len()).filter(|&i| all && i != self.current && self.errors[i].is_none());
        std::iter::once(self.current)
            .chain(others)
            .map(|index| Mirror {
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
        self.mirrors.fail_current(err.cause());
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
    pub(super) fn split_mirrors(&self) -> SplitMirrors {
        let strong_etag = self.rec.etag.as_deref().is_some_and(is_strong_etag);
        let spread = self.spec.checksum.is_some() || strong_etag;
        let list = self.mirrors.spread(spread);
        let states = (0..list.len())
            .map(|at| self.mirror_start(at == 0))
            .collect();
        SplitMirrors {
            list,
            states: Mutex::new(states),
        }
    }

    /// Hands what a split learnt of its mirrors back to the job's set: the
    /// ones that failed are out of this run.
    pub(super) fn split_ended(&mut self, split: &SplitMirrors) {
        for (mirror, error) in split.list.iter().zip(split.errors()) {
            if let Some(error) = error {
                self.mirrors.failed(mirror.index, error);
            }
        }
    }

    /// What a split assumes of a mirror before its first answer: the one
    /// that answered first (or whose validators the manifest holds) and,
    /// without a checksum, every other, must match our validators; with a
    /// checksum another mirror's validators are learnt from its first 206.
    fn mirror_start(&self, first: bool) -> MirrorState {
        let learn = !first && self.spec.checksum.is_some();
        MirrorState {
            dropped: false,
            error: None,
            known: !learn,
            etag: self.rec.etag.clone().filter(|_| !learn),
            last_modified: self.rec.last_modified.clone().filter(|_| !learn),
            must_echo_etag: !first && !learn,
            resolved: None,
        }
    }
}

/// One place a split fetches from.
pub(super) struct Mirror {
    /// Its index in the job's mirror list.
    pub index: usize,
    pub url: url::Url,
    /// Redacted, for messages.
    pub url_text: SafeUrl,
    /// For `--max-per-host`.
    pub host: String,
}

/// What a split has learnt of one mirror.
#[derive(Clone)]
pub(super) struct MirrorState {
    /// Given up for this file; its last error is in `error`.
    pub dropped: bool,
    pub error: Option<Cause>,
    /// False until the validators below are what this mirror must match;
    /// until then requests go without If-Range (a checksum vouches).
    pub known: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Its 206s must carry `etag` itself: a mirror trusted on the first
    /// mirror's strong ETag alone may not leave it out.
    pub must_echo_etag: bool,
    /// Where its redirects last led: ranges go there directly, and back
    /// through the redirects once that fails.
    pub resolved: Option<Url>,
}

/// The mirrors one split file spreads over, and what its connections have
/// learnt of each; shared by them all.
pub(super) struct SplitMirrors {
    list: Vec<Mirror>,
    states: Mutex<Vec<MirrorState>>,
}

impl std::ops::Index<usize> for SplitMirrors {
    type Output = Mirror;

    fn index(&self, m: usize) -> &Mirror {
        &self.list[m]
    }
}

impl SplitMirrors {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Lock that survives a poisoned mutex: the states are plain
    /// bookkeeping a panicking connection cannot leave harmful.
    fn states(&self) -> MutexGuard<'_, Vec<MirrorState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What mirror `m` must match now.
    pub fn state(&self, m: usize) -> MirrorState {
        self.states()[m].clone()
    }

    /// Mirror `m`'s first right answer: from now on it must keep to its
    /// validators.
    pub fn learn(&self, m: usize, validators: Validators) {
        let mut states = self.states();
        states[m].known = true;
        states[m].etag = validators.etag;
        states[m].last_modified = validators.last_modified;
    }

    /// Mirror `m`'s redirects end at `at` for now (None: follow them).
    pub fn resolve(&self, m: usize, at: Option<Url>) {
        self.states()[m].resolved = at;
    }

    /// Each mirror's error, if it failed during the split.
    pub fn errors(&self) -> Vec<Option<Cause>> {
        self.states().iter().map(|m| m.error.clone()).collect()
    }

    /// Gives up mirror `m` for this file because of `why`, unless it is the
    /// last one left; true when another mirror can take over.
    pub fn drop_mirror(&self, m: usize, why: &Cause) -> bool {
        let mut states = self.states();
        let others = states.iter().enumerate().any(|(i, s)| i != m && !s.dropped);
        states[m].error = Some(why.clone());
        if others {
            states[m].dropped = true;
        }
        others
    }

    /// The live mirror after `m`, in order, wrapping round.
    pub fn next_live(&self, m: usize) -> Option<usize> {
        let states = self.states();
        let n = states.len();
        (0..n).map(|k| (m + k) % n).find(|&i| !states[i].dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(urls: &[&str]) -> JobSpec {
        let url = |text: &str| Url::parse(text).expect("a valid URL");
        JobSpec {
            url: url(urls[0]),
            mirrors: urls[1..].iter().map(|text| url(text)).collect(),
            path: crate::naming::RelPath::parse("f").expect("a valid path"),
            checksum: None,
            headers: Vec::new(),
            origin: crate::list::Origin {
                source: std::sync::Arc::from("test"),
                line: 1,
            },
        }
    }

    #[test]
    fn the_summary_gives_each_mirror_its_last_error_or_not_tried() {
        let mut set = MirrorSet::new(&spec(&["http://u:pw@a/f", "http://b/f", "http://c/f"]));
        set.fail_current(Cause::new("http://u:***@a/f answered 404"));
        set.failed(2, Cause::new("reset").context("bytes 0-9"));
        assert_eq!(
            set.summary(),
            "all 3 mirrors failed: http://u:***@a/f: http://u:***@a/f answered 404; \
             http://b/f: not tried; http://c/f: bytes 0-9: reset"
        );
        assert_eq!(set.next_untried(), Some(1));
    }
}
