//! The resume manifest: what haul knows about every job of an output directory.
//!
//! State lives in `OUT_DIR/.haul/` as a snapshot (`manifest.json`, one record
//! a line in the order paths were registered) plus an append-only journal
//! (`journal.jsonl`, one whole [`JobRecord`] a line). Records stay on disk:
//! memory holds only an index from a hash of each path to the byte offset of
//! its latest line (see the `index` module), and a record is read back when asked
//! for. An update appends one line, so its cost does not grow
//! with the number of jobs; the engine calls [`Manifest::sync`] once per batch
//! (group commit). Compaction folds the journal into a new snapshot through a
//! temporary file, a rename and a directory fsync, and only then empties the
//! journal, so a kill -9 at any instant leaves a loadable state: the only defect
//! a kill can leave, a last journal line without its `'\n'`, is ignored on load.
//! Anything else that does not parse is an error naming the file (and line), and
//! the file is left as it is: a manifest is never silently discarded or
//! overwritten. This module does not decide what a record means for a download
//! (that is the engine's job) and does no locking (see [`super::lock`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

mod encode;
mod index;
mod lines;
mod records;
mod relayout;
mod store;
mod view;

use index::{Found, Index};
use lines::{Blob, SnapshotWriter};
use records::Part;
pub use records::Records;
use relayout::relayout_snapshot;
use store::{Store, EMPTY_SNAPSHOT};
pub use view::RecordView;

/// Snapshot format version written by this haul; any other version is refused.
pub const FORMAT_VERSION: u64 = 1;

const SNAPSHOT_NAME: &str = "manifest.json";
const SNAPSHOT_TMP_NAME: &str = "manifest.json.tmp";
const JOURNAL_NAME: &str = "journal.jsonl";

/// Whether the state directory `dir` holds a manifest (a snapshot or a
/// journal).
pub fn present(dir: &Path) -> bool {
    [SNAPSHOT_NAME, JOURNAL_NAME]
        .iter()
        .any(|name| dir.join(name).exists())
}

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

/// What a record says of a job's progress: what `haul status` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub state: JobState,
    pub bytes_done: u64,
    pub total: Option<u64>,
}

impl JobRecord {
    pub fn progress(&self) -> Progress {
        Progress {
            state: self.state,
            bytes_done: self.bytes_done,
            total: self.total,
        }
    }

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

/// What indexing the journal found.
#[derive(Debug, Default)]
struct JournalScan {
    /// Complete lines.
    lines: usize,
    /// Length of the file as read, torn tail included.
    bytes: u64,
}

/// The open manifest of one output directory; see the module docs.
#[derive(Debug)]
pub struct Manifest {
    files: Files,
    store: Store,
    index: Index,
    /// The journal, open for appends (the store reads it through its own handle).
    journal: File,
    /// Complete lines in the journal.
    journal_lines: usize,
    /// Length of the journal's complete lines: a failed append is cut back to it.
    journal_len: u64,
    /// A failed append may have left part of a line: cut it off before the next
    /// append, or it would become a corrupt line in the middle of the journal.
    tail_suspect: bool,
    line_buf: Vec<u8>,
    /// Record lines encoded by [`Manifest::stage`], not yet written, and
    /// each one's path and offset in them: [`Manifest::flush`] appends
    /// them with one write and only then points the index at them.
    staged: Vec<u8>,
    staged_paths: Vec<(String, u64)>,
    /// After a compaction failed (a full disk), the next is tried only once
    /// the journal has grown past this many lines, not at every append.
    compact_retry_at: usize,
    /// Set when a failed compaction left the index pointing nowhere and it
    /// could not be rebuilt: every later call fails rather than read the
    /// wrong line.
    broken: bool,
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
        let snapshot = open_if_present(&files.snapshot, "read manifest")?;
        let have_snapshot = snapshot.is_some();
        let journal = create_private(OpenOptions::new().read(true).append(true), &files.journal)
            .map_err(io_err("open manifest journal", &files.journal))?;
        let reader = journal
            .try_clone()
            .map_err(io_err("open manifest journal", &files.journal))?;
        let mut store = Store {
            snapshot: snapshot.unwrap_or_else(|| Blob::Mem(EMPTY_SNAPSHOT.to_vec())),
            journal: Blob::file(reader),
            journal_len: 0,
            snapshot_path: files.snapshot.clone(),
            journal_path: files.journal.clone(),
        };
        let (index, scan, relaid) = store.index(&mut |_| {})?;
        let mut manifest = Manifest {
            files,
            store,
            index,
            journal,
            journal_lines: scan.lines,
            journal_len: scan.bytes,
            tail_suspect: false,
            line_buf: Vec::new(),
            staged: Vec::with_capacity(STAGED_MAX),
            staged_paths: Vec::new(),
            compact_retry_at: 0,
            broken: false,
        };
        // Compacting also drops a torn tail, which later appends would otherwise
        // turn into a corrupt line in the middle of the journal, and writes a
        // snapshot in another layout back in the one records are read from.
        if !have_snapshot || scan.bytes > 0 || relaid {
            manifest.compact()?;
        }
        Ok(manifest)
    }

