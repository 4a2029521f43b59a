//! The manifest's two files as its index points into them, and the walks
//! over every line of them: looking a record up, visiting each path's
//! latest record once, re-indexing after a compaction.

use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::index::{self, Index, Loc};
use super::lines::{self, Blob, Lines};
use super::view::RecordView;
use super::{io_err, relayout_snapshot, JobRecord, JobState, JournalScan, ManifestError};

/// The manifest's two files as the index points into them: `snapshot` may
/// be a rewritten copy in memory (see [`relayout_snapshot`]), never
/// written through; `journal` only grows by appends.
#[derive(Debug)]
pub(super) struct Store {
    pub(super) snapshot: Blob,
    pub(super) journal: Blob,
    /// Length of the journal's complete lines: a walk reads no further.
    pub(super) journal_len: u64,
    /// Names for errors.
    pub(super) snapshot_path: PathBuf,
    pub(super) journal_path: PathBuf,
}

/// An empty snapshot, for a directory that has none yet.
pub(super) const EMPTY_SNAPSHOT: &[u8] = b"{\n  \"version\": 1,\n  \"jobs\": []\n}\n";

impl Store {
    pub(super) fn file_of(&self, loc: Loc) -> (&Blob, &Path) {
        if index::is_journal(loc) {
            (&self.journal, &self.journal_path)
        } else {
            (&self.snapshot, &self.snapshot_path)
        }
    }

