//! Fuzzes the manifest loader (snapshot and journal) from bytes: a corrupt
//! or hostile `.haul/` must load or fail with an error, never panic. The
//! input is split at its first NUL byte into `manifest.json` and
//! `journal.jsonl` (no NUL: the whole input is tried as either file).
#![no_main]

use haul::fuzzing::parse_state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.iter().position(|&b| b == 0) {
        Some(at) => {
            let _ = parse_state(Some(&data[..at]), &data[at + 1..]);
        }
        None => {
            let _ = parse_state(Some(data), b"");
            if let Ok(records) = parse_state(None, data) {
                // One record per path, in the order paths were registered.
                let paths: std::collections::HashSet<&str> =
                    records.iter().map(|r| r.path.as_str()).collect();
                assert_eq!(paths.len(), records.len());
            }
        }
    }
});
