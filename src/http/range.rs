//! Range, Content-Range and If-Range: the arithmetic that decides whether a
//! ranged answer may be appended to the bytes already on disk.
//!
//! Pure functions over header values; the worker acts on their verdicts.

/// A parsed `Content-Range` header (RFC 9110 §14.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete` (`complete` is None for `*`).
    Bytes {
        first: u64,
        last: u64,
        complete: Option<u64>,
    },
    /// `bytes */complete`, sent with 416.
    Unsatisfied { complete: u64 },
}

/// Parses a `Content-Range` value; None if malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?.trim_start();
    let (range, complete) = rest.split_once('/')?;
    let complete = match complete.trim() {
        "*" => None,
        n => Some(parse_u64(n)?),
    };
    if range.trim() == "*" {
        return complete.map(|complete| ContentRange::Unsatisfied { complete });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (parse_u64(first)?, parse_u64(last)?);
    if last < first || complete.is_some_and(|c| last >= c) {
        return None;
    }
    Some(ContentRange::Bytes {
        first,
        last,
        complete,
    })
}

/// Digits only: `u64::from_str` would also take a leading '+'.
fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a 206 answer to `Range: bytes=offset-` does not continue the bytes
/// on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeMismatch {
    #[error("206 without Content-Range")]
    NoContentRange,
    /// The resource's length is not the one recorded.
    #[error("length changed from {expected} to {total} (Content-Range {raw:?})")]
    LengthChanged {
        expected: u64,
        total: u64,
        raw: String,
    },
    /// The range does not start at `offset` or does not run to the end.
    #[error("Content-Range {raw:?} does not answer the request for bytes {offset}-")]
    WrongRange { raw: String, offset: u64 },
}

/// Checks a 206 answer to `Range: bytes=offset-`: it must start exactly at
/// `offset`, run to the end of the resource, and (when we knew it) keep the
/// same total length. Returns the total length.
pub fn check_resumed(
    content_range: Option<&str>,
    offset: u64,
    expected_total: Option<u64>,
) -> Result<u64, ResumeMismatch> {
    let Some(raw) = content_range else {
        return Err(ResumeMismatch::NoContentRange);
    };
    match parse_content_range(raw) {
        Some(ContentRange::Bytes {
            first,
            last,
            complete: Some(total),
        }) if first == offset && last + 1 == total => match expected_total {
            Some(expected) if expected != total => Err(ResumeMismatch::LengthChanged {
                expected,
                total,
                raw: raw.to_string(),
            }),
            _ => Ok(total),
        },
        _ => Err(ResumeMismatch::WrongRange {
            raw: raw.to_string(),
            offset,
        }),
    }
}

/// Whether an ETag is strong (RFC 9110 §8.8.3): a weak one starts `W/` and
/// may stand for bytes that differ, so it proves nothing about a range.
pub fn is_strong_etag(tag: &str) -> bool {
    !tag.starts_with("W/")
}

/// The `If-Range` validator for a resume (RFC 9110 §13.1.5): a strong ETag,
/// else Last-Modified. Weak ETags are not allowed in If-Range.
pub fn if_range_value(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    match etag {
        Some(tag) if is_strong_etag(tag) => Some(tag.to_string()),
        _ => last_modified.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range_table() {
        use ContentRange::*;
        let cases: &[(&str, Option<ContentRange>)] = &[
            (
                "bytes 0-99/100",
                Some(Bytes {
                    first: 0,
                    last: 99,
                    complete: Some(100),
                }),
            ),
            (
                "bytes 50-99/*",
                Some(Bytes {
                    first: 50,
                    last: 99,
                    complete: None,
                }),
            ),
            ("bytes */100", Some(Unsatisfied { complete: 100 })),
            (
                "bytes  7-7/8",
                Some(Bytes {
                    first: 7,
                    last: 7,
                    complete: Some(8),
                }),
            ),
            ("bytes 0-100/100", None),
            ("bytes 9-3/100", None),
            ("bytes +1-3/100", None),
            ("bytes 1-3", None),
            ("items 0-1/2", None),
            ("bytes */*", None),
            ("", None),
            ("bytes 0-18446744073709551616/1", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_content_range(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn accepts_only_a_range_that_continues_at_the_offset() {
        assert_eq!(
            check_resumed(Some("bytes 100-999/1000"), 100, Some(1000)),
            Ok(1000)
        );
        assert_eq!(
            check_resumed(Some("bytes 100-999/1000"), 100, None),
            Ok(1000)
        );
        let bad = [
            (Some("bytes 0-999/1000"), 100, Some(1000)),
            (Some("bytes 101-999/1000"), 100, Some(1000)),
            (Some("bytes 100-500/1000"), 100, Some(1000)),
            (Some("bytes 100-1999/2000"), 100, Some(1000)),
            (Some("bytes 100-999/*"), 100, Some(1000)),
            (None, 100, Some(1000)),
        ];
        for (cr, off, total) in bad {
            assert!(check_resumed(cr, off, total).is_err(), "{cr:?}");
        }
    }

    #[test]
    fn resume_mismatches_say_what_the_answer_got_wrong() {
        let text = |cr, total| check_resumed(cr, 100, total).map_err(|e| e.to_string());
        assert_eq!(
            text(None, Some(1000)),
            Err("206 without Content-Range".to_string())
        );
        assert_eq!(
            text(Some("bytes 100-1999/2000"), Some(1000)),
            Err(
                "length changed from 1000 to 2000 (Content-Range \"bytes 100-1999/2000\")"
                    .to_string()
            )
        );
        assert_eq!(
            text(Some("bytes 0-999/1000"), Some(1000)),
            Err(
                "Content-Range \"bytes 0-999/1000\" does not answer the request for bytes 100-"
                    .to_string()
            )
        );
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        assert_eq!(
            if_range_value(Some("\"a\""), Some("date")),
            Some("\"a\"".into())
        );
        assert_eq!(
            if_range_value(Some("W/\"a\""), Some("date")),
            Some("date".into())
        );
        assert_eq!(if_range_value(Some("W/\"a\""), None), None);
        assert_eq!(if_range_value(None, None), None);
    }
}
