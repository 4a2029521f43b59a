//! What an answer to a download's GET means for the bytes already on disk:
//! one classifier for every status a download meets (200, 206, 416 and the
//! rest), for the single stream and for each range of a split file alike.
//!
//! It reads only the status and the headers, never the body, the disk or
//! the clock, so every verdict is unit-tested from a table. What to do with
//! a verdict (append, restart from zero, call the file complete, retry or
//! fail on the status) is the engine's business; the redirects that came
//! before the answer are [`super::fetch`]'s.

use reqwest::header::{HeaderMap, HeaderName, ACCEPT_RANGES, CONTENT_RANGE, ETAG, LAST_MODIFIED};
use reqwest::StatusCode;

use super::range::{check_resumed, parse_content_range, ContentRange, ResumeMismatch};

/// The bytes a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The rest of the file from `from`: `Range: bytes=from-`, or no Range
    /// at all when `from` is 0. `total` is the length recorded for the
    /// file, if one is.
    Rest { from: u64, total: Option<u64> },
    /// `Range: bytes=first-last` of a file of `total` bytes: one request of
    /// a split download.
    Span { first: u64, last: u64, total: u64 },
    /// `Range: bytes=0-last` of a file not known yet: the first request of
    /// a file meant to be split, bounded so that the server sends no more
    /// than the first connection keeps.
    Front { last: u64 },
}

/// What the answer must match to continue the bytes we hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ours<'a> {
    /// The ETag of the version on disk: a ranged answer with another ETag
    /// comes from another version.
    pub etag: Option<&'a str>,
    /// A ranged answer without an ETag is refused as well: a mirror trusted
    /// on another mirror's strong ETag alone must echo it.
    pub must_echo_etag: bool,
}

/// The validators an answer carries (RFC 9110 §8.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// The answer's ETag and Last-Modified, as text.
    pub fn of(headers: &HeaderMap) -> Validators {
        Validators {
            etag: header_str(headers, ETAG),
            last_modified: header_str(headers, LAST_MODIFIED),
        }
    }
}

/// The verdict on one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: the whole file from byte 0, whatever was asked. `length` is
    /// the body's announced length; `accepts_ranges` whether the server
    /// says it serves byte ranges (`Accept-Ranges: bytes`).
    Whole {
        length: Option<u64>,
        validators: Validators,
        accepts_ranges: bool,
    },
    /// 206 that continues exactly what was asked, of a file of `total` bytes.
    Resumed { total: u64, validators: Validators },
    /// 206 to [`Asked::Front`]: the file's first `end` bytes of `total`
    /// (a 206 with all of it is [`Answer::Whole`]).
    Front {
        end: u64,
        total: u64,
        validators: Validators,
    },
    /// 416 to `bytes=N-` confirming that the file ends at N, with our
    /// validator: the bytes on disk are the whole file. Never for a
    /// [`Asked::Span`].
    AlreadyComplete,
    /// A 206 or 416 that does not line up with the bytes we hold: the bytes
    /// on disk cannot be continued from this answer.
    Mismatch(Mismatch),
    /// Any other status (4xx, 5xx, a redirect that was not followed, a 416
    /// to a request without Range): no use to a download.
    Refused { status: u16 },
}

/// Why a 206 or 416 does not continue the bytes we hold. The engine turns
/// it into the restart reason users read (`event::RestartReason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A 206 to `bytes=N-` that does not start at N, end at the end, or
    /// keep the recorded length.
    Resume(ResumeMismatch),
    /// A 206 or 416 from another version: its ETag is not ours.
    EtagChanged { ours: String, theirs: String },
    /// A 206 without the ETag it had to echo.
    EtagMissing { ours: String },
    /// A 416 to `bytes=N-` that does not confirm the file ends at N.
    Unsatisfiable {
        content_range: Option<String>,
        offset: u64,
    },
    /// A 206 to `bytes=first-last` with another Content-Range.
    WrongSpan {
        content_range: Option<String>,
        first: u64,
        last: u64,
        total: u64,
    },
    /// A 416 to `bytes=first-last`.
    UnsatisfiableSpan { first: u64, last: u64, total: u64 },
}

