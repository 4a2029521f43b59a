//! Tests for the planner: output paths, repeated URLs and conflicting
//! paths, over lists parsed as the command line parses them.

use super::*;
use crate::list::{parse_list, ListEntry};

const HEX: &str = "db576fb4ed8934340f48ad622e3c99886afec9f9159d77290205b6d8769a7136";

fn parse(text: &str) -> Vec<ListEntry> {
    parse_list(text, "urls.txt").unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn parse_err(text: &str) -> String {
    match parse_list(text, "urls.txt") {
        Ok(entries) => panic!("expected an error for {text:?}, got {entries:?}"),
        Err(e) => e.to_string(),
    }
}

fn plan_err(text: &str) -> String {
    match plan(parse(text)) {
        Ok(jobs) => panic!("expected a plan error for {text:?}, got {jobs:?}"),
        Err(e) => e.to_string(),
    }
}

fn paths(jobs: &[JobSpec]) -> Vec<&str> {
    jobs.iter().map(|j| j.path.as_str()).collect()
}

#[test]
fn option_order_does_not_matter() {
    let one = parse("http://h/a\n  out=o\n  dir=d\n  header=A: 1\n");
    let two = parse("http://h/a\n  header=A: 1\n  dir=d\n  out=o\n");
    assert_eq!(plan(one).expect("plans"), plan(two).expect("plans"));
}

#[test]
fn url_derived_names_are_sanitised_never_traversing() {
    let text = "http://h/%2e%2e%2f%2e%2e%2fetc%2fpasswd\n\
                http://h/..\n\
                http://h/a%00b\n\
                http://h/x/%2E%2e\n";
    // `http://h/..` and `http://h/x/%2E%2e` both normalise to `http://h/`
    // (WHATWG URL dot segments): one job, saved as index.html.
    let planned = plan_with_duplicates(parse(text)).expect("plans");
    assert_eq!(
        paths(&planned.jobs),
        [".._.._etc_passwd", "index.html", "a_b"]
    );
    assert_eq!(planned.duplicates.len(), 1);
    assert_eq!(planned.duplicates[0].kept.line, 2);
}

#[test]
fn plan_builds_paths_from_dir_out_and_url() {
    let text = "http://h/a.bin\n\
                http://h/b.bin\n  dir=d/\n\
                http://h/c.bin\n  out=e/f.bin\n  dir=./x\n\
                http://h/dir/\n";
    let jobs = plan(parse(text)).expect("plans");
    assert_eq!(
        paths(&jobs),
        ["a.bin", "d/b.bin", "x/e/f.bin", "index.html"]
    );
    assert_eq!(jobs[2].origin.line, 4);
}

#[test]
fn plan_keeps_the_first_of_a_repeated_url() {
    let text = format!(
        "http://h/a\n  out=first.bin\n  checksum=sha-256={HEX}\n\
         http://h/b\n\
         http://h/a\n\
         http://h/a#frag\n  out=second.bin\n"
    );
    let planned = plan_with_duplicates(parse(&text)).expect("plans");
    assert_eq!(paths(&planned.jobs), ["first.bin", "b"]);
    assert!(planned.jobs[0].checksum.is_some());
    let dups: Vec<(usize, bool)> = planned
        .duplicates
        .iter()
        .map(|d| (d.origin.line, d.path_differs()))
        .collect();
    assert_eq!(dups, [(5, true), (6, true)]);
    assert_eq!(
        planned.duplicates[1].to_string(),
        "urls.txt:6: URL already listed at urls.txt:1; downloading it once, to 'first.bin' (not 'second.bin')"
    );

    let same = plan_with_duplicates(parse("http://h/a\nhttp://h/a\n")).expect("plans");
    assert_eq!(same.jobs.len(), 1);
    assert!(!same.duplicates[0].path_differs());
    assert_eq!(
        same.duplicates[0].to_string(),
        "urls.txt:2: URL already listed at urls.txt:1"
    );
}

#[test]
fn plan_still_checks_the_path_of_a_dropped_duplicate() {
    let entries = vec![
        parse("http://h/a\n").remove(0),
        ListEntry {
            out: Some("../x".into()),
            ..parse("\nhttp://h/a\n").remove(0)
        },
    ];
    let err = plan(entries).expect_err("bad out");
    assert_eq!(
        err.to_string(),
        "urls.txt:2: out '../x' contains a '..' component"
    );
}

#[test]
fn plan_rejects_two_urls_for_one_path() {
    let err = plan_err("http://h/1/a.bin\nhttp://h/x\n  out=b\nhttp://h/2/a.bin\n");
    assert_eq!(
        err,
        "urls.txt:4: output path 'a.bin' is already used by urls.txt:1 (http://h/1/a.bin)"
    );
}

#[test]
fn plan_rejects_a_file_that_is_another_jobs_directory() {
    let file_first = plan_err("http://h/a\nhttp://h/x\n  out=a/b\n");
    assert_eq!(
        file_first,
        "urls.txt:2: output path 'a/b' and 'a' from urls.txt:1 (http://h/a) would need 'a' to be both a file and a directory"
    );
    let dir_first = plan_err("http://h/x\n  dir=a/b\nhttp://h/a\n  dir=a\nhttp://h/b\n  dir=a\n");
    assert_eq!(
        dir_first,
        "urls.txt:5: output path 'a/b' and 'a/b/x' from urls.txt:1 (http://h/x) would need 'a/b' to be both a file and a directory"
    );
    // Siblings and shared directories are fine.
    plan(parse(
        "http://h/x\n  out=a/b\nhttp://h/y\n  out=a/c\nhttp://h/ab\n",
    ))
    .expect("plans");
}

#[test]
fn errors_never_show_credentials() {
    let texts = [
        "ftp://user:hunter2@h/a\n",
        "http://user:hunter2@h:99999/a\n",
        "http://user:hunter2@h/a\n  out=../x\n",
        "http://user:hunter2@h/x/a\nhttp://h/y/a\n",
        "http://user:hunter2@h/a\nhttp://h/b\n  out=a/b\n",
        "http://h/a\n  header=Authorization Bearer hunter2\n",
        "http://h/a\n  header=Authorization: Bearer hunter2\u{7}\n",
    ];
    for text in texts {
        let err = match parse_list(text, "urls.txt").and_then(plan) {
            Ok(jobs) => panic!("expected an error for {text:?}, got {jobs:?}"),
            Err(e) => e.to_string(),
        };
        assert!(!err.contains("hunter2"), "{err}");
    }
    assert_eq!(
        parse_err("ftp://user:hunter2@h/a\n"),
        "urls.txt:1: unsupported scheme 'ftp' in URL 'ftp://user:***@h/a' (haul downloads http and https)"
    );
    assert_eq!(
        parse_err("http://user:hunter2@h:99999/a\n"),
        "urls.txt:1: invalid URL 'http://***@h:99999/a'"
    );
}

/// The fixtures with `PORT` replaced, as the integration tests do.
fn fixture(text: &str) -> String {
    text.replace("PORT", "8080")
}

#[test]
fn fixture_good_list_plans_four_jobs() {
    let text = fixture(include_str!("../../fixtures/lists/good.txt"));
    let planned =
        plan_with_duplicates(parse_list(&text, "good.txt").expect("parses")).expect("plans");
    let jobs = &planned.jobs;
    assert_eq!(
        paths(jobs),
        [
            "alpha.bin",
            "nested/deeper/renamed-beta.bin",
            "gamma.txt",
            "with space.txt"
        ]
    );
    let lines: Vec<usize> = jobs.iter().map(|j| j.origin.line).collect();
    assert_eq!(lines, [4, 7, 12, 19]);
    assert_eq!(jobs[2].checksum.map(hex::encode).as_deref(), Some(HEX));
    assert_eq!(
        jobs[2].headers,
        [
            ("X-Haul-Test".to_owned(), "gamma".to_owned()),
            ("Accept-Language".to_owned(), "en".to_owned())
        ]
    );
    assert_eq!(jobs[3].url.query(), Some("token=abc"));
    assert_eq!(planned.duplicates.len(), 1);
    assert_eq!(planned.duplicates[0].origin.line, 22);
    assert!(!planned.duplicates[0].path_differs());
    for job in jobs {
        assert_eq!(job.url.host_str(), Some("127.0.0.1"));
    }

    // The body the README documents for gamma.txt matches its checksum.
    use sha2::Digest;
    let body: [u8; 32] = sha2::Sha256::digest(b"hello, haul\n").into();
    assert_eq!(jobs[2].checksum, Some(body));
}

#[test]
fn fixture_traversal_url_alone_is_sanitised() {
    let text = fixture(include_str!("../../fixtures/lists/traversal.txt"));
    let first_url: String = text.lines().take(4).collect::<Vec<_>>().join("\n");
    let jobs = plan(parse_list(&first_url, "traversal.txt").expect("parses")).expect("plans");
    assert_eq!(paths(&jobs), [".._.._etc_passwd"]);
}

#[test]
fn fixture_conflict_list_fails_to_plan() {
    let text = fixture(include_str!("../../fixtures/lists/conflict.txt"));
    let entries = parse_list(&text, "conflict.txt").expect("parses");
    let err = plan(entries).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "conflict.txt:3: output path 'data.bin' is already used by conflict.txt:2 (http://127.0.0.1:8080/a/data.bin)"
    );
}

