//! The resume manifest: what haul knows about every job of an output directory.
//!
//! State lives in `OUT_DIR/.haul/` as a snapshot (`manifest.json`, all records
//! sorted by path) plus an append-only journal (`journal.jsonl`, one whole
//! [`JobRecord`] a line). An update appends one line, so its cost does not grow
//! with the number of jobs; the engine calls [`Manifest::sync`] once per batch
//! (group commit). Compaction folds the journal into a new snapshot through a
//! temporary file, a rename and a directory fsync, and only then empties the
//! journal, so a kill -9 at any instant leaves a loadable state: the only defect
//! a kill can leave, a last journal line without its `'\n'`, is ignored on load.
//! Anything else that does not parse is an error naming the file (and line), and
//! the file is left as it is: a manifest is never silently discarded or
//! overwritten. This module does not decide what a record means for a download
//! (that is the engine's job) and does no locking (see [`super::lock`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// Snapshot format version written by this haul; any other version is refused.
pub const FORMAT_VERSION: u64 = 1;

const SNAPSHOT_NAME: &str = "manifest.json";
const SNAPSHOT_TMP_NAME: &str = "manifest.json.tmp";
const JOURNAL_NAME: &str = "journal.jsonl";

/// The journal is folded into the snapshot once it holds more lines than this
/// or twice the number of records, whichever is larger: each compaction costs
/// O(records) and happens at most once per O(records) updates, so an update
/// costs O(1) amortised.
const MIN_COMPACT_LINES: usize = 4096;

/// What a record's `last_error` holds after a signal stopped the job. Not
/// an error: it replaces whatever an earlier attempt left there, which no
/// longer says why the job is unfinished, and `haul status` shows it as
/// "interrupted".
pub const INTERRUPTED: &str = "interrupted";

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Registered, nothing on disk yet.
    Pending,
    /// A `.part` file holds `bytes_done` synced bytes.
    Partial,
    /// Complete, checked and renamed to its final name.
    Done,
    /// Gave up; `last_error` says why.
    Failed,
}

/// Everything needed to resume or report one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Relative output path, '/'-separated; the key of the record. Checked
    /// as it is read, as a list's `out=` is: a hand-edited manifest cannot
    /// point outside the output directory or smuggle control characters
    /// into `haul status`.
    #[serde(deserialize_with = "checked_path")]
    pub path: String,
    /// The latest URL that served bytes for this path, as given (may hold
    /// credentials, hence the 0600 files on unix). Only for reports: a job
    /// is matched by `path`, so a new URL for the same path keeps the record.
    pub url: String,
    /// Where the job stands.
    pub state: JobState,
    /// Bytes of the `.part` file known to be synced to disk.
    pub bytes_done: u64,
    /// Total length, once a server told it.
    pub total: Option<u64>,
    /// Validator for `If-Range` on resume.
    pub etag: Option<String>,
    /// Validator for `If-Range` on resume when there is no strong ETag.
    pub last_modified: Option<String>,
    /// Attempts made so far, over all runs.
    pub attempts: u32,
    /// Why the last attempt failed, if it did, or [`INTERRUPTED`].
    pub last_error: Option<String>,
    /// Lowercase hex sha256 of the file, set when `Done`.
    pub sha256: Option<String>,
    /// Kernel boot id when `bytes_done` was written; see [`boot_id`].
    pub boot_id: Option<String>,
    /// The byte ranges of a download split over several connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
}

/// One byte range `[start, end)` of a segmented download and how much of it
/// is on disk. Offsets in `written` and `synced` count from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    /// Bytes handed to the kernel: they survive a kill, not a crash of the
    /// machine (trusted while the boot id is unchanged).
    pub written: u64,
    /// Bytes synced to disk: they survive anything.
    pub synced: u64,
}

