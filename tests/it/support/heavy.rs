//! One big-list test at a time. The load tests (100,000 and 200,000 URLs)
//! each keep both cores busy for a minute or more; run side by side, each
//! would see the other's load, and the bounded waits in them (a 60 s rerun)
//! would measure the pair instead of haul.

use std::sync::{Mutex, MutexGuard, PoisonError};

static HEAVY: Mutex<()> = Mutex::new(());

/// Held for the whole of a big-list test. A test that panicked while
/// holding it leaves nothing behind that the next one depends on.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}
