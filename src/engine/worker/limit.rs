//! The `--max-file-size` cap as the streaming loops apply it: a length the
//! server announces is judged before a body byte is written, and a body of
//! unknown length is cut at the cap. Pure arithmetic; it never touches the
//! file, the network or the manifest, and knows nothing of ranges.

use crate::error::DownloadError;

/// How large one file may grow; `None` means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimit {
    max: Option<u64>,
}

impl BodyLimit {
    pub(crate) fn new(max: Option<u64>) -> BodyLimit {
        BodyLimit { max }
    }

    /// Refuses a file whose announced total is over the cap, so a hostile
    /// or mistaken Content-Length costs neither a byte of disk nor a
    /// preallocation.
    pub(crate) fn check_total(&self, total: u64, url: &str) -> Result<(), DownloadError> {
        match self.max {
            Some(max) if total > max => Err(DownloadError::TooLarge {
                url: url.to_string(),
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

    /// The error for a body cut at the cap.
    pub(crate) fn exceeded(&self, url: &str) -> DownloadError {
        DownloadError::TooLarge {
            url: url.to_string(),
            limit: self.max.unwrap_or(u64::MAX),
            declared: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cap_lets_everything_through() {
        let limit = BodyLimit::new(None);
        assert!(limit.check_total(u64::MAX, "http://h/a").is_ok());
        assert_eq!(limit.fits(u64::MAX - 1, 1 << 20), 1 << 20);
    }

    #[test]
    fn refuses_an_announced_total_over_the_cap_only() {
        let limit = BodyLimit::new(Some(100));
        assert!(limit.check_total(100, "http://h/a").is_ok());
        let err = limit.check_total(101, "http://h/a").err();
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
    fn the_errors_name_the_url_and_the_cap_and_are_permanent() {
        let limit = BodyLimit::new(Some(8 << 20));
        let cut = limit.exceeded("http://h/endless");
        let msg = cut.to_string();
        assert!(
            msg.contains("http://h/endless") && msg.contains("8388608"),
            "{msg}"
        );
        assert!(!cut.is_transient());
        let declared = limit.check_total(9 << 20, "http://h/big").err();
        let msg = declared.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("http://h/big") && msg.contains("9437184"),
            "{msg}"
        );
    }
}
