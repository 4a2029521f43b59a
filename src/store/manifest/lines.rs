//! The manifest's files as lines: reading them in order or one line at a
//! given offset, and the snapshot's layout (a JSON document with one record
//! a line), which is what lets a record be found again by its offset.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

/// A manifest file's bytes: the file itself, or (for a snapshot that had
/// to be rewritten into the one-record-a-line layout, and for parsing from
/// memory) a copy in memory.
#[derive(Debug)]
pub(super) enum Blob {
    File(WindowedFile),
    Mem(Vec<u8>),
}

impl Blob {
    pub(super) fn file(file: File) -> Blob {
        Blob::File(WindowedFile {
            file,
            window: Mutex::new(Window::default()),
        })
    }

    /// Drops what was read ahead: the file's bytes changed (the journal
    /// was cut back or emptied).
    pub(super) fn forget(&self) {
        if let Blob::File(file) = self {
            *file.window.lock().unwrap_or_else(PoisonError::into_inner) = Window::default();
        }
    }

    /// Reads at `offset` without moving any file cursor (appends to the
    /// journal go on from another handle's point of view unchanged).
    pub(super) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Blob::File(file) => file.read_at(buf, offset),
            Blob::Mem(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                Ok(n)
            }
        }
    }

    /// The line starting at `offset`, without its `'\n'`, into `buf`. A
    /// line cut short by the end of the file is an error: only complete
    /// lines are ever pointed at.
    pub(super) fn line_at<'b>(&self, offset: u64, buf: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
        buf.clear();
        let mut chunk = 512;
        loop {
            let have = buf.len();
            buf.resize(have + chunk, 0);
            let n = self.read_at(&mut buf[have..], offset + have as u64)?;
            buf.truncate(have + n);
            if let Some(end) = memchr::memchr(b'\n', &buf[have..]) {
                buf.truncate(have + end);
                return Ok(buf);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a manifest record ends before its line does (was the file changed meanwhile?)",
                ));
            }
            chunk = (chunk * 2).min(1 << 20);
        }
    }
}

/// A manifest file read one line at a time at offsets that mostly follow
/// each other: the records a run looks up (to check a path owns its slot)
/// and a compaction copies were written in about the order they are read,
/// so one read ahead (32 KiB, a hundred records) serves the next ones. A
/// 512-byte `pread` per record was two system calls per file on 10,000
/// small files, and the compaction at the end of a run, which no download
/// overlaps, was one per record.
///
/// Bytes once written under an offset do not change, with two exceptions
/// that call [`Blob::forget`]: the journal cut back after a failed append,
/// and the journal emptied by a compaction (a new snapshot is a new blob).
#[derive(Debug)]
pub(super) struct WindowedFile {
    file: File,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// File offset of `bytes[0]`.
    base: u64,
    bytes: Vec<u8>,
}

/// How much is read ahead; a read larger than half of it (a walk's own
/// buffer) goes straight to the file.
const WINDOW: usize = 32 * 1024;

impl WindowedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if buf.len() > WINDOW / 2 {
            return read_file_at(&self.file, buf, offset);
        }
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let in_window = |w: &Window| {
            let start = offset.checked_sub(w.base)?;
            let start = usize::try_from(start).ok()?;
            (start + buf.len() <= w.bytes.len()).then_some(start)
        };
        let start = match in_window(&window) {
            Some(start) => start,
            None => {
                // Refilled from `offset`: a short read (the end of the file)
                // leaves a short window, and asking past it reads again.
                window.bytes.resize(WINDOW, 0);
                let n = read_file_at(&self.file, &mut window.bytes, offset)?;
                window.bytes.truncate(n);
                window.base = offset;
                0
            }
        };
        let n = buf.len().min(window.bytes.len() - start);
        buf[..n].copy_from_slice(&window.bytes[start..start + n]);
        Ok(n)
    }
}

#[cfg(unix)]
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// A record line's JSON object: without the snapshot's indent before it and
/// the comma after it.
pub(super) fn record_body(line: &[u8]) -> &[u8] {
    let line = line.trim_ascii();
    line.strip_suffix(b",").unwrap_or(line)
}

/// Reads a blob's lines in order, from a buffer refilled by positioned reads.
pub(super) struct Lines<'a> {
    blob: &'a Blob,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    start: usize,
    /// Bytes past this offset are not read (the journal's torn tail).
    limit: u64,
    eof: bool,
}

/// One line: its offset, its bytes without `'\n'`, and whether it had one.
pub(super) struct Line<'b> {
    pub offset: u64,
    pub bytes: &'b [u8],
    pub complete: bool,
}

impl<'a> Lines<'a> {
    pub(super) fn new(blob: &'a Blob, limit: u64) -> Lines<'a> {
        Lines {
            blob,
            buf: Vec::new(),
            base: 0,
            start: 0,
            limit,
            eof: false,
        }
    }

    /// The next line, or None at the end.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut searched = self.start;
        let end = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[searched..]) {
                break Some(searched + i);
            }
            if self.eof {
                break None;
            }
            // Keep the unfinished line, then read on.
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
            searched = self.buf.len();
            let at = self.base + self.buf.len() as u64;
            let want = (self.limit.saturating_sub(at)).min(256 * 1024) as usize;
            if want == 0 {
                self.eof = true;
                continue;
            }
            let have = self.buf.len();
            self.buf.resize(have + want, 0);
            let n = self.blob.read_at(&mut self.buf[have..], at)?;
            self.buf.truncate(have + n);
            self.eof = n == 0;
        };
        let start = self.start;
        let offset = self.base + start as u64;
        match end {
            Some(end) => {
                self.start = end + 1;
                Ok(Some(Line {
                    offset,
                    bytes: &self.buf[start..end],
                    complete: true,
                }))
            }
            None if start < self.buf.len() => {
                self.start = self.buf.len();
                Ok(Some(Line {
                    offset,
                    bytes: &self.buf[start..],
                    complete: false,
                }))
            }
            None => Ok(None),
        }
    }
}