#[test]
fn tab_separated_urls_are_mirrors_of_one_file() {
    // An empty field (two TABs) is skipped and a repeated mirror kept once;
    // trailing TABs are trimmed like trailing spaces.
    let text = format!(
        "http://a/f.bin\thttp://b/x/other.bin\t\thttp://c/f.bin\thttp://b/x/other.bin\t\n  checksum=sha-256={HEX}\n"
    );
    let entries = parse(&text);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].url.as_str(), "http://a/f.bin");
    let mirrors: Vec<&str> = entries[0].mirrors.iter().map(url::Url::as_str).collect();
    assert_eq!(mirrors, ["http://b/x/other.bin", "http://c/f.bin"]);
    assert!(entries[0].checksum.is_some());

    let jobs = plan(entries).expect("plans");
    // The name comes from the first URL.
    assert_eq!(jobs[0].path.as_str(), "f.bin");
    assert_eq!(jobs[0].mirrors.len(), 2);
}

#[test]
fn duplicates_key_on_the_first_url_of_a_line() {
    // Same first URL, different mirrors: one job, the first line's.
    let plan = plan_with_duplicates(parse("http://a/f\thttp://b/f\nhttp://a/f\thttp://c/f\n"))
        .expect("plans");
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].mirrors[0].as_str(), "http://b/f");
    assert_eq!(plan.duplicates.len(), 1);
    // A URL that is only a mirror elsewhere is a file of its own.
    let jobs = super::plan(parse("http://a/f\thttp://b/g\nhttp://b/g\n  out=g2\n")).expect("plans");
    assert_eq!(jobs.len(), 2);
}

