//! sha256sum-format checksum files: `--checksums FILE` in, `--write-sums`
//! and `haul verify` text out.
//!
//! Three line forms are read, the ones `sha256sum` and `shasum` write:
//! `HEX  name` (text mode), `HEX *name` (binary mode; the same bytes on every
//! system haul runs on) and the BSD tag form `SHA256 (name) = HEX`
//! (`sha256sum --tag`, `shasum -a 256 --tag`). A line that starts with `\`
//! holds an escaped name (`\\`, `\n`, `\r`), as GNU sha256sum writes for
//! names with a backslash or a line break; [`format_sums`] escapes the same
//! way. Names become [`RelPath`]s, so a sums file cannot point outside the
//! output directory. Blank lines and `#` comments are ignored; errors start
//! with `FILE:LINE: `. This module parses and renders text, and reads a
//! sums file in two streaming passes ([`check_sums_file`]): hashing and
//! writing files is the verifier's job.

use std::collections::HashMap;
use std::sync::Arc;

use crate::list::Origin;
use crate::naming::{NameError, RelPath};

mod file;

pub use file::{check as check_sums_file, CheckedSums, SumsFileError};

/// One checked line of a sums file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumEntry {
    /// The file, relative to the directory the sums file describes.
    pub path: RelPath,
    /// Its expected sha256.
    pub sha256: [u8; 32],
    /// 1-based line in the sums file.
    pub line: usize,
}

/// A sums file that cannot be used. Every message starts with `FILE:LINE: `.
#[derive(Debug, thiserror::Error)]
pub enum SumsError {
    #[error("{origin}: not a sha256sum line (expected '<64 hex digits>  NAME')")]
    Malformed { origin: Origin },
    #[error("{origin}: digest has {digits} hex digits; sha-256 needs 64")]
    DigestLength { origin: Origin, digits: usize },
    #[error("{origin}: expected two spaces or ' *' between the digest and the name")]
    Separator { origin: Origin },
    #[error("{origin}: bad escape in an escaped file name (only \\\\, \\n and \\r are allowed)")]
    Escape { origin: Origin },
    #[error("{origin}: a BSD-style line for {algorithm}, not SHA256")]
    Algorithm { origin: Origin, algorithm: String },
    #[error("{origin}: not a BSD-style sha256 line (expected 'SHA256 (NAME) = <64 hex digits>')")]
    MalformedTag { origin: Origin },
    #[error("{origin}: {error}")]
    Name { origin: Origin, error: NameError },
    #[error("{origin}: '{path}' already has a different digest on line {first}")]
    Conflict {
        origin: Origin,
        path: RelPath,
        first: usize,
    },
}

impl SumsError {
    /// Where the problem is.
    pub fn origin(&self) -> &Origin {
        match self {
            SumsError::Malformed { origin }
            | SumsError::DigestLength { origin, .. }
            | SumsError::Separator { origin }
            | SumsError::Escape { origin }
            | SumsError::Algorithm { origin, .. }
            | SumsError::MalformedTag { origin }
            | SumsError::Name { origin, .. }
            | SumsError::Conflict { origin, .. } => origin,
        }
    }
}

