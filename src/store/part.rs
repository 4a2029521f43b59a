//! The `.part` file a download is written to before it earns its final name.
//!
//! Owns opening at a resume offset (dropping any torn tail), buffered writes,
//! the flush + `sync_data` checkpoints, and the final fsync + rename. A flush
//! error is a real error: data the manifest counts must be on disk.

use std::path::{Path, PathBuf};

use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};

/// Write-buffer size: few, large writes keep syscalls and blocking-pool hops down.
const WRITE_BUFFER: usize = 256 << 10;

/// The name a download lives under until it is complete: `NAME.part`.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Length of the `.part` file, 0 if there is none.
pub async fn part_len(path: &Path) -> std::io::Result<u64> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(meta.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

/// An open `.part` file positioned at its end.
pub struct PartFile {
    path: PathBuf,
    writer: BufWriter<File>,
    len: u64,
}

impl PartFile {
    /// Opens (creating parent directories and the file as needed) and cuts the
    /// file to `offset`, so bytes the manifest does not vouch for are dropped.
    /// One trip to the blocking pool: this runs once per file, and lists of
    /// thousands of small files feel every hop.
    pub async fn open_at(path: &Path, offset: u64) -> std::io::Result<PartFile> {
        let owned = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || open_at_blocking(&owned, offset))
            .await
            .map_err(std::io::Error::other)??;
        Ok(PartFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(WRITE_BUFFER, File::from_std(file)),
            len: offset,
        })
    }

    /// Bytes written so far (buffered included).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Flushes the buffer and syncs the data: after this, `len()` bytes are durable.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        self.writer.flush().await?;
        self.writer.get_mut().sync_data().await
    }
}

/// Creates the `.part` at its full length up front (sparse, like aria2's
/// `--file-allocation=trunc`), so that several connections can write their
/// ranges into it at once.
pub async fn preallocate(path: &Path, len: u64) -> std::io::Result<()> {
    let file = PartFile::open_at(path, 0).await?;
    let file = file.writer.into_inner();
    file.set_len(len).await?;
    file.sync_all().await
}

/// Renames a complete, synced `.part` to its final name. The directory is
/// not fsynced: the manifest already records the file as done, and a run
/// after a crash that lost the rename finds the complete `.part` and
/// renames it again.
pub async fn promote(part: &Path, final_path: &Path) -> std::io::Result<()> {
    tokio::fs::rename(part, final_path).await
}

fn open_at_blocking(path: &Path, offset: u64) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A symlink planted where the `.part` goes must not redirect our writes
    // outside the output directory.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link; refusing to write through it",
                path.display()
            )));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    file.set_len(offset)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reopening_cuts_the_unvouched_tail() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/a.bin.part");
        let mut part = PartFile::open_at(&path, 0).await?;
        part.write(b"hello world").await?;
        part.sync().await?;
        drop(part);
        let mut part = PartFile::open_at(&path, 5).await?;
        part.write(b"!").await?;
        let final_path = dir.path().join("sub/a.bin");
        part.sync().await?;
        drop(part);
        promote(&path, &final_path).await?;
        assert_eq!(tokio::fs::read(&final_path).await?, b"hello!");
        assert_eq!(part_len(&path).await?, 0);
        Ok(())
    }

    #[test]
    fn part_path_appends_suffix() {
        assert_eq!(
            part_path(Path::new("d/x.iso")),
            PathBuf::from("d/x.iso.part")
        );
    }
}