impl JobRecord {
    /// A job nothing is known of yet.
    pub fn pending(path: String, url: String) -> JobRecord {
        JobRecord {
            path,
            url,
            state: JobState::Pending,
            bytes_done: 0,
            total: None,
            etag: None,
            last_modified: None,
            attempts: 0,
            last_error: None,
            sha256: None,
            boot_id: None,
            segments: None,
        }
    }
}

/// A manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file system operation on a manifest file failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done, e.g. "read manifest".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The snapshot does not parse; it was left untouched.
    #[error("manifest {} is corrupt", path.display())]
    CorruptSnapshot {
        /// Path of `manifest.json`.
        path: PathBuf,
        /// What the parser found.
        #[source]
        source: serde_json::Error,
    },
    /// A journal line other than a torn last one does not parse; the journal
    /// was left untouched.
    #[error("{}:{line}: corrupt manifest journal record", path.display())]
    CorruptJournal {
        /// Path of `journal.jsonl`.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What the parser found.
        #[source]
        source: serde_json::Error,
    },
    /// The snapshot was written in a format this haul does not read.
    #[error(
        "manifest {} has format version {found}, this haul reads only version {expected}",
        path.display()
    )]
    UnknownVersion {
        /// Path of `manifest.json`.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this haul reads.
        expected: u64,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ManifestError + 'a {
    move |source| ManifestError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a snapshot straight into the records map, one job at a time: a
/// whole-file buffer plus a Vec of every record would triple the memory of
/// a long list while it loads. Returns the format version.
struct SnapshotSeed<'a>(&'a mut BTreeMap<String, JobRecord>);

impl<'de> serde::de::DeserializeSeed<'de> for SnapshotSeed<'_> {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SnapshotSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a haul manifest snapshot")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value::<u64>()?),
                // The version comes first: jobs of a format this haul does
                // not know are skipped, so the error names the version
                // rather than calling the file corrupt.
                "jobs" if version == Some(FORMAT_VERSION) => {
                    map.next_value_seed(JobsSeed(&mut *self.0))?
                }
                "jobs" if version.is_none() => {
                    return Err(serde::de::Error::custom(
                        "\"version\" must come before \"jobs\"",
                    ));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        version.ok_or_else(|| serde::de::Error::missing_field("version"))
    }
}

struct JobsSeed<'a>(&'a mut BTreeMap<String, JobRecord>);

impl<'de> serde::de::DeserializeSeed<'de> for JobsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JobsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of job records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(rec) = seq.next_element::<JobRecord>()? {
            self.0.insert(rec.path.clone(), rec);
        }
        Ok(())
    }
}

/// Paths of the files in one `.haul/` directory.
#[derive(Debug, Clone)]
struct Files {
    dir: PathBuf,
    snapshot: PathBuf,
    tmp: PathBuf,
    journal: PathBuf,
}

impl Files {
    fn new(dir: PathBuf) -> Files {
        Files {
            snapshot: dir.join(SNAPSHOT_NAME),
            tmp: dir.join(SNAPSHOT_TMP_NAME),
            journal: dir.join(JOURNAL_NAME),
            dir,
        }
    }
}

/// What replaying the journal found.
#[derive(Debug, Default)]
struct JournalScan {
    /// Complete lines replayed.
    lines: usize,
    /// Length of the file as read, torn tail included.
    bytes: u64,
}

/// The open manifest of one output directory; see the module docs.
#[derive(Debug)]
pub struct Manifest {
    files: Files,
    records: BTreeMap<String, JobRecord>,
    journal: File,
    /// Complete lines in the journal.
    journal_lines: usize,
    /// Length of the journal's complete lines: a failed append is cut back to it.
    journal_len: u64,
    /// A failed append may have left part of a line: cut it off before the next
    /// append, or it would become a corrupt line in the middle of the journal.
    tail_suspect: bool,
    line_buf: Vec<u8>,
    /// After a compaction failed (a full disk), the next is tried only once
    /// the journal has grown past this many lines, not at every append.
    compact_retry_at: usize,
}

