//! One haul per output directory.
//!
//! A `haul get` run holds an exclusive lock on `OUT_DIR/.haul/lock` for its
//! whole life, so two runs never write the same `.part` files or manifest. The
//! lock is the OS's (`flock` on unix, `LockFileEx` on Windows) through
//! [`File::try_lock`]: it is released when the [`DirLock`] is dropped, and by
//! the OS when the process dies, even by kill -9, so there is no stale lock to
//! clean up. The file is never deleted (deleting it would let a second run lock
//! a fresh file while a first still holds the old one); its content, the
//! holder's pid, only serves the error message. Read-only commands (`haul
//! status`, `haul verify`) do not take it. Locks on network file systems are
//! only as good as the server's support for them.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::shard::Shard;

const LOCK_NAME: &str = "lock";

/// The output directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "output directory {} is in use by another haul process ({}lock {})",
        dir.display(),
        pid.map(|p| format!("pid {p}, ")).unwrap_or_default(),
        lock.display()
    )]
    Busy {
        /// The output directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid, if it could be read.
        pid: Option<u32>,
    },
    /// Creating, opening, locking or writing the lock file failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done, e.g. "lock".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Held for the life of a `haul get` run; released on drop (and by the OS on kill -9).
#[derive(Debug)]
pub struct DirLock {
    // Never read: holding the open file is what holds the lock.
    _file: File,
    #[cfg(test)]
    path: PathBuf,
}

impl DirLock {
    #[cfg(test)]
    /// Locks `out_dir` (creating it and `.haul/` if needed) without waiting.
    ///
    /// Fails with [`LockError::Busy`] if another holder exists, including
    /// another `DirLock` in this process.
    pub fn acquire(out_dir: &Path) -> Result<DirLock, LockError> {
        DirLock::acquire_shard(out_dir, None)
    }

    /// Locks one shard's state directory (`OUT_DIR/.haul/shard-K-of-N/lock`;
    /// `None`: the directory's own lock): shards exclude runs of the same
    /// shard, never each other.
    pub fn acquire_shard(out_dir: &Path, shard: Option<Shard>) -> Result<DirLock, LockError> {
        let io_err = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { op, path, source }
        };
        let dir = super::create_state_dir(out_dir, shard).map_err(io_err(
            "create state directory",
            &super::state_dir(out_dir, shard),
        ))?;
        let path = dir.join(LOCK_NAME);
        // No truncate: until we hold the lock, the pid inside is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    dir: out_dir.to_path_buf(),
                    pid: read_pid(&mut file),
                    lock: path,
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io_err("write lock file", &path))?;
        Ok(DirLock {
            _file: file,
            #[cfg(test)]
            path,
        })
    }

    #[cfg(test)]
    /// The lock file (`OUT_DIR/.haul/lock`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder's pid; None if it is not written yet (the holder is between its
/// lock and its write) or the file holds something else.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // flock locks belong to an open file description, so two opens in one
    // process conflict on Linux just as two processes do.
    #[test]
    fn second_acquire_is_refused_until_the_first_is_dropped() {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = out.path().join("out");
        let first = DirLock::acquire(&dir).expect("first lock");
        assert!(first.path().ends_with(".haul/lock"));

        let err = DirLock::acquire(&dir).expect_err("second lock");
        let pid = std::process::id();
        assert!(
            matches!(&err, LockError::Busy { pid: Some(p), .. } if *p == pid),
            "{err:?}"
        );
        let msg = err.to_string();
        let want = format!(
            "output directory {} is in use by another haul process (pid {pid}, lock {})",
            dir.display(),
            first.path().display()
        );
        assert_eq!(msg, want);

        drop(first);
        let again = DirLock::acquire(&dir).expect("lock after release");
        let text = std::fs::read_to_string(again.path()).expect("read lock file");
        assert_eq!(text, format!("{pid}\n"));
    }

    #[test]
    fn busy_message_without_a_pid_still_names_the_lock() {
        let err = LockError::Busy {
            dir: "out".into(),
            lock: "out/.haul/lock".into(),
            pid: None,
        };
        assert_eq!(
            err.to_string(),
            "output directory out is in use by another haul process (lock out/.haul/lock)"
        );
    }
}
