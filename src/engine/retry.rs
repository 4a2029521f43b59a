//! The retry policy: given what went wrong, it decides whether and when to
//! try again. It never sleeps and never reads the clock itself, so the whole
//! schedule is unit-tested with a seeded RNG.
//!
//! [`RetryPolicy`] is the settings and the schedule; [`RetryState`] is one
//! download's budget under it (a single stream, or one connection of a
//! split file): it counts failures, grants a fresh budget to an attempt
//! that made progress, and answers "retry after this long, or not". The
//! loop that sleeps is the worker's.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::DownloadError;

/// Retry settings, from the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included) before a job fails.
    pub max_tries: u32,
    /// Base delay; the n-th retry waits up to `base × 2^(n-1)`.
    pub base: Duration,
    /// Upper bound on any single wait, `Retry-After` included.
    pub max_wait: Duration,
}

/// What the engine should do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop: the error is permanent or the budget is spent.
    GiveUp,
}

impl RetryPolicy {
    /// The server's `Retry-After` if `max_wait` cuts it short: what the retry
    /// report names besides the wait actually taken.
    pub fn capped_retry_after(&self, retry_after: Option<Duration>) -> Option<Duration> {
        retry_after.filter(|asked| *asked > self.max_wait)
    }

    /// Decides on the next step after `failures` consecutive failures without
    /// progress (1 after the first failure). The caller resets its count when an
    /// attempt wrote bytes, so a flaky but moving transfer is never cut short.
    ///
    /// Exponential backoff with full jitter (a uniform draw in
    /// `[0, base × 2^(failures-1)]`, capped), unless the server said when to come
    /// back: a `Retry-After` is honoured up to `max_wait`.
    pub fn decide(
        &self,
        transient: bool,
        failures: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Decision {
        if !transient || failures >= self.max_tries {
            return Decision::GiveUp;
        }
        if let Some(wait) = retry_after {
            return Decision::RetryAfter(wait.min(self.max_wait));
        }
        let exp = failures.saturating_sub(1).min(20);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.max_wait)
            .as_secs_f64();
        // Full jitter, but never less than a tenth of the ceiling: a zero wait
        // against a struggling server is a retry storm.
        let wait = rng.random_range(ceiling * 0.1..=ceiling.max(f64::MIN_POSITIVE));
        Decision::RetryAfter(Duration::from_secs_f64(wait))
    }
}

/// A wait the budget grants before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// How long to wait.
    pub delay: Duration,
    /// The server's `Retry-After`, when `max_wait` cut it short.
    pub capped_from: Option<Duration>,
}

/// The retry budget of one download under a [`RetryPolicy`]: owns the count
/// of failures without progress and the jitter's RNG.
#[derive(Debug, Clone)]
pub struct RetryState {
    policy: RetryPolicy,
    /// Consecutive failures since the last progress or reset.
    failures: u32,
    rng: StdRng,
}

impl RetryState {
    /// A fresh budget; `seed` makes the jitter reproducible.
    pub fn new(policy: RetryPolicy, seed: u64) -> RetryState {
        RetryState {
            policy,
            failures: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// After an attempt failed with `err`: how long to wait before the next,
    /// or None to give up. An attempt that `progressed` (moved the file
    /// forward) earns a fresh budget, so a flaky link that keeps making
    /// progress still finishes; see [`DownloadError::earns_fresh_budget`].
    pub fn next(&mut self, err: &DownloadError, progressed: bool) -> Option<Backoff> {
        self.failures = if err.earns_fresh_budget(progressed) {
            1
        } else {
            self.failures + 1
        };
        let decision = self.policy.decide(
            err.is_transient(),
            self.failures,
            err.retry_after(),
            &mut self.rng,
        );
        match decision {
            Decision::RetryAfter(delay) => Some(Backoff {
                delay,
                capped_from: self.policy.capped_retry_after(err.retry_after()),
            }),
            Decision::GiveUp => None,
        }
    }

    /// A fresh budget: after a finished range, or on a new mirror.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_tries: 5,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jittered_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        for failures in 1..5u32 {
            let ceiling = (1u64 << (failures - 1)).min(10) as f64;
            for _ in 0..200 {
                match policy().decide(true, failures, None, &mut rng) {
                    Decision::RetryAfter(d) => {
                        let s = d.as_secs_f64();
                        assert!(
                            s >= ceiling * 0.1 - 1e-9 && s <= ceiling + 1e-9,
                            "{failures}: {s}"
                        );
                    }
                    Decision::GiveUp => panic!("gave up early at {failures}"),
                }
            }
        }
    }

