//! Tests for the list parser and the planner, including the fixtures.

use super::*;

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
fn parses_urls_comments_blank_lines_and_options() {
    let text = format!(
        "# a comment\n\
         \n\
         http://h/a.bin\n\
         \x20 # an indented comment\n\
         https://h/b.bin\n\
         \x20 out=x/y.bin\n\
         \tdir=sub\n\
         \x20 checksum=sha-256={HEX}\n\
         \x20 header=X-One: 1\n\
         \x20 header=X-Two:  two words  \n\
         \n\
         http://h/c/\n"
    );
    let entries = parse(&text);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].url.as_str(), "http://h/a.bin");
    assert_eq!(entries[0].origin.to_string(), "urls.txt:3");
    let b = &entries[1];
    assert_eq!(b.origin.line, 5);
    assert_eq!(b.out.as_deref(), Some("x/y.bin"));
    assert_eq!(b.dir.as_deref(), Some("sub"));
    assert_eq!(b.checksum.map(hex::encode).as_deref(), Some(HEX));
    assert_eq!(
        b.headers,
        [
            ("X-One".to_owned(), "1".to_owned()),
            ("X-Two".to_owned(), "two words".to_owned())
        ]
    );
    assert_eq!(entries[2].origin.line, 12);
    assert_eq!(entries[2].out, None);
}

#[test]
fn accepts_crlf_line_endings_and_a_bom() {
    let text = format!("\u{feff}# c\r\nhttp://h/a\r\n  out=b.bin\r\n  checksum=SHA256={HEX}\r\n");
    let entries = parse(&text);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].url.as_str(), "http://h/a");
    assert_eq!(entries[0].out.as_deref(), Some("b.bin"));
    assert!(entries[0].checksum.is_some());
}

#[test]
fn option_order_does_not_matter() {
    let one = parse("http://h/a\n  out=o\n  dir=d\n  header=A: 1\n");
    let two = parse("http://h/a\n  header=A: 1\n  dir=d\n  out=o\n");
    assert_eq!(plan(one).expect("plans"), plan(two).expect("plans"));
}

#[test]
fn option_values_may_contain_equals() {
    let entries = parse("http://h/a\n  out=a=b.bin\n  header=Cookie: k=v; j=w\n");
    assert_eq!(entries[0].out.as_deref(), Some("a=b.bin"));
    assert_eq!(entries[0].headers[0], ("Cookie".into(), "k=v; j=w".into()));
}

#[test]
fn blanks_around_option_names_and_values_are_dropped_as_aria2_drops_them() {
    let text = format!(
        "http://h/a\n  out= x.dat\n  dir =\tsub \n  checksum = sha-256 = {HEX} \t\n  \
         header = X-Token :  abc \n"
    );
    let entries = parse(&text);
    let a = &entries[0];
    assert_eq!(a.out.as_deref(), Some("x.dat"));
    assert_eq!(a.dir.as_deref(), Some("sub"));
    assert_eq!(a.checksum.map(hex::encode).as_deref(), Some(HEX));
    assert_eq!(a.headers, [("X-Token".to_owned(), "abc".to_owned())]);
    // Blanks inside a value are the user's.
    let entries = parse("http://h/a\n  out = a b.dat \n");
    assert_eq!(entries[0].out.as_deref(), Some("a b.dat"));
    assert_eq!(
        parse_err("http://h/a\n  out =  \n"),
        "urls.txt:2: out '' is empty"
    );
}

#[test]
fn checksum_type_is_case_insensitive() {
    for kind in ["sha-256", "SHA-256", "sha256", "Sha256"] {
        let entries = parse(&format!(
            "http://h/a\n  checksum={kind}={}\n",
            HEX.to_uppercase()
        ));
        assert_eq!(entries[0].checksum.map(hex::encode).as_deref(), Some(HEX));
    }
}

