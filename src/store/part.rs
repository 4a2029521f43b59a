//! The `.part` file a download is written to before it earns its final name.
//!
//! Owns opening at a resume offset (dropping any torn tail), buffered writes,
//! the flush + `sync_data` checkpoints, and the rename. A flush error is a
//! real error: data the manifest counts must be on disk.
//!
//! Writes go to a std `File` on the blocking pool, one buffer at a time
//! while the next fills (double buffering): the same overlap tokio's `File`
//! gives, without its extra copy of every byte, and a whole small file
//! costs one trip to the pool to open and one to write and sync.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use crate::naming::RelPath;

/// Bytes gathered before a write: few, large writes keep syscalls and
/// blocking-pool hops down; also what a kill can lose of a single stream.
const WRITE_BUFFER: usize = 256 << 10;

/// The name a download lives under until it is complete: `NAME.part`.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Length of the `.part` file, 0 if there is none.
pub async fn part_len(path: &Path) -> std::io::Result<u64> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || part_len_blocking(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// [`part_len`] for callers already on the blocking pool.
pub fn part_len_blocking(path: &Path) -> std::io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

/// A write in flight: it hands back the file and the emptied buffer.
type Pending = JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// An open `.part` file positioned at its end.
pub struct PartFile {
    /// None while a write is in flight, or after one failed.
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    spare: Vec<u8>,
    pending: Option<Pending>,
    /// The write error that cost us the file: every later call repeats it,
    /// so whichever call reports first names the real cause (a full disk),
    /// not just "the file is gone".
    broken: Option<(std::io::ErrorKind, String)>,
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
            file: Some(file),
            buf: Vec::new(),
            spare: Vec::new(),
            pending: None,
            broken: None,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= WRITE_BUFFER {
            self.wait_pending().await?;
            let data = std::mem::replace(&mut self.buf, std::mem::take(&mut self.spare));
            let mut file = self.take_file()?;
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let mut data = data;
                file.write_all(&data)?;
                data.clear();
                Ok((file, data))
            }));
        }
        Ok(())
    }

    /// Writes what is buffered and syncs the data: after this, every byte
    /// given to `write` is durable.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        self.wait_pending().await?;
        let mut data = std::mem::take(&mut self.buf);
        let mut file = self.take_file()?;
        let (file, data) = tokio::task::spawn_blocking(move || {
            file.write_all(&data)?;
            file.sync_data()?;
            data.clear();
            Ok::<_, std::io::Error>((file, data))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .inspect_err(|err| self.broken = Some((err.kind(), err.to_string())))?;
        self.file = Some(file);
        self.buf = data;
        Ok(())
    }

    async fn wait_pending(&mut self) -> std::io::Result<()> {
        if let Some(pending) = self.pending.take() {
            let done = pending.await.map_err(std::io::Error::other).and_then(|r| r);
            let (file, spare) = done.inspect_err(|err| {
                self.broken = Some((err.kind(), err.to_string()));
            })?;
            self.file = Some(file);
            self.spare = spare;
        }
        Ok(())
    }

    fn take_file(&mut self) -> std::io::Result<std::fs::File> {
        self.file.take().ok_or_else(|| match &self.broken {
            Some((kind, msg)) => std::io::Error::new(*kind, msg.clone()),
            None => std::io::Error::other("the .part file was lost to an earlier write error"),
        })
    }
}

/// Creates the `.part` at its full length up front (sparse, like aria2's
/// `--file-allocation=trunc`), so that several connections can write their
/// ranges into it at once.
pub async fn preallocate(path: &Path, len: u64) -> std::io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = open_at_blocking(&path, 0)?;
        file.set_len(len)?;
        file.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Renames a complete, synced `.part` to its final name. The directory is
/// not fsynced: the manifest already records the file as done, and a run
/// after a crash that lost the rename finds the complete `.part` and
/// renames it again.
pub async fn promote(part: &Path, final_path: &Path) -> std::io::Result<()> {
    tokio::fs::rename(part, final_path).await
}

/// Creates the directories between `root` and the file `rel` names, one
/// component at a time, refusing any that is a symbolic link or not a
/// directory: a link planted inside the output directory (by an unpacked
/// archive, another tool, another user) must not carry our writes outside
/// it. `root` itself is the user's choice and may be a link.
pub fn make_parents_blocking(root: &Path, rel: &RelPath) -> std::io::Result<()> {
    let mut dir = root.to_path_buf();
    let mut parents: Vec<&str> = rel.components().collect();
    parents.pop();
    for name in parents {
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) => must_be_dir(&dir, &meta)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Another job of this run made it meanwhile: look again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    must_be_dir(&dir, &std::fs::symlink_metadata(&dir)?)?
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn must_be_dir(dir: &Path, meta: &std::fs::Metadata) -> std::io::Result<()> {
    if meta.file_type().is_symlink() {
        Err(refuse_link(dir))
    } else if meta.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        ))
    }
}

fn refuse_link(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "{} is a symbolic link; refusing to write through it",
        path.display()
    ))
}

fn nofollow(opts: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    opts
}

fn open_at_blocking(path: &Path, offset: u64) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    // A symlink planted where the `.part` goes must not redirect our writes
    // outside the output directory: named in a clear error here, and
    // O_NOFOLLOW closes the gap between this look and the open.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            return Err(refuse_link(path));
        }
    }
    let mut file = nofollow(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
    )
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
        std::fs::create_dir(dir.path().join("sub"))?;
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
