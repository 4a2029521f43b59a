//! The `--lowest-speed` floor: decides from (instant, bytes) samples whether
//! one attempt's body has averaged less than the floor over the last
//! `--lowest-speed-time` window, and when that verdict would fall if nothing
//! more arrived.
//!
//! A read timeout only catches a body that sends nothing; a server that drips
//! a byte every two seconds never trips it. This module owns only
//! the arithmetic: it never reads the clock, sleeps or touches the network,
//! so its tests feed it instants by hand. The streaming loops own the clock,
//! the sleep until [`SpeedFloor::deadline`] and the error.

use std::time::{Duration, Instant};

use crate::error::DownloadError;
use crate::safe_url::SafeUrl;

/// Buckets a window is cut into: the verdict comes at most one bucket (a
/// thirtieth of the window, a second by default) later than an exact
/// sliding window would give it, and the state stays this many numbers
/// however fast the body is.
const BUCKETS: usize = 30;

/// Measures one attempt's body over a window that slides bucket by bucket.
///
/// A window that tumbled (judged, then reset) would let a fast start hide a
/// drip for up to two windows; sliding, the verdict falls one window after
/// the drip begins, whatever came before it.
#[derive(Debug, Clone)]
pub(crate) struct SpeedFloor {
    /// Bytes a second the body must average over the window.
    min_per_sec: u64,
    /// The judged window: `BUCKETS` buckets of `width`.
    window: Duration,
    width: Duration,
    /// When the body began (the answer's headers arrived); bucket 0 starts
    /// here.
    start: Instant,
    /// Bytes per bucket: slot `i % (BUCKETS + 1)` holds bucket `i`, for the
    /// buckets `head - BUCKETS ..= head` (the window and the bucket it is
    /// sliding into). Buckets before 0 are empty.
    ring: [u64; BUCKETS + 1],
    /// The newest bucket the ring holds.
    head: u64,
}

/// The window went by below the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooSlow {
    /// The floor, in bytes a second.
    pub min_per_sec: u64,
    /// How long the window was.
    pub window: Duration,
    /// Bytes that arrived in that window.
    pub got: u64,
}

impl TooSlow {
    /// The attempt's error, naming the URL.
    pub fn into_error(self, url: &SafeUrl) -> DownloadError {
        DownloadError::TooSlow {
            url: url.clone(),
            min_per_sec: self.min_per_sec,
            got: self.got,
            secs: self.window.as_secs_f64(),
        }
    }
}

impl SpeedFloor {
    /// A floor of `min_per_sec` over a sliding `window`, the body starting at
    /// `start` (when the answer's headers arrived). `None` when the check is
    /// off: a zero floor or a zero window.
    pub fn new(min_per_sec: u64, window: Duration, start: Instant) -> Option<SpeedFloor> {
        if min_per_sec == 0 || window.is_zero() {
            return None;
        }
        let width = (window / BUCKETS as u32).max(Duration::from_nanos(1));
        Some(SpeedFloor {
            min_per_sec,
            window: width * BUCKETS as u32,
            width,
            start,
            ring: [0; BUCKETS + 1],
            head: 0,
        })
    }

