//! A sums file read in two streaming passes, never held whole
//! (`haul verify --checksums FILE`): a file of millions of lines costs a
//! few bytes per distinct name, not its text and its entries.
//!
//! Pass 1 ([`check`]) reads every line before anything is hashed and
//! refuses the file as [`super::parse_sums`] would, with the same first
//! error. A repeated name is found by a 64-bit hash of it, which is only a
//! suspicion: the earlier line is read again at its offset and the names
//! compared, so two different names are never taken for one (a name whose
//! hash another holds is kept by name instead). A repeated identical line
//! is remembered by offset so that pass 2 ([`CheckedSums::for_each`])
//! drops it too. The file stays open between the passes, and a change in
//! its size or modification time in between is an error.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, BufRead, BufReader, Seek};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{parse_text_line, SumEntry, SumsError};
use crate::file_stamp::FileStamp;
use crate::hash_keyed::HashKeyed;
use crate::list::Origin;
use crate::naming::RelPath;

/// The reader's buffer: one system call per many lines.
const READ_BUFFER: usize = 64 * 1024;

/// Why a sums file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SumsFileError {
    /// The file could not be read, is not UTF-8, or changed between the
    /// passes.
    #[error(transparent)]
    Read(io::Error),
    /// A line is not a sha256sum line, or names a path twice with two
    /// digests.
    #[error(transparent)]
    Sums(SumsError),
}

/// A sums file that passed [`check`], to be read again.
pub struct CheckedSums {
    file: File,
    source: Arc<str>,
    /// Where the lines that repeat an earlier one start.
    dropped: HashSet<u64>,
    /// Entries kept, repeated lines left out.
    entries: usize,
    stamp: FileStamp,
}

/// Where the first line naming a path is.
#[derive(Clone, Copy)]
struct Loc {
    offset: u64,
    line: usize,
}

/// Pass 1: checks every line of `file` (named `source` in errors). A read
/// error wins over a bad line (the whole file is read, as `parse_sums`'
/// caller reads it whole), else the first bad line.
pub fn check(file: File, source: &str) -> Result<CheckedSums, SumsFileError> {
    let hasher = RandomState::new();
    check_with(file, source, |path| hasher.hash_one(path))
}

/// [`check`] with the hash of a name given (tests make every name collide).
fn check_with(
    mut file: File,
    source: &str,
    hash: impl Fn(&RelPath) -> u64,
) -> Result<CheckedSums, SumsFileError> {
    let source: Arc<str> = Arc::from(source);
    file.rewind().map_err(SumsFileError::Read)?;
    let stamp = FileStamp::of(&file).map_err(SumsFileError::Read)?;
    let mut first: HashKeyed<Loc> = HashKeyed::default();
    // Names whose hash an earlier, different name holds.
    let mut by_name: HashMap<RelPath, Loc> = HashMap::new();
    let mut dropped = HashSet::new();
    let mut entries = 0;
    let mut refused = None;
    let mut lines = Lines::new(&file, &source);
    while let Some((loc, entry)) = lines.next().map_err(SumsFileError::Read)? {
        if refused.is_some() {
            continue; // still read to the end: a read error wins
        }
        let entry = match entry {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(err) => {
                refused = Some(err);
                continue;
            }
        };
        let earlier = match by_name.get(&entry.path) {
            Some(&loc) => Some(read_entry_at(&file, &source, loc)?),
            None => match first.entry(hash(&entry.path)) {
                Entry::Vacant(slot) => {
                    slot.insert(loc);
                    None
                }
                Entry::Occupied(slot) => {
                    let held = read_entry_at(&file, &source, *slot.get())?;
                    if held.path == entry.path {
                        Some(held)
                    } else {
                        by_name.insert(entry.path.clone(), loc);
                        None
                    }
                }
            },
        };
        let Some(held) = earlier else {
            entries += 1;
            continue;
        };
        if held.sha256 == entry.sha256 {
            dropped.insert(loc.offset);
        } else {
            refused = Some(SumsError::Conflict {
                origin: Origin {
                    source: Arc::clone(&source),
                    line: loc.line,
                },
                path: entry.path,
                first: held.line,
            });
        }
    }
    if let Some(err) = refused {
        return Err(SumsFileError::Sums(err));
    }
    Ok(CheckedSums {
        file,
        source,
        dropped,
        entries,
        stamp,
    })
}