/// Classifies an answer from its status, headers and announced body
/// `length`, given what was `asked` and what it must match.
///
/// A 206 must be exactly the range asked for, of the expected total, and
/// from the same version (RFC 9110 §14.4, §13.1.5); a 416 is "complete"
/// only when its `bytes */N` names the very offset asked from, the recorded
/// total (if any) and our ETag.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
    asked: Asked,
    ours: Ours<'_>,
) -> Answer {
    let validators = || Validators::of(headers);
    match (status, asked) {
        (StatusCode::OK, _) => Answer::Whole {
            length,
            validators: validators(),
            accepts_ranges: accepts_ranges(headers),
        },
        (StatusCode::PARTIAL_CONTENT, Asked::Rest { from, total }) => {
            let content_range = header_str(headers, CONTENT_RANGE);
            let checked = check_resumed(content_range.as_deref(), from, total)
                .map_err(Mismatch::Resume)
                .and_then(|total| same_version(ours, headers).map(|()| total));
            match checked {
                Ok(total) => Answer::Resumed {
                    total,
                    validators: validators(),
                },
                Err(reason) => Answer::Mismatch(reason),
            }
        }
        (StatusCode::PARTIAL_CONTENT, Asked::Span { first, last, total }) => {
            let raw = header_str(headers, CONTENT_RANGE);
            let expected = ContentRange::Bytes {
                first,
                last,
                complete: Some(total),
            };
            if raw.as_deref().and_then(parse_content_range) != Some(expected) {
                return Answer::Mismatch(Mismatch::WrongSpan {
                    content_range: raw,
                    first,
                    last,
                    total,
                });
            }
            match same_version(ours, headers) {
                Ok(()) => Answer::Resumed {
                    total,
                    validators: validators(),
                },
                Err(reason) => Answer::Mismatch(reason),
            }
        }
        (StatusCode::RANGE_NOT_SATISFIABLE, Asked::Rest { from, total }) if from > 0 => {
            let content_range = header_str(headers, CONTENT_RANGE);
            let complete = content_range.as_deref().and_then(parse_content_range);
            // Done only if the server's length is exactly what we hold (and
            // what we recorded, if we knew it) and its validator is still
            // ours; If-Range made a changed file answer 200 instead.
            let length_matches = complete == Some(ContentRange::Unsatisfied { complete: from })
                && total.is_none_or(|total| total == from);
            if length_matches && same_version(ours, headers).is_ok() {
                return Answer::AlreadyComplete;
            }
            Answer::Mismatch(Mismatch::Unsatisfiable {
                content_range,
                offset: from,
            })
        }
        (StatusCode::PARTIAL_CONTENT, Asked::Front { last }) => {
            let raw = header_str(headers, CONTENT_RANGE);
            match raw.as_deref().and_then(parse_content_range) {
                Some(ContentRange::Bytes {
                    first: 0,
                    last: got,
                    complete: Some(total),
                }) if got == last.min(total.saturating_sub(1)) => {
                    if got + 1 == total {
                        return Answer::Whole {
                            length: Some(total),
                            validators: validators(),
                            accepts_ranges: true,
                        };
                    }
                    Answer::Front {
                        end: got + 1,
                        total,
                        validators: validators(),
                    }
                }
                _ => Answer::Mismatch(Mismatch::Resume(match raw {
                    Some(raw) => ResumeMismatch::WrongRange { raw, offset: 0 },
                    None => ResumeMismatch::NoContentRange,
                })),
            }
        }
        (StatusCode::RANGE_NOT_SATISFIABLE, Asked::Front { .. }) => {
            // Nothing to send from byte 0: the file is empty.
            let content_range = header_str(headers, CONTENT_RANGE);
            let complete = content_range.as_deref().and_then(parse_content_range);
            if complete == Some(ContentRange::Unsatisfied { complete: 0 }) {
                return Answer::AlreadyComplete;
            }
            Answer::Mismatch(Mismatch::Unsatisfiable {
                content_range,
                offset: 0,
            })
        }
        (StatusCode::RANGE_NOT_SATISFIABLE, Asked::Span { first, last, total }) => {
            Answer::Mismatch(Mismatch::UnsatisfiableSpan { first, last, total })
        }
        (status, _) => Answer::Refused {
            status: status.as_u16(),
        },
    }
}