mod properties {
    //! Any text is parsed or refused with its line, and what parses plans
    //! into paths under the output directory, never a panic.
    use super::*;
    use proptest::prelude::*;

    /// Text made of list lines: an optional indent, a URL scheme or option
    /// name, then pieces that make trouble (credentials, traversal, odd
    /// characters). Few lines, as the parser stops at the first bad one.
    fn list_like() -> impl Strategy<Value = String> {
        let indent = prop_oneof![Just(""), Just("  "), Just("\t")];
        let head = prop_oneof![
            Just("http://"),
            Just("https://"),
            Just("ftp://"),
            Just("out="),
            Just("dir="),
            Just("checksum=sha-256="),
            Just("header="),
            Just("#"),
            Just(""),
        ];
        let piece = prop_oneof![
            Just("user:pw@".to_owned()),
            Just("@".to_owned()),
            Just("/".to_owned()),
            Just(":".to_owned()),
            Just("=".to_owned()),
            Just(" ".to_owned()),
            Just("X-A: ".to_owned()),
            Just("Range: ".to_owned()),
            Just("../".to_owned()),
            Just("%2e%2e%2f".to_owned()),
            Just(HEX.to_owned()),
            "[a-z0-9.-]{1,6}",
            any::<char>().prop_map(String::from),
        ];
        let line = (indent, head, prop::collection::vec(piece, 0..6))
            .prop_map(|(indent, head, body)| format!("{indent}{head}{}", body.concat()));
        let end = prop_oneof![Just("\n"), Just("\r\n")];
        (any::<bool>(), prop::collection::vec((line, end), 0..8)).prop_map(|(bom, lines)| {
            let mut text = if bom { "\u{feff}" } else { "" }.to_owned();
            for (line, end) in lines {
                text.push_str(&line);
                text.push_str(end);
            }
            text
        })
    }