    /// Opens the manifest of `out_dir` (one shard's, with `Some`) for
    /// reading only, creating and changing nothing; see [`Records`].
    /// Ok(None) if there is no such state directory.
    fn read_only(
        out_dir: &Path,
        shard: Option<Shard>,
        on_line: &mut dyn FnMut(&RecordView),
    ) -> Result<Option<Part>, ManifestError> {
        let dir = super::state_dir(out_dir, shard);
        match fs::metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read manifest directory", &dir)(e)),
        }
        let files = Files::new(dir);
        let snapshot = open_if_present(&files.snapshot, "read manifest")?;
        let journal = open_if_present(&files.journal, "open manifest journal")?;
        let store = Store {
            snapshot: snapshot.unwrap_or_else(|| Blob::Mem(EMPTY_SNAPSHOT.to_vec())),
            journal: journal.unwrap_or(Blob::Mem(Vec::new())),
            journal_len: 0,
            snapshot_path: files.snapshot,
            journal_path: files.journal,
        };
        Part::index(store, on_line).map(Some)
    }

    #[cfg(test)]
    /// Every record, loaded without creating or writing anything. Ok(None)
    /// if there is no `.haul/` at all.
    pub fn load_readonly(out_dir: &Path) -> Result<Option<Vec<JobRecord>>, ManifestError> {
        let Some(mut records) = Records::open(out_dir, None)? else {
            return Ok(None);
        };
        let mut all = Vec::new();
        records.for_each(|rec| all.push(rec))?;
        Ok(Some(all))
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.broken {
            return Err(io_err("use manifest", &self.files.dir)(io::Error::other(
                "its index was lost (a compaction failed, or a record appended \
                 could not be read back)",
            )));
        }
        Ok(())
    }

    /// The record for `path`, if any, read from disk. Records staged and
    /// not yet flushed are not seen.
    pub fn get(&self, path: &str) -> Result<Option<JobRecord>, ManifestError> {
        self.check()?;
        debug_assert!(self.staged_paths.is_empty(), "get with records staged");
        let mut buf = Vec::new();
        match self.index.find(path) {
            Found::Exact(loc) => self.store.record_at(loc, &mut buf).map(Some),
            Found::Probable(loc) => {
                let rec = self.store.record_at(loc, &mut buf)?;
                Ok((rec.path == path).then_some(rec))
            }
            Found::Absent => Ok(None),
        }
    }

    #[cfg(test)]
    /// All records, in the order they were registered.
    pub fn records(&mut self) -> Vec<JobRecord> {
        self.write_staged().expect("write the staged records");
        let mut all = Vec::new();
        self.store
            .walk(&mut self.index, |_, body| {
                all.push(serde_json::from_slice(body).expect("indexed records parse"));
                Ok(None)
            })
            .expect("walk the records");
        self.index.unmark_all();
        all
    }

    #[cfg(test)]
    /// Number of records.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Appends `rec` to the journal (not yet synced) and points the index at it.
    ///
    /// If the append fails, the in-memory state is unchanged. May compact (see
    /// the module docs), so an occasional call costs O(records); a failed
    /// compaction is not an error here, since the record is safe in the
    /// journal (the next is tried once the journal has doubled).
    #[cfg(test)]
    pub fn update(&mut self, rec: JobRecord) -> Result<(), ManifestError> {
        self.stage(rec)?;
        self.flush()
    }

    /// Encodes `rec` for the next [`Manifest::flush`]: the recorder stages
    /// all the records it took at once and writes them with one system
    /// call, not one each (two per file on many small files).
    pub fn stage(&mut self, rec: JobRecord) -> Result<(), ManifestError> {
        self.check()?;
        let start = self.staged.len();
        if let Err(e) = encode::record(&rec, &mut self.staged) {
            self.staged.truncate(start);
            return Err(io_err("encode a record for", &self.files.journal)(e.into()));
        }
        self.staged.push(b'\n');
        self.staged_paths.push((rec.path, start as u64));
        Ok(())
    }

    /// How many records are staged and not yet written.
    pub fn staged(&self) -> usize {
        self.staged_paths.len()
    }

    /// Whether enough is staged to write it now: a batch of thousands (a
    /// list's window arriving at once) is written in pieces of this size,
    /// not held whole, which would keep a megabyte of peak memory.
    pub fn staged_enough(&self) -> bool {
        self.staged.len() >= STAGED_MAX - STAGED_MAX / 4
    }

    /// Writes the staged records (all of them or, if the write fails, none:
    /// the journal is cut back and the index left as it was), then compacts
    /// if the journal has grown past its threshold (see [`Manifest::update`]).
    pub fn flush(&mut self) -> Result<(), ManifestError> {
        self.write_staged()?;
        if self.compaction_due(self.journal_lines) && self.compact().is_err() {
            self.compact_retry_at = 2 * self.journal_lines;
        }
        self.check()
    }

    fn write_staged(&mut self) -> Result<(), ManifestError> {
        if self.staged_paths.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        let paths = std::mem::take(&mut self.staged_paths);
        let written = self.append(&staged, &paths);
        // The buffers are kept for the next batch, emptied whatever happened.
        (self.staged, self.staged_paths) = (staged, paths);
        self.staged.clear();
        self.staged.shrink_to(STAGED_MAX);
        self.staged_paths.clear();
        written
    }

    fn append(&mut self, lines: &[u8], paths: &[(String, u64)]) -> Result<(), ManifestError> {
        self.check()?;
        if self.tail_suspect {
            self.store.journal.forget();
            self.journal
                .set_len(self.journal_len)
                .map_err(io_err("truncate manifest journal", &self.files.journal))?;
            self.tail_suspect = false;
        }
        // One write of whole lines: a kill can only tear the last one.
        if let Err(e) = self.journal.write_all(lines) {
            // What was read ahead past the end may hold the torn bytes.
            self.store.journal.forget();
            self.tail_suspect = self.journal.set_len(self.journal_len).is_err();
            return Err(io_err("append to manifest journal", &self.files.journal)(e));
        }
        let base = self.journal_len;
        self.journal_len += lines.len() as u64;
        self.store.journal_len = self.journal_len;
        self.journal_lines += paths.len();
        // Who owns a path's slot is settled once the lines are on disk (a
        // path staged twice, or two paths sharing a hash, are told apart by
        // reading what the slot points at, as when loading).
        let (store, buf) = (&self.store, &mut self.line_buf);
        for (path, at) in paths {
            let loc = index::in_journal(base + at);
            if let Err(err) = self.index.set(path, loc, |old| store.owns(old, path, buf)) {
                // The lines are in the journal but the index cannot say
                // whose they are: a later look-up could read the wrong one.
                // The next load indexes them from the journal.
                self.broken = true;
                return Err(err);
            }
        }
        Ok(())
    }

    /// Registers many records and writes one snapshot (used once at start to register a new list).
    pub fn insert_all(
        &mut self,
        recs: impl IntoIterator<Item = JobRecord>,
    ) -> Result<(), ManifestError> {
        for rec in recs {
            self.stage(rec)?;
            if self.staged_enough() {
                self.write_staged()?;
            }
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
        self.write_staged()?;
        self.journal
            .sync_data()
            .map_err(io_err("sync manifest journal", &self.files.journal))
    }

    /// Writes every path's latest record to a new snapshot and empties the journal.
    ///
    /// The new snapshot is written by streaming the old one and the journal
    /// (the index says which line of a path is its latest), in the order
    /// paths were registered, so it needs no record in memory.
    ///
    /// Order matters for crash safety: the new snapshot is durable under its
    /// final name (file fsync, rename, directory fsync) before the journal is
    /// truncated. A kill before the rename leaves the old snapshot and the full
    /// journal; a kill after it leaves the new snapshot and a journal whose
    /// records it already holds, and replaying whole records is idempotent.
    pub fn compact(&mut self) -> Result<(), ManifestError> {
        self.write_staged()?;
        self.check()?;
        let files = self.files.clone();
        let written = create_private(
            OpenOptions::new().read(true).write(true).truncate(true),
            &files.tmp,
        )
        .map_err(io_err("write manifest", &files.tmp))
        .and_then(|tmp| self.write_snapshot(&tmp).map(|()| tmp));
        // The walk re-pointed the index at the new file as it wrote it.
        let renamed = written.and_then(|tmp| {
            fs::rename(&files.tmp, &files.snapshot)
                .map_err(io_err("replace manifest", &files.snapshot))?;
            Ok(tmp)
        });
        let tmp = match renamed {
            Ok(tmp) => tmp,
            Err(err) => {
                let _ = fs::remove_file(&files.tmp);
                self.reindex();
                return Err(err);
            }
        };
        // The new snapshot is the manifest from here on, whatever fails next.
        self.store.snapshot = Blob::file(tmp);
        self.index.unmark_all();
        super::sync_dir(&files.dir).map_err(io_err("sync manifest directory", &files.dir))?;
        self.store.journal.forget();
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_all())
            .map_err(io_err("truncate manifest journal", &files.journal))?;
        self.journal_lines = 0;
        self.journal_len = 0;
        self.store.journal_len = 0;
        self.tail_suspect = false;
        self.compact_retry_at = 0;
        Ok(())
    }

    /// Streams the snapshot into `tmp` and syncs it, pointing the index at
    /// each record's new line as it goes.
    fn write_snapshot(&mut self, tmp: &File) -> Result<(), ManifestError> {
        let tmp_path = &self.files.tmp;
        let write_err = io_err("write manifest", tmp_path);
        let out = BufWriter::with_capacity(256 * 1024, tmp);
        let mut writer = SnapshotWriter::new(out).map_err(io_err("write manifest", tmp_path))?;
        self.store.walk(&mut self.index, |_, body| {
            let at = writer
                .record(body)
                .map_err(io_err("write manifest", tmp_path))?;
            Ok(Some(index::in_snapshot(at)))
        })?;
        let out = writer
            .finish()
            .map_err(io_err("write manifest", tmp_path))?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(write_err)?;
        file.sync_all().map_err(io_err("write manifest", tmp_path))
    }

    /// After a failed compaction, points the index back at the old files,
    /// which are as they were.
    fn reindex(&mut self) {
        match self.store.index(&mut |_| {}) {
            Ok((index, _, _)) => self.index = index,
            Err(_) => self.broken = true,
        }
    }

    /// Compacts and closes.
    pub fn close(mut self) -> Result<(), ManifestError> {
        self.compact()
    }

    /// The `.haul` directory.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// Whether writing `records` more (besides what is staged) may compact
    /// the manifest, which rewrites every record: an owner that runs cheap
    /// work where it cannot block for long moves such a batch elsewhere.
    pub fn may_compact_within(&self, records: usize) -> bool {
        self.compaction_due(self.journal_lines + self.staged() + records)
    }

    /// Whether a journal of `lines` lines is compacted when written.
    fn compaction_due(&self, lines: usize) -> bool {
        lines > self.compact_threshold().max(self.compact_retry_at)
    }

    fn compact_threshold(&self) -> usize {
        MIN_COMPACT_LINES.max(2 * self.index.len())
    }

    #[cfg(test)]
    fn journal_lines(&self) -> usize {
        self.journal_lines
    }
}

