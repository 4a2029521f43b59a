//! Seeded test bodies and byte-exact comparisons.
//!
//! Bodies are generated from a seed inside each test (nothing large is
//! checked in), and comparisons report the first differing offset instead of
//! dumping megabytes. Nothing here touches the network or haul.

use std::path::Path;

use sha2::{Digest, Sha256};

/// `len` pseudo-random bytes from `seed` (xorshift64*): cheap even in an
/// unoptimised build, and no two seeds share a prefix that could hide a
/// splice at the wrong offset.
pub fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Panics unless the file at `path` holds exactly `expected`, naming the
/// first differing offset.
pub fn assert_file_eq(path: &Path, expected: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_same_bytes(&got, expected, &path.display().to_string());
}

/// Panics unless `got == expected`, naming the first differing offset.
pub fn assert_same_bytes(got: &[u8], expected: &[u8], what: &str) {
    if got == expected {
        return;
    }
    let first_diff = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    panic!(
        "{what}: {} bytes, expected {}; first difference at offset {first_diff}",
        got.len(),
        expected.len()
    );
}
