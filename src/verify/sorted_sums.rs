//! A sums file sorted by name, written in bounded memory however many files
//! it lists (`haul verify --write-sums`, `get --write-sums`).
//!
//! Entries are taken in any order and held in a run of at most
//! [`RUN_LEN`]; a full run is sorted and spilled to an anonymous temporary
//! file beside the destination, and the runs are merged into it at the end
//! ([`SortedSums::write_to`]), at most [`FAN_IN`] at a time so the open
//! files stay few. A list that fits one run never touches a temporary file.
//! The temporary files live on the destination's file system, not in the
//! OS temp dir: that is often a tmpfs, where a spill would sit in RAM, and
//! the user already chose the destination's disk for this data. They are
//! unlinked from the start (`tempfile::tempfile_in`), so a kill leaves
//! nothing behind.
//!
//! The bytes are those of [`crate::sums::format_sums`] over the entries
//! sorted by path (byte order, as [`RelPath`] sorts); a path pushed twice
//! is written once, with its last digest.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use crate::naming::RelPath;
use crate::sums::push_line;

/// Entries held in memory before a run is spilled: about 100 bytes each
/// with a short path, so a run is under a MiB, and 10 million files make
/// about 1,200 runs (two merge passes).
pub const RUN_LEN: usize = 8 * 1024;

/// Runs merged at once: one open file and one read buffer each.
pub const FAN_IN: usize = 64;

/// Read and write buffer of each run file.
const RUN_BUFFER: usize = 16 * 1024;

/// Sums to be written sorted by path.
pub struct SortedSums {
    /// Where the runs are spilled (the destination's directory).
    spill_dir: std::path::PathBuf,
    run: Vec<Entry>,
    /// Spilled runs, each sorted, in the order they were spilled.
    runs: Vec<File>,
    run_len: usize,
    fan_in: usize,
}

/// One file of the run.
struct Entry {
    path: RelPath,
    sha256: [u8; 32],
}

impl SortedSums {
    /// An empty list whose file will be `dest` (its runs spill beside it).
    pub fn new(dest: &Path) -> SortedSums {
        SortedSums::with_limits(dest, RUN_LEN, FAN_IN)
    }

    fn with_limits(dest: &Path, run_len: usize, fan_in: usize) -> SortedSums {
        SortedSums {
            spill_dir: super::parent_dir(dest).to_path_buf(),
            run: Vec::new(),
            runs: Vec::new(),
            run_len: run_len.max(1),
            fan_in: fan_in.max(2),
        }
    }

