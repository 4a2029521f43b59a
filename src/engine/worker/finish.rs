//! How a job ends: the length and checksum checks, "done" recorded durably,
//! then the rename (a final-named file is always complete and verified); or
//! a failure recorded with each mirror's last error; or an interruption
//! with its progress saved.

use super::mirrors::fails_over;
use super::{Outcome, Worker};
use crate::engine::recorder::FinishError;
use crate::error::DownloadError;
use crate::event::{Event, FailureKind};
use crate::store::manifest::JobState;

impl Worker {
    /// Checks the checksum, records "done" durably, then renames: a
    /// final-named file is always complete and verified.
    pub(super) async fn finish(&mut self, got: String) -> Outcome {
        self.touched = true;
        if let Err(err) = self.check_length() {
            return self.fail(err).await;
        }
        if let Some(expected) = self.spec.checksum {
            let expected = hex::encode(expected);
            if got != expected {
                let err = DownloadError::Checksum {
                    path: self.spec.path.to_string(),
                    expected,
                    got,
                };
                // The bytes are wrong, so the next run must not resume
                // them: without a validator it starts from zero. The .part
                // stays for inspection.
                self.rec.bytes_done = 0;
                self.rec.etag = None;
                self.rec.last_modified = None;
                self.rec.segments = None;
                return self.fail(err).await;
            }
        }
        self.rec.state = JobState::Done;
        self.rec.bytes_done = self.pos;
        self.rec.total = Some(self.pos);
        self.rec.sha256 = Some(got.clone());
        self.rec.last_error = None;
        // Nothing resumes a finished file: its boot id would only cost memory.
        self.rec.boot_id = None;
        // The recorder renames once "done" is synced: never before it.
        let (part, to) = (self.part_path.clone(), self.final_path.clone());
        let unsynced = self.unsynced.take();
        let was_unsynced = unsynced.is_some();
        let finished = self
            .shared
            .recorder
            .finish(self.rec.clone(), part, to, unsynced)
            .await;
        if finished.is_err() && was_unsynced {
            // Its sync may not have run: after a reboot nothing of it counts.
            self.rec.bytes_done = 0;
        }
        match finished {
            Ok(()) => {}
            Err(FinishError::Record(err)) => {
                let error = crate::error::cause(&err)
                    .context(format!("cannot record {} as done", self.spec.path));
                return self.fail_msg(FailureKind::Manifest, error).await;
            }
            Err(FinishError::Rename(source)) => {
                let err = DownloadError::Io {
                    path: self.final_path.clone(),
                    source,
                };
                return self.fail(err).await;
            }
            Err(FinishError::Sync(source)) => {
                let err = DownloadError::Io {
                    path: self.part_path.clone(),
                    source,
                };
                return self.fail(err).await;
            }
        }
        self.emit(Event::Finished {
            id: self.id,
            path: self.spec.path.to_string(),
            bytes: self.pos,
            sha256: got,
        })
        .await;
        Outcome::Finished
    }

    /// The `.part` must hold exactly the known total, whatever path led
    /// here: a surplus or a gap is never renamed into place, nor a file over
    /// the cap that an earlier run without it completed. `pos` is the length
    /// on disk on every path (a single stream's writes, a split plan's
    /// written total, a complete `.part` measured by `prepare`), so this
    /// costs no trip to the disk per file.
    pub(super) fn check_length(&self) -> Result<(), DownloadError> {
        self.limit().check_total(self.pos, self.mirrors.text())?;
        let expected = self.rec.total.unwrap_or(self.pos);
        if self.pos != expected {
            return Err(DownloadError::SizeMismatch {
                path: self.part_path.clone(),
                got: self.pos,
                expected,
            });
        }
        Ok(())
    }

    /// Fails the job; with mirrors, the message gives each mirror's last
    /// error, so the user sees why every one of them was given up.
    pub(super) async fn fail_all(&mut self, err: DownloadError) -> Outcome {
        if self.mirrors.len() < 2 || !fails_over(&err) {
            return self.fail(err).await;
        }
        let summary = self.mirrors.summary();
        self.fail_msg(err.kind(), summary).await
    }

    pub(super) async fn fail(&mut self, err: DownloadError) -> Outcome {
        self.fail_msg(err.kind(), err.cause()).await
    }

    pub(super) async fn fail_msg(
        &mut self,
        kind: FailureKind,
        error: crate::event::Cause,
    ) -> Outcome {
        // A record counts only synced bytes: a small file written but not
        // synced is synced now (it failed its checks, or its "done" was
        // lost), or counted as nothing if that fails too.
        if let Some(file) = self.unsynced.take() {
            let synced =
                tokio::task::spawn_blocking(move || crate::store::part::sync_data_timed(&file))
                    .await;
            if !matches!(synced, Ok(Ok(()))) {
                self.rec.bytes_done = 0;
            }
        }
        self.rec.state = JobState::Failed;
        self.rec.last_error = Some(error.to_string());
        let mut rec = self.to_record();
        // A complete file stays "done" (and verifiable) when a new URL
        // for it fails without touching it.
        if rec.state != JobState::Done {
            rec.state = JobState::Failed;
        }
        // Best effort: the failure itself is what the user needs to see.
        let _ = self.shared.recorder.save_synced(rec).await;
        self.emit(Event::Failed {
            id: self.id,
            path: self.spec.path.to_string(),
            kind,
            error,
        })
        .await;
        Outcome::Failed
    }

    pub(super) async fn interrupted(&mut self) -> Outcome {
        // An earlier attempt's error no longer says why the job is unfinished.
        self.rec.last_error = Some(crate::store::manifest::INTERRUPTED.to_string());
        self.save();
        self.emit(Event::Interrupted {
            id: self.id,
            path: self.spec.path.to_string(),
            pos: self.pos,
        })
        .await;
        Outcome::Interrupted
    }
}