/// The snapshot's fixed lines around the records.
const HEAD: [&[u8]; 2] = [b"{", b"  \"version\": 1,"];
const JOBS_OPEN: &[u8] = b"  \"jobs\": [";
const JOBS_EMPTY: &[u8] = b"  \"jobs\": []";
const JOBS_CLOSE: &[u8] = b"  ]";
const TAIL: &[u8] = b"}";
const INDENT: &[u8] = b"    ";

/// Calls `record(offset, body)` for every record line of a snapshot in the
/// layout [`SnapshotWriter`] writes. Ok(false) as soon as the blob is not in
/// that layout (or `record` refuses a line): the caller then parses it as
/// any JSON document instead.
pub(super) fn scan_snapshot<E>(
    blob: &Blob,
    io_err: impl Fn(io::Error) -> E,
    mut record: impl FnMut(u64, &[u8]) -> Result<bool, E>,
) -> Result<bool, E> {
    let mut lines = Lines::new(blob, u64::MAX);
    for head in HEAD {
        match lines.next_line().map_err(&io_err)? {
            Some(line) if line.complete && line.bytes == head => {}
            _ => return Ok(false),
        }
    }
    let expect_records = match lines.next_line().map_err(&io_err)? {
        Some(line) if line.complete && line.bytes == JOBS_OPEN => true,
        Some(line) if line.complete && line.bytes == JOBS_EMPTY => false,
        _ => return Ok(false),
    };
    if expect_records {
        // Every record but the last ends in a comma.
        let mut more = true;
        loop {
            let Some(line) = lines.next_line().map_err(&io_err)? else {
                return Ok(false);
            };
            if !line.complete {
                return Ok(false);
            }
            if line.bytes == JOBS_CLOSE && !more {
                break;
            }
            let Some(rest) = line.bytes.strip_prefix(INDENT) else {
                return Ok(false);
            };
            if !more || !rest.starts_with(b"{") {
                return Ok(false);
            }
            let (body, comma) = match rest.strip_suffix(b",") {
                Some(body) => (body, true),
                None => (rest, false),
            };
            if !body.ends_with(b"}") || !record(line.offset + INDENT.len() as u64, body)? {
                return Ok(false);
            }
            more = comma;
        }
    }
    match lines.next_line().map_err(&io_err)? {
        Some(line) if line.complete && line.bytes == TAIL => {}
        _ => return Ok(false),
    }
    Ok(lines.next_line().map_err(&io_err)?.is_none())
}

/// Writes a snapshot: pretty at the top level, one compact record a line,
/// so it stays small for 100,000 jobs yet diffs well, golden files are
/// stable, and a record can be read back alone from its offset.
pub(super) struct SnapshotWriter<W: Write> {
    out: W,
    written: u64,
    records: usize,
}

impl<W: Write> SnapshotWriter<W> {
    pub(super) fn new(mut out: W) -> io::Result<SnapshotWriter<W>> {
        let head = b"{\n  \"version\": 1,\n  \"jobs\": [";
        out.write_all(head)?;
        Ok(SnapshotWriter {
            out,
            written: head.len() as u64,
            records: 0,
        })
    }

    /// Appends one record's JSON object (no newline in it); returns the
    /// offset it starts at.
    pub(super) fn record(&mut self, body: &[u8]) -> io::Result<u64> {
        let sep: &[u8] = if self.records == 0 {
            b"\n    "
        } else {
            b",\n    "
        };
        self.out.write_all(sep)?;
        self.written += sep.len() as u64;
        let at = self.written;
        self.out.write_all(body)?;
        self.written += body.len() as u64;
        self.records += 1;
        Ok(at)
    }

    /// Closes the document; returns the writer.
    pub(super) fn finish(mut self) -> io::Result<W> {
        if self.records > 0 {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]\n}\n")?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_window_sees_lines_appended_after_it_was_read() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal");
        let mut writer = File::create(&path)?;
        writer.write_all(b"{\"a\":1}\n")?;
        let blob = Blob::file(File::open(&path)?);
        let mut buf = Vec::new();
        assert_eq!(blob.line_at(0, &mut buf)?, b"{\"a\":1}");
        writer.write_all(b"{\"b\":2}\n")?;
        assert_eq!(blob.line_at(8, &mut buf)?, b"{\"b\":2}");
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_forgotten_window_reads_bytes_rewritten_under_it() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal");
        let mut old = b"{\"a\":1}\n{\"old\":1}\n".to_vec();
        old.extend(std::iter::repeat_n(b"{}\n", 400).flatten());
        std::fs::write(&path, &old)?;
        let blob = Blob::file(File::open(&path)?);
        let mut buf = Vec::new();
        assert_eq!(blob.line_at(0, &mut buf)?, b"{\"a\":1}");
        // The tail cut back and a new line appended in its place, as
        // `Manifest::append` does after a failed write.
        let writer = std::fs::OpenOptions::new().write(true).open(&path)?;
        writer.set_len(8)?;
        std::os::unix::fs::FileExt::write_all_at(&writer, b"{\"b\":2}\n", 8)?;
        assert_eq!(
            blob.line_at(8, &mut buf)?,
            b"{\"old\":1}",
            "what was read ahead"
        );
        blob.forget();
        assert_eq!(blob.line_at(8, &mut buf)?, b"{\"b\":2}");
        Ok(())
    }
}
