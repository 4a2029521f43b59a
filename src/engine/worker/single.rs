//! One request streaming the rest of a file into its `.part`: the request
//! from `pos` with Range and If-Range, acting on the answer's verdict
//! ([`crate::http::answer`]), then the body into the `.part`, hashed as the
//! writer writes it, with checkpoints, through the same loop as a split's ranges
//! ([`super::pour`]). A fresh answer worth splitting is handed to `split`
//! instead.
//!
//! Bytes are kept only up to what the answer vouches for (the known total,
//! and the `--max-file-size` cap); whatever arrived is synced and recorded
//! when the attempt ends, however it ends.
//!
//! A stream is a range `[pos, total-or-open-end)` written by the same
//! writer and loop as a split's, but it is not a one-range plan run by
//! `segmented`, for what only a stream meets: its length may be unknown
//! (a chunked body, where a plan needs a total); its open-ended request
//! may be answered 200 (the file changed or ranges do not work: restart
//! from zero, not a mismatch that ends ranges for the file), 416 (nothing
//! left) or a first answer worth splitting; and it hashes as it writes
//! instead of following a prefix, since its prefix is all it writes.
//!
//! A fresh file that may be split is first asked only for its front
//! (`Range: bytes=0-…`): a 200 or a 206 with the whole file is streamed
//! here as usual, a larger file goes to `split` with that bounded answer,
//! one too small to split streams the front and then asks for the rest
//! (with If-Range, as a resume does), and one that cannot be split for
//! want of a validator is asked for again whole.

use reqwest::header::{IF_RANGE, RANGE};

use super::body::Body;
use super::limit::Cut;
use super::pour::{pour, Admit, Sink};
use super::{Next, Stop, Worker, AUTO_SPLIT, MIN_PIECE, SMALL_BODY};
use crate::error::DownloadError;
use crate::event::RestartReason;
use crate::http::answer::{classify, Answer, Asked, Ours};
use crate::http::range::if_range_value;
use crate::store::part::{PartWriter, Start};
use crate::store::prefix_hash::PrefixHash;

/// What the worker makes of the answer to a request for the rest.
enum Verdict {
    /// Its body continues the `.part` (from zero after a restart).
    Stream,
    /// Fresh and worth splitting: the split takes the answer over; it ends
    /// where its Content-Range does, if it was asked bounded.
    Split(Option<u64>),
    /// There was nothing left to fetch.
    Complete,
    /// The front of a file too small to split: its body is the file's
    /// first bytes, up to this end; the rest is asked for next.
    Front(u64),
    /// The front of a file that will not be split after all, or an
    /// answer to it that cannot be used: ask again for all of it, as one
    /// answer.
    AskWhole,
}

/// The first request of a file the user asked to split asks for this
/// much: a file up to this size comes whole in that answer, a larger one
/// is split. Asked open-ended, the server would push the rest of the file
/// into the socket buffers (several MiB on a fast link) while the other
/// connections fetch it, and those bytes would be served for nothing.
const FRONT: u64 = 2 * MIN_PIECE;

impl Worker {
    /// One request and its body, from `self.pos` on. Ok means the file is
    /// complete on disk (synced), or that it is worth splitting.
    pub(super) async fn attempt(&mut self) -> Result<Next, Stop> {
        // A front and the rest that follows it are one start for the user.
        let mut announced = false;
        loop {
            let (resp, answer, asked) = self.ask_rest().await?;
            let end = match self.judge(answer, &resp, asked).await? {
                Verdict::Stream => None,
                Verdict::Front(end) => Some(end),
                Verdict::Split(end) => return self.start_split(resp, end).await,
                Verdict::Complete => return Ok(Next::Complete),
                Verdict::AskWhole => continue,
            };
            self.accept(!announced).await?;
            announced = true;
            self.write_body(resp, end).await?;
            if end.is_none() {
                return Ok(Next::Complete);
            }
        }
    }

    /// How much a fresh file's first request asks for, when the file may
    /// be split: its front alone. With `--split N` that is [`FRONT`];
    /// automatic splitting starts at `--min-split-size` with
    /// [`AUTO_SPLIT`] connections, so its front is that share of it (4 MiB
    /// by default): a split file's first connection is never given more
    /// than the others, and only a file between the front and the split
    /// size costs two requests (the front, then the rest) instead of one.
    fn front(&self) -> Option<u64> {
        if self.pos != 0 || self.no_split {
            return None;
        }
        let cfg = &self.shared.cfg;
        match cfg.split {
            Some(n) if n > 1 => Some(FRONT),
            Some(_) => None,
            None => Some(FRONT.max(cfg.min_split_size / AUTO_SPLIT as u64)),
        }
    }

