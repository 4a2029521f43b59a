//! The `.part` file a download is written to before it earns its final name.
//!
//! Owns opening at a resume offset (dropping any torn tail), the one writer
//! ([`PartWriter`]) with its buffering, flushes and `sync_data` checkpoints,
//! and the rename. A flush error is a real error: data the manifest counts
//! must be on disk.
//!
//! A single stream writes from its offset to the end, creating and cutting
//! the file; a split download preallocates the `.part` ([`preallocate`])
//! and each connection writes its range through a writer of its own. Both
//! hash the contiguous prefix with a [`PrefixHash`] (a split as it grows, a
//! resumed stream once, for the bytes it keeps): every read and write of a
//! `.part` runs on the blocking pool.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::naming::RelPath;

/// Bytes a writer gathers before handing them to the kernel: a 256th of
/// the file, within 64 KiB to 256 KiB (256 KiB when the length is unknown).
/// Few, large writes keep syscalls and blocking-pool hops down; a split
/// records a range's offset only once its bytes are in the kernel, so this
/// is also what a kill can cost per connection (near 0.5 % of the file).
fn write_buffer(total: Option<u64>) -> usize {
    total.map_or(256 << 10, |total| (total / 256).clamp(64 << 10, 256 << 10)) as usize
}

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

/// The `.part` a writer writes to: opened by the first trip to the blocking
/// pool that writes or syncs, so that trip opens, writes and syncs a small
/// file at once instead of paying one more hop (and its thread wake-ups)
/// for the open alone.
enum Handle {
    Unopened(PathBuf, Start),
    Open(std::fs::File),
}

impl Handle {
    /// The open file; blocking, for the pool.
    fn into_file(self) -> std::io::Result<std::fs::File> {
        match self {
            Handle::Open(file) => Ok(file),
            Handle::Unopened(path, Start::Cut(offset)) => open_at_blocking(&path, offset),
            Handle::Unopened(path, Start::Within(offset)) => open_within_blocking(&path, offset),
        }
    }
}

/// Where a [`PartWriter`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At `offset` of a file written front to back (a single stream): the
    /// file and its parents are created as needed and cut to `offset`, so
    /// bytes the manifest does not vouch for are dropped.
    Cut(u64),
    /// At `offset` of a preallocated file (one range of a split download):
    /// nothing is created or cut, the file has its full length already.
    Within(u64),
}

/// The one writer of a `.part`, for a single stream and for each range of
/// a split file alike: bytes gather in a buffer, a full buffer goes to the
/// kernel on the blocking pool while the next fills (double buffering: the
/// overlap tokio's `File` gives, without its extra copy of every byte), and
/// the caller decides when the bytes must be in the kernel ([`flush`]) or
/// on disk ([`sync`]), with [`sync_due`] as the one checkpoint clock.
///
/// The file is opened on the pool by the first write or sync, so a whole
/// small file costs one trip there (open, write, sync): lists of thousands
/// of small files feel every hop. An open that fails (a symlink planted in
/// the `.part`'s place, a full directory) fails that first write or sync.
///
/// [`flush`]: PartWriter::flush
/// [`sync`]: PartWriter::sync
/// [`sync_due`]: PartWriter::sync_due
pub struct PartWriter {
    /// None while a write is in flight, or after one failed.
    file: Option<Handle>,
    buf: Vec<u8>,
    spare: Vec<u8>,
    pending: Option<Pending>,
    /// Bytes given to `write` since the last flush or sync.
    unflushed: usize,
    /// When a full buffer goes to the kernel.
    buffer: usize,
    last_sync: Instant,
    /// The write error that cost us the file: every later call repeats it,
    /// so whichever call reports first names the real cause (a full disk),
    /// not just "the file is gone".
    broken: Option<(std::io::ErrorKind, String)>,
}

