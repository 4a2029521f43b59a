//! The fingerprint of a list: which files it names, whatever their order,
//! their URLs or the list's comments.
//!
//! A job is its output path (the manifest and `--shard` key on it), so
//! the fingerprint covers the set of output paths and nothing else: a
//! list whose presigned URLs were signed again, or whose lines were
//! reordered or commented, is the same list; one that adds, drops or
//! renames a file is another. It is the sha256 of the job count and the
//! sum, modulo 2^256, of the sha256 of each path. A sum does not depend on
//! the order and needs no memory per job, so it is taken as pass 1 streams
//! the list; a checked list never names one path twice, so the sum is over
//! a set. This module only computes it; `store::list_stamp` keeps it.

use sha2::{Digest, Sha256};

#[cfg(test)]
use crate::naming::RelPath;

/// The fingerprint of the paths added so far.
#[derive(Debug, Clone, Default)]
pub struct ListFingerprint {
    /// The sum of the paths' digests, least significant limb first.
    sum: [u64; 4],
    count: u64,
}

impl ListFingerprint {
    /// Adds one job's output path.
    #[cfg(test)]
    pub fn add(&mut self, path: &RelPath) {
        self.add_digest(&crate::shard::path_digest(path));
    }

    /// Adds one job's output path by its sha256 ([`crate::shard::path_digest`],
    /// which `--shard` takes anyway).
    pub fn add_digest(&mut self, digest: &[u8; 32]) {
        let mut carry = false;
        for (i, limb) in self.sum.iter_mut().enumerate() {
            // The digest read big-endian: its last 8 bytes are limb 0.
            let at = 32 - 8 * (i + 1);
            let mut word = [0u8; 8];
            word.copy_from_slice(&digest[at..at + 8]);
            let (partial, over1) = limb.overflowing_add(u64::from_be_bytes(word));
            let (total, over2) = partial.overflowing_add(u64::from(carry));
            *limb = total;
            carry = over1 || over2;
        }
        self.count += 1;
    }

    /// Paths added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The fingerprint, lowercase hex.
    pub fn hex(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"haul list v1\n");
        hasher.update(self.count.to_be_bytes());
        for limb in self.sum.iter().rev() {
            hasher.update(limb.to_be_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(paths: &[&str]) -> String {
        let mut print = ListFingerprint::default();
        for p in paths {
            print.add(&RelPath::parse(p).expect("valid path"));
        }
        print.hex()
    }

    #[test]
    fn order_does_not_count_and_every_path_does() {
        let base = of(&["a", "dir/b.bin", "c"]);
        assert_eq!(base, of(&["c", "a", "dir/b.bin"]));
        assert_ne!(base, of(&["a", "dir/b.bin"]));
        assert_ne!(base, of(&["a", "dir/b.bin", "d"]));
        assert_ne!(base, of(&["a", "dir/b.bin", "c", "d"]));
        assert_ne!(of(&[]), of(&["a"]));
        // Pinned: shards of one list on different machines and haul
        // versions must agree on it.
        assert_eq!(
            of(&["a"]),
            "bae8bdd9c2002f9f0becc3a1968ebfd3301a255867469341ddf9ae92938d3d67"
        );
    }

    #[test]
    fn the_sum_carries_across_limbs() {
        let mut print = ListFingerprint {
            sum: [u64::MAX, u64::MAX, 0, 0],
            count: 0,
        };
        print.add(&RelPath::parse("a").expect("valid path"));
        // Limb 0 overflows (its digest limb is not 0), and the carry
        // ripples through limb 1 into limb 2.
        assert_eq!(print.sum[0], ca_limb(0).wrapping_sub(1));
        assert_eq!(print.sum[1], ca_limb(1));
        assert_eq!(print.sum[2], ca_limb(2) + 1);
    }

    /// Limb `i` of sha256("a"), least significant first.
    fn ca_limb(i: usize) -> u64 {
        let digest = Sha256::digest(b"a");
        let at = 32 - 8 * (i + 1);
        u64::from_be_bytes(digest[at..at + 8].try_into().expect("8 bytes"))
    }
}
