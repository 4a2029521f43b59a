//! The aria2-style URL list (`-i FILE`, stdin, positional URLs).
//!
//! The format: one http(s) URL a line, or several separated by TABs (aria2's
//! mirrors: the same file at other places); `#` comments and blank lines ignored;
//! indented `name=value` option lines (`out=`, `dir=`, `checksum=sha-256=HEX`,
//! `header=Name: value`) belong to the URL above. Anything else is an error
//! that starts with `SOURCE:LINE: `, so the user can go straight to it.
//! `plan` (a layer up: it makes the engine's jobs) then settles output
//! paths, drops repeated URLs and refuses two jobs that would write the same
//! file; its errors are [`ListError`]s too. This module parses and checks text,
//! held whole or read line by line ([`ListReader`]: a list of millions is
//! never held), and never shows a URL's credentials (see `SafeUrl`).

use std::fmt;
use std::sync::Arc;

use crate::naming::{self, NameError, RelPath};
use crate::safe_url::SafeUrl;

/// The source name used for positional URLs.
const COMMAND_LINE: &str = "command line";

/// Headers haul sets itself: letting a list override them would break resume
/// (Range, If-Range), byte offsets (Accept-Encoding, see STYLE.md) or message
/// framing (Content-Length, Transfer-Encoding).
const RESERVED_HEADERS: &[&str] = &[
    "range",
    "if-range",
    "accept-encoding",
    "content-length",
    "transfer-encoding",
];

/// Where an entry came from, for error messages: "urls.txt:12".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file name as given, `<stdin>`, or `command line`.
    pub source: Arc<str>,
    /// 1-based line (or position, for the command line).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// One URL from a list with the options that followed it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListEntry {
    /// The URL line.
    pub origin: Origin,
    /// The first URL of the line: it names the file and keys duplicates.
    pub url: url::Url,
    /// The other TAB-separated URLs of the line, in order: mirrors of `url`.
    pub mirrors: Vec<url::Url>,
    /// `out=`: the file name (may contain '/'), already checked.
    pub out: Option<String>,
    /// `dir=`: a sub-directory of the output directory, already checked.
    pub dir: Option<String>,
    /// `checksum=sha-256=HEX`, decoded.
    pub checksum: Option<[u8; 32]>,
    /// `header=Name: value` lines in order; name and value are valid HTTP.
    pub headers: Vec<(String, String)>,
}

/// A list that cannot be used. Every message starts with `SOURCE:LINE: `.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{origin}: option line before any URL (option lines are indented and belong to the URL above them)")]
    OptionBeforeUrl { origin: Origin },
    #[error("{origin}: URL line contains a space (write a space in a URL as %20; separate mirror URLs with a TAB)")]
    UrlWhitespace { origin: Origin },
    #[error("{origin}: URL line contains a control character")]
    UrlControlChar { origin: Origin },
    #[error("{origin}: invalid URL '{url}'")]
    InvalidUrl {
        origin: Origin,
        /// Redacted text of the line.
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error(
        "{origin}: unsupported scheme '{scheme}' in URL '{url}' (haul downloads http and https)"
    )]
    UnsupportedScheme {
        origin: Origin,
        scheme: String,
        /// Redacted URL.
        url: String,
    },
    #[error("{origin}: option line is not name=value (e.g. out=file.bin)")]
    MissingEquals { origin: Origin },
    #[error("{origin}: unknown option '{name}' (haul knows out, dir, checksum and header)")]
    UnknownOption { origin: Origin, name: String },
    #[error("{origin}: option '{name}' given twice for one URL (first on line {first})")]
    DuplicateOption {
        origin: Origin,
        name: &'static str,
        first: usize,
    },
    #[error("{origin}: checksum must be TYPE=DIGEST, e.g. checksum=sha-256=<64 hex digits>")]
    ChecksumSyntax { origin: Origin },
    #[error("{origin}: unsupported checksum type '{kind}' (haul checks sha-256)")]
    UnsupportedChecksum { origin: Origin, kind: String },
    #[error("{origin}: sha-256 digest '{digest}' is not 64 hex digits")]
    BadDigest { origin: Origin, digest: String },
    #[error("{origin}: header must be 'Name: value', e.g. header=Accept-Language: en")]
    HeaderSyntax { origin: Origin },
    #[error("{origin}: invalid HTTP header name '{}'", .name.escape_debug())]
    HeaderName { origin: Origin, name: String },
    // The value is left out of the message: it may be a token.
    #[error(
        "{origin}: invalid value for HTTP header '{name}' (control characters are not allowed)"
    )]
    HeaderValue { origin: Origin, name: String },
    #[error("{origin}: header '{name}' is managed by haul and cannot be set in a list")]
    ReservedHeader { origin: Origin, name: String },
    #[error("{origin}: {error}")]
    Name { origin: Origin, error: NameError },
    #[error("{origin}: output path '{path}' is already used by {other} ({other_url})")]
    PathConflict {
        origin: Origin,
        path: RelPath,
        other: Origin,
        /// Redacted URL of the other job.
        other_url: String,
    },
    /// One path is a directory above the other; the shorter one is the
    /// path that would have to be both a file and a directory.
    #[error("{origin}: output path '{path}' and '{other_path}' from {other} ({other_url}) would need '{}' to be both a file and a directory", shorter(.path, .other_path))]
    PathPrefix {
        origin: Origin,
        path: RelPath,
        other: Origin,
        other_path: RelPath,
        /// Redacted URL of the other job.
        other_url: String,
    },
}

