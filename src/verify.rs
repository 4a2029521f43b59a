//! Streaming sha256 of files on disk, and the `haul verify` run.
//!
//! Files are read in 1 MiB blocks, so memory stays flat whatever their size.
//! [`verify`] hashes many files on a bounded set of worker threads and reports
//! each outcome as it comes, never stopping at the first problem. This module
//! reads: it does not touch the manifest, rename or delete downloads, and it
//! does not print (the caller renders outcomes). Its one write is a sums file
//! the user asked for, sorted in bounded memory ([`SortedSums`]) and replaced
//! atomically ([`replace_file`]).

mod sorted_sums;

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use sha2::{Digest, Sha256};

pub use sorted_sums::SortedSums;

const BLOCK: usize = 1 << 20;

#[cfg(test)]
/// sha256 of a whole file, read in 1 MiB blocks (memory stays flat).
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut buf = vec![0; BLOCK];
    hash_file(&mut File::open(path)?, &mut buf).map(|(digest, _)| digest)
}

/// Feeds the next `len` bytes of `reader` into `hasher`, through `buf`
/// (the engine re-hashing the prefix of a `.part`). A shorter reader gives
/// an [`io::ErrorKind::UnexpectedEof`] error; the hasher has then seen part
/// of it and must be discarded.
pub fn feed_exact(
    reader: &mut impl Read,
    len: u64,
    buf: &mut [u8],
    hasher: &mut sha2::Sha256,
) -> io::Result<()> {
    let got = feed(&mut reader.take(len), buf, hasher)?;
    if got < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file holds {got} bytes, fewer than the {len} to re-hash"),
        ));
    }
    Ok(())
}

/// Replaces `dest` with what `write` writes, atomically: a temporary file
/// beside it is written, synced and renamed over it, so a reader (or
/// `sha256sum -c`) sees the old file or the new one, never half of one. A
/// relative `dest` is relative to the current directory.
pub fn replace_file(
    dest: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the sums file path has no file name",
        )
    })?;
    let dir = parent_dir(dest);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".haul-tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let file = File::options().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::with_capacity(BLOCK / 4, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Durability of the rename; not every file system lets a directory be
    // opened for this, and the data is already safe, so failure is ignored.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory `path` is in ("." for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// One file to check: where it is under the root and what its sha256 must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyItem {
    /// Relative, '/'-separated path under the verify root.
    pub path: String,
    pub expected: Expected,
}

impl VerifyItem {
    /// The sha256 the file is checked against, in hex; None for a job not
    /// done.
    pub fn expected_hex(&self) -> Option<String> {
        match self.expected {
            Expected::Sha256(want) => Some(hex::encode(want)),
            Expected::Unfinished(_) => None,
        }
    }
}

/// What a file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The file must hash to this.
    Sha256([u8; 32]),
    /// The job is not done: there is nothing to hash yet, and the run fails
    /// naming it (a completion check must not pass on an unfinished job).
    Unfinished(Unfinished),
}

/// Why a job has no file to check yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    Partial,
    Pending,
    Failed,
    /// The list names it, no run in the directory recorded it, and the list
    /// gives no sha256 to check a file against.
    NotRecorded,
    /// Recorded as done without a sha256, and the list gives none.
    NoSha256,
}

impl Unfinished {
    /// The word `--json` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Unfinished::Partial => "partial",
            Unfinished::Pending => "pending",
            Unfinished::Failed => "failed",
            Unfinished::NotRecorded => "not_recorded",
            Unfinished::NoSha256 => "no_sha256",
        }
    }

    /// What people read.
    pub fn says(self) -> &'static str {
        match self {
            Unfinished::Partial => "partly downloaded",
            Unfinished::Pending => "not downloaded yet",
            Unfinished::Failed => "failed (haul status shows why)",
            Unfinished::NotRecorded => {
                "no run in this directory recorded it, and the list gives no checksum"
            }
            Unfinished::NoSha256 => "recorded as done without a sha256",
        }
    }
}

