//! How much of a body is kept, for the single stream and every range of a
//! split file alike: the `--max-file-size` cap (a length the server
//! announces is judged before a body byte is written, and a body of unknown
//! length is cut at the cap) and the end the answer vouches for (bytes past
//! it are never written). Pure arithmetic; it never touches the file, the
//! network or the manifest.

use crate::error::DownloadError;
use crate::safe_url::SafeUrl;

/// How large one file may grow; `None` means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimit {
    max: Option<u64>,
}

/// Why a chunk was not kept whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// It ran past `end`, the end the answer vouched for: its
    /// Content-Length is larger than its Content-Range or the known total.
    PastEnd(u64),
    /// It ran past the cap: the file fails with [`BodyLimit::exceeded`].
    OverCap,
}

impl Cut {
    /// The error that fails the attempt. `counted_from` is where the
    /// announcement that was broken counts from: 0 for a stream, whose
    /// total is the file's, the range's first byte for a range.
    pub(crate) fn into_error(
        self,
        limit: &BodyLimit,
        url: &SafeUrl,
        counted_from: u64,
    ) -> DownloadError {
        match self {
            Cut::PastEnd(end) => DownloadError::TooLong {
                url: url.clone(),
                expected: end - counted_from,
            },
            Cut::OverCap => limit.exceeded(url),
        }
    }
}

impl BodyLimit {
    pub(crate) fn new(max: Option<u64>) -> BodyLimit {
        BodyLimit { max }
    }

    /// Refuses a file whose announced total is over the cap, so a hostile
    /// or mistaken Content-Length costs neither a byte of disk nor a
    /// preallocation.
    pub(crate) fn check_total(&self, total: u64, url: &SafeUrl) -> Result<(), DownloadError> {
        match self.max {
            Some(max) if total > max => Err(DownloadError::TooLarge {
                url: url.clone(),
                limit: max,
                declared: Some(total),
            }),
            _ => Ok(()),
        }
    }

    /// How many of `len` more bytes, arriving when the file holds `pos`,
    /// fit under the cap. Fewer than `len` means the body must be cut there
    /// and the file failed with [`BodyLimit::exceeded`].
    pub(crate) fn fits(&self, pos: u64, len: u64) -> u64 {
        match self.max {
            Some(max) => len.min(max.saturating_sub(pos)),
            None => len,
        }
    }

    /// How many of `len` more bytes, arriving when the file holds `pos`, to
    /// keep: none past `end` (a stream's known total, a range's asked end)
    /// nor over the cap; and why the rest was dropped, if any was.
    pub(crate) fn keep(&self, pos: u64, len: u64, end: Option<u64>) -> (u64, Option<Cut>) {
        let room = end.map_or(len, |end| end.saturating_sub(pos));
        let keep = self.fits(pos, len.min(room));
        let cut = match end {
            Some(end) if len > room => Some(Cut::PastEnd(end)),
            _ if keep < len => Some(Cut::OverCap),
            _ => None,
        };
        (keep, cut)
    }

    /// The error for a body cut at the cap.
    pub(crate) fn exceeded(&self, url: &SafeUrl) -> DownloadError {
        DownloadError::TooLarge {
            url: url.clone(),
            limit: self.max.unwrap_or(u64::MAX),
            declared: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> SafeUrl {
        text.parse().expect("a valid URL")
    }

    #[test]
    fn no_cap_lets_everything_through() {
        let limit = BodyLimit::new(None);
        assert!(limit.check_total(u64::MAX, &url("http://h/a")).is_ok());
        assert_eq!(limit.fits(u64::MAX - 1, 1 << 20), 1 << 20);
    }

    #[test]
    fn refuses_an_announced_total_over_the_cap_only() {
        let limit = BodyLimit::new(Some(100));
        assert!(limit.check_total(100, &url("http://h/a")).is_ok());
        let err = limit.check_total(101, &url("http://h/a")).err();
        assert!(
            matches!(
                err,
                Some(DownloadError::TooLarge {
                    limit: 100,
                    declared: Some(101),
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn cuts_a_growing_body_exactly_at_the_cap() {
        let limit = BodyLimit::new(Some(100));
        assert_eq!(limit.fits(0, 60), 60);
        assert_eq!(limit.fits(60, 60), 40);
        assert_eq!(limit.fits(100, 1), 0);
        // A .part already past the cap (from a run without it) takes nothing.
        assert_eq!(limit.fits(150, 10), 0);
    }

    #[test]
    fn keeps_nothing_past_the_vouched_end_and_says_which_limit_cut() {
        let limit = BodyLimit::new(Some(100));
        assert_eq!(limit.keep(0, 50, Some(80)), (50, None));
        assert_eq!(limit.keep(60, 50, Some(80)), (20, Some(Cut::PastEnd(80))));
        assert_eq!(limit.keep(60, 50, None), (40, Some(Cut::OverCap)));
        // The vouched end is reported first: the server is lying.
        assert_eq!(limit.keep(90, 50, Some(120)), (10, Some(Cut::PastEnd(120))));
        assert_eq!(BodyLimit::new(None).keep(7, 9, None), (9, None));
    }

    #[test]
    fn the_errors_name_the_url_and_the_cap_and_are_permanent() {
        let limit = BodyLimit::new(Some(8 << 20));
        let cut = limit.exceeded(&url("http://h/endless"));
        let msg = cut.to_string();
        assert!(
            msg.contains("http://h/endless") && msg.contains("8388608"),
            "{msg}"
        );
        assert!(!cut.is_transient());
        let declared = limit.check_total(9 << 20, &url("http://h/big")).err();
        let msg = declared.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("http://h/big") && msg.contains("9437184"),
            "{msg}"
        );
    }
}
