//! Safe output paths: how a URL or a user's `dir=`/`out=` becomes a relative
//! path inside the output directory.
//!
//! This module owns the promise that nothing is ever written outside the
//! output directory: every [`RelPath`] is built from checked components, so
//! joining it to a root cannot climb out. Names a server implies (the URL's
//! last segment) are sanitised silently, because the user cannot fix them;
//! names the user wrote (`dir=`, `out=`) are rejected with a message instead,
//! because silently rewriting them would put files where nobody expects. It
//! does not touch the filesystem (symlinks already inside the output
//! directory are the store's concern) and knows nothing of list syntax.

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Longest file-name component most filesystems accept (NAME_MAX on Linux,
/// macOS and Windows alike), in bytes.
const MAX_COMPONENT_BYTES: usize = 255;

/// The name used when a URL's path ends in '/' (as wget and aria2 do).
const DEFAULT_NAME: &str = "index.html";

/// A relative output path inside the output directory: one or more safe
/// components joined by '/'.
///
/// Every component is non-empty, at most 255 bytes, not `.` or `..`, and free
/// of '/', '\\' and control characters, so [`RelPath::to_path`] never escapes
/// its root. Serialises as its string form; deserialising re-checks it, so a
/// tampered manifest cannot smuggle a traversal in.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

impl RelPath {
    /// The path as stored: components joined by '/'.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `root` joined with the components (never escapes `root`).
    pub fn to_path(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for component in self.components() {
            path.push(component);
        }
        path
    }

    /// The components, outermost directory first, file name last.
    pub fn components(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// The last component: the file's own name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Parses a stored string (from a manifest or a sums file) and rejects
    /// anything unsafe: empty, absolute, empty/`.`/`..` components, a
    /// backslash, control characters (NUL included), over-long components.
    pub fn parse(s: &str) -> Result<RelPath, NameError> {
        const WHAT: &str = "path";
        check_chars(WHAT, s)?;
        for component in s.split('/') {
            let err = |kind| NameError {
                what: WHAT,
                value: s.to_owned(),
                kind,
            };
            match component {
                "" => return Err(err(NameErrorKind::EmptyComponent)),
                "." => return Err(err(NameErrorKind::CurrentDir)),
                ".." => return Err(err(NameErrorKind::ParentDir)),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(err(NameErrorKind::TooLong)),
                _ => {}
            }
        }
        Ok(RelPath(s.to_owned()))
    }

    /// Joins components already known to be safe.
    fn from_components(components: Vec<String>) -> RelPath {
        debug_assert!(!components.is_empty());
        RelPath(components.join("/"))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RelPath {
    type Error = NameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        RelPath::parse(&s)
    }
}

impl From<RelPath> for String {
    fn from(path: RelPath) -> String {
        path.0
    }
}

/// Why a name or path was refused. Its message names the field (`dir`, `out`
/// or `path`) and quotes the value, with control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {} {kind}", Quoted(value))]
pub struct NameError {
    /// Which field held the value: "dir", "out" or "path".
    pub what: &'static str,
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub kind: NameErrorKind,
}

/// What is wrong with a refused name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameErrorKind {
    #[error("is empty")]
    Empty,
    #[error("is an absolute path (it must be relative to the output directory)")]
    Absolute,
    #[error("contains a '..' component")]
    ParentDir,
    #[error("contains a '.' component")]
    CurrentDir,
    #[error("contains an empty component")]
    EmptyComponent,
    #[error("contains a backslash")]
    Backslash,
    #[error("contains a control character")]
    ControlChar,
    #[error("does not end in a file name")]
    NoFileName,
    #[error("has a component longer than 255 bytes")]
    TooLong,
}

/// Writes a value in single quotes with control characters escaped, so a
/// hostile name cannot drive the terminal that shows the error.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.escape_debug())
    }
}

/// The file name a URL implies: its last path segment, percent-decoded (lossy
/// UTF-8) and sanitised; "index.html" when that segment is empty (`http://h/`,
/// `http://h/dir/`). The query and fragment play no part.
pub fn name_from_url(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    if last.is_empty() {
        return DEFAULT_NAME.to_owned();
    }
    let decoded = percent_decode_str(last).decode_utf8_lossy();
    sanitize_component(&decoded)
}

/// Makes one user- or server-supplied string safe as a single path component:
/// '/', '\\' and control characters become '_'; "", "." and ".." become "_";
/// longer than 255 bytes is cut on a char boundary, keeping a short extension
/// (".iso") when there is one. Hidden names like ".bashrc" stay.
pub fn sanitize_component(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if matches!(replaced.as_str(), "" | "." | "..") {
        return "_".to_owned();
    }
    truncate_name(replaced)
}