/// Parses a sha256sum-format file; `source` names it in errors. A leading
/// `./` on a name is dropped (what `sha256sum ./*` writes). The same path
/// twice with the same digest is kept once; with different digests it is an
/// error. Stops at the first error.
pub fn parse_sums(text: &str, source: &str) -> Result<Vec<SumEntry>, SumsError> {
    let source: Arc<str> = Arc::from(source);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<SumEntry> = Vec::new();
    let mut seen: HashMap<RelPath, usize> = HashMap::new();

    for (index, raw) in text.split('\n').enumerate() {
        let origin = Origin {
            source: Arc::clone(&source),
            line: index + 1,
        };
        let Some(entry) = parse_text_line(raw, origin.clone())? else {
            continue;
        };
        match seen.get(&entry.path) {
            Some(&at) if entries[at].sha256 == entry.sha256 => {}
            Some(&at) => {
                return Err(SumsError::Conflict {
                    origin,
                    path: entry.path,
                    first: entries[at].line,
                })
            }
            None => {
                seen.insert(entry.path.clone(), entries.len());
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

/// One line of a sums file, without its `\n`: its entry, or None for a
/// blank line or a comment.
fn parse_text_line(raw: &str, origin: Origin) -> Result<Option<SumEntry>, SumsError> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    let content = line.trim_start_matches([' ', '\t']);
    if content.trim_end().is_empty() || content.starts_with('#') {
        return Ok(None);
    }
    parse_line(line, origin).map(Some)
}

fn parse_line(line: &str, origin: Origin) -> Result<SumEntry, SumsError> {
    // GNU sha256sum marks a line whose name it escaped with a leading '\'.
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (digest, name) = match tag_algorithm(line) {
        Some((algorithm, rest)) => split_tag(algorithm, rest, &origin)?,
        None => split_gnu(line, &origin)?,
    };
    let mut sha256 = [0u8; 32];
    if hex::decode_to_slice(digest, &mut sha256).is_err() {
        return Err(SumsError::Malformed { origin });
    }
    let unescaped;
    let mut name = if escaped {
        unescaped = unescape(name).ok_or_else(|| SumsError::Escape {
            origin: origin.clone(),
        })?;
        unescaped.as_str()
    } else {
        name
    };
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    let path = RelPath::parse(name).map_err(|error| SumsError::Name {
        origin: origin.clone(),
        error,
    })?;
    Ok(SumEntry {
        path,
        sha256,
        line: origin.line,
    })
}

/// Splits a GNU line, `HEX  name` or `HEX *name`, into digest and name.
fn split_gnu<'a>(line: &'a str, origin: &Origin) -> Result<(&'a str, &'a str), SumsError> {
    let origin = origin.clone();
    let digits = line.bytes().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 {
        return Err(SumsError::Malformed { origin });
    }
    if digits != 64 {
        return Err(SumsError::DigestLength { origin, digits });
    }
    // 64 ASCII bytes, so slicing here is on a char boundary.
    let (digest, rest) = line.split_at(64);
    match rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *")) {
        Some(name) => Ok((digest, name)),
        None if rest.is_empty() || rest.starts_with([' ', '\t']) => {
            Err(SumsError::Separator { origin })
        }
        // Hex digits run on into other text: not a digest at all.
        None => Err(SumsError::Malformed { origin }),
    }
}

/// If `line` opens like a BSD tag line (`ALGO (` or `ALGO(`), the algorithm
/// name and what follows the parenthesis. The name must hold a character
/// that is not a hex digit, so a GNU line is never taken for one.
fn tag_algorithm(line: &str) -> Option<(&str, &str)> {
    let len = line
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
        .count();
    let (algorithm, rest) = line.split_at(len);
    if algorithm.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    rest.strip_prefix('(').map(|rest| (algorithm, rest))
}

/// Splits what follows `SHA256 (` into digest and name. The name ends at the
/// last ')' of the line, as in coreutils: a digest holds none, a name may.
fn split_tag<'a>(
    algorithm: &str,
    rest: &'a str,
    origin: &Origin,
) -> Result<(&'a str, &'a str), SumsError> {
    let origin = origin.clone();
    if algorithm != "SHA256" {
        return Err(SumsError::Algorithm {
            origin,
            algorithm: algorithm.to_owned(),
        });
    }
    let Some(close) = rest.rfind(')') else {
        return Err(SumsError::MalformedTag { origin });
    };
    let (name, after) = (&rest[..close], &rest[close + 1..]);
    let Some(digest) = after.trim_start_matches([' ', '\t']).strip_prefix('=') else {
        return Err(SumsError::MalformedTag { origin });
    };
    let digest = digest.trim_start_matches([' ', '\t']);
    if !digest.bytes().all(|b| b.is_ascii_hexdigit()) || digest.is_empty() {
        return Err(SumsError::MalformedTag { origin });
    }
    if digest.len() != 64 {
        return Err(SumsError::DigestLength {
            origin,
            digits: digest.len(),
        });
    }
    Ok((digest, name))
}

/// Undoes sha256sum's name escaping; None for any escape it never writes.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// Renders entries in sha256sum text format, one `hex  path` line each, in
/// the order given; the result is what `sha256sum -c` (run in the output
/// directory) and [`parse_sums`] read back. A name with a backslash or a
/// line break would be escaped as sha256sum does; a [`RelPath`] holds none
/// today, so in practice no line is.
pub fn format_sums<'a, I>(entries: I) -> String
where
    I: IntoIterator<Item = (&'a RelPath, &'a [u8; 32])>,
{
    let mut out = String::new();
    for (path, sha256) in entries {
        push_line(&mut out, path.as_str(), sha256);
    }
    out
}

