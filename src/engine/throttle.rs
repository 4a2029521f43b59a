//! The `--max-speed` limit: one token bucket that every connection of a run
//! draws from, single streams and the ranges of split files alike, so the
//! run as a whole stays under the limit however many connections it has.
//!
//! A connection takes tokens for each chunk after the chunk arrives and
//! before it reads the next one, so while it waits its socket is not read
//! and TCP backpressure slows the server down instead of haul buffering.
//! The bucket is refilled from elapsed time when it is touched: no
//! background task, and a waiting connection sleeps until a deadline rather
//! than polling. [`Bucket`] holds the arithmetic and never reads the clock,
//! so its tests give it instants; [`Throttle`] adds the clock and the sleep.
//! This module must not know about cancellation: callers select on their
//! own token around [`Throttle::take`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The burst is this fraction of a second's worth of the rate: small, so the
/// rate holds over short windows, not only on average over the whole run.
const BURST_PER_SEC: u64 = 10;

/// The burst never goes below this, so a slow limit still lets a typical
/// chunk through without a wait first.
const MIN_BURST: u64 = 16 << 10;

/// Token arithmetic for a rate of `rate` bytes a second.
///
/// A take is a reservation: it is granted at once and may drive the balance
/// below zero; the taker then waits until the refill has paid that debt
/// back. Reservations are served in the order they are made, so connections
/// share the rate fairly, and a chunk larger than the burst is simply a
/// longer wait rather than a deadlock.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: u64,
    burst: u64,
    /// Tokens available at `at`; negative while reservations are owed.
    balance: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now` for `rate` bytes a second (at least 1).
    pub fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1);
        let burst = (rate / BURST_PER_SEC).max(MIN_BURST);
        Bucket {
            rate,
            burst,
            balance: burst as f64,
            at: now,
        }
    }

    #[cfg(test)]
    /// Bytes a second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    #[cfg(test)]
    /// Most tokens the bucket holds when nobody has taken any for a while.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Reserves `n` tokens at `now`; returns how long the taker must wait
    /// before it uses them (zero when they were there already).
    pub fn reserve(&mut self, n: u64, now: Instant) -> Duration {
        self.refill(now);
        self.balance -= n as f64;
        if self.balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / self.rate as f64)
        }
    }

    fn refill(&mut self, now: Instant) {
        // Instants taken outside the lock can arrive slightly out of order:
        // an earlier one adds nothing rather than going back in time.
        let elapsed = now.saturating_duration_since(self.at);
        if now > self.at {
            self.at = now;
        }
        let refilled = self.balance + elapsed.as_secs_f64() * self.rate as f64;
        self.balance = refilled.min(self.burst as f64);
    }
}

/// A [`Bucket`] behind a lock, on the real clock, shared by every
/// connection of a run (the engine holds it in its shared state).
#[derive(Debug)]
pub struct Throttle {
    bucket: Mutex<Bucket>,
}

impl Throttle {
    /// A limit of `rate` bytes a second over everything that takes from it.
    pub fn new(rate: u64) -> Throttle {
        Throttle {
            bucket: Mutex::new(Bucket::new(rate, tokio::time::Instant::now().into_std())),
        }
    }

    /// Accounts for `n` bytes just received and sleeps until the limit
    /// allows them. The lock is held only for the arithmetic, never across
    /// the sleep. Dropping the future (a cancelled download) leaves the
    /// reservation spent, which is right: the bytes did arrive.
    pub async fn take(&self, n: u64) {
        // tokio's clock, so a paused test runtime controls the waits too.
        let now = tokio::time::Instant::now();
        let wait = self.lock().reserve(n, now.into_std());
        if !wait.is_zero() {
            tokio::time::sleep_until(now + wait).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is a few numbers a panic cannot leave harmful.
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }

    #[test]
    fn burst_is_a_tenth_of_a_second_but_at_least_one_chunk() {
        let t0 = Instant::now();
        assert_eq!(Bucket::new(10 * MIB, t0).burst(), MIB);
        assert_eq!(Bucket::new(1000, t0).burst(), MIN_BURST);
        assert_eq!(Bucket::new(0, t0).rate(), 1);
    }

    #[test]
    fn takes_within_the_burst_do_not_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10 * MIB, t0);
        assert_eq!(b.reserve(MIB / 2, t0), Duration::ZERO);
        assert_eq!(b.reserve(MIB / 2, t0), Duration::ZERO);
    }

    #[test]
    fn a_take_past_the_balance_waits_for_its_debt_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10 * MIB, t0);
        b.reserve(MIB, t0);
        // One more MiB at 10 MiB/s: a tenth of a second.
        assert!(close(b.reserve(MIB, t0), secs(0.1)));
        // A second taker queues behind the first.
        assert!(close(b.reserve(MIB, t0), secs(0.2)));
    }

    #[test]
    fn elapsed_time_refills_but_never_past_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10 * MIB, t0);
        b.reserve(MIB, t0);
        assert_eq!(b.reserve(MIB / 2, t0 + secs(0.05)), Duration::ZERO);
        // An hour idle buys one burst, not an hour of bytes.
        let later = t0 + secs(3600.0);
        assert_eq!(b.reserve(MIB, later), Duration::ZERO);
        assert!(close(b.reserve(MIB, later), secs(0.1)));
    }

    #[test]
    fn a_chunk_larger_than_the_burst_is_a_longer_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        // Burst 16 KiB, then 64 KiB owed at 1000 B/s.
        let wait = b.reserve(MIN_BURST + 64_000, t0);
        assert!(close(wait, secs(64.0)), "{wait:?}");
    }

    #[test]
    fn an_out_of_order_instant_adds_no_tokens() {
        let t0 = Instant::now();
        let t1 = t0 + secs(1.0);
        let mut b = Bucket::new(10 * MIB, t1);
        b.reserve(MIB, t1);
        assert!(close(b.reserve(MIB, t0), secs(0.1)));
    }

    #[test]
    fn steady_takes_average_to_the_rate() {
        // Many connections taking 16 KiB chunks as soon as they may: over
        // ten simulated seconds the bytes granted match the rate.
        let t0 = Instant::now();
        let rate = 4 * MIB;
        let mut b = Bucket::new(rate, t0);
        let mut ready = [t0; 4];
        let mut granted = 0u64;
        let end = t0 + secs(10.0);
        loop {
            let (i, &now) = ready
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| **t)
                .expect("four connections");
            if now >= end {
                break;
            }
            let wait = b.reserve(16 << 10, now);
            ready[i] = now + wait;
            if ready[i] <= end {
                granted += 16 << 10;
            }
        }
        let expected = (10 * rate + b.burst()) as f64;
        let got = granted as f64;
        assert!(
            (got - expected).abs() / expected < 0.01,
            "{got} vs {expected}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn take_sleeps_until_its_tokens_exist() {
        // 1 MiB/s: the burst goes at once, the next 50 KiB owe about 49 ms.
        let throttle = Throttle::new(MIB);
        let start = Instant::now();
        throttle.take(MIB / 10).await;
        assert!(start.elapsed() < secs(0.02), "{:?}", start.elapsed());
        throttle.take(50 << 10).await;
        let waited = start.elapsed();
        assert!(waited >= secs(0.045) && waited < secs(1.0), "{waited:?}");
    }
}