impl Manifest {
    #[cfg(test)]
    /// Opens (creating `.haul/` and empty files if absent) and loads; compacts if the journal is non-empty.
    ///
    /// A leftover `manifest.json.tmp` (a compaction killed before its rename)
    /// is removed: it was never authoritative. Nothing is written if loading fails.
    pub fn open(out_dir: &Path) -> Result<Manifest, ManifestError> {
        Manifest::open_shard(out_dir, None)
    }

    /// [`Manifest::open`] for one shard's state directory (`None`: the
    /// directory's own); see [`super::state_dir`].
    pub fn open_shard(out_dir: &Path, shard: Option<Shard>) -> Result<Manifest, ManifestError> {
        let dir = super::create_state_dir(out_dir, shard).map_err(io_err(
            "create manifest directory",
            &super::state_dir(out_dir, shard),
        ))?;
        let files = Files::new(dir);
        match fs::remove_file(&files.tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale", &files.tmp)(e)),
        }

        let mut records = BTreeMap::new();
        let have_snapshot = read_snapshot(&files.snapshot, &mut records)?;
        let journal = create_private(OpenOptions::new().read(true).append(true), &files.journal)
            .map_err(io_err("open manifest journal", &files.journal))?;
        let scan = replay_journal(&files.journal, &journal, &mut records)?;

        let mut manifest = Manifest {
            files,
            records,
            journal,
            journal_lines: scan.lines,
            journal_len: scan.bytes,
            tail_suspect: false,
            line_buf: Vec::new(),
            compact_retry_at: 0,
        };
        // Compacting also drops a torn tail, which later appends would otherwise
        // turn into a corrupt line in the middle of the journal.
        if !have_snapshot || scan.bytes > 0 {
            manifest.compact()?;
        }
        Ok(manifest)
    }

    #[cfg(test)]
    /// Loads without creating or writing anything (for `haul status` / `haul verify`). Ok(None) if there is no `.haul/` at all.
    ///
    /// Records come sorted by path. Read while another haul writes, the result
    /// can be slightly stale, and a compaction racing the read can make a
    /// journal line look corrupt; retrying the load is then enough.
    pub fn load_readonly(out_dir: &Path) -> Result<Option<Vec<JobRecord>>, ManifestError> {
        Manifest::load_readonly_shard(out_dir, None)
    }

    /// [`Manifest::load_readonly`] for one shard's state directory (`None`:
    /// the directory's own).
    pub fn load_readonly_shard(
        out_dir: &Path,
        shard: Option<Shard>,
    ) -> Result<Option<Vec<JobRecord>>, ManifestError> {
        let dir = super::state_dir(out_dir, shard);
        match fs::metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read manifest directory", &dir)(e)),
        }
        let files = Files::new(dir);
        let mut records = BTreeMap::new();
        read_snapshot(&files.snapshot, &mut records)?;
        match File::open(&files.journal) {
            Ok(journal) => {
                replay_journal(&files.journal, &journal, &mut records)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open manifest journal", &files.journal)(e)),
        }
        Ok(Some(records.into_values().collect()))
    }

    /// The record for `path`, if any.
    pub fn get(&self, path: &str) -> Option<&JobRecord> {
        self.records.get(path)
    }

    #[cfg(test)]
    /// All records, sorted by path.
    pub fn records(&self) -> impl Iterator<Item = &JobRecord> {
        self.records.values()
    }