    /// Asks the mirror in use for the file from `self.pos` on (with
    /// If-Range, so a changed file comes back whole) and classifies the
    /// answer.
    async fn ask_rest(&self) -> Result<(reqwest::Response, Answer, Asked), Stop> {
        let mut own = Vec::new();
        let front = self.front();
        if let Some(front) = front {
            own.push((RANGE, format!("bytes=0-{}", front - 1)));
        } else if self.pos > 0 {
            own.push((RANGE, format!("bytes={}-", self.pos)));
            let validator =
                if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref());
            if let Some(validator) = validator {
                own.push((IF_RANGE, validator));
            }
        }
        let sent = self
            .shared
            .client
            .get(self.mirrors.url(), &self.spec.headers, &own);
        let resp = self.cancellable(sent).await?;
        let resp = resp.map_err(|err| DownloadError::fetching(self.mirrors.text(), err))?;
        self.shared.limits.note_answer(self.mirrors.url(), &resp);
        let asked = if let Some(front) = front {
            Asked::Front { last: front - 1 }
        } else {
            Asked::Rest {
                from: self.pos,
                total: self.rec.total,
            }
        };
        let ours = Ours {
            etag: self.rec.etag.as_deref(),
            must_echo_etag: false,
        };
        let answer = classify(
            resp.status(),
            resp.headers(),
            resp.content_length(),
            asked,
            ours,
        );
        Ok((resp, answer, asked))
    }

    /// Acts on the answer's verdict: a whole file (which restarts ours when
    /// we asked for the rest) or a resumed one brings its length and
    /// validators; anything else ends the attempt here.
    async fn judge(
        &mut self,
        answer: Answer,
        resp: &reqwest::Response,
        asked: Asked,
    ) -> Result<Verdict, Stop> {
        let front = matches!(asked, Asked::Front { .. });
        match answer {
            Answer::Whole {
                length,
                validators,
                accepts_ranges,
            } => {
                if self.pos > 0 {
                    self.restart(RestartReason::WholeFile).await?;
                }
                self.rec.total = length;
                self.rec.etag = validators.etag;
                self.rec.last_modified = validators.last_modified;
                // Before a split preallocates it, and before a single byte.
                if let Some(total) = self.rec.total {
                    self.limit().check_total(total, self.mirrors.text())?;
                }
                if self.worth_splitting(accepts_ranges) {
                    // A 206 with all of the file is bounded all the same.
                    return Ok(Verdict::Split(length.filter(|_| front)));
                }
                Ok(Verdict::Stream)
            }
            Answer::Front {
                end,
                total,
                validators,
            } => {
                self.rec.total = Some(total);
                self.rec.etag = validators.etag;
                self.rec.last_modified = validators.last_modified;
                self.limit().check_total(total, self.mirrors.text())?;
                if self.worth_splitting(true) {
                    return Ok(Verdict::Split(Some(end)));
                }
                self.no_split = true;
                if if_range_value(self.rec.etag.as_deref(), self.rec.last_modified.as_deref())
                    .is_some()
                {
                    // Too small to split: the front is the file's start,
                    // and the rest follows under If-Range.
                    return Ok(Verdict::Front(end));
                }
                // No validator to prove the rest comes from the same
                // version: this answer is dropped after at most its front.
                self.rec.total = None;
                self.rec.etag = None;
                self.rec.last_modified = None;
                Ok(Verdict::AskWhole)
            }
            Answer::Resumed { total, validators } => {
                self.limit().check_total(total, self.mirrors.text())?;
                self.rec.total = Some(total);
                // A mirror taken over with a checksum to vouch for the
                // bytes: its validators guard later resumes.
                if self.rec.etag.is_none() && self.rec.last_modified.is_none() {
                    self.rec.etag = validators.etag;
                    self.rec.last_modified = validators.last_modified;
                }
                Ok(Verdict::Stream)
            }
            // Nothing is written yet: an empty file (a 416 to the front),
            // or a server that botches the front, gets one plain request.
            Answer::AlreadyComplete | Answer::Mismatch(_) if front => {
                self.no_split = true;
                Ok(Verdict::AskWhole)
            }
            Answer::AlreadyComplete => {
                self.rec.total = Some(self.pos);
                Ok(Verdict::Complete)
            }
            Answer::Mismatch(why) => {
                let reason = RestartReason::from(why);
                let err = DownloadError::BadRange {
                    url: self.mirrors.text().clone(),
                    reason: crate::error::RangeFault::Restarted(reason.clone()),
                };
                self.restart(reason).await?;
                Err(Stop::Failed(err))
            }
            Answer::Refused { status } => {
                let err = DownloadError::status(self.mirrors.text(), status, resp.headers());
                Err(Stop::Failed(err))
            }
        }
    }

    /// The answer is accepted: its validators and length are ours now, and
    /// reach the manifest before any byte they vouch for. `announce`: the
    /// user is told bytes start flowing (not again for the rest after a
    /// front).
    async fn accept(&mut self, announce: bool) -> Result<(), Stop> {
        self.touched = true;
        if self.rec.total.is_some_and(|total| self.pos > total) {
            self.restart(RestartReason::LongerThanServer).await?;
            return Err(Stop::Failed(DownloadError::BadRange {
                url: self.mirrors.text().clone(),
                reason: crate::error::RangeFault::LengthShrank,
            }));
        }
        // The first durable checkpoint makes them durable too. A small body
        // is written in one go and recorded once, as done: if a kill comes
        // first, no validator means the next run starts it over.
        if self
            .rec
            .total
            .is_none_or(|total| total - self.pos > SMALL_BODY)
        {
            self.save_written();
        }
        if announce {
            self.job.started(self.pos, self.rec.total).await;
        }
        Ok(())
    }

    /// Streams the answer's body into the `.part` from `self.pos`, to `end`
    /// for a front (else to the file's end); whatever arrived is synced
    /// and counted, however the body ends.
    async fn write_body(&mut self, resp: reqwest::Response, end: Option<u64>) -> Result<(), Stop> {
        let start = Start::Cut(self.pos);
        // Hashed as it is written, on the pool, while the next chunk comes.
        let hash = PrefixHash::resumed(&self.part_path, self.hasher.clone(), self.pos);
        let mut part =
            PartWriter::new(&self.part_path, start, self.rec.total).hashing(hash.clone());
        let streamed = Stream::run(self, &mut part, resp, end).await;
        // Whatever happened, keep what arrived: sync, then let the manifest
        // count it. A whole small file is only handed to the kernel here:
        // the "done" record that follows at once takes its sync along.
        let synced = if streamed.is_ok() && end.is_none() {
            part.land().await
        } else {
            part.sync().await.map(|()| None)
        };
        // The hash holds what the kernel took; after a failed write that is
        // where the next attempt goes on from.
        self.hasher = hash.hasher();
        self.pos = hash.len();
        self.unsynced = synced.map_err(|source| DownloadError::Io {
            path: self.part_path.clone(),
            source,
        })?;
        self.rec.bytes_done = self.pos;
        // After a complete body the "done" record follows at once, synced
        // and waited for; a failed one, or a front, needs its checkpoint now.
        if streamed.is_err() || end.is_some() {
            self.save();
        }
        streamed
    }
}