#[test]
fn reports_each_list_error_with_file_and_line() {
    let cases = [
        ("  out=a\nhttp://h/a\n", "urls.txt:1: option line before any URL (option lines are indented and belong to the URL above them)"),
        ("http://h/a\n\nftp://h/b\n", "urls.txt:3: unsupported scheme 'ftp' in URL 'ftp://h/b' (haul downloads http and https)"),
        ("file:///etc/passwd\n", "urls.txt:1: unsupported scheme 'file' in URL 'file:///etc/passwd' (haul downloads http and https)"),
        ("http://h/a\thttp://m/a b\n", "urls.txt:1: URL line contains a space (write a space in a URL as %20; separate mirror URLs with a TAB)"),
        ("http://h/a\tftp://m/a\n", "urls.txt:1: unsupported scheme 'ftp' in URL 'ftp://m/a' (haul downloads http and https)"),
        ("http://h/a b\n", "urls.txt:1: URL line contains a space (write a space in a URL as %20; separate mirror URLs with a TAB)"),
        ("http://h/a\rb\n", "urls.txt:1: URL line contains a control character"),
        ("# c\nnot a url\n", "urls.txt:2: URL line contains a space (write a space in a URL as %20; separate mirror URLs with a TAB)"),
        ("example.com/file\n", "urls.txt:1: invalid URL 'example.com/file'"),
        ("http://h:99999/\n", "urls.txt:1: invalid URL 'http://h:99999/'"),
        ("http://h/a\n  out\n", "urls.txt:2: option line is not name=value (e.g. out=file.bin)"),
        ("http://h/a\n  split=4\n", "urls.txt:2: unknown option 'split' (haul knows out, dir, checksum and header)"),
        ("http://h/a\n  OUT=x\n", "urls.txt:2: unknown option 'OUT' (haul knows out, dir, checksum and header)"),
        ("http://h/a\n  out=x\n  out=y\n", "urls.txt:3: option 'out' given twice for one URL (first on line 2)"),
        ("http://h/a\n  dir=x\n\n  dir=y\n", "urls.txt:4: option 'dir' given twice for one URL (first on line 2)"),
        (&format!("http://h/a\n  checksum=sha-256={HEX}\n  checksum=sha-256={HEX}\n"), "urls.txt:3: option 'checksum' given twice for one URL (first on line 2)"),
        ("http://h/a\n  checksum=abc\n", "urls.txt:2: checksum must be TYPE=DIGEST, e.g. checksum=sha-256=<64 hex digits>"),
        ("http://h/a\n  checksum=md5=0123\n", "urls.txt:2: unsupported checksum type 'md5' (haul checks sha-256)"),
        ("http://h/a\n  checksum=sha-1=0123\n", "urls.txt:2: unsupported checksum type 'sha-1' (haul checks sha-256)"),
        ("http://h/a\n  checksum=sha-256=abc\n", "urls.txt:2: sha-256 digest 'abc' is not 64 hex digits"),
        (&format!("http://h/a\n  checksum=sha-256={HEX}00\n"), &format!("urls.txt:2: sha-256 digest '{HEX}00' is not 64 hex digits")),
        (&format!("http://h/a\n  checksum=sha-256={}zz\n", &HEX[..62]), &format!("urls.txt:2: sha-256 digest '{}zz' is not 64 hex digits", &HEX[..62])),
        ("http://h/a\n  header=NoColon\n", "urls.txt:2: header must be 'Name: value', e.g. header=Accept-Language: en"),
        ("http://h/a\n  header=Bad Name: v\n", "urls.txt:2: invalid HTTP header name 'Bad Name'"),
        ("http://h/a\n  header=: v\n", "urls.txt:2: invalid HTTP header name ''"),
        ("http://h/a\n  header=X-A: a\u{1}b\n", "urls.txt:2: invalid value for HTTP header 'X-A' (control characters are not allowed)"),
        ("http://h/a\n  header=X-A: a\u{7f}b\n", "urls.txt:2: invalid value for HTTP header 'X-A' (control characters are not allowed)"),
        ("http://h/a\n  header=Range: bytes=0-1\n", "urls.txt:2: header 'Range' is managed by haul and cannot be set in a list"),
        ("http://h/a\n  header=accept-encoding: gzip\n", "urls.txt:2: header 'accept-encoding' is managed by haul and cannot be set in a list"),
    ];
    for (text, want) in cases {
        assert_eq!(parse_err(text), want, "for {text:?}");
    }
}

#[test]
fn invalid_url_keeps_the_parser_error_as_its_source() {
    let err = parse_list("http://h:99999/\n", "urls.txt").expect_err("bad port");
    let source = std::error::Error::source(&err).map(|s| s.to_string());
    assert_eq!(source.as_deref(), Some("invalid port number"));
    assert_eq!(err.origin().line, 1);
}