impl CheckedSums {
    /// Pass 2: calls `f` with every entry kept, in file order.
    pub fn for_each(mut self, mut f: impl FnMut(SumEntry)) -> Result<(), SumsFileError> {
        self.file.rewind().map_err(SumsFileError::Read)?;
        let mut lines = Lines::new(&self.file, &self.source);
        let mut read = 0;
        while let Some((loc, entry)) = lines.next().map_err(SumsFileError::Read)? {
            let entry = match entry {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(err) => return Err(changed(&err.to_string())),
            };
            if self.dropped.contains(&loc.offset) {
                continue;
            }
            read += 1;
            // A line pass 1 never saw is never hashed unchecked.
            if read > self.entries {
                return Err(changed("it holds more entries than were checked"));
            }
            f(entry);
        }
        if read != self.entries {
            return Err(changed("it holds fewer entries than were checked"));
        }
        if FileStamp::of(&self.file).map_err(SumsFileError::Read)? != self.stamp {
            return Err(changed("its size or modification time differs"));
        }
        Ok(())
    }
}

fn changed(why: &str) -> SumsFileError {
    SumsFileError::Read(io::Error::other(format!(
        "the file changed while it was read ({why})"
    )))
}

/// The lines of a sums file, each with where it starts and what it holds
/// (None for a blank line or a comment).
struct Lines<'a> {
    reader: BufReader<&'a File>,
    source: &'a Arc<str>,
    buf: Vec<u8>,
    offset: u64,
    line: usize,
}

type Line = (Loc, Result<Option<SumEntry>, SumsError>);

impl<'a> Lines<'a> {
    fn new(file: &'a File, source: &'a Arc<str>) -> Lines<'a> {
        Lines {
            reader: BufReader::with_capacity(READ_BUFFER, file),
            source,
            buf: Vec::new(),
            offset: 0,
            line: 0,
        }
    }

    fn next(&mut self) -> io::Result<Option<Line>> {
        self.buf.clear();
        let len = self.reader.read_until(b'\n', &mut self.buf)?;
        if len == 0 {
            return Ok(None);
        }
        let loc = Loc {
            offset: self.offset,
            line: self.line + 1,
        };
        self.offset += len as u64;
        self.line += 1;
        let text = std::str::from_utf8(&self.buf).map_err(|_| not_utf8())?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = match loc.offset {
            0 => text.strip_prefix('\u{feff}').unwrap_or(text),
            _ => text,
        };
        let origin = Origin {
            source: Arc::clone(self.source),
            line: loc.line,
        };
        Ok(Some((loc, parse_text_line(text, origin))))
    }
}

/// The message `read_to_string` gives for the same file.
fn not_utf8() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "stream did not contain valid UTF-8",
    )
}