/// The staging buffer's size; see [`Manifest::staged_enough`]. It is
/// written out at three quarters full, so a batch of any length (a record
/// is a few hundred bytes) never grows it past this.
const STAGED_MAX: usize = 64 * 1024;

fn open_if_present(path: &Path, op: &'static str) -> Result<Option<Blob>, ManifestError> {
    match File::open(path) {
        Ok(file) => Ok(Some(Blob::file(file))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(op, path)(e)),
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

/// What `Manifest::read_only` would visit for a `.haul/` directory holding
/// these bytes as `manifest.json` (None: no such file) and
/// `journal.jsonl`, read from memory: for tests and fuzzing, which must reach
/// the same parser without a file system. Errors name the files as
/// `manifest.json` and `journal.jsonl`.
pub fn parse_state(
    snapshot: Option<&[u8]>,
    journal: &[u8],
) -> Result<Vec<JobRecord>, ManifestError> {
    let store = Store {
        snapshot: Blob::Mem(snapshot.unwrap_or(EMPTY_SNAPSHOT).to_vec()),
        journal: Blob::Mem(journal.to_vec()),
        journal_len: 0,
        snapshot_path: PathBuf::from(SNAPSHOT_NAME),
        journal_path: PathBuf::from(JOURNAL_NAME),
    };
    let mut records = Vec::new();
    Records::of(vec![Part::index(store, &mut |_| {})?]).for_each(|rec| records.push(rec))?;
    Ok(records)
}

#[cfg(test)]
mod tests;

fn checked_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    crate::naming::RelPath::parse(&path).map_err(serde::de::Error::custom)?;
    Ok(path)
}