/// What checking one file found.
#[derive(Debug)]
pub enum VerifyOutcome {
    /// The file is there and its sha256 matches.
    Ok,
    /// The file is there but its content differs.
    Mismatch {
        /// The sha256 of what is on disk.
        got: [u8; 32],
    },
    /// There is no file at that path.
    Missing,
    /// The file could not be read (permissions, a directory, an I/O error, or
    /// a path that would leave the root).
    Unreadable(std::io::Error),
    /// The job is not done (see [`Expected::Unfinished`]).
    Unfinished(Unfinished),
}

/// Counts over a whole verify run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Files whose sha256 matched.
    pub ok: usize,
    /// Files whose sha256 differed.
    pub mismatched: usize,
    /// Files not found.
    pub missing: usize,
    /// Files that could not be read.
    pub unreadable: usize,
    /// Jobs not done, so not checked.
    pub unfinished: usize,
    /// Shards of the list the runs recorded that never started: their
    /// files are unknown without the list, and the run fails.
    pub shards_not_started: usize,
    /// Bytes hashed, over the files read to the end (matched or not).
    pub bytes: u64,
}

impl VerifySummary {
    /// Files and jobs that did not check out: any makes the run fail.
    pub fn problems(&self) -> usize {
        self.mismatched + self.missing + self.unreadable + self.unfinished + self.shards_not_started
    }
}

/// Items go from the feed to the workers in chunks: a wake-up per item
/// cost a third more system time than hashing 200,000 small files.
const CHUNK: usize = 64;

/// Chunks waiting for a worker, and outcomes waiting for the caller, per
/// worker thread: enough to keep every worker busy, and all the run holds.
const QUEUE_PER_THREAD: usize = 2;

/// The workers' side of the feed: a chunk being handed out one item at a
/// time (so uneven file sizes still spread over all workers), and the
/// chunks to come.
struct Queue {
    ready: std::collections::VecDeque<VerifyItem>,
    chunks: mpsc::Receiver<Vec<VerifyItem>>,
}

impl Queue {
    /// The next item, or None once the feed has ended and all are taken.
    fn take(queue: &Mutex<Queue>) -> Option<VerifyItem> {
        let mut queue = queue.lock().ok()?;
        if queue.ready.is_empty() {
            let chunk = queue.chunks.recv().ok()?;
            queue.ready.extend(chunk);
        }
        queue.ready.pop_front()
    }
}

/// Hashes under `root` every item `feed` hands over, on `threads` worker
/// threads (the caller passes std::thread::available_parallelism), calling
/// `on_result` as each finishes (on the calling thread), and returns the
/// counts, or `feed`'s error once every item it handed over is reported.
/// Never stops at the first problem.
///
/// `feed` runs on a thread of its own, and the items go to the workers
/// through a bounded channel: the run holds a few chunks of items per
/// thread, never the whole list. Outcomes arrive in completion order, not
/// feed order.
pub fn verify<E: Send>(
    root: &Path,
    threads: usize,
    feed: impl FnOnce(&mut dyn FnMut(VerifyItem)) -> Result<(), E> + Send,
    mut on_result: impl FnMut(&VerifyItem, &VerifyOutcome),
) -> Result<VerifySummary, E> {
    let threads = threads.max(1);
    let bound = threads * QUEUE_PER_THREAD;
    let (chunk_tx, chunks) = mpsc::sync_channel::<Vec<VerifyItem>>(bound);
    // Each worker holds the queue: when the last is gone, the feed's sends
    // fail instead of blocking for ever.
    let queue = Arc::new(Mutex::new(Queue {
        ready: Default::default(),
        chunks,
    }));
    let (done_tx, done_rx) = mpsc::sync_channel::<(VerifyItem, VerifyOutcome, u64)>(bound * CHUNK);
    let mut summary = VerifySummary::default();
    let fed = std::thread::scope(|scope| {
        let feeder = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            // An error sending means every worker is gone (the caller's
            // callback panicked): the items can only be dropped.
            let fed = feed(&mut |item| {
                chunk.push(item);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    let _ = chunk_tx.send(full);
                }
            });
            if !chunk.is_empty() {
                let _ = chunk_tx.send(chunk);
            }
            fed
        });
        for _ in 0..threads {
            let (queue, done_tx) = (Arc::clone(&queue), done_tx.clone());
            scope.spawn(move || {
                let mut buf = vec![0; BLOCK];
                while let Some(item) = Queue::take(&queue) {
                    let (outcome, bytes) = check(root, &item, &mut buf);
                    if done_tx.send((item, outcome, bytes)).is_err() {
                        break; // the caller is gone (its callback panicked)
                    }
                }
            });
        }
        drop((queue, done_tx)); // so the loop below ends when the last worker does
        for (item, outcome, bytes) in done_rx {
            match outcome {
                VerifyOutcome::Ok => summary.ok += 1,
                VerifyOutcome::Mismatch { .. } => summary.mismatched += 1,
                VerifyOutcome::Missing => summary.missing += 1,
                VerifyOutcome::Unreadable(_) => summary.unreadable += 1,
                VerifyOutcome::Unfinished(_) => summary.unfinished += 1,
            }
            summary.bytes += bytes;
            on_result(&item, &outcome);
        }
        feeder.join()
    });
    match fed {
        Ok(fed) => fed.map(|()| summary),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Checks one item; also returns the bytes hashed.
fn check(root: &Path, item: &VerifyItem, buf: &mut [u8]) -> (VerifyOutcome, u64) {
    let want = match item.expected {
        Expected::Sha256(want) => want,
        Expected::Unfinished(why) => return (VerifyOutcome::Unfinished(why), 0),
    };
    let path = match resolve(root, &item.path) {
        Ok(path) => path,
        Err(e) => return (VerifyOutcome::Unreadable(e), 0),
    };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (VerifyOutcome::Missing, 0),
        Err(e) => return (VerifyOutcome::Unreadable(e), 0),
    };
    match hash_file(&mut file, buf) {
        Ok((got, bytes)) if got == want => (VerifyOutcome::Ok, bytes),
        Ok((got, bytes)) => (VerifyOutcome::Mismatch { got }, bytes),
        Err(e) => (VerifyOutcome::Unreadable(e), 0),
    }
}

