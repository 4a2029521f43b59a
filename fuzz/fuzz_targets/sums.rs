//! Fuzzes the sha256sum-file parser: any text parses or fails with an error
//! naming its line, never panics, and what it accepts renders back to text
//! that parses to the same entries.
#![no_main]

use haul::fuzzing::{format_sums, parse_sums};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line_count = text.split('\n').count();
    match parse_sums(text, "SUMS") {
        Ok(entries) => {
            let rendered = format_sums(entries.iter().map(|e| (&e.path, &e.sha256)));
            let again = match parse_sums(&rendered, "SUMS") {
                Ok(again) => again,
                Err(e) => panic!("rendered sums do not parse: {e}\n{rendered:?}"),
            };
            let pairs = |v: &[haul::fuzzing::SumEntry]| {
                v.iter()
                    .map(|e| (e.path.clone(), e.sha256))
                    .collect::<Vec<_>>()
            };
            assert_eq!(pairs(&entries), pairs(&again));
        }
        Err(error) => {
            let origin = error.origin();
            assert!(origin.line >= 1 && origin.line <= line_count);
            assert!(error
                .to_string()
                .starts_with(&format!("SUMS:{}: ", origin.line)));
        }
    }
});