/// A ranged answer must come from the version we hold: the same ETag, or
/// none where none is required.
fn same_version(ours: Ours<'_>, headers: &HeaderMap) -> Result<(), Mismatch> {
    match (ours.etag, header_str(headers, ETAG)) {
        (Some(mine), Some(theirs)) if mine != theirs => Err(Mismatch::EtagChanged {
            ours: mine.to_string(),
            theirs,
        }),
        (Some(etag), None) if ours.must_echo_etag => Err(Mismatch::EtagMissing {
            ours: etag.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Whether the server says it serves byte ranges (RFC 9110 §14.3).
fn accepts_ranges(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")))
}

/// A header's value as text; None if absent or not visible ASCII.
fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// Status, headers, what was asked and must match, the verdict.
    type Case<'a> = (
        u16,
        Vec<(&'static str, &'static str)>,
        Asked,
        Ours<'a>,
        Answer,
    );

    fn resumed(total: u64, etag: Option<&str>) -> Answer {
        Answer::Resumed {
            total,
            validators: Validators {
                etag: etag.map(str::to_string),
                last_modified: None,
            },
        }
    }

    fn bad(why: Mismatch) -> Answer {
        Answer::Mismatch(why)
    }

    fn wrong_span(raw: &str) -> Mismatch {
        Mismatch::WrongSpan {
            content_range: Some(raw.to_string()),
            first: 2,
            last: 4,
            total: 9,
        }
    }

    fn unsatisfiable(raw: Option<&str>) -> Mismatch {
        Mismatch::Unsatisfiable {
            content_range: raw.map(str::to_string),
            offset: 9,
        }
    }

    #[test]
    fn classifies_every_kind_of_answer() {
        const E: Option<&str> = Some("\"e\"");
        let rest = |from, total| Asked::Rest { from, total };
        let span = |first, last, total| Asked::Span { first, last, total };
        let front = |last| Asked::Front { last };
        let plain = Ours {
            etag: E,
            must_echo_etag: false,
        };
        let echo = Ours {
            etag: E,
            must_echo_etag: true,
        };
        let none = Ours::default();
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            // 200, whatever was asked: the whole file.
            (200, vec![("etag", "\"e\""), ("accept-ranges", "none, bytes")], rest(0, None), none,
             Answer::Whole { length: Some(9), validators: Validators { etag: E.map(str::to_string), last_modified: None }, accepts_ranges: true }),
            (200, vec![("last-modified", "d")], span(5, 8, 9), echo,
             Answer::Whole { length: Some(9), validators: Validators { etag: None, last_modified: Some("d".into()) }, accepts_ranges: false }),
            // 206 to bytes=N-: must start at N and run to the recorded end.
            (206, vec![("content-range", "bytes 5-8/9"), ("etag", "\"e\"")], rest(5, Some(9)), plain, resumed(9, E)),
            (206, vec![("content-range", "bytes 5-8/9")], rest(5, None), plain, resumed(9, None)),
            (206, vec![("content-range", "bytes 0-8/9")], rest(0, None), none, resumed(9, None)),
            (206, vec![("content-range", "bytes 4-8/9")], rest(5, Some(9)), plain,
             bad(Mismatch::Resume(ResumeMismatch::WrongRange { raw: "bytes 4-8/9".into(), offset: 5 }))),
            (206, vec![("content-range", "bytes 5-9/10")], rest(5, Some(9)), plain,
             bad(Mismatch::Resume(ResumeMismatch::LengthChanged { expected: 9, total: 10, raw: "bytes 5-9/10".into() }))),
            (206, vec![], rest(5, Some(9)), plain, bad(Mismatch::Resume(ResumeMismatch::NoContentRange))),
            (206, vec![("content-range", "bytes 5-8/9"), ("etag", "\"f\"")], rest(5, Some(9)), plain,
             bad(Mismatch::EtagChanged { ours: "\"e\"".into(), theirs: "\"f\"".into() })),
            // 206 to bytes=a-b: exactly that span of the same total and version.
            (206, vec![("content-range", "bytes 2-4/9"), ("etag", "\"e\"")], span(2, 4, 9), echo, resumed(9, E)),
            (206, vec![("content-range", "bytes 2-4/9")], span(2, 4, 9), plain, resumed(9, None)),
            (206, vec![("content-range", "bytes 2-4/9")], span(2, 4, 9), echo,
             bad(Mismatch::EtagMissing { ours: "\"e\"".into() })),
            (206, vec![("content-range", "bytes 2-5/9")], span(2, 4, 9), plain,
             bad(wrong_span("bytes 2-5/9"))),
            (206, vec![("content-range", "bytes 2-4/10")], span(2, 4, 9), plain,
             bad(wrong_span("bytes 2-4/10"))),
            (206, vec![("content-range", "bytes 2-4/9"), ("etag", "\"f\"")], span(2, 4, 9), plain,
             bad(Mismatch::EtagChanged { ours: "\"e\"".into(), theirs: "\"f\"".into() })),
            // 206 to bytes=0-last of a file not known yet: its front, or all of it.
            (206, vec![("content-range", "bytes 0-3/9"), ("etag", "\"e\"")], front(3), none,
             Answer::Front { end: 4, total: 9, validators: Validators { etag: E.map(str::to_string), last_modified: None } }),
            (206, vec![("content-range", "bytes 0-8/9")], front(15), none,
             Answer::Whole { length: Some(9), validators: Validators::default(), accepts_ranges: true }),
            (206, vec![("content-range", "bytes 0-2/9")], front(3), none,
             bad(Mismatch::Resume(ResumeMismatch::WrongRange { raw: "bytes 0-2/9".into(), offset: 0 }))),
            (206, vec![("content-range", "bytes 1-3/9")], front(3), none,
             bad(Mismatch::Resume(ResumeMismatch::WrongRange { raw: "bytes 1-3/9".into(), offset: 0 }))),
            (206, vec![], front(3), none, bad(Mismatch::Resume(ResumeMismatch::NoContentRange))),
            (416, vec![("content-range", "bytes */0")], front(3), none, Answer::AlreadyComplete),
            (416, vec![("content-range", "bytes */9")], front(3), none,
             bad(Mismatch::Unsatisfiable { content_range: Some("bytes */9".into()), offset: 0 })),
            // 416: complete only at exactly the offset, total and version we hold.
            (416, vec![("content-range", "bytes */9"), ("etag", "\"e\"")], rest(9, Some(9)), plain, Answer::AlreadyComplete),
            (416, vec![("content-range", "bytes */9")], rest(9, None), plain, Answer::AlreadyComplete),
            (416, vec![("content-range", "bytes */10")], rest(9, Some(9)), plain,
             bad(unsatisfiable(Some("bytes */10")))),
            (416, vec![("content-range", "bytes */9")], rest(9, Some(12)), plain,
             bad(unsatisfiable(Some("bytes */9")))),
            (416, vec![("content-range", "bytes */9"), ("etag", "\"f\"")], rest(9, Some(9)), plain,
             bad(unsatisfiable(Some("bytes */9")))),
            (416, vec![], rest(9, Some(9)), plain, bad(unsatisfiable(None))),
            (416, vec![("content-range", "bytes */9")], span(2, 4, 9), plain,
             bad(Mismatch::UnsatisfiableSpan { first: 2, last: 4, total: 9 })),
            (416, vec![("content-range", "bytes */9")], rest(0, None), none, Answer::Refused { status: 416 }),
            // Anything else is no use to a download.
            (404, vec![], rest(0, None), none, Answer::Refused { status: 404 }),
            (503, vec![("retry-after", "5")], span(2, 4, 9), plain, Answer::Refused { status: 503 }),
            (304, vec![], rest(5, Some(9)), plain, Answer::Refused { status: 304 }),
        ];
        for (status, pairs, asked, ours, want) in cases {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
            let got = classify(status, &headers(&pairs), Some(9), asked, ours);
            assert_eq!(got, want, "{status} {pairs:?} {asked:?}");
        }
    }
}