/// Joins a relative '/'-separated path to `root`, refusing anything that could
/// leave it: a hand-edited manifest must not make verify read arbitrary files.
fn resolve(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let rel_path = Path::new(rel);
    let escapes = rel.is_empty()
        || rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {rel:?} is not a plain relative path"),
        ));
    }
    Ok(root.join(rel_path))
}

fn hash_file(file: &mut File, buf: &mut [u8]) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let bytes = feed(file, buf, &mut hasher)?;
    Ok((hasher.finalize().into(), bytes))
}

/// Feeds everything `reader` yields into `hasher`; returns the byte count.
fn feed(reader: &mut impl Read, buf: &mut [u8], hasher: &mut Sha256) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    /// Deterministic bytes that are not a repeating block pattern.
    fn body(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn digest(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// [`verify`] fed from a list in memory.
    fn verify_all(
        root: &Path,
        items: Vec<VerifyItem>,
        threads: usize,
        on_result: impl FnMut(&VerifyItem, &VerifyOutcome),
    ) -> VerifySummary {
        let fed = verify(
            root,
            threads,
            |send| {
                items.into_iter().for_each(send);
                Ok::<(), ()>(())
            },
            on_result,
        );
        fed.expect("the feed has no error")
    }

    #[test]
    fn verify_reports_what_was_fed_before_the_feeds_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let many = 3 * CHUNK * QUEUE_PER_THREAD + 5;
        for i in 0..many {
            std::fs::write(dir.path().join(format!("f{i}")), i.to_string()).expect("write");
        }
        let mut seen = 0;
        let fed = verify(
            dir.path(),
            2,
            |send| {
                for i in 0..many {
                    send(VerifyItem {
                        path: format!("f{i}"),
                        expected: Expected::Sha256(digest(i.to_string().as_bytes())),
                    });
                }
                Err("feed broke")
            },
            |_, outcome| {
                assert!(matches!(outcome, VerifyOutcome::Ok));
                seen += 1;
            },
        );
        assert_eq!(fed.expect_err("the feed's error"), "feed broke");
        assert_eq!(seen, many);
    }

    #[test]
    fn sha256_file_matches_in_memory_digest_across_blocks() {
        let dir = tempfile::tempdir().expect("temp dir");
        for len in [0, 1, BLOCK, 2 * BLOCK + BLOCK / 2] {
            let bytes = body(len, len as u64);
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(
                sha256_file(&path).expect("hash"),
                digest(&bytes),
                "len {len}"
            );
        }
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            hex::encode(sha256_file(&dir.path().join("f0")).expect("hash")),
            empty
        );
    }

    #[test]
    fn verify_reports_every_outcome_and_counts_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/dir")).expect("mkdir");
        let good = body(BLOCK + 1, 1);
        std::fs::write(root.join("sub/good.bin"), &good).expect("write");
        std::fs::write(root.join("bad.bin"), b"not what was expected").expect("write");
        std::fs::write(root.join("small"), b"abc").expect("write");
        let item = |path: &str, digest| VerifyItem {
            path: path.into(),
            expected: Expected::Sha256(digest),
        };
        let items = vec![
            item("sub/good.bin", digest(&good)),
            item("bad.bin", digest(b"expected")),
            item("gone.bin", [0; 32]),
            item("sub/dir", [0; 32]),
            item("../small", digest(b"abc")),
            item("small", digest(b"abc")),
            // Unfinished: reported, never opened (the file is there).
            VerifyItem {
                path: "small".into(),
                expected: Expected::Unfinished(Unfinished::Partial),
            },
        ];

        let mut seen = BTreeMap::new();
        let summary = verify_all(root, items.clone(), 3, |item, outcome| {
            let kind = match outcome {
                VerifyOutcome::Ok => "ok".to_string(),
                VerifyOutcome::Mismatch { got } => format!("mismatch {}", hex::encode(got)),
                VerifyOutcome::Missing => "missing".to_string(),
                VerifyOutcome::Unreadable(_) => "unreadable".to_string(),
                VerifyOutcome::Unfinished(why) => format!("unfinished {}", why.as_str()),
            };
            let key = match item.expected {
                Expected::Unfinished(_) => format!("{} (unfinished)", item.path),
                Expected::Sha256(_) => item.path.clone(),
            };
            assert!(seen.insert(key, kind).is_none(), "reported twice");
        });

        let bad = format!("mismatch {}", hex::encode(digest(b"not what was expected")));
        let want: BTreeMap<String, String> = [
            ("sub/good.bin", "ok"),
            ("bad.bin", bad.as_str()),
            ("gone.bin", "missing"),
            ("sub/dir", "unreadable"),
            ("../small", "unreadable"),
            ("small", "ok"),
            ("small (unfinished)", "unfinished partial"),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .collect();
        assert_eq!(seen, want);
        let bytes = (good.len() + b"not what was expected".len() + 3) as u64;
        assert_eq!(
            summary,
            VerifySummary {
                ok: 2,
                mismatched: 1,
                missing: 1,
                unreadable: 2,
                unfinished: 1,
                shards_not_started: 0,
                bytes,
            }
        );
    }

    #[test]
    fn verify_takes_at_least_one_thread_and_handles_no_items() {
        let dir = tempfile::tempdir().expect("temp dir");
        let summary = verify_all(dir.path(), Vec::new(), 0, |_, _| panic!("no items"));
        assert_eq!(summary, VerifySummary::default());

        std::fs::write(dir.path().join("a"), b"a").expect("write");
        let items = vec![VerifyItem {
            path: "a".into(),
            expected: Expected::Sha256(digest(b"a")),
        }];
        let mut calls = 0;
        let summary = verify_all(dir.path(), items, 64, |_, _| calls += 1);
        assert_eq!((summary.ok, calls), (1, 1));
    }

    #[test]
    fn replace_file_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("SHA256SUMS");
        std::fs::write(&dest, "old\n").expect("write");
        replace_file(&dest, |out| out.write_all(b"new\n")).expect("replace");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["SHA256SUMS"]);
        let missing = dir.path().join("no/such/dir/SUMS");
        assert!(replace_file(&missing, |out| out.write_all(b"x")).is_err());
    }

    #[test]
    fn resolve_refuses_paths_that_leave_the_root() {
        let root = Path::new("/data/out");
        assert_eq!(
            resolve(root, "a/./b.bin").expect("plain"),
            Path::new("/data/out/a/b.bin")
        );
        for bad in ["", "../x", "a/../../x", "/etc/passwd"] {
            assert!(resolve(root, bad).is_err(), "{bad:?} accepted");
        }
    }
}