impl ListError {
    /// Where the problem is.
    pub fn origin(&self) -> &Origin {
        match self {
            ListError::OptionBeforeUrl { origin }
            | ListError::UrlWhitespace { origin }
            | ListError::UrlControlChar { origin }
            | ListError::InvalidUrl { origin, .. }
            | ListError::UnsupportedScheme { origin, .. }
            | ListError::MissingEquals { origin }
            | ListError::UnknownOption { origin, .. }
            | ListError::DuplicateOption { origin, .. }
            | ListError::ChecksumSyntax { origin }
            | ListError::UnsupportedChecksum { origin, .. }
            | ListError::BadDigest { origin, .. }
            | ListError::HeaderSyntax { origin }
            | ListError::HeaderName { origin, .. }
            | ListError::HeaderValue { origin, .. }
            | ListError::ReservedHeader { origin, .. }
            | ListError::Name { origin, .. }
            | ListError::PathConflict { origin, .. }
            | ListError::PathPrefix { origin, .. } => origin,
        }
    }
}

/// Hides credentials in text that may not even parse as a URL (for
/// [`ListError::InvalidUrl`]): whatever sits before the last '@' of the
/// authority becomes `***`.
fn redact_text(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &text[..authority_start],
            &text[authority_start + at..]
        ),
        None => text.to_owned(),
    }
}

/// Parses an aria2-style list held in memory. `source` names it in errors:
/// the file name as given, or `<stdin>`. Stops at the first error.
pub fn parse_list(text: &str, source: &str) -> Result<Vec<ListEntry>, ListError> {
    let mut parser = ListParser::new(source);
    let mut entries = Vec::new();
    let mut at = 0u64;
    for raw in text.split('\n') {
        entries.extend(parser.line(at, raw)?.map(|(_, entry)| entry));
        at += raw.len() as u64 + 1;
    }
    entries.extend(parser.finish().map(|(_, entry)| entry));
    Ok(entries)
}

/// The list parser, fed one line at a time: what lets a list of millions
/// be checked and read as a stream, never held whole. Each entry comes out
/// with the byte offset of its URL line, where [`ListReader`] can find it
/// again.
pub struct ListParser {
    source: Arc<str>,
    /// Lines seen so far.
    line: usize,
    /// The entry still collecting option lines, and where its URL line starts.
    current: Option<(u64, Pending)>,
}

impl ListParser {
    pub fn new(source: &str) -> ListParser {
        ListParser {
            source: Arc::from(source),
            line: 0,
            current: None,
        }
    }