    /// The JSON object of the record line at `loc`.
    pub(super) fn body_at<'b>(
        &self,
        loc: Loc,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], ManifestError> {
        let (blob, path) = self.file_of(loc);
        let line = blob
            .line_at(index::offset(loc), buf)
            .map_err(io_err("read manifest", path))?;
        Ok(lines::record_body(line))
    }

    /// A line that parsed when it was indexed no longer does: the file was
    /// changed under this haul (only a hand edit or a racing compaction can).
    pub(super) fn changed(&self, loc: Loc, source: impl std::fmt::Display) -> ManifestError {
        let (_, path) = self.file_of(loc);
        io_err("read manifest", path)(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a record changed while haul read it: {source}"),
        ))
    }

    pub(super) fn record_at(
        &self,
        loc: Loc,
        buf: &mut Vec<u8>,
    ) -> Result<JobRecord, ManifestError> {
        let body = self.body_at(loc, buf)?;
        serde_json::from_slice(body).map_err(|e| self.changed(loc, e))
    }

    /// Whether the record at `loc` is `path`'s.
    pub(super) fn owns(
        &self,
        loc: Loc,
        path: &str,
        buf: &mut Vec<u8>,
    ) -> Result<bool, ManifestError> {
        let body = self.body_at(loc, buf)?;
        let found = body_path(body).map_err(|e| self.changed(loc, e))?;
        Ok(found == path)
    }

    /// Indexes the snapshot; Ok(false) if it is not in the one-record-a-line
    /// layout (or a line of it does not parse alone).
    pub(super) fn index_snapshot(
        &self,
        index: &mut Index,
        on_line: &mut dyn FnMut(&RecordView),
    ) -> Result<bool, ManifestError> {
        let mut buf = Vec::new();
        lines::scan_snapshot(
            &self.snapshot,
            |e| io_err("read manifest", &self.snapshot_path)(e),
            |offset, body| {
                let Ok(rec) = RecordView::parse(body) else {
                    return Ok(false);
                };
                index.set(rec.path(), index::in_snapshot(offset), |old| {
                    self.owns(old, rec.path(), &mut buf)
                })?;
                on_line(&rec);
                Ok(true)
            },
        )
    }

    /// Indexes the journal's lines over the snapshot's, later lines
    /// replacing earlier ones. A last line without its `'\n'` is a write
    /// torn by a kill and is skipped.
    pub(super) fn index_journal(
        &mut self,
        index: &mut Index,
        on_line: &mut dyn FnMut(&RecordView),
    ) -> Result<JournalScan, ManifestError> {
        let mut scan = JournalScan::default();
        let mut complete = 0;
        let mut buf = Vec::new();
        let mut lines = Lines::new(&self.journal, u64::MAX);
        while let Some(line) = lines
            .next_line()
            .map_err(io_err("read manifest journal", &self.journal_path))?
        {
            scan.bytes = line.offset + line.bytes.len() as u64 + u64::from(line.complete);
            if !line.complete {
                break;
            }
            scan.lines += 1;
            complete = scan.bytes;
            let rec =
                RecordView::parse(line.bytes).map_err(|source| ManifestError::CorruptJournal {
                    path: self.journal_path.clone(),
                    line: scan.lines as u64,
                    source,
                })?;
            let store = &*self;
            index.set(rec.path(), index::in_journal(line.offset), |old| {
                store.owns(old, rec.path(), &mut buf)
            })?;
            on_line(&rec);
        }
        self.journal_len = complete;
        Ok(scan)
    }

    /// Indexes both files; a snapshot in another layout is rewritten in
    /// memory first. Returns whether that happened. `on_line` sees every
    /// record line indexed (twice for a snapshot that was rewritten).
    pub(super) fn index(
        &mut self,
        on_line: &mut dyn FnMut(&RecordView),
    ) -> Result<(Index, JournalScan, bool), ManifestError> {
        let mut index = Index::default();
        let mut relaid = false;
        if !self.index_snapshot(&mut index, on_line)? {
            self.snapshot = Blob::Mem(relayout_snapshot(&self.snapshot, &self.snapshot_path)?);
            index = Index::default();
            relaid = true;
            if !self.index_snapshot(&mut index, on_line)? {
                return Err(ManifestError::CorruptSnapshot {
                    path: self.snapshot_path.clone(),
                    source: serde::de::Error::custom("a record does not read back as written"),
                });
            }
        }
        let scan = self.index_journal(&mut index, on_line)?;
        Ok((index, scan, relaid))
    }

    /// Visits every path once, where it first appears (snapshot, then
    /// journal: the order records were registered in), with its latest
    /// record. `emit` may return where that record now lives, to re-point
    /// the index. Leaves every visited path marked (see [`Index::unmark_all`]).
    pub(super) fn walk(
        &self,
        index: &mut Index,
        mut emit: impl FnMut(Loc, &[u8]) -> Result<Option<Loc>, ManifestError>,
    ) -> Result<(), ManifestError> {
        let mut other = Vec::new();
        let mut visit = |loc: Loc, body: &[u8], index: &mut Index| {
            let path = body_path(body).map_err(|e| self.changed(loc, e))?;
            let Some(slot) = index.known_mut(&path) else {
                return Err(self.changed(loc, "its path is not indexed"));
            };
            if index::is_marked(*slot) {
                return Ok(());
            }
            let latest = *slot;
            let new = if latest == loc {
                emit(latest, body)?
            } else {
                emit(latest, self.body_at(latest, &mut other)?)?
            };
            *slot = index::marked(new.unwrap_or(latest));
            Ok(())
        };
        self.each_line(|loc, body| visit(loc, body, index))
    }

    /// Every complete line, snapshot then journal, with where it lives.
    pub(super) fn each_line(
        &self,
        mut each: impl FnMut(Loc, &[u8]) -> Result<(), ManifestError>,
    ) -> Result<(), ManifestError> {
        let in_layout = lines::scan_snapshot(
            &self.snapshot,
            |e| io_err("read manifest", &self.snapshot_path)(e),
            |offset, body| {
                each(index::in_snapshot(offset), body)?;
                Ok(true)
            },
        )?;
        if !in_layout {
            return Err(self.changed(index::in_snapshot(0), "the snapshot changed"));
        }
        let mut lines = Lines::new(&self.journal, self.journal_len);
        while let Some(line) = lines
            .next_line()
            .map_err(io_err("read manifest journal", &self.journal_path))?
        {
            if line.complete {
                each(index::in_journal(line.offset), line.bytes)?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// [`Store::walk`] for a reader: when no path has a second line, every
    /// line is its path's latest and first, and they are visited as they
    /// come, without a look-up each.
    pub(super) fn walk_read(
        &self,
        index: &mut Index,
        mut emit: impl FnMut(Loc, &[u8]) -> Result<(), ManifestError>,
    ) -> Result<(), ManifestError> {
        if !index.lines_are_paths() {
            let walked = self.walk(index, |loc, body| emit(loc, body).map(|()| None));
            index.unmark_all();
            return walked;
        }
        self.each_line(emit)
    }
}

/// The path of a record's JSON object. Reads it straight from the bytes
/// when haul wrote them (path first, nothing escaped in it), which is exact
/// for a line that parsed as a record: the string ends at its first quote.
pub(super) fn body_path(body: &[u8]) -> Result<std::borrow::Cow<'_, str>, serde_json::Error> {
    if let Some(rest) = body.strip_prefix(b"{\"path\":\"") {
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            if rest[end] == b'"' {
                if let Ok(path) = std::str::from_utf8(&rest[..end]) {
                    return Ok(path.into());
                }
            }
        }
    }
    #[derive(Deserialize)]
    struct PathOnly {
        path: String,
    }
    serde_json::from_slice::<PathOnly>(body).map(|p| p.path.into())
}

