//! The one way test helpers block on shared state: wait on a condition
//! variable until a condition holds, and fail the test loudly if it does not
//! within a bound. It owns no state of its own and never sleeps: whoever
//! changes the state notifies the condvar.

use std::sync::{Condvar, MutexGuard, PoisonError};
use std::time::Duration;

/// Blocks until `done(&state)` holds and returns the guard, still locked.
///
/// Panics after `timeout` with a message naming `what` was awaited and
/// `seen(&state)`, what the state was at that moment; the lock is released
/// before the panic, so the owner of the state (a server thread, a drop
/// check) is not left with a poisoned mutex mid-test. A poisoned mutex is
/// waited on like any other: a panic elsewhere is reported there.
pub fn wait_until<'a, T>(
    guard: MutexGuard<'a, T>,
    changed: &Condvar,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&T) -> bool,
    seen: impl FnOnce(&T) -> String,
) -> MutexGuard<'a, T> {
    let (guard, _) = changed
        .wait_timeout_while(guard, timeout, |state| !done(state))
        .unwrap_or_else(PoisonError::into_inner);
    if done(&guard) {
        return guard;
    }
    let seen = seen(&guard);
    drop(guard);
    panic!("timed out after {timeout:?} waiting for {what}; saw {seen}");
}
