//! Tests for the list parser, including the fixtures (the planner's are in
//! `plan/tests.rs`).

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
fn header_values_may_hold_non_ascii_text() {
    // RFC 9110 §5.5 allows obs-text; the http crate accepts it too.
    let entries = parse("http://h/a\n  header=X-Name: caf\u{e9}\n");
    assert_eq!(entries[0].headers[0].1, "caf\u{e9}");
}

mod properties {
    //! Properties over generated lists: a generated valid list reads back as
    //! written (any text is tried in `plan/tests.rs`, through the planner).
    use super::*;
    use proptest::prelude::*;

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
fn a_line_without_tabs_has_no_mirrors() {
    assert!(parse("http://a/f\n")[0].mirrors.is_empty());
}

#[test]
fn command_line_urls_may_carry_tab_separated_mirrors() {
    let entries = entries_from_args(&["http://a/f\thttp://b/f".to_string()]).expect("parses");
    assert_eq!(entries[0].mirrors.len(), 1);
}

#[test]
fn the_reader_yields_what_parse_list_does_with_each_url_lines_offset() {
    let text = "\u{feff}# c\r\nhttp://h/a\r\n  out=x\n\nhttp://h/b\thttp://m/b\nhttp://h/c";
    let read: Vec<(u64, ListEntry)> = ListReader::new(text.as_bytes(), "urls.txt", 0)
        .collect::<Result<_, _>>()
        .expect("reads");
    let offsets: Vec<u64> = read.iter().map(|(at, _)| *at).collect();
    let starts: Vec<u64> = ["http://h/a", "http://h/b", "http://h/c"]
        .iter()
        .map(|url| text.find(url).expect("listed") as u64)
        .collect();
    assert_eq!(offsets, starts);
    let entries: Vec<ListEntry> = read.into_iter().map(|(_, entry)| entry).collect();
    assert_eq!(entries, parse(text));

    // From an entry's offset, the reader finds that entry again.
    let (_, again) = ListReader::new(
        &text.as_bytes()[starts[0] as usize..],
        "urls.txt",
        starts[0],
    )
    .next()
    .expect("an entry")
    .expect("reads");
    assert_eq!(again.out.as_deref(), Some("x"));

    let err = ListReader::new(&b"http://h/a\n  bad\n"[..], "urls.txt", 0)
        .find_map(Result::err)
        .expect("an error");
    assert_eq!(
        err.to_string(),
        "urls.txt:2: option line is not name=value (e.g. out=file.bin)"
    );
    let mut bad = ListReader::new(&b"http://h/a\n\xff\n"[..], "urls.txt", 0);
    assert!(matches!(bad.next(), Some(Err(ReadError::Io(_)))));
    assert!(bad.next().is_none());
}
