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
//! hash the contiguous prefix with a [`PrefixHash`] that the writers feed
//! as their bytes land: every read and write of a `.part` runs on the
//! blocking pool, but for a whole small file's one write
//! ([`PartWriter::land`]).

use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::prefix_hash::PrefixHash;
use super::sync_cost::SyncCost;
use crate::naming::RelPath;

/// Bytes a writer gathers before handing them to the kernel: a 256th of
/// `share` (the bytes it is sized against: a stream's file, a range's
/// part of one), within 64 KiB to 1 MiB (256 KiB when unknown). Few,
/// large writes keep syscalls and blocking-pool hops down: on four
/// 256 MiB files at once (chunks of ~400 KiB arrive from hyper), 1 MiB
/// instead of 256 KiB cut futex calls from 21,800 to 7,000 and CPU from
/// 2.62 to 2.46 s per GiB. A split records a range's offset only once its
/// bytes are in the kernel, and the record follows the write in flight
/// without waiting for it (it sees a batch land at the next chunk), so a
/// kill can cost this and the batch in flight per connection: a range
/// writer's share is its part of the file over 2, which keeps what all of
/// a file's connections can lose under 0.4 % of it.
fn write_buffer(share: Option<u64>) -> usize {
    share.map_or(256 << 10, |share| (share / 256).clamp(64 << 10, 1 << 20)) as usize
}

/// The largest whole file [`PartWriter::land`] writes on the calling
/// thread: its open, write and hash take a few microseconds, which an event
/// loop can spend; a larger one goes through the blocking pool.
const INLINE_MAX: usize = 64 << 10;

/// How long `.part` syncs take: they belong to the disk, not to a
/// download, hence one for the process.
static PART_SYNCS: SyncCost = SyncCost::new();

