//! Deterministic demo and benchmark data: files of seeded pseudo-random bytes,
//! their sha256 sums, and an aria2-style URL list pointing at them.
//!
//! It owns nothing but the bytes and the list text; serving them is
//! `serve.rs`'s job and running the download is the app's. It must not print.
//! [`generate`] is blocking file I/O: call it from `spawn_blocking` in async code.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The seed `haul demo` uses, so every run serves the same bytes.
pub const DEFAULT_SEED: u64 = 0x6861_756c_2064_656d; // "haul dem"

/// Bytes generated, hashed and written at a time.
const BLOCK: usize = 1024 * 1024;

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFile {
    /// File name inside the generated directory (no separators).
    pub name: String,
    /// Length in bytes.
    pub size: u64,
    /// sha256 of the content, lowercase hex.
    pub sha256: String,
}

/// A demo file could not be written.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("demo file name {0:?} must be a plain file name")]
    BadName(String),
    #[error("cannot write demo file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<DemoError> for io::Error {
    fn from(e: DemoError) -> Self {
        let kind = match &e {
            DemoError::BadName(_) => io::ErrorKind::InvalidInput,
            DemoError::Write { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// Writes `sizes.len()` deterministic pseudo-random files into `dir`
/// (created if missing) and returns their name, size and sha256, in order.
///
/// Each file's content depends only on `seed` and its index in `sizes`,
/// so the same call always produces the same bytes on a given build. Names
/// must be plain file names: no separators, not `.` or `..`.
pub fn generate(dir: &Path, sizes: &[(String, u64)], seed: u64) -> io::Result<Vec<DemoFile>> {
    for (name, _) in sizes {
        if !is_plain_name(name) {
            return Err(DemoError::BadName(name.clone()).into());
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut block = vec![0u8; BLOCK];
    sizes
        .iter()
        .enumerate()
        .map(|(index, (name, size))| {
            let path = dir.join(name);
            let sha256 = write_one(&path, *size, file_seed(seed, index), &mut block)
                .map_err(|source| DemoError::Write { path, source })?;
            Ok(DemoFile {
                name: name.clone(),
                size: *size,
                sha256,
            })
        })
        .collect()
}

/// Mixes the file index into the seed, so files differ from one another and
/// each can be regenerated alone.
fn file_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Writes the file under a temporary name and renames it into place: another
/// demo may be serving the same directory, and must never see a file cut
/// short (its open handle keeps the old, identical bytes).
fn write_one(path: &Path, size: u64, seed: u64, block: &mut [u8]) -> io::Result<String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = write_to(&tmp, size, seed, block).and_then(|sha| {
        std::fs::rename(&tmp, path)?;
        Ok(sha)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_to(path: &Path, size: u64, seed: u64, block: &mut [u8]) -> io::Result<String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut hasher = Sha256::new();
    let mut file = File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
        let chunk = &mut block[..n];
        rng.fill_bytes(chunk);
        hasher.update(&*chunk);
        file.write_all(chunk)?;
        left -= n as u64;
    }
    // No sync: the data is throwaway and is read back through the page cache.
    Ok(hex::encode(hasher.finalize()))
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The default demo set: 4 × 24 MiB and 12 × 256 KiB, named `demo-NN.bin`.
pub fn default_set() -> Vec<(String, u64)> {
    const MIB: u64 = 1024 * 1024;
    (0..16)
        .map(|i| {
            let size = if i < 4 { 24 * MIB } else { 256 * 1024 };
            (format!("demo-{i:02}.bin"), size)
        })
        .collect()
}

/// Characters escaped in one URL path segment (RFC 3986 §3.3 keeps
/// unreserved characters and sub-delims; `/`, `?`, `#`, `%` must go).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// An aria2-style input list for `files` served at `base` (e.g.
/// `http://127.0.0.1:PORT/`): one URL line per file, followed by an indented
/// `checksum=sha-256=HEX` option line.
pub fn url_list(base: &str, files: &[DemoFile]) -> String {
    let sep = if base.ends_with('/') { "" } else { "/" };
    let mut out = String::new();
    for f in files {
        let name = utf8_percent_encode(&f.name, SEGMENT);
        out.push_str(&format!(
            "{base}{sep}{name}\n  checksum=sha-256={}\n",
            f.sha256
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sizes(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn generate_is_deterministic_and_hashes_what_it_writes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let set = sizes(&[("x.bin", BLOCK as u64 + 3), ("y.bin", 10), ("z.bin", 0)]);
        let fa = generate(a.path(), &set, 7).unwrap();
        let fb = generate(b.path(), &set, 7).unwrap();
        assert_eq!(fa, fb);
        for f in &fa {
            let bytes = std::fs::read(a.path().join(&f.name)).unwrap();
            assert_eq!(bytes.len() as u64, f.size);
            assert_eq!(hex::encode(Sha256::digest(&bytes)), f.sha256);
        }
        assert_eq!(
            fa[2].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(fa[0].sha256, generate(b.path(), &set, 8).unwrap()[0].sha256);
    }

    #[test]
    fn files_of_one_set_differ() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path(), &sizes(&[("a", 64), ("b", 64)]), 1).unwrap();
        assert_ne!(files[0].sha256, files[1].sha256);
    }

    #[test]
    fn generate_rejects_names_with_separators() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "a/b", "..", "", "a\\b"] {
            let err = generate(dir.path(), &sizes(&[(bad, 1)]), 1).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn default_set_has_sixteen_numbered_files() {
        let set = default_set();
        assert_eq!(set.len(), 16);
        assert_eq!(set[0], ("demo-00.bin".to_string(), 24 * 1024 * 1024));
        assert_eq!(set[15], ("demo-15.bin".to_string(), 256 * 1024));
    }

    #[test]
    fn url_list_has_one_entry_with_checksum_per_file() {
        let files = [
            DemoFile {
                name: "demo-00.bin".into(),
                size: 1,
                sha256: "ab".into(),
            },
            DemoFile {
                name: "a b#.bin".into(),
                size: 2,
                sha256: "cd".into(),
            },
        ];
        let want = "http://127.0.0.1:8/demo-00.bin\n  checksum=sha-256=ab\n\
                    http://127.0.0.1:8/a%20b%23.bin\n  checksum=sha-256=cd\n";
        assert_eq!(url_list("http://127.0.0.1:8/", &files), want);
        assert_eq!(url_list("http://127.0.0.1:8", &files), want);
    }
}
