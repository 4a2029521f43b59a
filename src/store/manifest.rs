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
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Relative output path, '/'-separated; the key of the record.
    pub path: String,
    /// The URL as given (may hold credentials, hence the 0600 files on unix).
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
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Lowercase hex sha256 of the file, set when `Done`.
    pub sha256: Option<String>,
    /// Kernel boot id when `bytes_done` was written; see [`boot_id`].
    pub boot_id: Option<String>,
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

/// Only used to check the version before the rest of the file, so that a
/// future format is reported as a version problem, not as corruption.
#[derive(Deserialize)]
struct SnapshotHead {
    version: u64,
}

#[derive(Deserialize)]
struct Snapshot {
    #[allow(dead_code)] // checked through SnapshotHead
    version: u64,
    jobs: Vec<JobRecord>,
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
}

impl Manifest {
    /// Opens (creating `.haul/` and empty files if absent) and loads; compacts if the journal is non-empty.
    ///
    /// A leftover `manifest.json.tmp` (a compaction killed before its rename)
    /// is removed: it was never authoritative. Nothing is written if loading fails.
    pub fn open(out_dir: &Path) -> Result<Manifest, ManifestError> {
        let dir = super::create_haul_dir(out_dir).map_err(io_err(
            "create manifest directory",
            &super::haul_dir(out_dir),
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
        };
        // Compacting also drops a torn tail, which later appends would otherwise
        // turn into a corrupt line in the middle of the journal.
        if !have_snapshot || scan.bytes > 0 {
            manifest.compact()?;
        }
        Ok(manifest)
    }

    /// Loads without creating or writing anything (for `haul status` / `haul verify`). Ok(None) if there is no `.haul/` at all.
    ///
    /// Records come sorted by path. Read while another haul writes, the result
    /// can be slightly stale, and a compaction racing the read can make a
    /// journal line look corrupt; retrying the load is then enough.
    pub fn load_readonly(out_dir: &Path) -> Result<Option<Vec<JobRecord>>, ManifestError> {
        let dir = super::haul_dir(out_dir);
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

    /// All records, sorted by path.
    pub fn records(&self) -> impl Iterator<Item = &JobRecord> {
        self.records.values()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Replaces the record for `rec.path` in memory and appends it to the journal (not yet synced).
    ///
    /// If the append fails, the in-memory state is unchanged. May compact (see
    /// the module docs), so an occasional call costs O(records); if that
    /// compaction fails, its error is returned but the record was kept.
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
        if self.journal_lines > self.compact_threshold() {
            self.compact()?;
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
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Loads the snapshot into `records`; Ok(false) if there is none.
fn read_snapshot(
    path: &Path,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<bool, ManifestError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("read manifest", path)(e)),
    };
    let corrupt = |source| ManifestError::CorruptSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let head: SnapshotHead = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if head.version != FORMAT_VERSION {
        return Err(ManifestError::UnknownVersion {
            path: path.to_path_buf(),
            found: head.version,
            expected: FORMAT_VERSION,
        });
    }
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(corrupt)?;
    for rec in snapshot.jobs {
        records.insert(rec.path.clone(), rec);
    }
    Ok(true)
}

/// Replays the journal over `records`, later lines replacing earlier ones.
/// A last line without its `'\n'` is a write torn by a kill and is skipped.
fn replay_journal(
    path: &Path,
    journal: &File,
    records: &mut BTreeMap<String, JobRecord>,
) -> Result<JournalScan, ManifestError> {
    let mut reader = BufReader::with_capacity(64 * 1024, journal);
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
mod tests {
    use super::*;

    fn rec(path: &str, state: JobState, bytes_done: u64) -> JobRecord {
        JobRecord {
            state,
            bytes_done,
            ..JobRecord::pending(path.to_string(), format!("https://example.com/{path}"))
        }
    }

    fn line(r: &JobRecord) -> String {
        let mut s = serde_json::to_string(r).expect("a record serialises");
        s.push('\n');
        s
    }

    /// A `.haul/` directory with the given files, as a crash could leave it.
    fn out_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = out.path().join(HAUL);
        fs::create_dir(&dir).expect("create .haul");
        for (name, body) in files {
            fs::write(dir.join(name), body).expect("write fixture file");
        }
        out
    }

    const HAUL: &str = super::super::HAUL_DIR_NAME;

    fn haul_file(out: &tempfile::TempDir, name: &str) -> PathBuf {
        out.path().join(HAUL).join(name)
    }

    fn golden_records() -> Vec<JobRecord> {
        vec![
            JobRecord {
                path: "z.tar".into(),
                state: JobState::Failed,
                attempts: 5,
                last_error: Some("http status 404 Not Found".into()),
                ..rec("z.tar", JobState::Failed, 0)
            },
            JobRecord {
                url: "https://example.com/b.bin?x=1&y=2".into(),
                total: Some(1024),
                etag: Some("\"abc\"".into()),
                last_modified: Some("Tue, 15 Nov 1994 08:12:31 GMT".into()),
                attempts: 1,
                sha256: Some(
                    "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef".into(),
                ),
                boot_id: Some("2f5d53fd-7084-4be2-b30d-40d85dc32b1a".into()),
                ..rec("a/b.bin", JobState::Done, 1024)
            },
            JobRecord {
                url: "https://user:secret@example.org/n.txt".into(),
                ..rec("notes/ünïcode.txt", JobState::Pending, 0)
            },
            JobRecord {
                total: Some(1_048_576),
                last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
                attempts: 2,
                last_error: Some("connection reset by peer".into()),
                boot_id: Some("2f5d53fd-7084-4be2-b30d-40d85dc32b1a".into()),
                ..rec("big.iso", JobState::Partial, 4096)
            },
        ]
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/manifests")
            .join(name);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    #[test]
    fn records_survive_reopen_without_close() {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all(golden_records()).expect("insert");
        let mut big = m.get("big.iso").expect("registered").clone();
        big.bytes_done = 8192;
        m.update(big.clone()).expect("update");
        m.sync().expect("sync");
        drop(m); // as after a kill: no close, no compaction

        let m = Manifest::open(out.path()).expect("reopen");
        assert_eq!(m.len(), 4);
        assert_eq!(m.get("big.iso"), Some(&big));
        m.close().expect("close");

        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        let mut want = golden_records();
        want.retain(|r| r.path != "big.iso");
        want.push(big);
        want.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(loaded, want);
    }

    #[test]
    fn journal_replays_later_record_over_earlier() {
        let journal = [
            line(&rec("a", JobState::Partial, 10)),
            line(&rec("b", JobState::Pending, 0)),
            line(&rec("a", JobState::Partial, 20)),
            line(&rec("a", JobState::Done, 30)),
            line(&rec("b", JobState::Failed, 0)),
        ]
        .concat();
        let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(
            loaded,
            vec![rec("a", JobState::Done, 30), rec("b", JobState::Failed, 0)]
        );
    }

    #[test]
    fn torn_last_journal_line_is_ignored_and_cut_off_on_open() {
        let whole = line(&rec("a", JobState::Partial, 20));
        for torn in [&whole[..whole.len() - 1], &whole[..7], "\0\0\0\0"] {
            let journal = format!("{}{torn}", line(&rec("a", JobState::Partial, 10)));
            let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
            let loaded = Manifest::load_readonly(out.path())
                .expect("load")
                .expect("has a .haul");
            assert_eq!(loaded, vec![rec("a", JobState::Partial, 10)]);

            let mut m = Manifest::open(out.path()).expect("open");
            assert_eq!(
                fs::read(haul_file(&out, JOURNAL_NAME)).expect("read").len(),
                0
            );
            // Had the torn tail stayed, this line would follow it and be corrupt.
            m.update(rec("b", JobState::Pending, 0)).expect("update");
            drop(m);
            let m = Manifest::open(out.path()).expect("reopen");
            assert_eq!(m.get("a"), Some(&rec("a", JobState::Partial, 10)));
            assert_eq!(m.get("b"), Some(&rec("b", JobState::Pending, 0)));
        }
    }

    #[test]
    fn corrupt_middle_journal_line_names_file_and_line_and_is_left_alone() {
        let journal = format!(
            "{}{{\"path\":\"b\",\"url\":\n{}",
            line(&rec("a", JobState::Partial, 10)),
            line(&rec("a", JobState::Partial, 20)),
        );
        let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
        let err = Manifest::open(out.path()).expect_err("corrupt line");
        let msg = err.to_string();
        assert!(
            msg.ends_with("journal.jsonl:2: corrupt manifest journal record"),
            "{msg}"
        );
        assert!(matches!(err, ManifestError::CorruptJournal { line: 2, .. }));
        assert!(std::error::Error::source(&err).is_some());
        let err = Manifest::load_readonly(out.path()).expect_err("corrupt line");
        assert!(matches!(err, ManifestError::CorruptJournal { line: 2, .. }));
        assert_eq!(
            fs::read(haul_file(&out, JOURNAL_NAME)).expect("read"),
            journal.as_bytes()
        );
    }

    #[test]
    fn corrupt_snapshot_is_an_error_and_left_untouched() {
        let corrupt = fixture("corrupt.json");
        let out = out_with(&[(SNAPSHOT_NAME, &corrupt)]);
        let err = Manifest::open(out.path()).expect_err("corrupt snapshot");
        let msg = err.to_string();
        assert!(msg.starts_with("manifest "), "{msg}");
        assert!(msg.ends_with("manifest.json is corrupt"), "{msg}");
        assert!(matches!(err, ManifestError::CorruptSnapshot { .. }));
        assert!(matches!(
            Manifest::load_readonly(out.path()),
            Err(ManifestError::CorruptSnapshot { .. })
        ));
        assert_eq!(
            fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read"),
            corrupt
        );
    }

    #[test]
    fn unknown_snapshot_version_is_refused() {
        let body = b"{\"version\": 99, \"jobs\": [{\"shape\": \"from the future\"}]}\n";
        let out = out_with(&[(SNAPSHOT_NAME, body)]);
        let err = Manifest::open(out.path()).expect_err("version 99");
        assert!(
            matches!(
                err,
                ManifestError::UnknownVersion {
                    found: 99,
                    expected: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("format version 99"), "{err}");
        assert_eq!(
            fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read"),
            body
        );
    }

    #[test]
    fn compaction_keeps_the_journal_bounded() {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all((0..100).map(|i| rec(&format!("f{i:03}"), JobState::Pending, 0)))
            .expect("insert");
        let threshold = MIN_COMPACT_LINES.max(2 * m.len());
        let mut compactions = 0;
        let mut last = 0;
        for n in 0..10_000u64 {
            let path = format!("f{:03}", n % 100);
            m.update(rec(&path, JobState::Partial, n)).expect("update");
            let lines = m.journal_lines();
            assert!(lines <= threshold, "journal holds {lines} lines");
            if lines < last {
                compactions += 1;
            }
            last = lines;
            if n % 997 == 0 {
                let on_disk = fs::read(haul_file(&out, JOURNAL_NAME)).expect("read");
                let count = on_disk.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(count, lines);
            }
        }
        assert_eq!(compactions, 10_000 / (threshold + 1));
        drop(m);
        let m = Manifest::open(out.path()).expect("reopen");
        assert_eq!(m.len(), 100);
        assert_eq!(m.get("f099"), Some(&rec("f099", JobState::Partial, 9_999)));
        assert_eq!(m.get("f000"), Some(&rec("f000", JobState::Partial, 9_900)));
    }

    #[test]
    fn compaction_writes_the_golden_snapshot() {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all(golden_records()).expect("insert");
        m.close().expect("close");
        let written = fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read");
        let golden = fixture("golden.json");
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&golden)
        );
    }

    #[test]
    fn golden_snapshot_loads_sorted_by_path() {
        let out = out_with(&[(SNAPSHOT_NAME, &fixture("golden.json"))]);
        let mut want = golden_records();
        want.sort_by(|a, b| a.path.cmp(&b.path));
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded, want);
        let m = Manifest::open(out.path()).expect("open");
        assert_eq!(m.records().cloned().collect::<Vec<_>>(), want);
    }

    #[test]
    fn empty_manifest_is_written_and_loads() {
        let out = tempfile::tempdir().expect("temp dir");
        Manifest::open(out.path())
            .expect("open")
            .close()
            .expect("close");
        let snapshot = fs::read_to_string(haul_file(&out, SNAPSHOT_NAME)).expect("read");
        assert_eq!(snapshot, "{\n  \"version\": 1,\n  \"jobs\": []\n}\n");
        assert_eq!(
            Manifest::load_readonly(out.path()).expect("load"),
            Some(vec![])
        );
    }

    #[test]
    fn leftover_tmp_from_a_killed_compaction_is_ignored_and_removed() {
        let snapshot = fixture("golden.json");
        let journal = line(&rec("big.iso", JobState::Partial, 9000));
        let out = out_with(&[
            (SNAPSHOT_NAME, &snapshot),
            (SNAPSHOT_TMP_NAME, b"{\"version\": 1, \"jobs\": [{\"pa"),
            (JOURNAL_NAME, journal.as_bytes()),
        ]);
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded.len(), 4);
        assert!(
            haul_file(&out, SNAPSHOT_TMP_NAME).exists(),
            "read-only load removed it"
        );

        let m = Manifest::open(out.path()).expect("open");
        assert!(!haul_file(&out, SNAPSHOT_TMP_NAME).exists());
        assert_eq!(m.get("big.iso").map(|r| r.bytes_done), Some(9000));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn journal_replayed_over_an_already_compacted_snapshot_is_idempotent() {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all(golden_records()).expect("insert");
        m.update(rec("big.iso", JobState::Partial, 10))
            .expect("update");
        m.update(rec("new", JobState::Pending, 0)).expect("update");
        m.update(rec("big.iso", JobState::Done, 20))
            .expect("update");
        m.sync().expect("sync");
        let journal = fs::read(haul_file(&out, JOURNAL_NAME)).expect("read");
        let want: Vec<JobRecord> = m.records().cloned().collect();
        m.compact().expect("compact");
        drop(m);
        // A kill after the rename, before the truncation.
        fs::write(haul_file(&out, JOURNAL_NAME), &journal).expect("restore journal");

        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded, want);
        let m = Manifest::open(out.path()).expect("open");
        assert_eq!(m.records().cloned().collect::<Vec<_>>(), want);
    }

    #[test]
    fn load_readonly_creates_and_changes_nothing() {
        let out = tempfile::tempdir().expect("temp dir");
        assert_eq!(Manifest::load_readonly(out.path()).expect("load"), None);
        assert!(!out.path().join(HAUL).exists());

        let journal = line(&rec("a", JobState::Partial, 10));
        let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
        let loaded = Manifest::load_readonly(out.path()).expect("load");
        assert_eq!(loaded, Some(vec![rec("a", JobState::Partial, 10)]));
        assert_eq!(
            fs::read(haul_file(&out, JOURNAL_NAME)).expect("read"),
            journal.as_bytes()
        );
        assert!(!haul_file(&out, SNAPSHOT_NAME).exists());
    }

    const CRASH_CHILD_ENV: &str = "HAUL_TEST_MANIFEST_CRASH_DIR";
    const CRASH_TEST: &str = "store::manifest::tests::kill_at_any_point_leaves_a_loadable_manifest";

    /// The child side of the kill test: updates (and now and then syncs and
    /// reports) until it is killed, or gives up after a bound so that a lost
    /// parent cannot leave it running.
    fn crash_child(out: &Path) {
        let mut m = Manifest::open(out).expect("child open");
        let start = m.get("hot").map_or(0, |r| r.bytes_done);
        for n in start + 1..start + 2_000_000 {
            m.update(rec("hot", JobState::Partial, n))
                .expect("child update");
            m.update(rec(&format!("f{}", n % 50), JobState::Partial, n))
                .expect("child update");
            if n % 1000 == 0 {
                m.sync().expect("child sync");
                println!("synced {n}");
            }
        }
    }

    // A real SIGKILL (TerminateProcess on Windows) of a process hammering the
    // manifest, at points that move from round to round: each must reopen
    // cleanly with every reported update kept.
    #[test]
    fn kill_at_any_point_leaves_a_loadable_manifest() {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
            crash_child(Path::new(&dir));
            return;
        }
        let out = tempfile::tempdir().expect("temp dir");
        let exe = std::env::current_exe().expect("test binary path");
        for round in 0..8 {
            let mut child = Command::new(&exe)
                .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CRASH_CHILD_ENV, out.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn child");
            let stdout = child.stdout.take().expect("piped stdout");
            let mut reports = io::BufReader::new(stdout)
                .lines()
                .map(|l| l.expect("child output"))
                .filter_map(|l| {
                    l.strip_prefix("synced ")
                        .and_then(|n| n.parse::<u64>().ok())
                });
            let mut synced = 0;
            for _ in 0..=round * 2 {
                synced = reports.next().expect("child reports progress");
            }
            child.kill().expect("kill child");
            child.wait().expect("reap child");

            let m = Manifest::open(out.path()).expect("loadable after a kill");
            let hot = m.get("hot").expect("hot record").bytes_done;
            assert!(hot >= synced, "round {round}: {hot} < {synced}");
            assert!(m.len() <= 51);
        }
    }

    #[cfg(unix)]
    #[test]
    fn manifest_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all(golden_records()).expect("insert");
        let mode = |name: &str| {
            fs::metadata(haul_file(&out, name))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(SNAPSHOT_NAME), 0o600);
        assert_eq!(mode(JOURNAL_NAME), 0o600);
        let dir_mode = fs::metadata(m.dir()).expect("stat").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn boot_id_is_trimmed_when_known() {
        if let Some(id) = boot_id() {
            assert!(!id.is_empty());
            assert_eq!(id.trim(), id);
        }
        #[cfg(target_os = "linux")]
        assert!(boot_id().is_some());
    }
}