impl PartWriter {
    /// A writer of the `.part` at `start`, opened (never through a symlink
    /// planted in its place) by the first write or sync; `total` is the
    /// file's length if known, to size the buffer.
    pub fn new(path: &Path, start: Start, total: Option<u64>) -> Self {
        PartWriter {
            file: Some(Handle::Unopened(path.to_path_buf(), start)),
            buf: Vec::new(),
            spare: Vec::new(),
            pending: None,
            unflushed: 0,
            buffer: write_buffer(total),
            last_sync: Instant::now(),
            broken: None,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.unflushed += bytes.len();
        if self.buf.len() >= self.buffer {
            self.wait_pending().await?;
            let data = std::mem::replace(&mut self.buf, std::mem::take(&mut self.spare));
            let file = self.take_file()?;
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let mut data = data;
                let mut file = file.into_file()?;
                file.write_all(&data)?;
                data.clear();
                Ok((file, data))
            }));
        }
        Ok(())
    }

    /// Bytes given to `write` that may not be in the kernel yet.
    pub fn unflushed(&self) -> usize {
        self.unflushed
    }

    /// Whether a buffer's worth is waiting for [`PartWriter::flush`].
    pub fn flush_due(&self) -> bool {
        self.unflushed >= self.buffer
    }

    /// Whether `every` has passed since the file was opened or last synced.
    pub fn sync_due(&self, every: Duration) -> bool {
        self.last_sync.elapsed() >= every
    }

    /// Returns once the kernel has every byte given to `write`: from then
    /// on a killed process cannot lose them, and a record that counts them
    /// may be sent (one that must survive a reboot waits for `sync`).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.write_out(false).await
    }

    /// Writes what is buffered and syncs the data: after this, every byte
    /// given to `write` is durable.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        self.write_out(true).await?;
        self.last_sync = Instant::now();
        Ok(())
    }

    async fn write_out(&mut self, sync: bool) -> std::io::Result<()> {
        self.wait_pending().await?;
        if self.buf.is_empty() && !sync {
            self.unflushed = 0;
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.buf);
        let file = self.take_file()?;
        let (file, data) = tokio::task::spawn_blocking(move || {
            let mut file = file.into_file()?;
            file.write_all(&data)?;
            if sync {
                file.sync_data()?;
            }
            data.clear();
            Ok::<_, std::io::Error>((file, data))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .inspect_err(|err| self.broken = Some((err.kind(), err.to_string())))?;
        self.file = Some(Handle::Open(file));
        self.buf = data;
        self.unflushed = 0;
        Ok(())
    }

    async fn wait_pending(&mut self) -> std::io::Result<()> {
        if let Some(pending) = self.pending.take() {
            let done = pending.await.map_err(std::io::Error::other).and_then(|r| r);
            let (file, spare) = done.inspect_err(|err| {
                self.broken = Some((err.kind(), err.to_string()));
            })?;
            self.file = Some(Handle::Open(file));
            self.spare = spare;
        }
        Ok(())
    }

    fn take_file(&mut self) -> std::io::Result<Handle> {
        self.file.take().ok_or_else(|| match &self.broken {
            Some((kind, msg)) => std::io::Error::new(*kind, msg.clone()),
            None => std::io::Error::other("the .part file was lost to an earlier write error"),
        })
    }
}

/// Cuts the `.part` to nothing (creating it if need be): a restart drops
/// the old bytes at once, so a kill before the next write cannot bring
/// them back.
pub async fn truncate(path: &Path) -> std::io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || open_at_blocking(&path, 0).map(drop))
        .await
        .map_err(std::io::Error::other)?
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

/// Syncs the whole `.part`, data and length, once every range of a split
/// download is written: before it is recorded as done.
pub async fn sync_all(path: &Path) -> std::io::Result<()> {
    let file = tokio::fs::File::open(path).await?;
    file.sync_all().await
}

/// The sha256 of a `.part`'s first bytes, extended as that prefix grows.
/// The file stays open between reads, and every read runs on the blocking
/// pool, so hashing never holds up the async worker threads.
pub struct PrefixHash {
    path: PathBuf,
    /// Opened at the first read; None while a read is in flight or after
    /// one failed.
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    hasher: Sha256,
    len: u64,
}

impl PrefixHash {
    /// Buffer of each read.
    const BLOCK: usize = 256 << 10;

    /// The hash of nothing yet; `path` is opened at the first read.
    pub fn new(path: &Path) -> PrefixHash {
        PrefixHash {
            path: path.to_path_buf(),
            file: None,
            buf: Vec::new(),
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Hashes the next `more` bytes of the file; an
    /// [`std::io::ErrorKind::UnexpectedEof`] error if it is shorter, after
    /// which this hash is worthless.
    pub async fn extend(&mut self, more: u64) -> std::io::Result<()> {
        let file = self.file.take();
        let path = self.path.clone();
        let mut buf = std::mem::take(&mut self.buf);
        let mut hasher = self.hasher.clone();
        let (file, buf, hasher) = tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(file) => file,
                None => std::fs::File::open(&path)?,
            };
            buf.resize(Self::BLOCK, 0);
            crate::verify::feed_exact(&mut file, more, &mut buf, &mut hasher)?;
            Ok::<_, std::io::Error>((file, buf, hasher))
        })
        .await
        .map_err(std::io::Error::other)??;
        self.file = Some(file);
        self.buf = buf;
        self.hasher = hasher;
        self.len += more;
        Ok(())
    }

    /// The hasher, to go on with the bytes that follow the prefix.
    pub fn into_hasher(self) -> Sha256 {
        self.hasher
    }

    /// The hex sha256 of the prefix.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// Renames a complete, synced `.part` to its final name; blocking (the