/// Syncs a `.part`'s data, noting how long that took (see [`SyncCost`]).
pub fn sync_data_timed(file: &std::fs::File) -> std::io::Result<()> {
    PART_SYNCS.sync_data(file)
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

/// A batch in flight: it hands back the file and the emptied list.
type Pending = JoinHandle<std::io::Result<(std::fs::File, Vec<Bytes>)>>;

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

impl Start {
    fn offset(self) -> u64 {
        match self {
            Start::Cut(offset) | Start::Within(offset) => offset,
        }
    }
}

/// The one writer of a `.part`, for a single stream and for each range of
/// a split file alike: the chunks the network gave gather as they came (no
/// copy), a buffer's worth goes to the kernel in one vectored write on the
/// blocking pool while the next gathers, and the caller decides when the
/// bytes must be in the kernel ([`flush`]) or on disk ([`sync`]), with
/// [`sync_due`] as the one checkpoint clock. [`landed`] says how far the
/// kernel has them without waiting, so a record can follow the writes
/// instead of holding them up.
///
/// With a [`PrefixHash`] ([`PartWriter::hashing`]), each batch is offered
/// to it on the pool right after its write: the hash covers exactly the
/// bytes the kernel took, in file order, off the download task.
///
/// The file is opened on the pool by the first write or sync, so a whole
/// small file costs one trip there (open, write, sync): lists of thousands
/// of small files feel every hop. An open that fails (a symlink planted in
/// the `.part`'s place, a full directory) fails that first write or sync.
///
/// [`flush`]: PartWriter::flush
/// [`sync`]: PartWriter::sync
/// [`sync_due`]: PartWriter::sync_due
/// [`landed`]: PartWriter::landed
pub struct PartWriter {
    /// None while a write is in flight, or after one failed.
    file: Option<Handle>,
    /// Chunks given to `write` and not yet sent to the kernel, in order.
    chunks: Vec<Bytes>,
    /// The list a finished batch handed back, reused for the next one.
    spare: Vec<Bytes>,
    /// Bytes in `chunks`.
    buffered: usize,
    pending: Option<Pending>,
    /// The file offset of the first byte in `chunks`.
    at: u64,
    /// Every byte before this offset is in the kernel.
    landed: u64,
    /// What `landed` becomes once the pending batch is in.
    pending_end: u64,
    /// When a buffer's worth goes to the kernel.
    buffer: usize,
    last_sync: Instant,
    hash: Option<PrefixHash>,
    /// The write error that cost us the file: every later call repeats it,
    /// so whichever call reports first names the real cause (a full disk),
    /// not just "the file is gone".
    broken: Option<(std::io::ErrorKind, String)>,
}

impl PartWriter {
    /// A writer of the `.part` at `start`, opened (never through a symlink
    /// planted in its place) by the first write or sync; `total` is the
    /// file's length if known, to size the buffer.
    pub fn new(path: &Path, start: Start, share: Option<u64>) -> Self {
        PartWriter {
            file: Some(Handle::Unopened(path.to_path_buf(), start)),
            chunks: Vec::new(),
            spare: Vec::new(),
            buffered: 0,
            pending: None,
            at: start.offset(),
            landed: start.offset(),
            pending_end: start.offset(),
            buffer: write_buffer(share),
            last_sync: Instant::now(),
            hash: None,
            broken: None,
        }
    }

    /// Offers every batch, once written, to `hash`.
    pub fn hashing(mut self, hash: PrefixHash) -> Self {
        self.hash = Some(hash);
        self
    }

    pub async fn write(&mut self, bytes: Bytes) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        // A batch that has landed is taken in at once, not when the next
        // buffer fills: what a record counts (and a kill spares) follows
        // the kernel a chunk behind, not a buffer.
        if self.pending.as_ref().is_some_and(|p| p.is_finished()) {
            self.wait_pending().await?;
        }
        self.buffered += bytes.len();
        self.chunks.push(bytes);
        if self.buffered >= self.buffer {
            self.wait_pending().await?;
            let batch = self.take_batch();
            let file = self.take_file()?;
            self.pending = Some(tokio::task::spawn_blocking(move || batch.run(file, false)));
        }
        Ok(())
    }

    /// The file offset before which every byte given to `write` is in the
    /// kernel, as far as this writer has seen; it waits for nothing.
    pub fn landed(&self) -> u64 {
        self.landed
    }

    /// Whether every byte given to `write` is in the kernel.
    pub fn all_landed(&self) -> bool {
        self.landed == self.at + self.buffered as u64
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

    /// Ends a body that is complete: its bytes go to the kernel, and either
    /// to the disk as [`sync`] does (`Ok(None)`), or, for a whole file of
    /// at most `INLINE_MAX` that has not met the kernel yet, while syncs
    /// are quick ([`SyncCost`]), written here,
    /// unsynced, and its open file handed back (`Ok(Some)`) for the
    /// manifest's syncer to sync right before the rename
    /// ([`crate::engine::recorder::Recorder::finish`]).
    ///
    /// A small file then costs no trip to the blocking pool: the open and
    /// the write go to the page cache (as curl and nginx do them, on their
    /// event loop), and its sync joins the journal's. On 50,000 files of
    /// 1 KiB the trip was the largest cost haul had over a bare reqwest
    /// client (a fifth of the CPU, in waking pool threads and the tasks
    /// they answer). The sync still comes before the final name; a "done"
    /// record may now reach the disk before the data, which a run after a
    /// crash catches: it promotes a "done" `.part` only if it hashes to the
    /// recorded sha256, and otherwise starts the file over.
    ///
    /// [`sync`]: PartWriter::sync
    pub async fn land(&mut self) -> std::io::Result<Option<std::fs::File>> {
        self.land_if(PART_SYNCS.quick()).await
    }

    /// [`PartWriter::land`], told whether syncs are cheap.
    async fn land_if(&mut self, cheap_syncs: bool) -> std::io::Result<Option<std::fs::File>> {
        let whole_here = cheap_syncs
            && self.pending.is_none()
            && matches!(self.file, Some(Handle::Unopened(..)))
            && self.buffered <= INLINE_MAX;
        if !whole_here {
            return self.sync().await.map(|()| None);
        }
        let batch = self.take_batch();
        let file = self.take_file()?;
        let (file, spare) = batch.run(file, false).inspect_err(|err| {
            self.broken = Some((err.kind(), err.to_string()));
        })?;
        self.spare = spare;
        self.landed = self.pending_end;
        Ok(Some(file))
    }

    async fn write_out(&mut self, sync: bool) -> std::io::Result<()> {
        self.wait_pending().await?;
        if self.chunks.is_empty() && !sync {
            return Ok(());
        }
        let batch = self.take_batch();
        let file = self.take_file()?;
        self.pending = Some(tokio::task::spawn_blocking(move || batch.run(file, sync)));
        self.wait_pending().await
    }

    /// The buffered chunks, as the next batch for the kernel.
    fn take_batch(&mut self) -> Batch {
        let chunks = std::mem::replace(&mut self.chunks, std::mem::take(&mut self.spare));
        let batch = Batch {
            at: self.at,
            chunks,
            hash: self.hash.clone(),
        };
        self.at += self.buffered as u64;
        self.buffered = 0;
        self.pending_end = self.at;
        batch
    }

    async fn wait_pending(&mut self) -> std::io::Result<()> {
        if let Some(pending) = self.pending.take() {
            let done = pending.await.map_err(std::io::Error::other).and_then(|r| r);
            let (file, spare) = done.inspect_err(|err| {
                self.broken = Some((err.kind(), err.to_string()));
            })?;
            self.file = Some(Handle::Open(file));
            self.spare = spare;
            self.landed = self.pending_end;
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

/// Chunks bound for the kernel at file offset `at`, with the hash that
/// follows them.
struct Batch {
    at: u64,
    chunks: Vec<Bytes>,
    hash: Option<PrefixHash>,
}

impl Batch {
    /// Blocking, for the pool: writes the chunks (and syncs, if asked),
    /// then offers them to the hash; hands back the file and the emptied
    /// list.
    fn run(mut self, file: Handle, sync: bool) -> std::io::Result<(std::fs::File, Vec<Bytes>)> {
        let mut file = file.into_file()?;
        write_chunks(&mut file, &self.chunks)?;
        if sync {
            sync_data_timed(&file)?;
        }
        if let Some(hash) = &self.hash {
            hash.offer(self.at, &self.chunks);
        }
        self.chunks.clear();
        Ok((file, self.chunks))
    }
}

/// Writes every byte of `chunks`, in order, in as few calls as the kernel
/// allows: one vectored write takes many chunks at once, and a short write
/// goes on from the byte where it stopped.
fn write_chunks(out: &mut impl Write, chunks: &[Bytes]) -> std::io::Result<()> {
    // Linux's IOV_MAX: a longer list is refused, not shortened.
    const MAX_SLICES: usize = 1024;
    let (mut next, mut skip) = (0, 0);
    while next < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[next..]
            .iter()
            .take(MAX_SLICES)
            .enumerate()
            .map(|(i, chunk)| IoSlice::new(if i == 0 { &chunk[skip..] } else { chunk }))
            .collect();
        let mut wrote = match out.write_vectored(&slices) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "the .part took no more bytes",
                ))
            }
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        // Past every chunk the write finished, into the one it stopped in.
        while next < chunks.len() && wrote >= chunks[next].len() - skip {
            wrote -= chunks[next].len() - skip;
            next += 1;
            skip = 0;
        }
        skip += wrote;
    }
    Ok(())
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
        part.write(Bytes::from_static(b"hello world")).await?;
        part.sync().await?;
        drop(part);
        let mut part = PartWriter::new(&path, Start::Cut(5), None);
        part.write(Bytes::from_static(b"!")).await?;
        let final_path = dir.path().join("sub/a.bin");
        part.sync().await?;
        drop(part);
        promote_blocking(&path, &final_path)?;
        assert_eq!(tokio::fs::read(&final_path).await?, b"hello!");
        assert_eq!(part_len(&path).await?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_small_whole_file_lands_unsynced_only_while_syncs_are_cheap() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let small = dir.path().join("small.part");
        let mut part = PartWriter::new(&small, Start::Cut(0), Some(5));
        part.write(Bytes::from_static(b"small")).await?;
        let file = part.land_if(true).await?;
        assert!(file.is_some(), "a cheap sync is left to the caller");
        assert_eq!(std::fs::read(&small)?, b"small");

        // Slow syncs (a real disk): the pool syncs it, in parallel with others.
        let slow = dir.path().join("slow.part");
        let mut part = PartWriter::new(&slow, Start::Cut(0), Some(4));
        part.write(Bytes::from_static(b"slow")).await?;
        assert!(part.land_if(false).await?.is_none());
        assert_eq!(std::fs::read(&slow)?, b"slow");

        // Larger than a write buffer: its first bytes went to the pool already.
        let big = dir.path().join("big.part");
        let mut part = PartWriter::new(&big, Start::Cut(0), Some(100 << 10));
        part.write(Bytes::from(vec![7u8; 100 << 10])).await?;
        assert!(part.land_if(true).await?.is_none());
        assert_eq!(std::fs::read(&big)?.len(), 100 << 10);
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
    async fn ranges_write_into_a_preallocated_part() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        preallocate(&path, 10).await?;
        let mut back = PartWriter::new(&path, Start::Within(5), Some(10));
        let mut front = PartWriter::new(&path, Start::Within(0), Some(10));
        back.write(Bytes::from_static(b"world")).await?;
        front.write(Bytes::from_static(b"hello")).await?;
        front.flush().await?;
        back.sync().await?;
        sync_all(&path).await?;
        assert_eq!(tokio::fs::read(&path).await?, b"helloworld");
        Ok(())
    }

    /// Takes at most `most` bytes and two slices per call, and is
    /// interrupted every third call: the short writes a kernel may give.
    struct Stingy {
        got: Vec<u8>,
        most: usize,
        calls: usize,
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let mut took = 0;
            for buf in bufs.iter().take(2) {
                let n = buf.len().min(self.most - took);
                self.got.extend_from_slice(&buf[..n]);
                took += n;
                if n < buf.len() {
                    break;
                }
            }
            Ok(took)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chunks_are_written_whole_and_in_order_across_short_writes() -> std::io::Result<()> {
        let data: Vec<u8> = (0..5_000u32).map(|i| (i % 253) as u8).collect();
        let bytes = Bytes::from(data.clone());
        let mut chunks = Vec::new();
        let mut at = 0;
        for len in [0, 1, 7, 700, 0, 3, 1_289, 2_000, 1].into_iter().cycle() {
            let end = (at + len).min(data.len());
            chunks.push(bytes.slice(at..end));
            at = end;
            if at == data.len() {
                break;
            }
        }
        for most in [1, 5, 64, 10_000] {
            let mut out = Stingy {
                got: Vec::new(),
                most,
                calls: 0,
            };
            write_chunks(&mut out, &chunks)?;
            assert_eq!(out.got, data, "at most {most} bytes a call");
        }
        Ok(())
    }

    #[test]
    fn a_write_that_takes_nothing_is_an_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = write_chunks(&mut Full, &[Bytes::from_static(b"x")]).err();
        assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::WriteZero));
    }

    #[tokio::test]
    async fn a_hashing_writer_hashes_what_it_wrote() -> std::io::Result<()> {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
        let bytes = Bytes::from(data.clone());
        let hash = PrefixHash::new(&path);
        let mut part = PartWriter::new(&path, Start::Cut(0), None).hashing(hash.clone());
        for at in (0..data.len()).step_by(10_000) {
            part.write(bytes.slice(at..(at + 10_000).min(data.len())))
                .await?;
            assert!(part.landed() <= at as u64 + 10_000);
        }
        part.sync().await?;
        assert!(part.all_landed());
        assert_eq!(part.landed(), data.len() as u64);
        assert_eq!(hash.len(), data.len() as u64);
        assert_eq!(hash.digest(), hex::encode(Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path)?, data);
        Ok(())
    }
}