    #[cfg(test)]
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Replaces the record for `rec.path` in memory and appends it to the journal (not yet synced).
    ///
    /// If the append fails, the in-memory state is unchanged. May compact (see
    /// the module docs), so an occasional call costs O(records); a failed
    /// compaction is not an error here, since the record is safe in the
    /// journal (the next is tried once the journal has doubled).
    pub fn update(&mut self, rec: JobRecord) -> Result<(), ManifestError> {
        if self.tail_suspect {
            self.journal
                .set_len(self.journal_len)
                .map_err(io_err("truncate manifest journal", &self.files.journal))?;
            self.tail_suspect = false;
        }
        self.line_buf.clear();
        serde_json::to_writer(&mut self.line_buf, &rec)
            .map_err(|e| io_err("encode a record for", &self.files.journal)(e.into()))?;
        self.line_buf.push(b'\n');
        // One write of the whole line: a kill can only tear the last line.
        if let Err(e) = self.journal.write_all(&self.line_buf) {
            self.tail_suspect = self.journal.set_len(self.journal_len).is_err();
            return Err(io_err("append to manifest journal", &self.files.journal)(e));
        }
        self.journal_len += self.line_buf.len() as u64;
        self.journal_lines += 1;
        self.records.insert(rec.path.clone(), rec);
        if self.journal_lines > self.compact_threshold().max(self.compact_retry_at)
            && self.compact().is_err()
        {
            self.compact_retry_at = 2 * self.journal_lines;
        }
        Ok(())
    }

    /// Inserts many records and writes one snapshot (used once at start to register a new list).
    pub fn insert_all(
        &mut self,
        recs: impl IntoIterator<Item = JobRecord>,
    ) -> Result<(), ManifestError> {
        for rec in recs {
            self.records.insert(rec.path.clone(), rec);
        }
        self.compact()
    }

    /// Makes every update so far durable (one `sync_data` of the journal).
    /// A second handle on the journal, so another thread can fsync it while
    /// this one goes on appending (compaction truncates in place, so the
    /// handle stays valid).
    pub fn journal_handle(&self) -> Result<File, ManifestError> {
        self.journal
            .try_clone()
            .map_err(io_err("open manifest journal", &self.files.journal))
    }

    #[cfg(test)]
    pub fn sync(&mut self) -> Result<(), ManifestError> {
        self.journal
            .sync_data()
            .map_err(io_err("sync manifest journal", &self.files.journal))
    }

    /// Writes all records to a new snapshot and empties the journal.
    ///
    /// Order matters for crash safety: the new snapshot is durable under its
    /// final name (file fsync, rename, directory fsync) before the journal is
    /// truncated. A kill before the rename leaves the old snapshot and the full
    /// journal; a kill after it leaves the new snapshot and a journal whose
    /// records it already holds, and replaying whole records is idempotent.
    pub fn compact(&mut self) -> Result<(), ManifestError> {
        let files = &self.files;
        if let Err(e) = write_snapshot_file(&files.tmp, self.records.values()) {
            let _ = fs::remove_file(&files.tmp);
            return Err(io_err("write manifest", &files.tmp)(e));
        }
        fs::rename(&files.tmp, &files.snapshot)
            .map_err(io_err("replace manifest", &files.snapshot))?;
        super::sync_dir(&files.dir).map_err(io_err("sync manifest directory", &files.dir))?;
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_all())
            .map_err(io_err("truncate manifest journal", &files.journal))?;
        self.journal_lines = 0;
        self.journal_len = 0;
        self.tail_suspect = false;
        self.compact_retry_at = 0;
        Ok(())
    }

    /// Compacts and closes.
    pub fn close(mut self) -> Result<(), ManifestError> {
        self.compact()
    }

    /// The `.haul` directory.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    fn compact_threshold(&self) -> usize {
        MIN_COMPACT_LINES.max(2 * self.records.len())
    }

    #[cfg(test)]
    fn journal_lines(&self) -> usize {
        self.journal_lines
    }
}

/// The current kernel boot id (Linux: /proc/sys/kernel/random/boot_id, trimmed), None elsewhere.
///
/// Why: after a kill -9 the page cache survives, so a `.part` longer than the
/// synced offset is trustworthy while the boot id is unchanged; after a reboot
/// only `bytes_done` is.
pub fn boot_id() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let raw = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = raw.trim();
        (!id.is_empty()).then(|| id.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Creates (or opens) a file readable only by its owner on unix.
fn create_private(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    opts.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path)
}

/// Loads the snapshot into `records`; Ok(false) if there is none.
fn read_snapshot(
    path: &Path,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<bool, ManifestError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("read manifest", path)(e)),
    };
    parse_snapshot(BufReader::new(file), path, records)?;
    Ok(true)
}

