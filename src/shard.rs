//! `--shard K/N`: which jobs of a list one machine of N takes.
//!
//! A job belongs to shard `K` when the first 8 bytes of the sha256 of its
//! output path, read big-endian, are `K` modulo `N`. The output path, not the
//! URL, is hashed: paths are what must never be shared between shards (two
//! shards writing one `.part` would corrupt it), a list never maps two jobs
//! to one path, and a job whose URL changes (a new mirror, a re-signed link)
//! keeps its shard, its manifest record and its partial download. sha256 is
//! stable across machines, platforms and Rust versions, unlike std's
//! `DefaultHasher`. This module only decides membership and names the
//! shard's state directory; it does not read lists or touch the disk.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::naming::RelPath;

/// One shard of N: `index` runs from 0 to `count - 1`, so `--shard
/// $JOB_COMPLETION_INDEX/N` and `--shard $SLURM_ARRAY_TASK_ID/N` work as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u64,
    count: u64,
}

/// A `--shard` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard '{0}' is not K/N (e.g. 0/4)")]
    Syntax(String),
    #[error("shard '{0}': N must be at least 1")]
    ZeroCount(String),
    #[error("shard '{0}': K must be between 0 and N-1")]
    OutOfRange(String),
}

impl Shard {
    /// Shard `index` of `count`; None unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// K, from 0.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// N.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the job writing `path` belongs to this shard.
    pub fn contains(&self, path: &RelPath) -> bool {
        shard_of(path, self.count) == self.index
    }

    /// [`Shard::contains`] for a path whose [`path_digest`] is `digest`
    /// (taken once for this and the list's fingerprint).
    pub fn contains_digest(&self, digest: &[u8; 32]) -> bool {
        shard_of_digest(digest, self.count) == self.index
    }

    /// Name of this shard's state directory inside `OUT_DIR/.haul/`:
    /// `shard-K-of-N`. N is part of it so that a run with another N never
    /// reads a manifest made for a different partition.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The shard a state directory name belongs to, if it is one.
    pub fn from_dir_name(name: &str) -> Option<Shard> {
        let rest = name.strip_prefix("shard-")?;
        let (k, n) = rest.split_once("-of-")?;
        Shard::new(parse_number(k)?, parse_number(n)?)
    }
}

/// The shard index of `path` among `count` shards (`count` at least 1).
pub fn shard_of(path: &RelPath, count: u64) -> u64 {
    shard_of_digest(&path_digest(path), count)
}

/// The sha256 of an output path, which decides its shard.
pub fn path_digest(path: &RelPath) -> [u8; 32] {
    Sha256::digest(path.as_str().as_bytes()).into()
}

fn shard_of_digest(digest: &[u8; 32], count: u64) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head) % count.max(1)
}

/// Plain decimal digits only: no sign, no spaces, so `--shard -1/4` or a
/// stray `+` is an error rather than a surprise.
fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (k, n) = s.split_once('/').ok_or_else(syntax)?;
        let (k, n) = (
            parse_number(k.trim()).ok_or_else(syntax)?,
            parse_number(n.trim()).ok_or_else(syntax)?,
        );
        if n == 0 {
            return Err(ShardError::ZeroCount(s.to_owned()));
        }
        Shard::new(k, n).ok_or_else(|| ShardError::OutOfRange(s.to_owned()))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> RelPath {
        RelPath::parse(s).expect("valid path")
    }

    #[test]
    fn parses_k_of_n_and_rejects_the_rest() {
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        assert_eq!("3/4".parse(), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(
            " 2 / 5 ".trim().parse::<Shard>().map(|s| s.to_string()),
            Ok("2/5".into())
        );
        let cases = [
            ("4/4", "shard '4/4': K must be between 0 and N-1"),
            ("0/0", "shard '0/0': N must be at least 1"),
            ("1", "shard '1' is not K/N (e.g. 0/4)"),
            ("-1/4", "shard '-1/4' is not K/N (e.g. 0/4)"),
            ("+1/4", "shard '+1/4' is not K/N (e.g. 0/4)"),
            ("1/4/2", "shard '1/4/2' is not K/N (e.g. 0/4)"),
            ("a/b", "shard 'a/b' is not K/N (e.g. 0/4)"),
            ("/4", "shard '/4' is not K/N (e.g. 0/4)"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Shard>().expect_err(input);
            assert_eq!(err.to_string(), want, "for {input:?}");
        }
    }

    #[test]
    fn hash_is_the_documented_sha256_prefix_and_never_changes() {
        // Pinned values: a change here would move files between shards of a
        // job array that is already half done.
        let digest = Sha256::digest(b"data/file-1.bin");
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        for n in [1, 2, 3, 7, 1000] {
            assert_eq!(shard_of(&path("data/file-1.bin"), n), head % n);
        }
        assert_eq!(shard_of(&path("a"), 1), 0);
        let pinned: Vec<u64> = ["a", "b", "dir/c.bin", "file-0000.bin"]
            .iter()
            .map(|p| shard_of(&path(p), 5))
            .collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 4] = [0, 1, 2, 0];

    #[test]
    fn every_path_lands_in_exactly_one_shard() {
        let paths: Vec<RelPath> = (0..200).map(|i| path(&format!("f/{i:04}.bin"))).collect();
        for n in 1..=5 {
            let shards: Vec<Shard> = (0..n).map(|k| Shard::new(k, n).expect("k < n")).collect();
            for p in &paths {
                let owners = shards.iter().filter(|s| s.contains(p)).count();
                assert_eq!(owners, 1, "{p} with n={n}");
            }
            // Not all in one shard: the hash spreads them.
            if n > 1 {
                let first = shards
                    .iter()
                    .map(|s| paths.iter().filter(|p| s.contains(p)).count());
                assert!(
                    first.clone().all(|c| c > 200 / (n as usize) / 2),
                    "n={n}: {:?}",
                    first.collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn dir_name_round_trips() {
        let shard = Shard::new(2, 7).expect("valid");
        assert_eq!(shard.dir_name(), "shard-2-of-7");
        assert_eq!(Shard::from_dir_name("shard-2-of-7"), Some(shard));
        for bad in [
            "shard-7-of-7",
            "shard-1-of-",
            "shard--1-of-2",
            "lock",
            "shard-1-of-2x",
        ] {
            assert_eq!(Shard::from_dir_name(bad), None, "{bad}");
        }
    }
}