    #[test]
    fn backoff_is_capped_by_max_wait() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = RetryPolicy {
            max_tries: 100,
            ..policy()
        };
        for _ in 0..100 {
            let Decision::RetryAfter(d) = p.decide(true, 60, None, &mut rng) else {
                panic!("gave up");
            };
            assert!(d <= Duration::from_secs(10));
        }
    }

    #[test]
    fn same_seed_gives_same_schedule() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..5)
                .map(|n| policy().decide(true, n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
    }

    #[test]
    fn gives_up_on_permanent_errors_and_after_max_tries() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(policy().decide(false, 1, None, &mut rng), Decision::GiveUp);
        assert_eq!(policy().decide(true, 5, None, &mut rng), Decision::GiveUp);
        assert!(matches!(
            policy().decide(true, 4, None, &mut rng),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let mut rng = StdRng::seed_from_u64(0);
        let d = policy().decide(true, 1, Some(Duration::from_secs(3)), &mut rng);
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(3)));
        let d = policy().decide(true, 1, Some(Duration::from_secs(3600)), &mut rng);
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(10)));
    }

    #[test]
    fn reports_a_retry_after_only_when_max_wait_cut_it() {
        let hour = Duration::from_secs(3600);
        assert_eq!(policy().capped_retry_after(Some(hour)), Some(hour));
        assert_eq!(
            policy().capped_retry_after(Some(Duration::from_secs(10))),
            None
        );
        assert_eq!(
            policy().capped_retry_after(Some(Duration::from_secs(3))),
            None
        );
        assert_eq!(policy().capped_retry_after(None), None);
    }

    fn url() -> crate::safe_url::SafeUrl {
        "http://u/".parse().expect("a valid URL")
    }

    fn truncated() -> DownloadError {
        DownloadError::Truncated {
            url: url(),
            got: 1,
            expected: 2,
        }
    }

    #[test]
    fn state_gives_up_after_max_tries_without_progress() {
        let mut state = RetryState::new(policy(), 3);
        for _ in 1..5 {
            assert!(state.next(&truncated(), false).is_some());
        }
        assert_eq!(state.next(&truncated(), false), None);
    }

    #[test]
    fn progress_or_a_reset_earns_a_fresh_budget() {
        let mut state = RetryState::new(policy(), 3);
        for _ in 0..20 {
            assert!(state.next(&truncated(), true).is_some());
        }
        // The failure that made progress counts as the first of the new budget.
        for _ in 2..5 {
            assert!(state.next(&truncated(), false).is_some());
        }
        assert_eq!(state.next(&truncated(), false), None);
        state.reset();
        for _ in 1..5 {
            assert!(state.next(&truncated(), false).is_some());
        }
        assert_eq!(state.next(&truncated(), false), None);
        let slow = DownloadError::TooSlow {
            url: url(),
            min_per_sec: 1,
            got: 1,
            secs: 1.0,
        };
        let mut state = RetryState::new(policy(), 3);
        for _ in 1..5 {
            assert!(state.next(&slow, true).is_some(), "a drip earns no budget");
        }
        assert_eq!(state.next(&slow, true), None);
    }

    #[test]
    fn state_follows_the_policy_schedule_and_reports_a_capped_retry_after() {
        let mut state = RetryState::new(policy(), 42);
        let mut rng = StdRng::seed_from_u64(42);
        for failures in 1..5 {
            let Decision::RetryAfter(delay) = policy().decide(true, failures, None, &mut rng)
            else {
                panic!("gave up at {failures}");
            };
            let got = state.next(&truncated(), false);
            assert_eq!(
                got,
                Some(Backoff {
                    delay,
                    capped_from: None
                })
            );
        }
        let hour = Duration::from_secs(3600);
        let busy = DownloadError::Status {
            url: url(),
            status: 503,
            retry_after: Some(hour),
        };
        let got = RetryState::new(policy(), 0).next(&busy, false);
        assert_eq!(
            got,
            Some(Backoff {
                delay: Duration::from_secs(10),
                capped_from: Some(hour)
            })
        );
        let gone = DownloadError::Status {
            url: url(),
            status: 404,
            retry_after: None,
        };
        assert_eq!(RetryState::new(policy(), 0).next(&gone, false), None);
    }
}