    /// Counts `bytes` that arrived at `now`, then judges the window ending
    /// at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) -> Result<(), TooSlow> {
        self.add(now, bytes);
        self.check(now)
    }

    /// Counts `waited`, time this connection spent waiting on haul's own
    /// `--max-speed` bucket and ending at `now`, as if the floor had been
    /// met during it: the server was not being read then, so its speed is
    /// judged only over the time haul was listening. Without this, a limit
    /// shared by several connections (or one below the floor) would abort
    /// every attempt as too slow.
    pub fn excuse(&mut self, now: Instant, waited: Duration) {
        let owed = (self.min_per_sec as f64 * waited.as_secs_f64()).ceil() as u64;
        self.add(now, owed);
    }

    /// Judges the window ending at `now` without new bytes: an error once a
    /// whole window has passed since the body began and fewer bytes than
    /// the floor asks for arrived in it.
    pub fn check(&mut self, now: Instant) -> Result<(), TooSlow> {
        self.advance(self.bucket(now));
        let got = self.sum();
        if self.head < BUCKETS as u64 || got as f64 >= self.needed() {
            return Ok(());
        }
        Err(TooSlow {
            min_per_sec: self.min_per_sec,
            window: self.window,
            got,
        })
    }

    /// When [`SpeedFloor::check`] fails if nothing more arrives: the first
    /// moment, a window after the body began, when the bytes still inside
    /// the window fall short of the floor. Already past when it is short
    /// now.
    pub fn deadline(&self) -> Instant {
        let needed = self.needed();
        let mut left = self.sum();
        // Moving into bucket head + k drops the k oldest buckets of the ring
        // (those before bucket 0 were always empty).
        for k in 0..=BUCKETS as u64 + 1 {
            let dropped = (self.head + k).checked_sub(BUCKETS as u64 + 1);
            if let Some(oldest) = dropped.filter(|_| k > 0) {
                left = left.saturating_sub(self.ring[self.slot(oldest)]);
            }
            let bucket = self.head + k;
            if bucket >= BUCKETS as u64 && (left as f64) < needed {
                return self.bucket_start(bucket);
            }
        }
        // Unreachable with a floor above zero (an empty window is short).
        self.bucket_start(self.head + BUCKETS as u64 + 1)
    }

    /// When `bucket` begins. Buckets are counted from elapsed time, so this
    /// stays within a few buckets of an instant that exists; a sum that
    /// overflowed anyway would be a verdict never due.
    fn bucket_start(&self, bucket: u64) -> Instant {
        let nanos = self.width.as_nanos().saturating_mul(u128::from(bucket));
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        let offset = Duration::new(secs, (nanos % 1_000_000_000) as u32);
        self.start
            .checked_add(offset)
            .unwrap_or(self.start + self.window * 1000)
    }

    fn needed(&self) -> f64 {
        self.min_per_sec as f64 * self.window.as_secs_f64()
    }

    fn add(&mut self, now: Instant, bytes: u64) {
        self.advance(self.bucket(now));
        let head = self.slot(self.head);
        self.ring[head] = self.ring[head].saturating_add(bytes);
    }

    fn sum(&self) -> u64 {
        self.ring.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// The bucket `now` falls in. A clock that went backwards (instants
    /// taken out of order) lands in bucket 0, which `advance` then ignores.
    fn bucket(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(since / self.width.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Slides the window so that `bucket` is the newest, emptying the
    /// buckets it moves into. Never slides back.
    fn advance(&mut self, bucket: u64) {
        if bucket <= self.head {
            return;
        }
        let steps = (bucket - self.head).min(BUCKETS as u64 + 1);
        for i in 1..=steps {
            let slot = self.slot(bucket - steps + i);
            self.ring[slot] = 0;
        }
        self.head = bucket;
    }

    fn slot(&self, bucket: u64) -> usize {
        (bucket % (BUCKETS as u64 + 1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn is_off_for_a_zero_floor_or_window() {
        let now = Instant::now();
        assert!(SpeedFloor::new(0, secs(5), now).is_none());
        assert!(SpeedFloor::new(1024, Duration::ZERO, now).is_none());
    }

    #[test]
    fn defaults_are_one_kib_a_second_over_thirty_seconds() {
        use crate::engine::{DEFAULT_LOWEST_SPEED, DEFAULT_LOWEST_SPEED_TIME};
        assert_eq!(DEFAULT_LOWEST_SPEED, 1024);
        assert_eq!(DEFAULT_LOWEST_SPEED_TIME, secs(30));
        let floor = SpeedFloor::new(
            DEFAULT_LOWEST_SPEED,
            DEFAULT_LOWEST_SPEED_TIME,
            Instant::now(),
        );
        assert_eq!(floor.map(|f| f.width), Some(secs(1)));
    }

    #[test]
    fn aborts_a_drip_once_a_window_has_passed() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1024, secs(30), t0).expect("on");
        // One byte every two seconds: no verdict before the window is over.
        for s in (2..30).step_by(2) {
            assert_eq!(floor.record(at(t0, s * 1000), 1), Ok(()), "second {s}");
        }
        let err = floor.record(at(t0, 30_000), 1).expect_err("too slow");
        assert_eq!(err.got, 15);
        assert_eq!(err.min_per_sec, 1024);
        assert_eq!(err.window, secs(30));
    }

    #[test]
    fn a_fast_start_delays_the_verdict_by_one_window_not_two() {
        // 30 % of the file at once, then a byte every 2 s. The
        // fast bytes leave the window 30 s later, and the verdict falls
        // then; a tumbling window would have waited until 60 s.
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1024, secs(30), t0).expect("on");
        assert_eq!(floor.record(at(t0, 200), 300_000), Ok(()));
        for s in (2..=30).step_by(2) {
            assert_eq!(floor.record(at(t0, s * 1000), 1), Ok(()), "second {s}");
        }
        assert_eq!(floor.deadline(), at(t0, 31_000));
        assert_eq!(floor.check(at(t0, 30_999)), Ok(()));
        let err = floor.check(at(t0, 31_000)).expect_err("too slow");
        assert_eq!(err.got, 15);
    }

    #[test]
    fn the_deadline_needs_no_byte_to_arrive() {
        // A drip slower than the bucket: the loops sleep until the
        // deadline rather than wait for a byte that comes late.
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(3), t0).expect("on");
        assert_eq!(floor.deadline(), at(t0, 3000), "an empty window is short");
        assert_eq!(floor.record(at(t0, 500), 4000), Ok(()));
        // 4000 bytes cover the 3000 needed until their bucket (the one
        // from 500 ms) leaves the window, 3 s and one bucket later.
        assert_eq!(floor.deadline(), at(t0, 3600));
        assert_eq!(floor.check(at(t0, 3599)), Ok(()));
        assert!(floor.check(at(t0, 3600)).is_err());
    }

    #[test]
    fn the_deadline_is_now_when_the_window_is_already_short() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(3), t0).expect("on");
        assert!(floor.record(at(t0, 3200), 10).is_err());
        assert!(floor.deadline() <= at(t0, 3200));
    }

    #[test]
    fn keeps_a_body_at_or_above_the_floor() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(1), t0).expect("on");
        // Exactly 1000 B/s for ten windows, in 100 ms chunks.
        for tick in 1..=100 {
            assert_eq!(floor.record(at(t0, tick * 100), 100), Ok(()), "tick {tick}");
            assert!(floor.deadline() > at(t0, tick * 100), "tick {tick}");
        }
    }

    #[test]
    fn catches_a_body_that_slows_down_after_a_fast_start() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(1), t0).expect("on");
        assert_eq!(floor.record(at(t0, 500), 1_000_000), Ok(()));
        assert_eq!(
            floor.record(at(t0, 1000), 1),
            Ok(()),
            "the fast bytes count"
        );
        assert_eq!(
            floor.record(at(t0, 1450), 10),
            Ok(()),
            "still in the window"
        );
        let err = floor
            .record(at(t0, 1550), 10)
            .expect_err("the fast bytes left the window");
        assert_eq!(err.got, 21);
    }

    #[test]
    fn a_late_chunk_does_not_hide_the_empty_window_before_it() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(3), t0).expect("on");
        // Silence, then 4500 bytes at 9 s: the window ending then holds
        // them all, so the chunk passes; the silence was caught by the
        // deadline, which falls before this chunk.
        assert_eq!(floor.deadline(), at(t0, 3000));
        assert_eq!(floor.record(at(t0, 9000), 4500), Ok(()));
    }

    #[test]
    fn time_spent_on_our_own_speed_limit_is_not_held_against_the_server() {
        // One 16 KiB chunk, then 32 s waiting on a 512 B/s --max-speed:
        // the window holds a single chunk, below the default floor, yet
        // the server was never slow.
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1024, secs(30), t0).expect("on");
        assert_eq!(floor.record(at(t0, 10), 16 << 10), Ok(()));
        floor.excuse(at(t0, 32_010), secs(32));
        assert_eq!(floor.record(at(t0, 32_011), 16 << 10), Ok(()));
        assert!(floor.deadline() > at(t0, 60_000));
        // Without the excuse the same chunks fail.
        let mut unexcused = SpeedFloor::new(1024, secs(30), t0).expect("on");
        assert_eq!(unexcused.record(at(t0, 10), 16 << 10), Ok(()));
        assert!(unexcused.record(at(t0, 32_011), 16 << 10).is_err());
    }

    #[test]
    fn a_server_slow_between_limit_waits_is_still_caught() {
        // Excused waits cover only their own time: the 25 s of reading in
        // between at 10 B/s remain short of the floor.
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, secs(30), t0).expect("on");
        floor.excuse(at(t0, 5000), secs(5));
        for s in 6..=35 {
            let verdict = floor.record(at(t0, s * 1000), 10);
            if verdict.is_err() {
                assert!(s >= 30, "second {s}");
                return;
            }
        }
        panic!("never too slow");
    }

    #[test]
    fn a_clock_that_goes_backwards_is_not_a_verdict() {
        let t0 = Instant::now() + secs(10);
        let mut floor = SpeedFloor::new(1000, secs(1), t0).expect("on");
        assert_eq!(floor.record(t0 - secs(5), 0), Ok(()));
        assert_eq!(floor.check(t0 - secs(5)), Ok(()));
    }

    #[test]
    fn a_long_silence_empties_the_whole_ring() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1, secs(30), t0).expect("on");
        assert_eq!(floor.record(at(t0, 100), 1_000), Ok(()));
        let err = floor
            .check(at(t0, 3_600_000))
            .expect_err("an hour of nothing");
        assert_eq!(err.got, 0);
    }

    #[test]
    fn a_window_shorter_than_the_bucket_count_still_works() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, Duration::from_nanos(10), t0).expect("on");
        assert!(floor.check(at(t0, 1)).is_err());
    }
}