/// Cuts a name to [`MAX_COMPONENT_BYTES`]; an extension of up to 16 bytes
/// survives so the file still opens with the right program.
fn truncate_name(name: String) -> String {
    if name.len() <= MAX_COMPONENT_BYTES {
        return name;
    }
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let stem = floor_char_boundary(&name, MAX_COMPONENT_BYTES - ext.len());
    format!("{}{ext}", &name[..stem])
}

/// The largest char boundary of `s` at or below `max`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut at = max.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The output path for one list entry: `dir` (a relative sub-directory, may
/// contain '/') then `out` (a file name, may contain '/' sub-directories as
/// aria2 allows) or else [`name_from_url`].
///
/// `dir` and `out` come from the user, so unsafe ones are refused rather than
/// rewritten: absolute paths, `..` components, empty names, backslashes and
/// control characters. Harmless `.` and empty components (`./a`, `a//b`, a
/// trailing '/' on `dir`) are dropped. A URL-derived name is sanitised
/// silently: `%2e%2e%2fetc%2fpasswd` becomes `.._etc_passwd`.
pub fn output_path(
    url: &url::Url,
    dir: Option<&str>,
    out: Option<&str>,
) -> Result<RelPath, NameError> {
    let mut components = match dir {
        Some(dir) => check_dir(dir)?,
        None => Vec::new(),
    };
    match out {
        Some(out) => components.extend(check_out(out)?),
        None => components.push(name_from_url(url)),
    }
    Ok(RelPath::from_components(components))
}

/// Checks a user's `dir=` value; returns its meaningful components (possibly
/// none, for `dir=.`).
pub(crate) fn check_dir(dir: &str) -> Result<Vec<String>, NameError> {
    check_user_path("dir", dir)
}

/// Checks a user's `out=` value; returns its components, the file name last.
pub(crate) fn check_out(out: &str) -> Result<Vec<String>, NameError> {
    let components = check_user_path("out", out)?;
    let ends_in_name = !out.ends_with('/')
        && out.rsplit('/').next().is_some_and(|last| last != ".")
        && !components.is_empty();
    if !ends_in_name {
        return Err(NameError {
            what: "out",
            value: out.to_owned(),
            kind: NameErrorKind::NoFileName,
        });
    }
    Ok(components)
}

fn check_user_path(what: &'static str, value: &str) -> Result<Vec<String>, NameError> {
    let err = |kind| NameError {
        what,
        value: value.to_owned(),
        kind,
    };
    check_chars(what, value)?;
    let mut components = Vec::new();
    for component in value.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(err(NameErrorKind::ParentDir)),
            c if c.len() > MAX_COMPONENT_BYTES => return Err(err(NameErrorKind::TooLong)),
            c => components.push(c.to_owned()),
        }
    }
    Ok(components)
}

