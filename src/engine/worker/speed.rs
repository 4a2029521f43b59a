//! The `--lowest-speed` floor: decides from (instant, bytes) samples whether
//! one attempt's body has averaged less than the floor over a whole window.
//!
//! A read timeout only catches a body that sends nothing; a server that drips
//! a byte a second never trips it. This module owns only the arithmetic: it
//! never reads the clock, sleeps or touches the network, so its tests feed it
//! instants by hand. The streaming loops own the clock and the error.

use std::time::{Duration, Instant};

use crate::error::DownloadError;

/// Measures one attempt's body in consecutive windows of a fixed length.
///
/// Windows tumble rather than slide: a slow stretch is caught within two
/// windows at most, and the state stays two numbers however fast the body is.
#[derive(Debug, Clone)]
pub(crate) struct SpeedFloor {
    /// Bytes a second the body must average over each window.
    min_per_sec: u64,
    window: Duration,
    window_start: Instant,
    in_window: u64,
}

/// A whole window went by below the floor.
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
    pub fn into_error(self, url: &str) -> DownloadError {
        DownloadError::TooSlow {
            url: url.to_string(),
            min_per_sec: self.min_per_sec,
            got: self.got,
            secs: self.window.as_secs_f64(),
        }
    }
}

impl SpeedFloor {
    /// A floor of `min_per_sec` over windows of `window`, the first starting
    /// at `start` (when the answer's headers arrived). `None` when the check is
    /// off: a zero floor or a zero window.
    pub fn new(min_per_sec: u64, window: Duration, start: Instant) -> Option<SpeedFloor> {
        if min_per_sec == 0 || window.is_zero() {
            return None;
        }
        Some(SpeedFloor {
            min_per_sec,
            window,
            window_start: start,
            in_window: 0,
        })
    }

    /// Counts `bytes` that arrived at `now`; an error once a full window has
    /// passed with fewer bytes than the floor asks for.
    ///
    /// The bytes arriving at `now` count for the window that just closed:
    /// they were on their way during it.
    pub fn record(&mut self, now: Instant, bytes: u64) -> Result<(), TooSlow> {
        self.in_window = self.in_window.saturating_add(bytes);
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < self.window {
            return Ok(());
        }
        // Judge the window over the time it really lasted: a chunk that
        // arrives late stretches it, and must not inflate the average.
        let needed = self.min_per_sec as f64 * elapsed.as_secs_f64();
        if (self.in_window as f64) < needed {
            return Err(TooSlow {
                min_per_sec: self.min_per_sec,
                window: elapsed,
                got: self.in_window,
            });
        }
        self.window_start = now;
        self.in_window = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn is_off_for_a_zero_floor_or_window() {
        let now = Instant::now();
        assert!(SpeedFloor::new(0, Duration::from_secs(5), now).is_none());
        assert!(SpeedFloor::new(1024, Duration::ZERO, now).is_none());
    }

    #[test]
    fn aborts_a_drip_once_a_window_has_passed() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1024, Duration::from_secs(5), t0).expect("on");
        // One byte a second: no verdict before the window is over.
        for s in 1..5 {
            assert_eq!(floor.record(at(t0, s * 1000), 1), Ok(()), "second {s}");
        }
        let err = floor.record(at(t0, 5000), 1).expect_err("too slow");
        assert_eq!(err.got, 5);
        assert_eq!(err.min_per_sec, 1024);
        assert_eq!(err.window, Duration::from_secs(5));
    }

    #[test]
    fn keeps_a_body_at_or_above_the_floor() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, Duration::from_secs(1), t0).expect("on");
        // Exactly 1000 B/s for ten windows, in 100 ms chunks.
        for tick in 1..=100 {
            assert_eq!(floor.record(at(t0, tick * 100), 100), Ok(()), "tick {tick}");
        }
    }

    #[test]
    fn catches_a_body_that_slows_down_after_a_fast_start() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, Duration::from_secs(1), t0).expect("on");
        assert_eq!(floor.record(at(t0, 500), 1_000_000), Ok(()));
        assert_eq!(
            floor.record(at(t0, 1000), 1),
            Ok(()),
            "the fast window passes"
        );
        assert_eq!(floor.record(at(t0, 1500), 10), Ok(()));
        let err = floor
            .record(at(t0, 2000), 10)
            .expect_err("the slow window fails");
        assert_eq!(err.got, 20);
    }

    #[test]
    fn a_late_chunk_is_judged_over_the_time_it_took() {
        let t0 = Instant::now();
        let mut floor = SpeedFloor::new(1000, Duration::from_secs(1), t0).expect("on");
        // 1500 bytes after 1 s would pass; after 3 s it is 500 B/s.
        let err = floor.record(at(t0, 3000), 1500).expect_err("too slow");
        assert_eq!(err.window, Duration::from_secs(3));
    }

    #[test]
    fn a_clock_that_goes_backwards_is_not_a_verdict() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut floor = SpeedFloor::new(1000, Duration::from_secs(1), t0).expect("on");
        assert_eq!(floor.record(t0 - Duration::from_secs(5), 0), Ok(()));
    }
}