    /// Takes the next line (without its '\n'), which starts at byte `at`
    /// of the list; returns the entry this line closed, if any.
    pub fn line(&mut self, at: u64, raw: &str) -> Result<Option<(u64, ListEntry)>, ListError> {
        self.line += 1;
        let origin = Origin {
            source: Arc::clone(&self.source),
            line: self.line,
        };
        let raw = match self.line {
            1 => raw.strip_prefix('\u{feff}').unwrap_or(raw),
            _ => raw,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_end_matches([' ', '\t']);
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            return Ok(None);
        }
        if content.len() != line.len() {
            let Some((_, pending)) = self.current.as_mut() else {
                return Err(ListError::OptionBeforeUrl { origin });
            };
            pending.apply(content, origin)?;
            return Ok(None);
        }
        let next = Pending::new(parse_url_line(content, origin)?);
        Ok(self
            .current
            .replace((at, next))
            .map(|(at, done)| (at, done.entry)))
    }

    /// The last entry, once every line has been given.
    pub fn finish(&mut self) -> Option<(u64, ListEntry)> {
        self.current.take().map(|(at, done)| (at, done.entry))
    }
}

/// A list read line by line from `R` (a file, or a file's tail from an
/// entry's offset): an iterator of entries with the byte offset of their
/// URL line. It ends after the first error.
pub struct ListReader<R> {
    reader: R,
    parser: ListParser,
    /// Bytes read so far: where the next line starts.
    offset: u64,
    buf: Vec<u8>,
    ended: bool,
}

/// Why a [`ListReader`] stopped: the list could not be read, or is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    List(ListError),
}

impl<R: std::io::BufRead> ListReader<R> {
    /// `source` names the list in errors; `at` is the offset of the
    /// reader's first byte in the list.
    pub fn new(reader: R, source: &str, at: u64) -> ListReader<R> {
        ListReader {
            reader,
            parser: ListParser::new(source),
            offset: at,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// The reader underneath.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// Reads the rest of the list without parsing it: after a list error,
    /// whether the list can be read at all (a read error is reported first,
    /// as when lists were read whole before parsing).
    pub fn read_to_end(&mut self) -> std::io::Result<()> {
        while next_line(&mut self.reader, &mut self.buf, &mut self.offset)?.is_some() {}
        Ok(())
    }
}

/// The next line of `reader`, without its '\n', and the offset it starts
/// at (`offset` counts the bytes read); None at the end.
fn next_line<'b>(
    reader: &mut impl std::io::BufRead,
    buf: &'b mut Vec<u8>,
    offset: &mut u64,
) -> std::io::Result<Option<(u64, &'b str)>> {
    buf.clear();
    let read = reader.read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    let at = *offset;
    *offset += read as u64;
    let line = buf.strip_suffix(b"\n").unwrap_or(buf);
    match std::str::from_utf8(line) {
        Ok(line) => Ok(Some((at, line))),
        // The words of std's `read_to_string`, which read lists before.
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )),
    }
}

impl<R: std::io::BufRead> Iterator for ListReader<R> {
    type Item = Result<(u64, ListEntry), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            let line = match next_line(&mut self.reader, &mut self.buf, &mut self.offset) {
                Ok(Some((at, line))) => self.parser.line(at, line),
                Ok(None) => {
                    self.ended = true;
                    return self.parser.finish().map(Ok);
                }
                Err(err) => {
                    self.ended = true;
                    return Some(Err(ReadError::Io(err)));
                }
            };
            match line {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => {}
                Err(err) => {
                    self.ended = true;
                    return Some(Err(ReadError::List(err)));
                }
            }
        }
    }
}

/// Positional URLs from the command line: origin "command line:N" (N is the
/// 1-based position).
pub fn entries_from_args(urls: &[String]) -> Result<Vec<ListEntry>, ListError> {
    let source: Arc<str> = Arc::from(COMMAND_LINE);
    urls.iter()
        .enumerate()
        .map(|(index, text)| {
            let origin = Origin {
                source: Arc::clone(&source),
                line: index + 1,
            };
            parse_url_line(text, origin).map(bare_entry)
        })
        .collect()
}