/// Refuses empty values, control characters, backslashes (a separator on
/// Windows, and never what a user means in a Unix name) and absolute paths.
fn check_chars(what: &'static str, value: &str) -> Result<(), NameError> {
    let err = |kind| NameError {
        what,
        value: value.to_owned(),
        kind,
    };
    if value.is_empty() {
        Err(err(NameErrorKind::Empty))
    } else if value.chars().any(char::is_control) {
        Err(err(NameErrorKind::ControlChar))
    } else if value.contains('\\') {
        Err(err(NameErrorKind::Backslash))
    } else if value.starts_with('/') {
        Err(err(NameErrorKind::Absolute))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap_or_else(|e| panic!("bad test URL {s}: {e}"))
    }

    fn path(dir: Option<&str>, out: Option<&str>) -> Result<String, NameErrorKind> {
        output_path(&url("http://h/file.bin"), dir, out)
            .map(|p| p.to_string())
            .map_err(|e| e.kind)
    }

    #[test]
    fn name_from_url_takes_last_segment_decoded_and_sanitised() {
        let cases = [
            ("http://h/a/b/file.tar.gz", "file.tar.gz"),
            ("http://h/file.bin?x=1#frag", "file.bin"),
            ("http://h/", "index.html"),
            ("http://h", "index.html"),
            ("http://h/dir/", "index.html"),
            ("http://h/with%20space.txt", "with space.txt"),
            ("http://h/caf%C3%A9", "café"),
            ("http://h/bad%FFutf8", "bad\u{fffd}utf8"),
            ("http://h/%2e%2e%2fetc%2fpasswd", ".._etc_passwd"),
            (
                "http://h/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                ".._.._etc_passwd",
            ),
            ("http://h/a%5cb", "a_b"),
            ("http://h/..", "index.html"),
            ("http://h/x/%2e%2e", "index.html"),
            ("http://h/a%00b", "a_b"),
            ("http://h/a%0d%0ab", "a__b"),
            ("http://h/.bashrc", ".bashrc"),
            ("http://h/...", "..."),
        ];
        for (input, want) in cases {
            assert_eq!(name_from_url(&url(input)), want, "for {input}");
        }
    }

    #[test]
    fn sanitize_replaces_separators_controls_and_dot_names() {
        let cases = [
            ("", "_"),
            (".", "_"),
            ("..", "_"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("a\u{7f}b", "a_b"),
            ("a\u{85}b", "a_b"),
            ("../x", ".._x"),
            (".hidden", ".hidden"),
            ("plain.txt", "plain.txt"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_component(input), want, "for {input:?}");
        }
    }

    #[test]
    fn sanitize_truncates_long_names_keeping_the_extension() {
        let long = format!("{}.iso", "a".repeat(300));
        let got = sanitize_component(&long);
        assert_eq!(got.len(), 255);
        assert!(got.ends_with("a.iso"), "{got}");

        // A multi-byte character straddling the limit is dropped whole.
        let wide = "é".repeat(200);
        let got = sanitize_component(&wide);
        assert_eq!(got.len(), 254);
        assert!(got.chars().all(|c| c == 'é'));

        let no_ext = "b".repeat(256);
        assert_eq!(sanitize_component(&no_ext).len(), 255);
    }

    #[test]
    fn output_path_joins_dir_and_out() {
        let cases = [
            (None, None, "file.bin"),
            (Some("sub"), None, "sub/file.bin"),
            (Some("a/b/"), None, "a/b/file.bin"),
            (Some("./a//b"), None, "a/b/file.bin"),
            (Some("."), None, "file.bin"),
            (None, Some("name.iso"), "name.iso"),
            (None, Some("x/y/name.iso"), "x/y/name.iso"),
            (None, Some("./name.iso"), "name.iso"),
            (Some("d"), Some("e/f"), "d/e/f"),
            (None, Some(".config"), ".config"),
            (None, Some("a..b"), "a..b"),
        ];
        for (dir, out, want) in cases {
            assert_eq!(
                path(dir, out),
                Ok(want.to_owned()),
                "dir {dir:?} out {out:?}"
            );
        }
    }

    #[test]
    fn output_path_rejects_unsafe_user_values() {
        use NameErrorKind::*;
        let cases = [
            (None, Some("../x"), ParentDir),
            (None, Some("a/../../x"), ParentDir),
            (None, Some(".."), ParentDir),
            (None, Some("/etc/passwd"), Absolute),
            (None, Some(""), Empty),
            (None, Some("sub/"), NoFileName),
            (None, Some("."), NoFileName),
            (None, Some("sub/."), NoFileName),
            (None, Some("a\\b"), Backslash),
            (None, Some("..\\x"), Backslash),
            (None, Some("a\nb"), ControlChar),
            (None, Some("a\0b"), ControlChar),
            (Some("a/../../b"), None, ParentDir),
            (Some(".."), None, ParentDir),
            (Some("/tmp"), None, Absolute),
            (Some(""), None, Empty),
            (Some("c:\\x"), None, Backslash),
            (Some("a\tb"), None, ControlChar),
        ];
        for (dir, out, want) in cases {
            assert_eq!(path(dir, out), Err(want), "dir {dir:?} out {out:?}");
        }
        let long = "x".repeat(256);
        assert_eq!(path(None, Some(&long)), Err(TooLong));
    }

    #[test]
    fn output_path_sanitises_url_names_silently() {
        let p = output_path(&url("http://h/%2e%2e%2fetc%2fpasswd"), Some("d"), None);
        assert_eq!(p.map(|p| p.to_string()), Ok("d/.._etc_passwd".to_owned()));
    }

    #[test]
    fn name_error_messages_name_the_field_and_quote_the_value() {
        let err = output_path(&url("http://h/f"), None, Some("../x")).expect_err("refused");
        assert_eq!(err.to_string(), "out '../x' contains a '..' component");
        let err = output_path(&url("http://h/f"), Some("/srv"), None).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "dir '/srv' is an absolute path (it must be relative to the output directory)"
        );
        let err = RelPath::parse("a\u{1b}[2Jb").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "path 'a\\u{1b}[2Jb' contains a control character"
        );
    }

    #[test]
    fn relpath_parse_accepts_safe_paths() {
        for s in ["a", "a/b/c.txt", ".hidden", "a..b", "sp ace", "café/ü"] {
            let p = RelPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.as_str(), s);
        }
    }

    #[test]
    fn relpath_parse_rejects_unsafe_paths() {
        use NameErrorKind::*;
        let long = "x".repeat(256);
        let cases = [
            ("", Empty),
            ("/abs", Absolute),
            ("a//b", EmptyComponent),
            ("a/", EmptyComponent),
            ("./a", CurrentDir),
            ("a/./b", CurrentDir),
            ("..", ParentDir),
            ("a/../b", ParentDir),
            ("a\\b", Backslash),
            ("a\0b", ControlChar),
            ("a\rb", ControlChar),
            (long.as_str(), TooLong),
        ];
        for (s, want) in cases {
            assert_eq!(RelPath::parse(s).map_err(|e| e.kind), Err(want), "{s:?}");
        }
    }

    #[test]
    fn relpath_to_path_stays_under_root() {
        let p = RelPath::parse("a/b/c.bin").expect("valid");
        let root = Path::new("/out");
        let full = p.to_path(root);
        assert_eq!(full, Path::new("/out/a/b/c.bin"));
        assert!(full.starts_with(root));
        assert_eq!(p.file_name(), "c.bin");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c.bin"]);
    }

    #[test]
    fn relpath_serde_round_trips_and_rechecks() {
        let p = RelPath::parse("d/f.bin").expect("valid");
        let json = serde_json::to_string(&p).expect("serialise");
        assert_eq!(json, "\"d/f.bin\"");
        let back: RelPath = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, p);
        assert!(serde_json::from_str::<RelPath>("\"../etc/passwd\"").is_err());
    }

    mod properties {
        //! Properties over generated input: the promise of the module (never
        //! outside the output directory) for whatever a server or user says.
        use super::super::*;
        use super::url;
        use proptest::prelude::*;

        /// Strings built from the pieces that make names dangerous, so the
        /// generator reaches `..`, separators, encodings and long names far
        /// more often than uniformly random text would.
        fn hostile() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just("/".to_owned()),
                Just("\\".to_owned()),
                Just("\0".to_owned()),
                Just("%2e".to_owned()),
                Just("%2f".to_owned()),
                Just("%5c".to_owned()),
                Just("%00".to_owned()),
                Just("\u{85}".to_owned()),
                "[a-zé]{1,4}",
                "[a-z]{120,140}",
                any::<char>().prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
        }

        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![hostile(), any::<String>()]
        }

        /// The invariants every name component haul writes must hold.
        fn assert_safe_component(name: &str) {
            assert!(!name.is_empty());
            assert!(name != "." && name != "..", "{name:?}");
            assert!(!name.contains(['/', '\\']), "{name:?}");
            assert!(!name.chars().any(char::is_control), "{name:?}");
            assert!(name.len() <= MAX_COMPONENT_BYTES, "{name:?}");
        }

        fn assert_safe_path(path: &RelPath) {
            assert!(!path.as_str().starts_with('/'));
            path.components().for_each(assert_safe_component);
            assert_eq!(RelPath::parse(path.as_str()).as_ref(), Ok(path));
            let root = Path::new("/srv/out");
            let joined = path.to_path(root);
            let rest = joined
                .strip_prefix(root)
                .expect("joined path stays under root");
            assert!(rest
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))));
        }

        proptest! {
            #[test]
            fn sanitize_component_always_yields_one_safe_component(raw in any_text()) {
                assert_safe_component(&sanitize_component(&raw));
            }

            #[test]
            fn sanitize_component_keeps_safe_names_unchanged(
                name in "[A-Za-z0-9_-][A-Za-z0-9 ._-]{0,40}"
            ) {
                prop_assert_eq!(sanitize_component(&name), name);
            }

            #[test]
            fn name_from_any_url_path_is_safe(path in any_text()) {
                let text = format!("http://h/{path}");
                if let Ok(url) = url::Url::parse(&text) {
                    assert_safe_component(&name_from_url(&url));
                }
            }

            #[test]
            fn output_path_is_safe_or_refused(
                path in any_text(),
                dir in proptest::option::of(any_text()),
                out in proptest::option::of(any_text()),
            ) {
                let url = url::Url::parse(&format!("http://h/{path}"))
                    .unwrap_or_else(|_| url("http://h/fallback"));
                if let Ok(rel) = output_path(&url, dir.as_deref(), out.as_deref()) {
                    assert_safe_path(&rel);
                }
            }

            #[test]
            fn relpath_parse_accepts_only_safe_paths(text in any_text()) {
                if let Ok(rel) = RelPath::parse(&text) {
                    assert_safe_path(&rel);
                    prop_assert_eq!(rel.as_str(), text.as_str());
                }
            }

            #[test]
            fn safe_components_round_trip_through_out_and_relpath(
                parts in prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9 ._-]{0,20}", 1..5)
            ) {
                let joined = parts.join("/");
                let from_out = output_path(&url("http://h/f"), None, Some(&joined))
                    .expect("safe components are accepted");
                prop_assert_eq!(from_out.components().collect::<Vec<_>>(), parts.clone());
                prop_assert_eq!(RelPath::parse(&joined), Ok(from_out));
            }
        }
    }
}