/// manifest's syncer calls it right after "done" is synced). The directory
/// is not fsynced: the manifest already records the file as done, and a
/// run after a crash that lost the rename finds the complete `.part` and
/// renames it again.
pub fn promote_blocking(part: &Path, final_path: &Path) -> std::io::Result<()> {
    std::fs::rename(part, final_path)
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
    // outside the output directory. Where O_NOFOLLOW exists it refuses one
    // at the open, and the look that names it in a clear error is taken
    // only when the open fails: thousands of small files pay no extra
    // syscall each. Elsewhere the look comes first.
    #[cfg(not(unix))]
    if is_symlink(path) {
        return Err(refuse_link(path));
    }
    // From zero, O_TRUNC cuts the file in the open itself; a new file then
    // costs no ftruncate and no seek.
    let mut file = nofollow(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(offset == 0)
            .read(true)
            .write(true),
    )
    .open(path)
    .map_err(|err| {
        if is_symlink(path) {
            refuse_link(path)
        } else {
            err
        }
    })?;
    if offset > 0 {
        file.set_len(offset)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
    }
    Ok(file)
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
}

/// Opens a preallocated `.part` for writing at `offset`; O_NOFOLLOW refuses
/// a symlink planted in its place since it was made.
fn open_within_blocking(path: &Path, offset: u64) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    let mut file = nofollow(std::fs::OpenOptions::new().write(true)).open(path)?;
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
        let mut part = PartWriter::new(&path, Start::Cut(0), None);
        part.write(b"hello world").await?;
        part.sync().await?;
        drop(part);
        let mut part = PartWriter::new(&path, Start::Cut(5), None);
        part.write(b"!").await?;
        let final_path = dir.path().join("sub/a.bin");
        part.sync().await?;
        drop(part);
        promote_blocking(&path, &final_path)?;
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

    #[tokio::test]
    async fn prefix_hash_grows_with_the_file_and_refuses_a_short_one() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&path, &data).await?;
        let mut prefix = PrefixHash::new(&path);
        prefix.extend(100).await?;
        prefix.extend(500_000).await?;
        prefix.extend(99_900).await?;
        assert_eq!(prefix.len(), 600_000);
        assert_eq!(prefix.digest(), hex::encode(Sha256::digest(&data)));
        let err = prefix.extend(1).await.err();
        assert_eq!(
            err.map(|e| e.kind()),
            Some(std::io::ErrorKind::UnexpectedEof)
        );
        Ok(())
    }

    #[tokio::test]
    async fn ranges_write_into_a_preallocated_part() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        preallocate(&path, 10).await?;
        let mut back = PartWriter::new(&path, Start::Within(5), Some(10));
        let mut front = PartWriter::new(&path, Start::Within(0), Some(10));
        back.write(b"world").await?;
        front.write(b"hello").await?;
        front.flush().await?;
        back.sync().await?;
        sync_all(&path).await?;
        assert_eq!(tokio::fs::read(&path).await?, b"helloworld");
        Ok(())
    }

    // Moved from verify.rs (`hash_prefix_*`) when the prefix re-hash moved
    // here: the same lengths, across the 1 MiB block of the old reader.
    #[tokio::test]
    async fn prefix_hash_equals_sha256_of_the_same_bytes() -> std::io::Result<()> {
        const BLOCK: usize = 1 << 20;
        let dir = tempfile::tempdir()?;
        let bytes: Vec<u8> = (0..BLOCK + BLOCK / 2 + 7)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let path = dir.path().join("part");
        std::fs::write(&path, &bytes)?;
        for len in [0, 1, BLOCK, BLOCK + 3, bytes.len()] {
            let mut prefix = PrefixHash::new(&path);
            prefix.extend(len as u64).await?;
            // The engine goes on feeding the rest of the body into the same hasher.
            let mut hasher = prefix.into_hasher();
            hasher.update(&bytes[len..]);
            assert_eq!(
                hasher.finalize().as_slice(),
                Sha256::digest(&bytes).as_slice(),
                "len {len}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn prefix_hash_of_a_short_file_is_an_error() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("part");
        std::fs::write(&path, b"0123456789")?;
        let err = PrefixHash::new(&path).extend(11).await.err();
        let err = err.ok_or_else(|| std::io::Error::other("a short file hashed"))?;
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("10 bytes"), "{err}");
        Ok(())
    }
}