/// A single stream as a [`Sink`]: one open range from the worker's
/// position to the known total, or to wherever the body ends; or a front,
/// to its end.
struct Stream<'a> {
    w: &'a mut Worker,
    /// Where a front's answer ends.
    end: Option<u64>,
}

impl Stream<'_> {
    /// Streams the answer's body into `part` from the worker's position.
    async fn run(
        w: &mut Worker,
        part: &mut PartWriter,
        resp: reqwest::Response,
        end: Option<u64>,
    ) -> Result<(), Stop> {
        let shared = w.shared.clone();
        let url = w.mirrors.text().clone();
        let body = Body::new(resp, &shared, &shared.cancel, &url);
        let every = shared.cfg.checkpoint_every;
        pour(&mut Stream { w, end }, body, part, every).await
    }
}

impl Sink for Stream<'_> {
    fn pos(&self) -> u64 {
        self.w.pos
    }

    /// Keeps what the answer vouched for (up to the known total, and under
    /// the cap, which a known total already passed) and reads on: bytes
    /// past the total are a lying Content-Length (a 206 whose body outruns
    /// its Content-Range), bytes past the cap end the file.
    fn admit(&mut self, len: u64) -> Admit {
        let total = self.end.or(self.w.rec.total);
        let (keep, cut) = self.w.limit().keep(self.w.pos, len, total);
        Admit {
            keep,
            filled: total == Some(self.w.pos + keep),
            stop: false,
            cut,
        }
    }

    fn wrote(&mut self, kept: u64) {
        let w = &mut *self.w;
        w.pos += kept;
        w.fetched += kept;
        let pos = w.pos;
        w.job.progress(|| pos);
    }

    /// Nothing to wait for: a stream records only synced bytes (the final
    /// sync writes the rest).
    async fn flush(&mut self, _file: &mut PartWriter) -> Result<(), DownloadError> {
        Ok(())
    }

    async fn sync(&mut self, file: &mut PartWriter) -> Result<(), DownloadError> {
        file.sync().await.map_err(|e| self.io_err(e))?;
        self.w.checkpoint();
        Ok(())
    }

    fn cut(&self, cut: Cut) -> DownloadError {
        // The total a stream's answer announced is the whole file's.
        cut.into_error(&self.w.limit(), self.w.mirrors.text(), 0)
    }

    fn io_err(&self, source: std::io::Error) -> DownloadError {
        DownloadError::Io {
            path: self.w.part_path.clone(),
            source,
        }
    }

    fn ended(&mut self) -> Result<(), DownloadError> {
        let w = &mut *self.w;
        match self.end.or(w.rec.total) {
            Some(total) if w.pos < total => Err(DownloadError::Truncated {
                url: w.mirrors.text().clone(),
                got: w.pos,
                expected: total,
            }),
            Some(_) => Ok(()),
            None => {
                w.rec.total = Some(w.pos);
                Ok(())
            }
        }
    }
}
