//! Everything haul keeps on disk besides the downloaded files themselves.
//!
//! All of it lives in `OUT_DIR/.haul/`: the resume manifest ([`manifest`]),
//! the list it came from ([`list_stamp`]) and the lock that keeps two runs
//! out of one directory ([`lock`]). A `--shard
//! K/N` run keeps both in `OUT_DIR/.haul/shard-K-of-N/` instead, so shards can
//! share one output directory (on NFS, say) without sharing state. These are
//! blocking `std::fs` APIs, for the blocking pool or the engine's recorder
//! (which calls them on the event loop only while the disk syncs quickly).
//! Nothing here does network I/O, prints, or decides what to download.

pub mod list_stamp;
pub mod lock;
pub mod manifest;
pub mod part;
pub mod prefix_hash;
pub mod runs;
pub mod sync_cost;

use std::io;
use std::path::{Path, PathBuf};

use crate::shard::Shard;

/// Name of haul's state directory inside the output directory.
pub const HAUL_DIR_NAME: &str = ".haul";

/// The state directory for `out_dir` (`OUT_DIR/.haul`); nothing is created.
pub fn haul_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(HAUL_DIR_NAME)
}

/// Where a run's manifest and lock live: `OUT_DIR/.haul`, or
/// `OUT_DIR/.haul/shard-K-of-N` for a shard; nothing is created.
pub fn state_dir(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(shard) => haul_dir(out_dir).join(shard.dir_name()),
        None => haul_dir(out_dir),
    }
}

/// Whether `out_dir` holds nothing but haul's state directory, in a file
/// system that tells names apart by case: then no file a job of this run
/// writes can be there already, and a new job's final name needs no look
/// (on 50,000 small files that look was 4 % of haul's CPU, and it held the
/// directory's lock against the opens and renames of the other jobs).
/// Asked after the state directory exists; any doubt answers false.
pub fn fresh_out_dir(out_dir: &Path) -> bool {
    let Ok(mut entries) = std::fs::read_dir(out_dir) else {
        return false;
    };
    let only_state = entries.all(|entry| entry.is_ok_and(|e| e.file_name() == HAUL_DIR_NAME));
    only_state && !may_fold_case(out_dir)
}

/// In a case-folding directory (ext4's and tmpfs's casefold, most macOS
/// and Windows volumes) "A.bin" and "a.bin" are one file, which two jobs
/// of one list may both name: there every final name is looked at. Told by
/// the state directory's name in capitals: found, or not known missing.
fn may_fold_case(out_dir: &Path) -> bool {
    std::fs::symlink_metadata(out_dir.join(HAUL_DIR_NAME.to_uppercase()))
        .map_or_else(|err| err.kind() != io::ErrorKind::NotFound, |_| true)
}

/// The shards whose state directories exist under `OUT_DIR/.haul/`, sorted.
pub fn shards_present(out_dir: &Path) -> io::Result<Vec<Shard>> {
    let entries = match std::fs::read_dir(haul_dir(out_dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut shards = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(shard) = entry.file_name().to_str().and_then(Shard::from_dir_name) {
            if entry.file_type()?.is_dir() {
                shards.push(shard);
            }
        }
    }
    shards.sort_by_key(|s| (s.count(), s.index()));
    Ok(shards)
}

/// Creates `out_dir` (if needed), `.haul/` and, for a shard, its directory
/// inside; returns the run's state directory. Each level is created 0700 on
/// unix and refused if it is a symbolic link. Shards starting together race
/// to create `.haul/`: whoever loses finds it there, which is fine. On unix
/// the directories are 0700: the manifest holds URLs as given, which may
/// carry credentials.
pub(crate) fn create_state_dir(out_dir: &Path, shard: Option<Shard>) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let dir = haul_dir(out_dir);
    create_private_dir(&dir)?;
    match shard {
        Some(shard) => {
            let sub = dir.join(shard.dir_name());
            create_private_dir(&sub)?;
            Ok(sub)
        }
        None => Ok(dir),
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        // Not `is_dir()`: that follows a planted `.haul` symlink, and the
        // manifest would be written wherever it points.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory (a symbolic link?); refusing to use it",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

/// Makes a rename or a file creation inside `dir` durable.
///
/// Without this a power loss can undo a rename whose file data was already
/// synced. Windows cannot open a directory as a file and has no equivalent, so
/// this is a no-op there.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_directory_of_nothing_but_state_is_fresh() -> io::Result<()> {
        let out = tempfile::tempdir()?;
        std::fs::create_dir(haul_dir(out.path()))?;
        assert!(fresh_out_dir(out.path()));
        std::fs::write(out.path().join("a.bin"), b"")?;
        assert!(!fresh_out_dir(out.path()), "a file is there");
        std::fs::remove_file(out.path().join("a.bin"))?;
        std::fs::create_dir(out.path().join("sub"))?;
        assert!(!fresh_out_dir(out.path()), "a directory may hold files");
        std::fs::remove_dir(out.path().join("sub"))?;
        assert!(fresh_out_dir(out.path()));
        assert!(!fresh_out_dir(&out.path().join("missing")));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_where_the_state_answers_in_capitals_may_fold_case() -> io::Result<()> {
        let out = tempfile::tempdir()?;
        std::fs::create_dir(haul_dir(out.path()))?;
        assert!(!may_fold_case(out.path()));
        // What a case-folding directory answers for `.HAUL`.
        std::os::unix::fs::symlink(HAUL_DIR_NAME, out.path().join(".HAUL"))?;
        assert!(may_fold_case(out.path()));
        Ok(())
    }

    #[test]
    fn shard_state_dirs_are_private_listed_and_never_symlinks() {
        let out = tempfile::tempdir().expect("temp dir");
        let (a, b) = (Shard::new(2, 3), Shard::new(0, 3));
        let made = create_state_dir(out.path(), a).expect("create");
        assert_eq!(made, out.path().join(".haul/shard-2-of-3"));
        assert_eq!(state_dir(out.path(), None), out.path().join(".haul"));
        create_state_dir(out.path(), b).expect("second shard");
        create_state_dir(out.path(), a).expect("again: already there");
        std::fs::create_dir(out.path().join(".haul/not-a-shard")).expect("mkdir");
        assert_eq!(
            shards_present(out.path()).expect("list"),
            [b, a].map(|s| s.expect("valid"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&made).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            let elsewhere = tempfile::tempdir().expect("temp dir");
            let planted = out.path().join(".haul/shard-1-of-3");
            std::os::unix::fs::symlink(elsewhere.path(), &planted).expect("symlink");
            let err = create_state_dir(out.path(), Shard::new(1, 3)).expect_err("symlink");
            assert!(err.to_string().contains("refusing"), "{err}");
        }
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(shards_present(empty.path()).expect("no .haul").is_empty());
    }
}
