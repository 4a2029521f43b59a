//! Everything haul keeps on disk besides the downloaded files themselves.
//!
//! All of it lives in `OUT_DIR/.haul/`: the resume manifest ([`manifest`]) and
//! the lock that keeps two runs out of one directory ([`lock`]). These are
//! blocking `std::fs` APIs, meant to be called from one dedicated thread (the
//! engine's store actor), never from async code. Nothing here does network I/O,
//! prints, or decides what to download.

pub mod lock;
pub mod manifest;
pub mod part;

use std::io;
use std::path::{Path, PathBuf};

/// Name of haul's state directory inside the output directory.
pub const HAUL_DIR_NAME: &str = ".haul";

/// The state directory for `out_dir` (`OUT_DIR/.haul`); nothing is created.
pub fn haul_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(HAUL_DIR_NAME)
}

/// Creates `out_dir` (if needed) and its `.haul/` directory, and returns the latter.
///
/// On unix `.haul/` is created 0700: the manifest holds URLs as given, which may
/// carry credentials.
pub(crate) fn create_haul_dir(out_dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let dir = haul_dir(out_dir);
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(&dir) {
        Ok(()) => Ok(dir),
        // Not `is_dir()`: that follows a planted `.haul` symlink, and the
        // manifest would be written wherever it points.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(&dir)?.is_dir() {
                Ok(dir)
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