#[test]
fn rejects_traversal_in_out_and_dir_on_the_option_line() {
    let cases = [
        ("http://h/a\n  out=../x\n", "urls.txt:2: out '../x' contains a '..' component"),
        ("http://h/a\n  out=/etc/passwd\n", "urls.txt:2: out '/etc/passwd' is an absolute path (it must be relative to the output directory)"),
        ("http://h/a\n  dir=a/../../b\n", "urls.txt:2: dir 'a/../../b' contains a '..' component"),
        ("http://h/a\n  dir=/tmp\n", "urls.txt:2: dir '/tmp' is an absolute path (it must be relative to the output directory)"),
        ("http://h/a\n  out=\n", "urls.txt:2: out '' is empty"),
        ("http://h/a\n  out=d/\n", "urls.txt:2: out 'd/' does not end in a file name"),
        ("http://h/a\n  out=a\\b\n", "urls.txt:2: out 'a\\\\b' contains a backslash"),
    ];
    for (text, want) in cases {
        assert_eq!(parse_err(text), want, "for {text:?}");
    }
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
fn entries_from_args_number_positions() {
    let urls = ["http://h/a".to_owned(), "https://h/b".to_owned()];
    let entries = entries_from_args(&urls).expect("valid");
    assert_eq!(entries[1].origin.to_string(), "command line:2");
    assert_eq!(entries[1].url.as_str(), "https://h/b");

    let bad = ["http://h/a".to_owned(), "ftp://h/b".to_owned()];
    let err = entries_from_args(&bad).expect_err("ftp");
    assert_eq!(
        err.to_string(),
        "command line:2: unsupported scheme 'ftp' in URL 'ftp://h/b' (haul downloads http and https)"
    );
}

#[test]
fn stdin_source_is_named_in_errors() {
    let err = parse_list("ftp://h/\n", "<stdin>").expect_err("ftp");
    assert!(err.to_string().starts_with("<stdin>:1: "), "{err}");
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

#[test]
fn redact_text_handles_unparsable_urls() {
    let cases = [
        ("http://u:p@h:99999/a@b", "http://***@h:99999/a@b"),
        ("http://h/a@b", "http://h/a@b"),
        ("no scheme@all", "no scheme@all"),
        ("http://a@b@h/", "http://***@h/"),
    ];
    for (input, want) in cases {
        assert_eq!(redact_text(input), want);
    }
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
fn fixture_bad_lists_fail_where_the_readme_says() {
    let cases = [
        (
            "bad-option.txt",
            include_str!("../../fixtures/lists/bad-option.txt"),
            "bad-option.txt:4: unknown option 'max-connection-per-server' (haul knows out, dir, checksum and header)",
        ),
        (
            "bad-checksum.txt",
            include_str!("../../fixtures/lists/bad-checksum.txt"),
            "bad-checksum.txt:3: unsupported checksum type 'md5' (haul checks sha-256)",
        ),
        (
            "bad-scheme.txt",
            include_str!("../../fixtures/lists/bad-scheme.txt"),
            "bad-scheme.txt:3: unsupported scheme 'ftp' in URL 'ftp://127.0.0.1/pub/file.iso' (haul downloads http and https)",
        ),
        (
            "traversal.txt",
            include_str!("../../fixtures/lists/traversal.txt"),
            "traversal.txt:6: out '../escape.bin' contains a '..' component",
        ),
    ];
    for (name, text, want) in cases {
        let err = parse_list(&fixture(text), name).expect_err(name);
        assert_eq!(err.to_string(), want);
    }
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
fn header_values_may_hold_non_ascii_text() {
    // RFC 9110 §5.5 allows obs-text; the http crate accepts it too.
    let entries = parse("http://h/a\n  header=X-Name: caf\u{e9}\n");
    assert_eq!(entries[0].headers[0].1, "caf\u{e9}");
}

mod properties {
    //! Properties over generated lists: any text is parsed or refused with
    //! its line, never a panic; a generated valid list reads back as written.
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

    /// One option line of a generated entry.
    #[derive(Clone, Debug)]
    enum Opt {
        Out(String),
        Dir(String),
        /// Digest, type as written, digits in upper case.
        Checksum([u8; 32], &'static str, bool),
        Header(String, String),
    }

    impl Opt {
        fn render(&self) -> String {
            match self {
                Opt::Out(out) => format!("out={out}"),
                Opt::Dir(dir) => format!("dir={dir}"),
                Opt::Checksum(digest, kind, upper) => {
                    let hex = hex::encode(digest);
                    let hex = if *upper { hex.to_uppercase() } else { hex };
                    format!("checksum={kind}={hex}")
                }
                Opt::Header(name, value) => format!("header={name}: {value}"),
            }
        }
    }

    /// A path component a user may write that no line trimming changes.
    const COMPONENT: &str = "[A-Za-z0-9_-]([A-Za-z0-9 ._=#-]{0,10}[A-Za-z0-9_-])?";

    fn user_path() -> impl Strategy<Value = String> {
        prop::collection::vec(COMPONENT, 1..4).prop_map(|parts| parts.join("/"))
    }

    fn url_text() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("http"), Just("https")],
            proptest::option::of("[a-z]{1,5}(:[a-z0-9]{1,5})?@"),
            "[a-z]{1,8}(\\.[a-z]{2,4}){0,2}",
            proptest::option::of(1u16..),
            prop::collection::vec("[A-Za-z0-9._~-]{0,8}|%[0-9A-F]{2}", 0..4),
            proptest::option::of("[a-z0-9=&]{0,10}"),
            proptest::option::of("[a-z]{0,5}"),
        )
            .prop_map(|(scheme, user, host, port, segments, query, fragment)| {
                let mut text = format!("{scheme}://{}{host}", user.unwrap_or_default());
                if let Some(port) = port {
                    text.push_str(&format!(":{port}"));
                }
                text.push('/');
                text.push_str(&segments.join("/"));
                if let Some(query) = query {
                    text.push_str(&format!("?{query}"));
                }
                if let Some(fragment) = fragment {
                    text.push_str(&format!("#{fragment}"));
                }
                text
            })
    }

    fn header() -> impl Strategy<Value = Opt> {
        (
            "[A-Za-z][A-Za-z0-9-]{0,12}".prop_filter("haul's own headers are refused", |name| {
                !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
            }),
            "[ -~\t]{0,20}",
        )
            .prop_map(|(name, value)| Opt::Header(name, value))
    }

    /// A URL with its option lines, in a shuffled order.
    fn entry() -> impl Strategy<Value = (String, Vec<Opt>)> {
        (
            url_text(),
            proptest::option::of(user_path().prop_map(Opt::Out)),
            proptest::option::of(user_path().prop_map(Opt::Dir)),
            proptest::option::of(
                (
                    any::<[u8; 32]>(),
                    prop_oneof![Just("sha-256"), Just("SHA-256"), Just("sha256")],
                    any::<bool>(),
                )
                    .prop_map(|(digest, kind, upper)| Opt::Checksum(digest, kind, upper)),
            ),
            prop::collection::vec(header(), 0..3),
        )
            .prop_flat_map(|(url, out, dir, checksum, headers)| {
                let opts: Vec<Opt> = [out, dir, checksum]
                    .into_iter()
                    .flatten()
                    .chain(headers)
                    .collect();
                (Just(url), Just(opts).prop_shuffle())
            })
    }

    /// How the generated list is laid out; none of it changes the meaning.
    #[derive(Clone, Debug)]
    struct Layout {
        bom: bool,
        crlf: bool,
        comments: bool,
        final_newline: bool,
        indent: &'static str,
    }

    fn layout() -> impl Strategy<Value = Layout> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(" "), Just("  "), Just("\t"), Just(" \t ")],
        )
            .prop_map(|(bom, crlf, comments, final_newline, indent)| Layout {
                bom,
                crlf,
                comments,
                final_newline,
                indent,
            })
    }

    /// The list text and the line each URL is on.
    fn render(entries: &[(String, Vec<Opt>)], layout: &Layout) -> (String, Vec<usize>) {
        let mut lines: Vec<String> = Vec::new();
        let mut url_lines = Vec::new();
        for (url, opts) in entries {
            if layout.comments {
                lines.push("# next URL".to_owned());
                lines.push(String::new());
            }
            lines.push(url.clone());
            url_lines.push(lines.len());
            for opt in opts {
                lines.push(format!("{}{}", layout.indent, opt.render()));
                if layout.comments {
                    lines.push(format!("{}# about the option above", layout.indent));
                }
            }
        }
        let end = if layout.crlf { "\r\n" } else { "\n" };
        let mut text = if layout.bom { "\u{feff}" } else { "" }.to_owned();
        text.push_str(&lines.join(end));
        if layout.final_newline {
            text.push_str(end);
        }
        (text, url_lines)
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

        #[test]
        fn a_generated_list_reads_back_as_written(
            entries in prop::collection::vec(entry(), 0..5),
            layout in layout(),
        ) {
            let (text, url_lines) = render(&entries, &layout);
            let parsed = parse_list(&text, "urls.txt")
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
            prop_assert_eq!(parsed.len(), entries.len());
            for ((parsed, (url, opts)), line) in parsed.iter().zip(&entries).zip(url_lines) {
                prop_assert_eq!(&parsed.url, &url::Url::parse(url).expect("generated URL"));
                prop_assert_eq!(parsed.origin.line, line);
                let mut headers = Vec::new();
                let (mut out, mut dir, mut checksum) = (None, None, None);
                for opt in opts {
                    match opt {
                        Opt::Out(v) => out = Some(v.clone()),
                        Opt::Dir(v) => dir = Some(v.clone()),
                        Opt::Checksum(digest, _, _) => checksum = Some(*digest),
                        Opt::Header(name, value) => headers
                            .push((name.clone(), value.trim_matches([' ', '\t']).to_owned())),
                    }
                }
                prop_assert_eq!(&parsed.out, &out);
                prop_assert_eq!(&parsed.dir, &dir);
                prop_assert_eq!(parsed.checksum, checksum);
                prop_assert_eq!(&parsed.headers, &headers);
            }
        }
    }
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
fn a_line_without_tabs_has_no_mirrors() {
    assert!(parse("http://a/f\n")[0].mirrors.is_empty());
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

#[test]
fn command_line_urls_may_carry_tab_separated_mirrors() {
    let entries = entries_from_args(&["http://a/f\thttp://b/f".to_string()]).expect("parses");
    assert_eq!(entries[0].mirrors.len(), 1);
}
