//! One request streaming the rest of a file into its `.part`: the request
//! from `pos` with Range and If-Range, acting on the answer's verdict
//! ([`crate::http::answer`]), then the body into the `.part` while hashing
//! it, with checkpoints. A fresh answer worth splitting is handed to
//! `split` instead.
//!
//! Bytes are kept only up to what the answer vouches for (the known total,
//! and the `--max-file-size` cap); whatever arrived is synced and recorded
//! when the attempt ends, however it ends.

use reqwest::header::{IF_RANGE, RANGE};
use sha2::Digest;

use super::body::Body;
use super::{Next, Stop, Worker, SMALL_BODY};
use crate::error::DownloadError;
use crate::event::RestartReason;
use crate::http::answer::{classify, Answer, Asked, Ours};
use crate::http::range::if_range_value;
use crate::store::part::{PartWriter, Start};

/// What the worker makes of the answer to a request for the rest.
enum Verdict {
    /// Its body continues the `.part` (from zero after a restart).
    Stream,
    /// Fresh and worth splitting: the split takes the answer over.
    Split,
    /// There was nothing left to fetch.
    Complete,
}

impl Worker {
    /// One request and its body, from `self.pos` on. Ok means the file is
    /// complete on disk (synced), or that it is worth splitting.
    pub(super) async fn attempt(&mut self) -> Result<Next, Stop> {
        let (resp, answer) = self.ask_rest().await?;
        match self.judge(answer, &resp).await? {
            Verdict::Stream => {}
            Verdict::Split => return self.start_split(resp).await,
            Verdict::Complete => return Ok(Next::Complete),
        }
        self.accept().await?;
        self.write_body(resp).await
    }

    /// Asks the mirror in use for the file from `self.pos` on (with
    /// If-Range, so a changed file comes back whole) and classifies the
    /// answer.
    async fn ask_rest(&self) -> Result<(reqwest::Response, Answer), Stop> {
        let mut own = Vec::new();
        if self.pos > 0 {
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
        let asked = Asked::Rest {
            from: self.pos,
            total: self.rec.total,
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
        Ok((resp, answer))
    }

    /// Acts on the answer's verdict: a whole file (which restarts ours when
    /// we asked for the rest) or a resumed one brings its length and
    /// validators; anything else ends the attempt here.
    async fn judge(&mut self, answer: Answer, resp: &reqwest::Response) -> Result<Verdict, Stop> {
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
                    return Ok(Verdict::Split);
                }
                Ok(Verdict::Stream)
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
            Answer::AlreadyComplete => {
                self.rec.total = Some(self.pos);
                Ok(Verdict::Complete)
            }
            Answer::Mismatch(why) => {
                let reason = RestartReason::from(why);
                let text = reason.to_string();
                self.restart(reason).await?;
                Err(Stop::Failed(DownloadError::BadRange {
                    url: self.mirrors.text().to_string(),
                    reason: text,
                }))
            }
            Answer::Refused { status } => {
                let err = DownloadError::status(self.mirrors.text(), status, resp.headers());
                Err(Stop::Failed(err))
            }
        }
    }

    /// The answer is accepted: its validators and length are ours now, and
    /// reach the manifest before any byte they vouch for.
    async fn accept(&mut self) -> Result<(), Stop> {
        self.touched = true;
        if self.rec.total.is_some_and(|total| self.pos > total) {
            self.restart(RestartReason::LongerThanServer).await?;
            return Err(Stop::Failed(DownloadError::BadRange {
                url: self.mirrors.text().to_string(),
                reason: "length shrank".into(),
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
        self.job.started(self.pos, self.rec.total).await;
        Ok(())
    }

    /// Streams the answer's body into the `.part` from `self.pos`; whatever
    /// arrived is synced and counted, however the body ends.
    async fn write_body(&mut self, resp: reqwest::Response) -> Result<Next, Stop> {
        let start = Start::Cut(self.pos);
        let mut part = PartWriter::open(&self.part_path, start, self.rec.total)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        let streamed = self.stream(&mut part, resp).await;
        // Whatever happened, keep what arrived: sync, then let the manifest count it.
        part.sync().await.map_err(|source| DownloadError::Io {
            path: self.part_path.clone(),
            source,
        })?;
        self.rec.bytes_done = self.pos;
        // After a complete body the "done" record follows at once, synced
        // and waited for; only a failed one needs its checkpoint now.
        if streamed.is_err() {
            self.save();
        }
        streamed.map(|()| Next::Complete)
    }

    pub(super) async fn stream(
        &mut self,
        part: &mut PartWriter,
        resp: reqwest::Response,
    ) -> Result<(), Stop> {
        let shared = self.shared.clone();
        let url = self.mirrors.text().to_string();
        let mut body = Body::new(resp, &shared, &shared.cancel, &url);
        while let Some(chunk) = body.next(self.pos).await? {
            // Keep what the answer vouched for (up to the known total, and
            // under the cap, which a known total already passed), then stop
            // reading: bytes past the total are a lying Content-Length (a 206
            // whose body outruns its Content-Range), the next attempt confirms
            // the end with a 416; bytes past the cap end the file.
            let len = chunk.len() as u64;
            let (keep, cut) = self.limit().keep(self.pos, len, self.rec.total);
            let cut = cut.map(|cut| cut.into_error(&self.limit(), self.mirrors.text(), 0));
            let chunk = chunk.slice(..keep as usize);
            part.write(&chunk)
                .await
                .map_err(|source| DownloadError::Io {
                    path: self.part_path.clone(),
                    source,
                })?;
            self.hasher.update(&chunk);
            self.pos += chunk.len() as u64;
            self.fetched += chunk.len() as u64;
            let pos = self.pos;
            self.job.progress(|| pos);
            if let Some(err) = cut {
                return Err(Stop::Failed(err));
            }
            // After the write: what did arrive is kept for the next attempt;
            // a body that just completed is not worth a verdict.
            if self.rec.total != Some(self.pos) {
                body.record(chunk.len() as u64)?;
            }
            if part.sync_due(self.shared.cfg.checkpoint_every) {
                part.sync().await.map_err(|source| DownloadError::Io {
                    path: self.part_path.clone(),
                    source,
                })?;
                self.checkpoint();
            }
            body.pace(len).await?;
        }
        match self.rec.total {
            Some(total) if self.pos < total => Err(Stop::Failed(DownloadError::Truncated {
                url: self.mirrors.text().to_string(),
                got: self.pos,
                expected: total,
            })),
            Some(_) => Ok(()),
            None => {
                self.rec.total = Some(self.pos);
                Ok(())
            }
        }
    }
}
