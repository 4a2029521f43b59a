//! How long syncs take on the disk a run writes to, and whether that is
//! quick enough for a thread to run them itself rather than hand them on.
//!
//! A sync that returns within [`QUICK_MICROS`] (a tmpfs, a disk cache that
//! acknowledges at once) costs less than waking another thread to run it
//! and being woken back: then small files' syncs go with the journal's,
//! and the manifest's recorder syncs the journal itself, on the event loop. A
//! slower one (a real disk: a journal commit each) is better run where many
//! wait at once and the file system can group them: one thread syncing
//! 2,000 files of 48 KiB one after another on ext4 took 0.63-0.76 s where
//! the blocking pool took 0.41-0.46 s.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A sync at most this long, in microseconds, is quick.
const QUICK_MICROS: u64 = 250;

/// The time the last sync through it took; quick until one is measured.
pub struct SyncCost {
    last_micros: AtomicU64,
}

impl SyncCost {
    pub const fn new() -> Self {
        SyncCost {
            last_micros: AtomicU64::new(0),
        }
    }

    /// Syncs `file`'s data, noting how long that took.
    pub fn sync_data(&self, file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        let synced = file.sync_data();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_micros.store(micros, Ordering::Relaxed);
        synced
    }

    /// Whether the last sync was quick.
    pub fn quick(&self) -> bool {
        self.last_micros.load(Ordering::Relaxed) <= QUICK_MICROS
    }

    /// As if the last sync had been slow.
    #[cfg(test)]
    pub fn seem_slow(&self) {
        self.last_micros.store(QUICK_MICROS + 1, Ordering::Relaxed);
    }
}