/// The entry on the line that starts at `loc` (pass 1 parsed it already).
fn read_entry_at(file: &File, source: &Arc<str>, loc: Loc) -> Result<SumEntry, SumsFileError> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    let mut at = loc.offset;
    loop {
        let n = file.read_at(&mut chunk, at).map_err(SumsFileError::Read)?;
        let got = &chunk[..n];
        match got.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&got[..end]);
                break;
            }
            None if n == 0 => break,
            None => line.extend_from_slice(got),
        }
        at += n as u64;
    }
    let text = std::str::from_utf8(&line).map_err(|_| SumsFileError::Read(not_utf8()))?;
    let text = match loc.offset {
        0 => text.strip_prefix('\u{feff}').unwrap_or(text),
        _ => text,
    };
    let origin = Origin {
        source: Arc::clone(source),
        line: loc.line,
    };
    match parse_text_line(text, origin) {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(changed("a checked line is blank now")),
        Err(err) => Err(changed(&err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(bytes).expect("write");
        file
    }

    /// Both passes over `text`, or the error; the in-memory parser must agree.
    fn streamed(text: &str) -> Result<Vec<SumEntry>, String> {
        let got = check(file_of(text.as_bytes()), "SUMS").and_then(|checked| {
            let mut entries = Vec::new();
            checked.for_each(|e| entries.push(e))?;
            Ok(entries)
        });
        let got = got.map_err(|e| e.to_string());
        let want = super::super::parse_sums(text, "SUMS").map_err(|e| e.to_string());
        assert_eq!(got, want, "for {text:?}");
        got
    }

    #[test]
    fn reads_what_parse_sums_reads() {
        let ok = [
            format!("\u{feff}# c\r\n\r\n{A}  a.txt\r\n{B} *sub/b.bin\n  # x\n{A}  ./c d.txt"),
            format!("{A}  a\n{A} *./a\n{B}  b\n{A}  a\n"),
            format!("SHA256 (t) = {A}\n\\{B}  plain\n"),
            String::new(),
        ];
        for text in ok {
            streamed(&text).expect("valid");
        }
        let bad = [
            format!("{A}  ok\nnot a sum\n"),
            format!("{A}  a\n{B}  b\n{B}  a\n"),
            format!("{A}  a\n{A}  a\n{B}  ./a\n{A}  ../x\n"),
            format!("{A}  ../x\n{A}  a\n{B}  a\n"),
        ];
        for text in bad {
            streamed(&text).expect_err("refused");
        }
    }

    #[test]
    fn names_with_one_hash_are_told_apart_by_name() {
        let text = format!("{A}  a\n{B}  b\n{A}  c\n{B} *./b\n{A}  a\n{B}  c\n");
        let run = |text: &str| {
            check_with(file_of(text.as_bytes()), "SUMS", |_| 7).and_then(|checked| {
                let mut paths = Vec::new();
                checked.for_each(|e| paths.push(e.path.to_string()))?;
                Ok(paths)
            })
        };
        let err = run(&text).expect_err("c has two digests");
        assert_eq!(
            err.to_string(),
            "SUMS:6: 'c' already has a different digest on line 3"
        );
        let text = &text[..text.rfind(&format!("{B}  c")).expect("last line")];
        assert_eq!(run(text).expect("valid"), ["a", "b", "c"]);
    }

    #[test]
    fn a_repeated_line_is_fed_once() {
        let text = format!("{A}  a\n{B}  b\n{A} *./a\n{A}  a\n");
        let paths: Vec<String> = streamed(&text)
            .expect("valid")
            .into_iter()
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(paths, ["a", "b"]);
    }

    #[test]
    fn not_utf8_anywhere_wins_over_an_earlier_bad_line() {
        let mut bytes = format!("not a sum\n{A}  a\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe  b\n");
        let err = check(file_of(&bytes), "SUMS").err().expect("refused");
        assert_eq!(err.to_string(), "stream did not contain valid UTF-8");
    }

    #[test]
    fn a_file_changed_between_the_passes_is_an_error() {
        let file = file_of(format!("{A}  a\n").as_bytes());
        let mut again = file.try_clone().expect("clone");
        let checked = check(file.try_clone().expect("clone"), "SUMS").expect("valid");
        again.seek(io::SeekFrom::End(0)).expect("seek");
        again
            .write_all(format!("{B}  b\n").as_bytes())
            .expect("append");
        let mut fed = Vec::new();
        let err = checked.for_each(|e| fed.push(e)).expect_err("changed");
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
        assert_eq!(fed.len(), 1, "the checked entry only");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any mix of good, repeated, conflicting and bad lines reads as
        /// the in-memory parser reads it (`streamed` compares the two).
        #[test]
        fn streamed_reads_like_parse_sums(
            picks in proptest::collection::vec(0usize..12, 0..12)
        ) {
            let pool = [
                format!("{A}  a\n"),
                format!("{B}  a\n"),
                format!("{A} *./b\n"),
                format!("{B}  b\n"),
                format!("SHA256 (c) = {A}\n"),
                format!("\\{B}  c\n"),
                "# note\n".to_string(),
                "\r\n".to_string(),
                "not a sum\n".to_string(),
                format!("{A}  ../x\n"),
                "\u{feff}".to_string(),
                format!("{A}  d"),
            ];
            let text: String = picks.iter().map(|&i| pool[i].as_str()).collect();
            let _ = streamed(&text);
        }
    }
}