/// Parses a snapshot from `reader` into `records`; `path` names it in errors.
/// Nothing is added unless the whole snapshot parses.
fn parse_snapshot(
    reader: impl Read,
    path: &Path,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<(), ManifestError> {
    let corrupt = |source| ManifestError::CorruptSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut loaded = BTreeMap::new();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let version = serde::de::DeserializeSeed::deserialize(SnapshotSeed(&mut loaded), &mut de)
        .map_err(corrupt)?;
    de.end().map_err(corrupt)?;
    if version != FORMAT_VERSION {
        return Err(ManifestError::UnknownVersion {
            path: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    records.append(&mut loaded);
    Ok(())
}

/// Replays the journal over `records`, later lines replacing earlier ones.
/// A last line without its `'\n'` is a write torn by a kill and is skipped.
fn replay_journal(
    path: &Path,
    journal: &File,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<JournalScan, ManifestError> {
    let reader = BufReader::with_capacity(64 * 1024, journal);
    parse_journal(reader, path, records)
}

/// [`replay_journal`] from any reader; `path` names the journal in errors.
fn parse_journal(
    mut reader: impl BufRead,
    path: &Path,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<JournalScan, ManifestError> {
    let mut scan = JournalScan::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io_err("read manifest journal", path))?;
        if n == 0 {
            break;
        }
        scan.bytes += n as u64;
        let Some(body) = line.strip_suffix(b"\n") else {
            break; // torn last line: read_until only stops short of '\n' at EOF
        };
        scan.lines += 1;
        let rec: JobRecord =
            serde_json::from_slice(body).map_err(|source| ManifestError::CorruptJournal {
                path: path.to_path_buf(),
                line: scan.lines as u64,
                source,
            })?;
        records.insert(rec.path.clone(), rec);
    }
    Ok(scan)
}

/// What `Manifest::load_readonly_shard` would return for a `.haul/` directory
/// holding these bytes as `manifest.json` (None: no such file) and
/// `journal.jsonl`, read from memory: for tests and fuzzing, which must reach
/// the same parser without a file system. Errors name the files as
/// `manifest.json` and `journal.jsonl`.
pub fn parse_state(
    snapshot: Option<&[u8]>,
    journal: &[u8],
) -> Result<Vec<JobRecord>, ManifestError> {
    let mut records = BTreeMap::new();
    if let Some(snapshot) = snapshot {
        parse_snapshot(snapshot, Path::new(SNAPSHOT_NAME), &mut records)?;
    }
    parse_journal(journal, Path::new(JOURNAL_NAME), &mut records)?;
    Ok(records.into_values().collect())
}

/// Writes a complete snapshot to `path` and syncs it.
fn write_snapshot_file<'a>(
    path: &Path,
    records: impl Iterator<Item = &'a JobRecord>,
) -> io::Result<()> {
    let file = create_private(OpenOptions::new().write(true).truncate(true), path)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    write_snapshot(&mut out, records)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// The snapshot format: pretty at the top level, one compact record a line, so
/// it stays small for 100,000 jobs yet diffs well and golden files are stable.
fn write_snapshot<'a>(
    out: &mut impl Write,
    records: impl Iterator<Item = &'a JobRecord>,
) -> io::Result<()> {
    write!(out, "{{\n  \"version\": {FORMAT_VERSION},\n  \"jobs\": [")?;
    let mut first = true;
    for rec in records {
        out.write_all(if first { b"\n    " } else { b",\n    " })?;
        serde_json::to_writer(&mut *out, rec)?;
        first = false;
    }
    if !first {
        out.write_all(b"\n  ")?;
    }
    out.write_all(b"]\n}\n")
}

#[cfg(test)]
mod tests;

fn checked_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    crate::naming::RelPath::parse(&path).map_err(serde::de::Error::custom)?;
    Ok(path)
}
