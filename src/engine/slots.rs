//! Job slots: how many downloads may have a request or body in flight at
//! once. `-j` slots for any host, and over HTTP/2 up to
//! [`STREAMS_PER_JOB`] − 1 times as many more for hosts that multiplex: a
//! stream costs the server no connection, and on a link with real
//! round-trip times a list of small files is bound by requests in flight,
//! not by bandwidth (measured: W7L, see README's defaults).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Downloads in flight per `-j` slot while the host multiplexes (HTTP/2),
/// within the server's `SETTINGS_MAX_CONCURRENT_STREAMS`, which the client
/// waits on. Each one holds at most its `.part`'s writers open, so memory
/// and open files stay within this multiple of what `-j` alone allows.
pub(crate) const STREAMS_PER_JOB: usize = 4;

/// The run's job slots.
pub(crate) struct JobSlots {
    /// `-j` slots, for any host.
    any: Arc<Semaphore>,
    /// The extra slots, only for hosts that multiplex.
    streams: Arc<Semaphore>,
}

/// One download's right to be in flight, held by its task: the dispatcher
/// learns it is free when it joins the task.
pub(crate) struct JobSlot {
    _permit: OwnedSemaphorePermit,
}

impl JobSlots {
    pub(super) fn new(jobs: usize) -> JobSlots {
        JobSlots {
            any: Arc::new(Semaphore::new(jobs)),
            streams: Arc::new(Semaphore::new(jobs * (STREAMS_PER_JOB - 1))),
        }
    }

    /// Whether every slot is taken: no job may start.
    pub(super) fn full(&self) -> bool {
        self.any.available_permits() == 0 && self.streams.available_permits() == 0
    }

    /// A slot, if one is free for a job to a host that does (or does not)
    /// multiplex.
    pub(super) fn try_take(&self, multiplexed: bool) -> Option<JobSlot> {
        let permit = match self.any.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if multiplexed => self.streams.clone().try_acquire_owned().ok()?,
            Err(_) => return None,
        };
        Some(JobSlot { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_slots_go_only_to_multiplexed_hosts() {
        let slots = JobSlots::new(2);
        let held: Vec<_> = (0..2).filter_map(|_| slots.try_take(false)).collect();
        assert_eq!(held.len(), 2);
        assert!(slots.try_take(false).is_none());
        let streams: Vec<_> = (0..10).filter_map(|_| slots.try_take(true)).collect();
        assert_eq!(streams.len(), 2 * (STREAMS_PER_JOB - 1));
        assert!(slots.full());
        drop(held);
        assert!(slots.try_take(false).is_some());
    }
}
