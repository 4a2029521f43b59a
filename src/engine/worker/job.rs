//! What every path of one job shares while it runs, the single stream and
//! each connection of a split file alike: the job's identity, its events
//! (with the one progress coalescer, so a split file and a single stream
//! report at the same rate) and the way its records reach the manifest.
//!
//! It holds no position and no record of its own: the single stream's
//! position is the worker's, a split's is its plan's; each hands over the
//! record to save and the position to report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Shared;
use crate::event::{Event, JobId};
use crate::store::manifest::JobRecord;

/// Progress events per job are coalesced to this interval (about ten a second).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// One job's link to the rest of the run, shared by all its connections.
pub(super) struct Job {
    pub shared: Arc<Shared>,
    pub id: JobId,
    /// The job's output path, as events name it.
    pub path: String,
    /// When the last progress event went out.
    last_progress: Mutex<Option<Instant>>,
}

impl Job {
    pub fn new(shared: Arc<Shared>, id: JobId, path: String) -> Job {
        Job {
            shared,
            id,
            path,
            last_progress: Mutex::new(None),
        }
    }

    pub async fn emit(&self, event: Event) {
        let _ = self.shared.events.send(event).await;
    }

    /// Bytes start flowing into the `.part`, from `offset` of `total`.
    pub async fn started(&self, offset: u64, total: Option<u64>) {
        self.emit(Event::Started {
            id: self.id,
            path: self.path.clone(),
            offset,
            total,
        })
        .await;
    }

    /// Reports the position `pos` gives, unless an event went out less
    /// than [`PROGRESS_EVERY`] ago (then `pos` is not even asked).
    pub fn progress(&self, pos: impl FnOnce() -> u64) {
        let now = Instant::now();
        {
            let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY) {
                return;
            }
            *last = Some(now);
        }
        // Progress is droppable: a slow renderer must not slow the download.
        let _ = self.shared.events.try_send(Event::Progress {
            id: self.id,
            pos: pos(),
        });
    }

    /// Sends `rec` to the manifest: `durable` right after a sync (the
    /// record is fsynced in turn), otherwise it only has to survive a
    /// killed process, or a synced record follows.
    pub fn save(&self, rec: JobRecord, durable: bool) {
        if durable {
            self.shared.recorder.save(rec);
        } else {
            self.shared.recorder.save_written(rec);
        }
    }
}
