//! What the connections of one split file share ([`Ctx`]): the job, the
//! split's mirrors, the range plan, the record and how it is saved. Its own
//! module so that `split` (which builds it), `segmented` (which schedules
//! connections over it) and `range` (which fills one range of it) all
//! depend on it and not on each other in a circle.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::job::Job;
use super::mirrors::SplitMirrors;
use crate::engine::segments::Plan;
use crate::error::DownloadError;
use crate::store::manifest::JobRecord;
use crate::store::prefix_hash::PrefixHash;

/// What the connections of one file share.
pub(super) struct Ctx {
    pub job: Arc<Job>,
    /// The mirrors to spread over; the first answered the first request.
    pub mirrors: SplitMirrors,
    pub headers: Vec<(String, String)>,
    pub part_path: PathBuf,
    pub plan: Mutex<Plan>,
    /// The job's record; saves copy it with the plan's current ranges.
    pub rec: Mutex<JobRecord>,
    /// Stops this file's connections (a child of the run's token).
    pub stop: CancellationToken,
    /// The hash of the written prefix, fed by every range's writer.
    pub prefix: PrefixHash,
    pub wake_hasher: Notify,
    pub fetched: AtomicU64,
    /// How many connections the file may have at once (`--split`, or the
    /// automatic count, within its size).
    pub connections: usize,
}

/// Lock that survives a poisoned mutex: the data is plain bookkeeping that
/// a panicking connection cannot leave half-updated in a harmful way.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ctx {
    pub(super) fn io_err(&self, source: std::io::Error) -> DownloadError {
        DownloadError::Io {
            path: self.part_path.clone(),
            source,
        }
    }

    /// Persists the plan; `durable` after a sync, else it only has to
    /// survive a killed process.
    pub(super) fn save(&self, durable: bool) {
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

    pub(super) fn progress(&self) {
        self.job.progress(|| lock(&self.plan).written_total());
    }
}