/// Appends one text-mode line, escaped the way GNU sha256sum escapes.
pub(crate) fn push_line(out: &mut String, name: &str, sha256: &[u8; 32]) {
    let escape = name.contains(['\\', '\n', '\r']);
    if escape {
        out.push('\\');
    }
    out.push_str(&hex::encode(sha256));
    out.push_str("  ");
    if escape {
        for c in name.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    } else {
        out.push_str(name);
    }
    out.push('\n');
}

/// The BSD tag form and escaped names, beside the line-by-line tests.
#[cfg(test)]
mod tag_and_escape_tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_sums(text, "SUMS")
            .expect("valid")
            .into_iter()
            .map(|e| (e.path.to_string(), hex::encode(e.sha256)))
            .collect()
    }

    #[test]
    fn reads_bsd_tag_lines_as_sha256sum_and_shasum_write_them() {
        let text = format!(
            "SHA256 (a.txt) = {A}\nSHA256(sub/b c) = {A}\r\nSHA256 (x) = y) =  {}\n",
            A.to_uppercase()
        );
        let want = ["a.txt", "sub/b c", "x) = y"].map(|p| (p.to_string(), A.to_string()));
        assert_eq!(pairs(&text), want);
    }

    #[test]
    fn reads_escaped_names_and_mixes_forms() {
        // What `sha256sum` and `sha256sum --tag` write for a name with a
        // backslash: haul decodes it, then refuses the backslash by name.
        for line in [format!("\\{A}  a\\\\b"), format!("\\SHA256 (a\\\\b) = {A}")] {
            let err = parse_sums(&line, "SUMS").expect_err("backslash");
            assert_eq!(
                err.to_string(),
                "SUMS:1: path 'a\\\\b' contains a backslash"
            );
        }
        let err = parse_sums(&format!("\\{A}  n\\nl"), "SUMS").expect_err("newline");
        assert_eq!(
            err.to_string(),
            "SUMS:1: path 'n\\nl' contains a control character"
        );
        // An escaped line whose name needs no escape still reads.
        let text = format!("\\{A}  plain\nSHA256 (tagged) = {A}\n{A} *bin\n");
        let got: Vec<String> = pairs(&text).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, ["plain", "tagged", "bin"]);
    }

    #[test]
    fn escapes_names_as_sha256sum_does() {
        let digest = [0xab; 32];
        let mut out = String::new();
        push_line(&mut out, "a\\b\nc\rd", &digest);
        assert_eq!(out, format!("\\{}  a\\\\b\\nc\\rd\n", "ab".repeat(32)));
        let name = out[1 + 64 + 2..out.len() - 1].to_string();
        assert_eq!(unescape(&name).as_deref(), Some("a\\b\nc\rd"));
        let mut plain = String::new();
        push_line(&mut plain, "sub/x y", &digest);
        assert_eq!(plain, format!("{}  sub/x y\n", "ab".repeat(32)));
    }

    fn rel_path() -> impl Strategy<Value = RelPath> {
        prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9 ._*()=-]{0,12}", 1..4).prop_map(|parts| {
            RelPath::parse(&parts.join("/")).expect("generated components are safe")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `sha256sum --tag` / `shasum --tag` output, with or without the
        /// space before '(', reads as the same entries as the GNU form.
        #[test]
        fn bsd_tag_lines_read_like_gnu_lines(
            entries in prop::collection::btree_map(rel_path(), any::<[u8; 32]>(), 1..6),
            space in any::<bool>(),
            escaped in any::<bool>(),
            upper in any::<bool>(),
        ) {
            let mut text = String::new();
            for (path, digest) in &entries {
                let hex = hex::encode(digest);
                let hex = if upper { hex.to_uppercase() } else { hex };
                let open = if space { " (" } else { "(" };
                let mark = if escaped { "\\" } else { "" };
                text.push_str(&format!("{mark}SHA256{open}{path}) = {hex}\n"));
            }
            let tagged = parse_sums(&text, "SUMS").expect("tagged sums parse");
            let gnu = parse_sums(&format_sums(entries.iter()), "SUMS").expect("gnu sums parse");
            let strip = |v: Vec<SumEntry>| v.into_iter().map(|e| (e.path, e.sha256)).collect::<Vec<_>>();
            prop_assert_eq!(strip(tagged), strip(gnu));
        }

        /// Any name, escaped by `push_line`, decodes back to itself.
        #[test]
        fn escaped_names_round_trip(name in "[a-z\\\\\n\r ()=*]{1,16}") {
            let mut out = String::new();
            push_line(&mut out, &name, &[0; 32]);
            let body = out.strip_suffix('\n').expect("line end");
            prop_assert!(!body.contains(['\n', '\r']), "{:?}", body);
            let name_part = body.strip_prefix('\\').map_or(&body[66..], |b| &b[66..]);
            let back = if body.starts_with('\\') { unescape(name_part) } else { Some(name_part.to_string()) };
            prop_assert_eq!(back, Some(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const B: &str = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";

    fn err(text: &str) -> String {
        match parse_sums(text, "SUMS") {
            Ok(entries) => panic!("expected an error for {text:?}, got {entries:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_text_and_binary_lines_with_comments_and_crlf() {
        let text = format!(
            "# made by hand\r\n\r\n{A}  a.txt\r\n{B} *sub/b.bin\n  # indented comment\n{A}  ./c d.txt\n"
        );
        let entries = parse_sums(&text, "SUMS").expect("valid");
        let got: Vec<(&str, usize)> = entries.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert_eq!(got, [("a.txt", 3), ("sub/b.bin", 4), ("c d.txt", 6)]);
        assert_eq!(hex::encode(entries[1].sha256), B.to_lowercase());
    }

    #[test]
    fn reports_malformed_lines_with_file_and_line() {
        let cases = [
            (format!("{A}  ok\nnot a sum\n"), "SUMS:2: not a sha256sum line (expected '<64 hex digits>  NAME')"),
            (format!("{}  x\n", &A[..32]), "SUMS:1: digest has 32 hex digits; sha-256 needs 64"),
            (format!("{A}0  x\n"), "SUMS:1: digest has 65 hex digits; sha-256 needs 64"),
            (format!("{A} x\n"), "SUMS:1: expected two spaces or ' *' between the digest and the name"),
            (format!("{A}\n"), "SUMS:1: expected two spaces or ' *' between the digest and the name"),
            (format!("{A}\tx\n"), "SUMS:1: expected two spaces or ' *' between the digest and the name"),
            (format!("{A}zz  x\n"), "SUMS:1: not a sha256sum line (expected '<64 hex digits>  NAME')"),
            (format!("\\{A}  a\\\\b\n"), "SUMS:1: path 'a\\\\b' contains a backslash"),
            (format!("\\{A}  a\\tb\n"), "SUMS:1: bad escape in an escaped file name (only \\\\, \\n and \\r are allowed)"),
            (format!("\\{A}  a\\\n"), "SUMS:1: bad escape in an escaped file name (only \\\\, \\n and \\r are allowed)"),
            (format!("MD5 (a) = {}\n", &A[..32]), "SUMS:1: a BSD-style line for MD5, not SHA256"),
            (format!("SHA256 (a) {A}\n"), "SUMS:1: not a BSD-style sha256 line (expected 'SHA256 (NAME) = <64 hex digits>')"),
            (format!("SHA256 (a = {A}\n"), "SUMS:1: not a BSD-style sha256 line (expected 'SHA256 (NAME) = <64 hex digits>')"),
            (format!("SHA256 (a) = {A} \n"), "SUMS:1: not a BSD-style sha256 line (expected 'SHA256 (NAME) = <64 hex digits>')"),
            ("SHA256 (a) = \n".to_string(), "SUMS:1: not a BSD-style sha256 line (expected 'SHA256 (NAME) = <64 hex digits>')"),
            (format!("SHA256 (a) = {}\n", &A[..40]), "SUMS:1: digest has 40 hex digits; sha-256 needs 64"),
            (format!("SHA256 (../x) = {A}\n"), "SUMS:1: path '../x' contains a '..' component"),
            (format!("{A}  \n"), "SUMS:1: path '' is empty"),
            (format!("\n\n{A}  ../etc/passwd\n"), "SUMS:3: path '../etc/passwd' contains a '..' component"),
            (format!("{A}  /etc/passwd\n"), "SUMS:1: path '/etc/passwd' is an absolute path (it must be relative to the output directory)"),
            (format!("{A}  a\\b\n"), "SUMS:1: path 'a\\\\b' contains a backslash"),
            (format!("{A}  a\rb\n"), "SUMS:1: path 'a\\rb' contains a control character"),
            (format!("{A}  a\n{B}  a\n"), "SUMS:2: 'a' already has a different digest on line 1"),
        ];
        for (text, want) in cases {
            assert_eq!(err(&text), want, "for {text:?}");
        }
    }

    #[test]
    fn keeps_a_repeated_identical_line_once() {
        let text = format!("{A}  a\n{A} *./a\n");
        let entries = parse_sums(&text, "SUMS").expect("valid");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 1);
    }

    #[test]
    fn format_round_trips_through_parse() {
        let a = RelPath::parse("dir/a.bin").expect("valid");
        let b = RelPath::parse("b c.txt").expect("valid");
        let (da, db) = ([1u8; 32], [0xab; 32]);
        let text = format_sums([(&a, &da), (&b, &db)]);
        assert_eq!(
            text,
            format!(
                "{}  dir/a.bin\n{}  b c.txt\n",
                "01".repeat(32),
                "ab".repeat(32)
            )
        );
        let back = parse_sums(&text, "SUMS").expect("valid");
        let got: Vec<(RelPath, [u8; 32])> = back.into_iter().map(|e| (e.path, e.sha256)).collect();
        assert_eq!(got, [(a, da), (b, db)]);
    }

    #[test]
    fn fixture_sha256sums_parses() {
        let text = include_str!("../fixtures/SHA256SUMS");
        let entries = parse_sums(text, "SHA256SUMS").expect("fixture parses");
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "alpha.bin",
                "nested/deeper/renamed-beta.bin",
                "gamma.txt",
                "with space.txt"
            ]
        );
        // gamma.txt holds the body the fixtures README documents.
        use sha2::Digest;
        let want: [u8; 32] = sha2::Sha256::digest(b"hello, haul\n").into();
        assert_eq!(entries[2].sha256, want);
    }

    mod properties {
        //! Properties over generated sums files: any text is parsed or refused
        //! with its line, never a panic; a rendered list reads back the same.
        use super::super::*;
        use proptest::prelude::*;

        /// Text made of sums-file pieces (digests, separators, names, line
        /// ends) so that near-valid lines are common.
        fn sums_like() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                "[0-9a-fA-F]{64}",
                "[0-9a-f]{1,70}",
                Just("  ".to_owned()),
                Just(" *".to_owned()),
                Just("./".to_owned()),
                Just("../".to_owned()),
                Just("\\".to_owned()),
                Just("#".to_owned()),
                Just("\n".to_owned()),
                Just("\r\n".to_owned()),
                Just("\u{feff}".to_owned()),
                "[a-z /.]{1,8}",
                any::<char>().prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
        }

        fn rel_path() -> impl Strategy<Value = RelPath> {
            prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9 ._*-]{0,12}", 1..4).prop_map(|parts| {
                RelPath::parse(&parts.join("/")).expect("generated components are safe")
            })
        }

        proptest! {
            #[test]
            fn any_text_parses_or_names_its_line(
                text in prop_oneof![sums_like(), any::<String>()]
            ) {
                let lines = text.split('\n').count();
                if let Err(e) = parse_sums(&text, "SUMS") {
                    let line = e.origin().line;
                    prop_assert!((1..=lines).contains(&line), "line {} of {}", line, lines);
                    let prefix = format!("SUMS:{line}: ");
                    prop_assert!(e.to_string().starts_with(&prefix), "{}", e);
                }
            }

            #[test]
            fn rendered_entries_parse_back(
                entries in prop::collection::btree_map(rel_path(), any::<[u8; 32]>(), 0..8)
            ) {
                let text = format_sums(entries.iter());
                let back = parse_sums(&text, "SUMS").expect("rendered sums parse");
                let back: Vec<(RelPath, [u8; 32])> =
                    back.into_iter().map(|e| (e.path, e.sha256)).collect();
                prop_assert_eq!(back, entries.into_iter().collect::<Vec<_>>());
            }

            #[test]
            fn binary_mode_dot_slash_crlf_and_case_read_the_same(
                entries in prop::collection::btree_map(rel_path(), any::<[u8; 32]>(), 1..6),
                binary in any::<bool>(),
                dot_slash in any::<bool>(),
                crlf in any::<bool>(),
                upper in any::<bool>(),
            ) {
                let mut text = String::new();
                for (path, digest) in &entries {
                    let hex = hex::encode(digest);
                    text.push_str(&if upper { hex.to_uppercase() } else { hex });
                    text.push_str(if binary { " *" } else { "  " });
                    text.push_str(if dot_slash { "./" } else { "" });
                    text.push_str(path.as_str());
                    text.push_str(if crlf { "\r\n" } else { "\n" });
                }
                let back = parse_sums(&text, "SUMS").expect("variant sums parse");
                let back: Vec<(RelPath, [u8; 32])> =
                    back.into_iter().map(|e| (e.path, e.sha256)).collect();
                prop_assert_eq!(back, entries.into_iter().collect::<Vec<_>>());
            }
        }
    }
}
