//! Streaming sha256 of files on disk, and the `haul verify` run.
//!
//! Files are read in 1 MiB blocks, so memory stays flat whatever their size.
//! [`verify`] hashes many files on a bounded set of worker threads and reports
//! each outcome as it comes, never stopping at the first problem. This module
//! reads: it does not touch the manifest, rename or delete downloads, and it
//! does not print (the caller renders outcomes). Its one write is a sums file
//! the user asked for ([`write_sums_file`]), replaced atomically.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

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

/// Replaces `dest` with `text` atomically: a temporary file beside it is
/// written, synced and renamed over it, so a reader (or `sha256sum -c`) sees
/// the old file or the new one, never half of one. A relative `dest` is
/// relative to the current directory.
pub fn write_sums_file(dest: &Path, text: &str) -> io::Result<()> {
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the sums file path has no file name",
        )
    })?;
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".haul-tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = File::options().write(true).create_new(true).open(&tmp)?;
        io::Write::write_all(&mut file, text.as_bytes())?;
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

/// One file to check: where it is under the root and what its sha256 must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyItem {
    /// Relative, '/'-separated path under the verify root.
    pub path: String,
    /// The expected sha256.
    pub expected: [u8; 32],
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
    /// Bytes hashed, over the files read to the end (matched or not).
    pub bytes: u64,
}

/// Hashes every item under `root` on `threads` worker threads (bounded by cores: the caller passes
/// std::thread::available_parallelism), calling `on_result` as each finishes (from the calling thread, via a channel), and returns
/// the counts. Never stops at the first problem.
///
/// Outcomes arrive in completion order, not list order. `threads` is clamped
/// to between 1 and the number of items.
pub fn verify(
    root: &Path,
    items: Vec<VerifyItem>,
    threads: usize,
    mut on_result: impl FnMut(&VerifyItem, &VerifyOutcome),
) -> VerifySummary {
    let mut summary = VerifySummary::default();
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, VerifyOutcome, u64)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (items, next) = (&items, &next);
            scope.spawn(move || {
                let mut buf = vec![0; BLOCK];
                // Handing out indices one by one keeps all workers busy when
                // file sizes are uneven.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let (outcome, bytes) = check(root, item, &mut buf);
                    if tx.send((i, outcome, bytes)).is_err() {
                        break; // the caller is gone (its callback panicked)
                    }
                }
            });
        }
        drop(tx); // so the loop below ends when the last worker does
        for (i, outcome, bytes) in rx {
            match outcome {
                VerifyOutcome::Ok => summary.ok += 1,
                VerifyOutcome::Mismatch { .. } => summary.mismatched += 1,
                VerifyOutcome::Missing => summary.missing += 1,
                VerifyOutcome::Unreadable(_) => summary.unreadable += 1,
            }
            summary.bytes += bytes;
            on_result(&items[i], &outcome);
        }
    });
    summary
}

/// Checks one item; also returns the bytes hashed.
fn check(root: &Path, item: &VerifyItem, buf: &mut [u8]) -> (VerifyOutcome, u64) {
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
        Ok((got, bytes)) if got == item.expected => (VerifyOutcome::Ok, bytes),
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
        let item = |path: &str, expected| VerifyItem {
            path: path.into(),
            expected,
        };
        let items = vec![
            item("sub/good.bin", digest(&good)),
            item("bad.bin", digest(b"expected")),
            item("gone.bin", [0; 32]),
            item("sub/dir", [0; 32]),
            item("../small", digest(b"abc")),
            item("small", digest(b"abc")),
        ];

        let mut seen = BTreeMap::new();
        let summary = verify(root, items.clone(), 3, |item, outcome| {
            let kind = match outcome {
                VerifyOutcome::Ok => "ok".to_string(),
                VerifyOutcome::Mismatch { got } => format!("mismatch {}", hex::encode(got)),
                VerifyOutcome::Missing => "missing".to_string(),
                VerifyOutcome::Unreadable(_) => "unreadable".to_string(),
            };
            assert!(
                seen.insert(item.path.clone(), kind).is_none(),
                "reported twice"
            );
        });

        let bad = format!("mismatch {}", hex::encode(digest(b"not what was expected")));
        let want: BTreeMap<String, String> = [
            ("sub/good.bin", "ok"),
            ("bad.bin", bad.as_str()),
            ("gone.bin", "missing"),
            ("sub/dir", "unreadable"),
            ("../small", "unreadable"),
            ("small", "ok"),
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
                bytes,
            }
        );
    }

    #[test]
    fn verify_clamps_thread_count_and_handles_no_items() {
        let dir = tempfile::tempdir().expect("temp dir");
        let summary = verify(dir.path(), Vec::new(), 0, |_, _| panic!("no items"));
        assert_eq!(summary, VerifySummary::default());

        std::fs::write(dir.path().join("a"), b"a").expect("write");
        let items = vec![VerifyItem {
            path: "a".into(),
            expected: digest(b"a"),
        }];
        let mut calls = 0;
        let summary = verify(dir.path(), items, 64, |_, _| calls += 1);
        assert_eq!((summary.ok, calls), (1, 1));
    }

    #[test]
    fn write_sums_file_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("SHA256SUMS");
        std::fs::write(&dest, "old\n").expect("write");
        write_sums_file(&dest, "new\n").expect("replace");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["SHA256SUMS"]);
        let missing = dir.path().join("no/such/dir/SUMS");
        assert!(write_sums_file(&missing, "x").is_err());
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