fn bare_entry(line: UrlLine) -> ListEntry {
    ListEntry {
        origin: line.origin,
        url: line.url,
        mirrors: line.mirrors,
        out: None,
        dir: None,
        checksum: None,
        headers: Vec::new(),
    }
}

/// Splits a URL line on TABs (aria2's mirror separator) and checks each URL;
/// empty fields (two TABs in a row) are skipped. A repeated mirror is kept
/// once.
fn parse_url_line(text: &str, origin: Origin) -> Result<UrlLine, ListError> {
    let mut urls: Vec<url::Url> = Vec::new();
    for field in text.split('\t').filter(|field| !field.is_empty()) {
        let (url, _) = parse_url(field, origin.clone())?;
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    let mut urls = urls.into_iter();
    let Some(url) = urls.next() else {
        // Only a line of TABs, which callers trim away before this.
        return Err(ListError::UrlWhitespace { origin });
    };
    Ok(UrlLine {
        url,
        mirrors: urls.collect(),
        origin,
    })
}

/// A checked URL line: its first URL and its mirrors.
struct UrlLine {
    url: url::Url,
    mirrors: Vec<url::Url>,
    origin: Origin,
}

/// Checks one URL: no whitespace or control characters (the URL parser would
/// silently drop tabs and newlines), parses, and is http or https.
fn parse_url(text: &str, origin: Origin) -> Result<(url::Url, Origin), ListError> {
    match check_url(text) {
        Ok(url) => Ok((url, origin)),
        Err(UrlError::Whitespace) => Err(ListError::UrlWhitespace { origin }),
        Err(UrlError::ControlChar) => Err(ListError::UrlControlChar { origin }),
        Err(UrlError::Invalid { url, source }) => Err(ListError::InvalidUrl {
            origin,
            url,
            source,
        }),
        Err(UrlError::Scheme { scheme, url }) => Err(ListError::UnsupportedScheme {
            origin,
            scheme,
            url,
        }),
    }
}

/// A URL refused by [`check_url`]; a list wraps it with its line
/// ([`ListError`]), the library's `Job` reports it as it is.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("URL contains a space or a TAB (write a space in a URL as %20)")]
    Whitespace,
    #[error("URL contains a control character")]
    ControlChar,
    #[error("invalid URL '{url}'")]
    Invalid {
        /// Redacted text.
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("unsupported scheme '{scheme}' in URL '{url}' (haul downloads http and https)")]
    Scheme {
        scheme: String,
        /// Redacted URL.
        url: String,
    },
}