/// The state of a record's JSON object. Reads it straight from the bytes
/// when haul wrote them (path, URL and state first), which is exact for a
/// line that parsed as a record: each string ends at its first unescaped
/// quote, and a record has one `state` key.
pub(super) fn body_state(body: &[u8]) -> Result<JobState, serde_json::Error> {
    /// The bytes after the JSON string `text` starts (past its opening quote).
    fn after_string(text: &[u8]) -> Option<&[u8]> {
        let mut from = 0;
        loop {
            let at = from + memchr::memchr2(b'"', b'\\', text.get(from..)?)?;
            if text[at] == b'"' {
                return text.get(at + 1..);
            }
            from = at + 2;
        }
    }
    let leading = || {
        let rest = body.strip_prefix(b"{\"path\":\"")?;
        let rest = after_string(rest)?.strip_prefix(b",\"url\":\"")?;
        let rest = after_string(rest)?.strip_prefix(b",\"state\":\"")?;
        [
            (&b"done\""[..], JobState::Done),
            (b"partial\"", JobState::Partial),
            (b"pending\"", JobState::Pending),
            (b"failed\"", JobState::Failed),
        ]
        .into_iter()
        .find_map(|(name, state)| rest.starts_with(name).then_some(state))
    };
    if let Some(state) = leading() {
        return Ok(state);
    }
    #[derive(Deserialize)]
    struct StateOnly {
        state: JobState,
    }
    serde_json::from_slice::<StateOnly>(body).map(|s| s.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_state_reads_haul_lines_directly_and_others_by_parsing() {
        let cases: [(&[u8], JobState); 5] = [
            (
                br#"{"path":"a","url":"http://h/a","state":"done","bytes_done":1}"#,
                JobState::Done,
            ),
            // Escaped quotes and backslashes inside the strings before it.
            (
                br#"{"path":"a\"b\\","url":"http://h/?q=\"state\":\"done\"","state":"failed"}"#,
                JobState::Failed,
            ),
            (
                br#"{"path":"\u00fc","url":"u\\","state":"partial"}"#,
                JobState::Partial,
            ),
            // Another key order: parsed.
            (
                br#"{"state":"pending","path":"a","url":"u"}"#,
                JobState::Pending,
            ),
            (br#"{"path":"a","state":"done","url":"u"}"#, JobState::Done),
        ];
        for (body, state) in cases {
            assert_eq!(
                body_state(body).ok(),
                Some(state),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(body_state(br#"{"path":"a","url":"u","state":"gone"}"#).is_err());
    }
}
