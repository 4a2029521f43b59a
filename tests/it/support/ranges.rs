//! Which bytes the test server sends for a `Range` header (RFC 9110 §14).
//!
//! Written from the RFC, independently of haul's client-side range code, so
//! the two cannot share a misreading. Pure functions; no I/O.

/// What the server will send of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// 200 with the whole body.
    Full,
    /// First and last byte positions, inclusive.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2 / §14.2 for a single range; a header this server does
/// not understand (other unit, several ranges, bad syntax, last < first) is
/// ignored, which the RFC allows.
pub fn select_range(value: &str, len: u64) -> Selection {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return Selection::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Selection::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Selection::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Some(suffix) = digits(last) else {
            return Selection::Full;
        };
        if suffix == 0 || len == 0 {
            return Selection::Unsatisfiable;
        }
        return Selection::Partial(len - suffix.min(len), len - 1);
    }
    let Some(first) = digits(first) else {
        return Selection::Full;
    };
    let last = if last.is_empty() {
        None
    } else {
        match digits(last) {
            Some(last) if last >= first => Some(last),
            _ => return Selection::Full,
        }
    };
    if first >= len {
        return Selection::Unsatisfiable;
    }
    Selection::Partial(first, last.map_or(len - 1, |last| last.min(len - 1)))
}

/// A 206 that starts somewhere other than asked (and says so honestly in
/// Content-Range, with the bytes that really live there).
pub fn wrong_range(asked: &Selection, len: u64) -> Selection {
    let start = match asked {
        Selection::Partial(first, _) if *first > 0 => first / 2,
        _ => len / 2,
    };
    if len == 0 {
        Selection::Unsatisfiable
    } else {
        Selection::Partial(start.min(len - 1), len - 1)
    }
}

/// A non-negative decimal with digits only (no sign, no spaces).
pub fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_ranges_like_rfc_9110() {
        use Selection::*;
        let len = 1000;
        let table: &[(&str, Selection)] = &[
            ("bytes=0-", Partial(0, 999)),
            ("bytes=10-", Partial(10, 999)),
            ("bytes=10-19", Partial(10, 19)),
            ("bytes=10-10", Partial(10, 10)),
            ("bytes=990-5000", Partial(990, 999)),
            ("bytes=-100", Partial(900, 999)),
            ("bytes=-5000", Partial(0, 999)),
            ("Bytes = 5-6", Partial(5, 6)),
            ("bytes=999-", Partial(999, 999)),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=2000-3000", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=20-10", Full),
            ("bytes=0-1,5-6", Full),
            ("items=0-1", Full),
            ("bytes=+5-", Full),
            ("bytes=a-", Full),
            ("bytes=5", Full),
            ("nonsense", Full),
        ];
        for (header, want) in table {
            assert_eq!(select_range(header, len), *want, "{header}");
        }
        assert_eq!(select_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(select_range("bytes=-1", 0), Unsatisfiable);
    }

    #[test]
    fn wrong_range_never_starts_where_asked() {
        for asked in [
            Selection::Full,
            Selection::Partial(0, 99),
            Selection::Partial(40, 99),
        ] {
            let got = wrong_range(&asked, 100);
            let Selection::Partial(start, 99) = got else {
                panic!("{asked:?} gave {got:?}");
            };
            let asked_start = match asked {
                Selection::Partial(first, _) => first,
                _ => 0,
            };
            assert_ne!(start, asked_start, "{asked:?}");
        }
    }
}