/// The checks every URL haul downloads passes, wherever it comes from.
pub(crate) fn check_url(text: &str) -> Result<url::Url, UrlError> {
    if text.contains([' ', '\t']) {
        return Err(UrlError::Whitespace);
    }
    if text.chars().any(char::is_control) {
        return Err(UrlError::ControlChar);
    }
    let url = url::Url::parse(text).map_err(|source| UrlError::Invalid {
        url: redact_text(text),
        source,
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(UrlError::Scheme {
            scheme: scheme.to_owned(),
            url: SafeUrl::new(&url).to_string(),
        }),
    }
}

/// An entry still collecting its option lines, with the line each
/// single-valued option came from (for "given twice" errors).
struct Pending {
    entry: ListEntry,
    out_line: Option<usize>,
    dir_line: Option<usize>,
    checksum_line: Option<usize>,
}

impl Pending {
    fn new(line: UrlLine) -> Pending {
        Pending {
            entry: bare_entry(line),
            out_line: None,
            dir_line: None,
            checksum_line: None,
        }
    }

    /// Applies one option line (already trimmed) to the entry. Blanks
    /// around the name and the value are dropped, as aria2 drops them
    /// (`out = x.dat` names `x.dat`, not ` x.dat`).
    fn apply(&mut self, option: &str, origin: Origin) -> Result<(), ListError> {
        let Some((name, value)) = option.split_once('=') else {
            return Err(ListError::MissingEquals { origin });
        };
        let (name, value) = (trim_blanks(name), trim_blanks(value));
        match name {
            "out" => {
                once(&mut self.out_line, "out", &origin)?;
                naming::check_out(value).map_err(|error| ListError::Name {
                    origin: origin.clone(),
                    error,
                })?;
                self.entry.out = Some(value.to_owned());
            }
            "dir" => {
                once(&mut self.dir_line, "dir", &origin)?;
                naming::check_dir(value).map_err(|error| ListError::Name {
                    origin: origin.clone(),
                    error,
                })?;
                self.entry.dir = Some(value.to_owned());
            }
            "checksum" => {
                once(&mut self.checksum_line, "checksum", &origin)?;
                self.entry.checksum = Some(parse_checksum(value, origin)?);
            }
            "header" => self.entry.headers.push(parse_header(value, origin)?),
            _ => {
                return Err(ListError::UnknownOption {
                    origin,
                    name: name.to_owned(),
                })
            }
        }
        Ok(())
    }
}

/// Drops the spaces and TABs around an option's name or value (aria2 also
/// drops CR and LF, which never reach here).
fn trim_blanks(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// Records the line of a single-valued option, refusing a second one.
fn once(seen: &mut Option<usize>, name: &'static str, origin: &Origin) -> Result<(), ListError> {
    match *seen {
        Some(first) => Err(ListError::DuplicateOption {
            origin: origin.clone(),
            name,
            first,
        }),
        None => {
            *seen = Some(origin.line);
            Ok(())
        }
    }
}

/// aria2's `TYPE=DIGEST`, where haul supports only sha-256.
fn parse_checksum(value: &str, origin: Origin) -> Result<[u8; 32], ListError> {
    let Some((kind, digest)) = value.split_once('=') else {
        return Err(ListError::ChecksumSyntax { origin });
    };
    let (kind, digest) = (trim_blanks(kind), trim_blanks(digest));
    if !kind.eq_ignore_ascii_case("sha-256") && !kind.eq_ignore_ascii_case("sha256") {
        return Err(ListError::UnsupportedChecksum {
            origin,
            kind: kind.escape_debug().to_string(),
        });
    }
    let mut bytes = [0u8; 32];
    match hex::decode_to_slice(digest, &mut bytes) {
        Ok(()) => Ok(bytes),
        Err(_) => Err(ListError::BadDigest {
            origin,
            digest: digest.escape_debug().to_string(),
        }),
    }
}

/// `Name: value`, checked as HTTP would check it. Surrounding whitespace of
/// the value is optional whitespace in HTTP (RFC 9110 §5.5) and is dropped;
/// so are blanks around the name, as `--header` drops them: no header
/// name holds one, and the request carries the name alone.
fn parse_header(value: &str, origin: Origin) -> Result<(String, String), ListError> {
    let Some((name, value)) = value.split_once(':') else {
        return Err(ListError::HeaderSyntax { origin });
    };
    check_header(name, value).map_err(|err| match err {
        HeaderError::Name(name) => ListError::HeaderName { origin, name },
        HeaderError::Reserved(name) => ListError::ReservedHeader { origin, name },
        HeaderError::Value(name) => ListError::HeaderValue { origin, name },
    })
}

/// A per-job header refused by [`check_header`]; each holds the name.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("invalid HTTP header name '{}'", .0.escape_debug())]
    Name(String),
    #[error("header '{0}' is managed by haul and cannot be set per job")]
    Reserved(String),
    // The value is left out of the message: it may be a token.
    #[error("invalid value for HTTP header '{0}' (control characters are not allowed)")]
    Value(String),
}

/// A per-job header's name and value, checked and trimmed as a list's
/// `header=` line is.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(String, String), HeaderError> {
    use reqwest::header::{HeaderName, HeaderValue};

    let name = trim_blanks(name);
    let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
        return Err(HeaderError::Name(name.to_owned()));
    };
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(HeaderError::Reserved(name.to_owned()));
    }
    let value = trim_blanks(value);
    if HeaderValue::from_str(value).is_err() {
        return Err(HeaderError::Value(name.to_owned()));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn shorter<'a>(a: &'a RelPath, b: &'a RelPath) -> &'a RelPath {
    if a.as_str().len() <= b.as_str().len() {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests;
