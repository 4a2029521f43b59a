//! Fuzzes the URL-list parser and the planner behind it: any text must parse
//! or fail with an error that names its line, never panic. It checks only
//! what holds for every input; what a valid list means is in src/list/tests.rs.
#![no_main]

use haul::fuzzing::{parse_list, plan_with_duplicates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A list is read as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line_count = text.split('\n').count();
    match parse_list(text, "fuzz.txt") {
        Ok(entries) => {
            for entry in &entries {
                assert!(matches!(entry.url.scheme(), "http" | "https"));
                assert!(entry.origin.line >= 1 && entry.origin.line <= line_count);
            }
            let count = entries.len();
            if let Ok(plan) = plan_with_duplicates(entries) {
                assert_eq!(plan.jobs.len() + plan.duplicates.len(), count);
                let root = std::path::Path::new("/out");
                for job in &plan.jobs {
                    assert!(job.path.to_path(root).starts_with(root));
                    assert!(!job.path.as_str().is_empty());
                }
                for duplicate in &plan.duplicates {
                    let _ = duplicate.to_string();
                }
            }
        }
        Err(error) => {
            let message = error.to_string();
            let origin = error.origin();
            assert!(origin.line >= 1 && origin.line <= line_count);
            assert!(message.starts_with(&format!("fuzz.txt:{}: ", origin.line)));
        }
    }
});
