//! A record line read in place, for the passes that see every line
//! (indexing on open, `haul status`'s counts): the line is checked against
//! everything a [`JobRecord`] requires, but only what those passes use is
//! kept, borrowed from the line. A million lines then cost no allocation
//! each; copying and freeing a record's six strings was a quarter of
//! `haul status` on a million-URL manifest.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

#[cfg(doc)]
use super::JobRecord;
use super::{JobState, Progress, Segment};

/// One record line, checked as a [`JobRecord`] would be.
#[derive(Deserialize)]
// The fields not read are there so that a line a JobRecord would refuse
// (a missing URL, a number where a string belongs) is refused here too.
#[allow(dead_code)]
pub struct RecordView<'a> {
    #[serde(borrow, deserialize_with = "checked_path")]
    path: Cow<'a, str>,
    url: AnyStr,
    state: JobState,
    bytes_done: u64,
    total: Option<u64>,
    etag: Option<AnyStr>,
    last_modified: Option<AnyStr>,
    attempts: u32,
    last_error: Option<AnyStr>,
    #[serde(borrow)]
    sha256: Option<Text<'a>>,
    boot_id: Option<AnyStr>,
    #[serde(default)]
    segments: Option<Vec<Segment>>,
}

impl<'a> RecordView<'a> {
    /// Parses one record line. The line is checked to be UTF-8 once, as a
    /// whole, rather than string by string.
    pub(super) fn parse(body: &'a [u8]) -> Result<RecordView<'a>, serde_json::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str(text),
            // Let the parser say where the bad byte is.
            Err(_) => serde_json::from_slice(body),
        }
    }
}

impl RecordView<'_> {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn state(&self) -> JobState {
        self.state
    }

    /// The recorded sha256, as written (not checked to be hex).
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_ref().map(|text| &*text.0)
    }

    pub fn progress(&self) -> Progress {
        Progress {
            state: self.state,
            bytes_done: self.bytes_done,
            total: self.total,
        }
    }
}

/// A JSON string, borrowed where the line holds it unescaped.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        d.deserialize_str(TextVisitor).map(Text)
    }
}

/// The path, borrowed where the line holds it unescaped, and checked as a
/// list's `out=` is.
fn checked_path<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    let path = d.deserialize_str(TextVisitor)?;
    crate::naming::RelPath::parse(&path).map_err(de::Error::custom)?;
    Ok(path)
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_owned()))
    }
}

/// A JSON string, checked and not kept.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyStr, D::Error> {
        struct AnyStrVisitor;
        impl Visitor<'_> for AnyStrVisitor {
            type Value = AnyStr;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(AnyStrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::super::JobRecord;
    use super::*;

    /// Lines a JobRecord reads and lines it refuses: the view must agree
    /// on every one, and read the same path and progress.
    #[test]
    fn accepts_and_refuses_what_a_job_record_does() {
        let golden = include_str!("../../../fixtures/manifests/golden.json");
        let mut lines: Vec<String> = golden
            .lines()
            .filter(|l| l.trim_start().starts_with("{\"path\""))
            .map(|l| l.trim().trim_end_matches(',').to_string())
            .collect();
        assert_eq!(lines.len(), 4, "the fixture's record lines");
        let good = lines[0].clone();
        let split = good.replacen(
            "\"boot_id\"",
            "\"segments\":[{\"start\":0,\"end\":10,\"written\":4,\"synced\":2}],\"boot_id\"",
            1,
        );
        lines.push(split.clone());
        for (from, to) in [
            ("\"url\":\"https://example.com/b.bin?x=1&y=2\",", ""),
            ("\"attempts\":1", "\"attempts\":\"1\""),
            ("\"attempts\":1", "\"attempts\":-1"),
            ("\"etag\":\"\\\"abc\\\"\"", "\"etag\":5"),
            ("\"sha256\":\"5f70", "\"sha256\":[\"5f70"),
            ("\"state\":\"done\"", "\"state\":\"finished\""),
            ("\"bytes_done\":1024,", ""),
            ("\"path\":\"a/b.bin\"", "\"path\":\"../b.bin\""),
            ("\"path\":\"a/b.bin\"", "\"path\":\"a/\\u0007.bin\""),
            ("\"total\":1024", "\"total\":\"x\""),
            ("\"boot_id\"", "\"extra\":{\"any\":[1]},\"boot_id\""),
        ] {
            assert!(good.contains(from), "{from}");
            lines.push(good.replacen(from, to, 1));
        }
        lines.push(split.replace("\"synced\":2", "\"synced\":\"2\""));
        lines.push(good[..good.len() - 1].to_string());
        let mut refused = 0;
        for line in &lines {
            let full = serde_json::from_str::<JobRecord>(line);
            let view = RecordView::parse(line.as_bytes());
            match (&full, &view) {
                (Ok(full), Ok(view)) => {
                    assert_eq!(view.path(), full.path, "{line}");
                    assert_eq!(view.sha256(), full.sha256.as_deref(), "{line}");
                    assert_eq!(view.progress(), full.progress(), "{line}");
                }
                (Err(_), Err(_)) => refused += 1,
                _ => panic!("disagree on {line}: {:?} vs {:?}", full, view.is_ok()),
            }
        }
        assert_eq!(refused, 12, "the corrupted lines, all but the extra field");
    }

    #[test]
    fn borrows_a_plain_path_and_unescapes_another() {
        let plain = br#"{"path":"a/b","url":"u","state":"pending","bytes_done":0,"attempts":0}"#;
        let view = RecordView::parse(plain).expect("parses");
        assert!(matches!(view.path, Cow::Borrowed("a/b")));
        let escaped =
            br#"{"path":"a\/\u00fc","url":"u","state":"pending","bytes_done":0,"attempts":0}"#;
        let view = RecordView::parse(escaped).expect("parses");
        assert_eq!(view.path, "a/ü");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_refused() {
        let mut line =
            br#"{"path":"a","url":"u","state":"pending","bytes_done":0,"attempts":0}"#.to_vec();
        line[10] = 0xff;
        assert!(RecordView::parse(&line).is_err());
    }
}
