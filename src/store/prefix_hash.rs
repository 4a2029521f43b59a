//! The sha256 of a `.part`'s first bytes, extended as that prefix grows.
//!
//! Two feeds extend it, and both run on the blocking pool, so hashing never
//! holds up the async worker threads and overlaps the next receive: the
//! writer that just put bytes in the kernel offers them from memory
//! ([`PrefixHash::offer`]), which hashes them when they continue the prefix
//! and costs nothing otherwise; and a reader catches up from the file
//! ([`PrefixHash::extend_to`]) over whatever no offer covered (a resumed
//! prefix, a split range written before the ranges ahead of it). Offers
//! cover every byte of a single stream and of a split's range that stays at
//! the front, so the common case never reads the file back.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// One hash shared by the writers of a `.part` and the task that reads it
/// back: clones are handles to the same hash.
#[derive(Clone)]
pub struct PrefixHash {
    inner: Arc<Mutex<Prefix>>,
}

struct Prefix {
    path: PathBuf,
    /// Opened at the first read back.
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    hasher: Sha256,
    /// Bytes hashed so far: the prefix `[0, len)`.
    len: u64,
}

impl PrefixHash {
    /// Buffer of each read back.
    const BLOCK: usize = 256 << 10;

    /// The hash of nothing yet; `path` is opened at the first read back.
    pub fn new(path: &Path) -> PrefixHash {
        PrefixHash::resumed(path, Sha256::new(), 0)
    }

    /// Goes on from `hasher`, which has seen the first `len` bytes of `path`.
    pub fn resumed(path: &Path, hasher: Sha256, len: u64) -> PrefixHash {
        PrefixHash {
            inner: Arc::new(Mutex::new(Prefix {
                path: path.to_path_buf(),
                file: None,
                buf: Vec::new(),
                hasher,
                len,
            })),
        }
    }

    /// A panic elsewhere cannot leave the hash half-updated: `update` and
    /// the length move together under the lock, with no call between them
    /// that could unwind.
    fn lock(&self) -> MutexGuard<'_, Prefix> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    /// `chunks`, in order, are now in the file from offset `at`: hashes the
    /// part of them that continues the prefix, if any. Bytes past a gap are
    /// left for [`PrefixHash::extend_to`] to read back. Blocking (it hashes):
    /// for the pool.
    pub fn offer(&self, mut at: u64, chunks: &[Bytes]) {
        let mut prefix = self.lock();
        for chunk in chunks {
            let end = at + chunk.len() as u64;
            if at <= prefix.len && prefix.len < end {
                let skip = (prefix.len - at) as usize;
                prefix.hasher.update(&chunk[skip..]);
                prefix.len = end;
            }
            at = end;
        }
    }

    /// Hashes the file up to offset `to` where no offer did; an
    /// [`std::io::ErrorKind::UnexpectedEof`] error if it is shorter, after
    /// which this hash is worthless.
    pub async fn extend_to(&self, to: u64) -> std::io::Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.lock().read_to(to))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Hashes the next `more` bytes of the file.
    pub async fn extend(&self, more: u64) -> std::io::Result<()> {
        self.extend_to(self.len() + more).await
    }

    /// The hasher, to go on with the bytes that follow the prefix.
    pub fn hasher(&self) -> Sha256 {
        self.lock().hasher.clone()
    }

    /// The hex sha256 of the prefix.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher().finalize())
    }
}

impl Prefix {
    /// Under the lock, so no offer lands between the seek and the hash.
    fn read_to(&mut self, to: u64) -> std::io::Result<()> {
        if to <= self.len {
            return Ok(());
        }
        let mut file = match self.file.take() {
            Some(file) => file,
            None => std::fs::File::open(&self.path)?,
        };
        file.seek(SeekFrom::Start(self.len))?;
        self.buf.resize(PrefixHash::BLOCK, 0);
        let more = to - self.len;
        crate::verify::feed_exact(&mut file, more, &mut self.buf, &mut self.hasher)?;
        self.len = to;
        self.file = Some(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    #[tokio::test]
    async fn prefix_hash_grows_with_the_file_and_refuses_a_short_one() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&path, &data).await?;
        let prefix = PrefixHash::new(&path);
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

    // Moved from verify.rs (`hash_prefix_*`) when the prefix re-hash moved
    // to the store: the same lengths, across the 1 MiB block of the old reader.
    #[tokio::test]
    async fn prefix_hash_equals_sha256_of_the_same_bytes() -> std::io::Result<()> {
        const BLOCK: usize = 1 << 20;
        let dir = tempfile::tempdir()?;
        let bytes = pattern(BLOCK + BLOCK / 2 + 7);
        let path = dir.path().join("part");
        std::fs::write(&path, &bytes)?;
        for len in [0, 1, BLOCK, BLOCK + 3, bytes.len()] {
            let prefix = PrefixHash::new(&path);
            prefix.extend(len as u64).await?;
            // The engine goes on feeding the rest of the body into the same hasher.
            let mut hasher = prefix.hasher();
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

    /// Many chunks offered in order hash to the digest of their bytes.
    #[test]
    fn offers_in_order_hash_every_byte_once() {
        let data = pattern(3_000_017);
        let bytes = Bytes::from(data.clone());
        let prefix = PrefixHash::new(Path::new("never-read"));
        let mut at = 0;
        // Uneven chunks, a few per offer, as a writer's batches come.
        let sizes = [1, 4096, 65_536, 7, 300_000, 131_072, 0, 9];
        let mut i = 0;
        while at < data.len() {
            let mut batch = Vec::new();
            let start = at;
            for _ in 0..3 {
                let end = (at + sizes[i % sizes.len()]).min(data.len());
                batch.push(bytes.slice(at..end));
                at = end;
                i += 1;
            }
            prefix.offer(start as u64, &batch);
        }
        assert_eq!(prefix.len(), data.len() as u64);
        assert_eq!(prefix.digest(), hex::encode(Sha256::digest(&data)));
    }

    /// A range written ahead of the prefix is read back once the gap fills;
    /// bytes offered after a read back hash only past what it covered.
    #[tokio::test]
    async fn offers_past_a_gap_wait_for_the_read_back() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.part");
        let data = pattern(1_000_000);
        std::fs::write(&path, &data)?;
        let bytes = Bytes::from(data.clone());
        let prefix = PrefixHash::new(&path);
        // A later range first: past the prefix, so it waits.
        prefix.offer(600_000, &[bytes.slice(600_000..700_000)]);
        assert_eq!(prefix.len(), 0);
        // The front range, in two writes.
        prefix.offer(0, &[bytes.slice(0..250_000)]);
        prefix.offer(250_000, &[bytes.slice(250_000..400_000)]);
        assert_eq!(prefix.len(), 400_000);
        // The reader catches up over the gap and the range written before.
        prefix.extend_to(650_000).await?;
        // A write that straddles the prefix hashes only its new bytes.
        prefix.offer(600_000, &[bytes.slice(600_000..800_000)]);
        assert_eq!(prefix.len(), 800_000);
        // One that lies wholly inside it changes nothing.
        prefix.offer(100, &[bytes.slice(100..200)]);
        prefix.extend_to(700_000).await?;
        prefix.extend_to(1_000_000).await?;
        assert_eq!(prefix.digest(), hex::encode(Sha256::digest(&data)));
        Ok(())
    }
}