    /// Adds one file; spills the run when it is full.
    pub fn push(&mut self, path: RelPath, sha256: [u8; 32]) -> io::Result<()> {
        if self.run.capacity() == 0 {
            // Growing by doubling would briefly hold one and a half runs.
            self.run.reserve_exact(self.run_len);
        }
        self.run.push(Entry { path, sha256 });
        if self.run.len() >= self.run_len {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the sorted file to `dest`, atomically (see
    /// [`super::replace_file`]).
    pub fn write_to(mut self, dest: &Path) -> io::Result<()> {
        if self.runs.is_empty() {
            let run = sorted(std::mem::take(&mut self.run));
            return super::replace_file(dest, |out| {
                for entry in &run {
                    write_line(out, entry.path.as_str(), &entry.sha256)?;
                }
                Ok(())
            });
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        // Each pass merges neighbouring runs, so the runs stay in push
        // order and the last digest of a repeated path still wins.
        while self.runs.len() > self.fan_in {
            let mut runs = std::mem::take(&mut self.runs).into_iter().peekable();
            while runs.peek().is_some() {
                let group: Vec<File> = runs.by_ref().take(self.fan_in).collect();
                self.runs.push(self.merge_to_run(group)?);
            }
        }
        let runs = std::mem::take(&mut self.runs);
        super::replace_file(dest, |out| {
            merge(runs, |path, sha256| write_line(out, path, sha256))
        })
    }

    /// Merges sorted runs into one, in a temporary file.
    fn merge_to_run(&self, mut group: Vec<File>) -> io::Result<File> {
        if group.len() == 1 {
            if let Some(run) = group.pop() {
                return Ok(run);
            }
        }
        let mut merged = tempfile::tempfile_in(&self.spill_dir)?;
        {
            let mut out = BufWriter::with_capacity(RUN_BUFFER, &mut merged);
            merge(group, |path, sha256| write_record(&mut out, path, sha256))?;
            out.flush()?;
        }
        merged.rewind()?;
        Ok(merged)
    }

    /// Sorts the run in memory and writes it to a temporary file.
    fn spill(&mut self) -> io::Result<()> {
        let run = sorted(std::mem::take(&mut self.run));
        let mut file = tempfile::tempfile_in(&self.spill_dir)?;
        {
            let mut out = BufWriter::with_capacity(RUN_BUFFER, &mut file);
            for entry in &run {
                write_record(&mut out, entry.path.as_str(), &entry.sha256)?;
            }
            out.flush()?;
        }
        file.rewind()?;
        self.runs.push(file);
        Ok(())
    }
}

/// The run sorted by path, a repeated path kept once with its last digest.
fn sorted(mut run: Vec<Entry>) -> Vec<Entry> {
    // Stable: equal paths stay in push order. `dedup_by` offers each entry
    // with the kept one before it, and drops it if true: its digest, the
    // later one, replaces the kept one's first.
    run.sort_by(|a, b| a.path.cmp(&b.path));
    run.dedup_by(|later, kept| {
        let same = later.path == kept.path;
        if same {
            kept.sha256 = later.sha256;
        }
        same
    });
    run
}

fn write_line(out: &mut impl Write, path: &str, sha256: &[u8; 32]) -> io::Result<()> {
    let mut line = String::with_capacity(path.len() + 67);
    push_line(&mut line, path, sha256);
    out.write_all(line.as_bytes())
}

/// A run's record: the digest, the path's length (u32, little-endian) and
/// the path. Binary, so reading it back needs no parsing or unescaping.
fn write_record(out: &mut impl Write, path: &str, sha256: &[u8; 32]) -> io::Result<()> {
    let len = u32::try_from(path.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path too long"))?;
    out.write_all(sha256)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(path.as_bytes())
}

/// A spilled run, read back one record at a time.
struct RunReader {
    file: BufReader<File>,
    /// The record at the head of the run: path and digest.
    head: Option<(String, [u8; 32])>,
}

impl RunReader {
    fn new(file: File) -> io::Result<RunReader> {
        let mut reader = RunReader {
            file: BufReader::with_capacity(RUN_BUFFER, file),
            head: None,
        };
        reader.advance()?;
        Ok(reader)
    }

    /// Reads the next record into `head` (None at the end of the run).
    fn advance(&mut self) -> io::Result<()> {
        let mut sha256 = [0u8; 32];
        match self.file.read_exact(&mut sha256) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.head = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        let mut path = match self.head.take() {
            Some((path, _)) => path.into_bytes(),
            None => Vec::new(),
        };
        path.clear();
        path.resize(len, 0);
        self.file.read_exact(&mut path)?;
        let path =
            String::from_utf8(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.head = Some((path, sha256));
        Ok(())
    }
}

/// A run in the merge heap: ordered by its head's path, then by run index
/// (earlier runs first), reversed for the max-heap.
struct Head {
    run: usize,
    path: String,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.path.as_bytes(), other.run).cmp(&(self.path.as_bytes(), self.run))
    }
}

/// k-way merge of sorted runs into `emit`, in path order; a path in more
/// than one run is emitted once, with the digest of the latest run.
fn merge(
    runs: Vec<File>,
    mut emit: impl FnMut(&str, &[u8; 32]) -> io::Result<()>,
) -> io::Result<()> {
    let mut readers = runs
        .into_iter()
        .map(RunReader::new)
        .collect::<io::Result<Vec<_>>>()?;
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (run, reader) in readers.iter().enumerate() {
        if let Some((path, _)) = &reader.head {
            heap.push(Head {
                run,
                path: path.clone(),
            });
        }
    }
    // The entry waiting to be emitted: a later run may still hold its path.
    let mut pending: Option<(String, [u8; 32])> = None;
    while let Some(Head { run, path }) = heap.pop() {
        let reader = &mut readers[run];
        let sha256 = match &reader.head {
            Some((_, sha256)) => *sha256,
            None => continue,
        };
        match &mut pending {
            Some((held, digest)) if *held == path => *digest = sha256,
            _ => {
                if let Some((held, digest)) = pending.take() {
                    emit(&held, &digest)?;
                }
                pending = Some((path, sha256));
            }
        }
        reader.advance()?;
        if let Some((next, _)) = &reader.head {
            heap.push(Head {
                run,
                path: next.clone(),
            });
        }
    }
    if let Some((held, digest)) = pending {
        emit(&held, &digest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn path(i: usize) -> RelPath {
        // Not in push order, with shared prefixes and differing lengths.
        let n = (i * 7919) % 1000;
        RelPath::parse(&format!("d{}/f{n}{}", n % 3, "x".repeat(n % 4))).expect("valid")
    }

    fn digest(i: usize) -> [u8; 32] {
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&(i as u64).to_le_bytes());
        d
    }

    /// Writes `entries` through a sorter with the given limits; returns
    /// the file and how many runs were spilled.
    fn through(entries: &[(RelPath, [u8; 32])], run_len: usize, fan_in: usize) -> (String, usize) {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("SUMS");
        let mut sums = SortedSums::with_limits(&dest, run_len, fan_in);
        for (path, sha256) in entries {
            sums.push(path.clone(), *sha256).expect("push");
        }
        let spilled = sums.runs.len();
        sums.write_to(&dest).expect("write");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["SUMS"], "no temporary file left");
        (std::fs::read_to_string(&dest).expect("read"), spilled)
    }

    /// What the in-memory sort wrote: a map by path, the last digest kept.
    fn in_memory(entries: &[(RelPath, [u8; 32])]) -> String {
        let map: BTreeMap<RelPath, [u8; 32]> = entries.iter().cloned().collect();
        crate::sums::format_sums(&map)
    }

    #[test]
    fn spilled_runs_merge_to_the_in_memory_sort() {
        let entries: Vec<_> = (0..1000).map(|i| (path(i), digest(i))).collect();
        let want = in_memory(&entries);
        assert_eq!(want.lines().count(), 1000);
        for (run_len, fan_in) in [(1, 2), (3, 2), (7, 3), (64, 4), (999, 64), (5000, 64)] {
            let (got, spilled) = through(&entries, run_len, fan_in);
            assert_eq!(got, want, "run {run_len}, fan-in {fan_in}");
            assert_eq!(spilled, 1000 / run_len, "run {run_len}");
        }
    }

    #[test]
    fn a_repeated_path_is_written_once_with_its_last_digest() {
        // Repeats within one run and across runs.
        let entries: Vec<_> = (0..300).map(|i| (path(i % 40), digest(i))).collect();
        let want = in_memory(&entries);
        assert_eq!(want.lines().count(), 40);
        for (run_len, fan_in) in [(1, 2), (7, 3), (50, 64), (1000, 64)] {
            assert_eq!(through(&entries, run_len, fan_in).0, want);
        }
    }

    #[test]
    fn nothing_pushed_writes_an_empty_file() {
        assert_eq!(through(&[], 4, 2), (String::new(), 0));
    }
}
