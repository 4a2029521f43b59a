//! Maps keyed by a 64-bit hash the caller already computed (the list check's
//! URLs and paths, the manifest's index of paths): hashing the key again
//! would only cost time. The callers own what a hash means and how two keys
//! with one hash are told apart.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from hashes to values, with no second hashing.
pub type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// Passes a `u64` key through as its own hash.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach this hasher; this keeps it total anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