    proptest! {
        #[test]
        fn any_text_parses_or_names_its_line(text in prop_oneof![list_like(), any::<String>()]) {
            let lines = text.split('\n').count();
            match parse_list(&text, "urls.txt") {
                Ok(entries) => {
                    let count = entries.len();
                    if let Ok(plan) = plan_with_duplicates(entries) {
                        prop_assert_eq!(plan.jobs.len() + plan.duplicates.len(), count);
                        let root = std::path::Path::new("/out");
                        for job in &plan.jobs {
                            prop_assert!(job.path.to_path(root).starts_with(root));
                        }
                    }
                }
                Err(e) => {
                    let line = e.origin().line;
                    prop_assert!((1..=lines).contains(&line), "line {} of {}", line, lines);
                    let prefix = format!("urls.txt:{line}: ");
                    prop_assert!(e.to_string().starts_with(&prefix), "{}", e);
                }
            }
        }

    }
}

thread_local! {
    /// Set by a test to give every key one hash: each lookup then meets
    /// another key's hash, as two keys of a huge list might.
    pub(super) static COLLIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every key hashed alike (see `COLLIDE`).
fn colliding<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            COLLIDE.set(false);
        }
    }
    COLLIDE.set(true);
    let _reset = Reset;
    f()
}

#[test]
fn keys_with_one_hash_are_never_merged() {
    let text =
        "http://h/a\nhttp://h/b\nhttp://h/c/d\nhttp://h/e\n  dir=c\nhttp://h/f\n  out=c/g/h\n";
    let planned = colliding(|| plan_with_duplicates(parse(text))).expect("plans");
    assert_eq!(paths(&planned.jobs), ["a", "b", "d", "c/e", "c/g/h"]);
    assert!(planned.duplicates.is_empty());

    // Every key after the first went to the exact overflow maps.
    let jobs = plan(parse(text)).expect("plans");
    let mut check = Check::default();
    colliding(|| {
        for (at, job) in jobs.iter().enumerate() {
            let admitted = check.admit(
                at as u64,
                &job.url,
                &job.path,
                &job.origin,
                &mut InMemory(&jobs),
            );
            assert!(matches!(admitted, Ok(Admit::Keep)));
        }
    });
    assert_eq!(check.by_url.hashed.len(), 1);
    assert_eq!(check.by_url.overflow.len(), 4);
    assert_eq!(check.by_path.overflow.len(), 4);
    // `c` and `c/g`: one hashed, one in the overflow.
    assert_eq!(check.dirs.hashed.len() + check.dirs.overflow.len(), 2);
}

#[test]
fn duplicates_and_conflicts_are_still_caught_when_every_key_has_one_hash() {
    colliding(|| {
        plan_keeps_the_first_of_a_repeated_url();
        plan_still_checks_the_path_of_a_dropped_duplicate();
        plan_rejects_two_urls_for_one_path();
        plan_rejects_a_file_that_is_another_jobs_directory();
        url_derived_names_are_sanitised_never_traversing();
        fixture_good_list_plans_four_jobs();
        fixture_conflict_list_fails_to_plan();
        duplicates_key_on_the_first_url_of_a_line();
    });
    // A key found only in the overflow map is still a duplicate or a conflict.
    let dup = "http://h/a\nhttp://h/b\nhttp://h/b#x\n  out=other\n";
    let planned = colliding(|| plan_with_duplicates(parse(dup))).expect("plans");
    assert_eq!(paths(&planned.jobs), ["a", "b"]);
    assert_eq!(planned.duplicates[0].kept.line, 2);
    let conflict = "http://h/a\nhttp://h/1/b\nhttp://h/2/b\n";
    assert_eq!(
        colliding(|| plan_err(conflict)),
        "urls.txt:3: output path 'b' is already used by urls.txt:2 (http://h/1/b)"
    );
    let prefix = "http://h/a\nhttp://h/b\nhttp://h/x\n  out=b/c\n";
    assert_eq!(
        colliding(|| plan_err(prefix)),
        "urls.txt:3: output path 'b/c' and 'b' from urls.txt:2 (http://h/b) would need 'b' to be both a file and a directory"
    );
}
