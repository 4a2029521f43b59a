//! The short form of a retry reason, for a progress bar's row.
//!
//! A retry's reason is a [`crate::event::Cause`], read as one line: the
//! error and its causes joined by ": ", haul's own message first, which
//! names the URL, then what the libraries and the OS said, innermost last,
//! e.g. "cannot connect to URL: client error (Connect): tcp connect error:
//! Connection refused (os error 111)". A row of 80 columns cut that before
//! its one useful word. This module finds the innermost cause
//! ("connection refused") and the URL, so the row can lead with the cause
//! and put the URL last, where the terminal's width cuts it. Plain, quiet
//! and JSON output keep the full reason.
//!
//! It reads the line, not the cause's links: one link can hold ": " itself
//! (std's "failed to lookup address information: Name or service not
//! known", a bad range's own reason), and a mirror switch reaches it as a
//! sentence built around its cause, so the text is what every case has in
//! common. It never fails: an unexpected wording gives a longer cause,
//! never a lost one.

/// A retry reason, taken apart for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShortCause<'a> {
    /// The innermost cause, shortened: "connection refused",
    /// "503 Service Unavailable", "no data for 30.0 s".
    pub cause: String,
    /// The first URL the reason names (the one that failed).
    pub url: Option<&'a str>,
}

/// Takes `reason` apart; see the module docs.
pub(crate) fn cause(reason: &str) -> ShortCause<'_> {
    let url = first_url(reason);
    let segments = split_outside_parentheses(reason);
    // haul's own messages name the URL; what follows the last of them
    // comes from the libraries and the OS, innermost last.
    let own = url.and_then(|url| segments.iter().rposition(|s| s.contains(url)));
    let innermost = match own {
        Some(i) if i + 1 < segments.len() => segments[segments.len() - 1],
        Some(i) => {
            let message = segments[i];
            return ShortCause {
                cause: tidy(&without_url(message, url.unwrap_or_default())),
                url,
            };
        }
        None => segments.last().copied().unwrap_or(reason),
    };
    ShortCause {
        cause: tidy(innermost),
        url,
    }
}

/// The first `http://` or `https://` URL in `text`, without the
/// punctuation that follows it in a sentence.
fn first_url(text: &str) -> Option<&str> {
    let start = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| text.find(scheme))
        .min()?;
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches([':', ';', ',', '.', ')']))
}

/// haul's own message without its URL: "no data from URL for 30.0 s"
/// reads "no data for 30.0 s", and "URL answered 503" reads
/// "503 Service Unavailable".
fn without_url(message: &str, url: &str) -> String {
    if let Some(status) = answered_status(message, url) {
        return status;
    }
    if url.is_empty() {
        return message.to_string();
    }
    let mut out = message.to_string();
    for with_preposition in [" to ", " from ", " of ", " for "] {
        let pattern = format!("{with_preposition}{url}");
        if out.contains(&pattern) {
            out = out.replacen(&pattern, "", 1);
            return out;
        }
    }
    if let Some(rest) = out.strip_prefix(url) {
        return format!("server{rest}");
    }
    out.replacen(url, "", 1)
}

/// "URL answered 503" as "503 Service Unavailable".
fn answered_status(message: &str, url: &str) -> Option<String> {
    let (_, after) = message.split_once(&format!("{url} answered "))?;
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    let status = reqwest::StatusCode::from_bytes(code.as_bytes()).ok()?;
    Some(match status.canonical_reason() {
        Some(phrase) => format!("{} {phrase}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    })
}

/// `reason` cut at each ": " that is not inside parentheses: haul's
/// friendlier messages put the resolver's words or a hint in parentheses
/// ("host h not found (DNS: Name or service not known)"), which belong to
/// the cause around them.
fn split_outside_parentheses(reason: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in reason.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ':' if depth == 0 && reason[at + 1..].starts_with(' ') => {
                segments.push(&reason[start..at]);
                start = at + 2;
            }
            _ => {}
        }
    }
    segments.push(&reason[start..]);
    segments
}

/// Drops every parenthesised aside (" (os error 111)", a hint such as
/// " (is the URL http://?)", a byte count) so that the cause fits a row;
/// the full reason stays in plain and JSON output. Starts a sentence-case
/// OS message in lower case, as haul's own messages are: "Connection
/// refused (os error 111)" reads "connection refused". All-caps words
/// ("TLS") stay.
fn tidy(text: &str) -> String {
    let mut out = text.trim().to_string();
    while let Some(start) = out.find(" (") {
        let Some(len) = closing_parenthesis(&out[start + 1..]) else {
            break;
        };
        out.replace_range(start..=start + 1 + len, "");
    }
    let mut chars = out.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            let rest: String = out.chars().skip(1).collect();
            format!("{}{rest}", first.to_lowercase())
        }
        _ => out,
    }
}

/// The position of the `)` that closes the `(` `text` starts with.
fn closing_parenthesis(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 1 => return Some(at),
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_table() {
        let url = "http://127.0.0.1:4321/a.bin";
        let cases = [
            (
                format!("cannot connect to {url}: client error (Connect): tcp connect error: Connection refused (os error 111)"),
                "connection refused",
            ),
            (
                format!("cannot connect to {url}: client error (Connect): dns error: failed to lookup address information: Name or service not known"),
                "name or service not known",
            ),
            (format!("{url} answered 503"), "503 Service Unavailable"),
            (format!("{url} answered 429"), "429 Too Many Requests"),
            (format!("{url} answered 599"), "HTTP 599"),
            (format!("no data from {url} for 30.0 s"), "no data for 30.0 s"),
            (
                format!("body of {url} ended after 10 of 20 bytes"),
                "body ended after 10 of 20 bytes",
            ),
            (
                format!("{url} was slower than 100 B/s for 30.0 s (12 bytes)"),
                "server was slower than 100 B/s for 30.0 s",
            ),
            (
                format!("reading the body of {url} failed after 5 bytes: error decoding response body: Connection reset by peer (os error 104)"),
                "connection reset by peer",
            ),
            (
                format!("bytes 0-99: {url} answered 503"),
                "503 Service Unavailable",
            ),
            (
                format!("bad ranged answer from {url}: 416 with Content-Range None for bytes 5-"),
                "416 with Content-Range None for bytes 5-",
            ),
            (
                format!("mirror {url} failed: cannot connect to {url}: tcp connect error: Connection refused (os error 111); trying http://b/a.bin"),
                "connection refused; trying http://b/a.bin",
            ),
            (
                format!("cannot connect to {url}: connection refused (is the server up, and the port right?)"),
                "connection refused",
            ),
            (
                format!("cannot connect to {url}: host h.invalid not found (DNS: Name or service not known)"),
                "host h.invalid not found",
            ),
            (
                format!("cannot connect to {url}: the TLS certificate of h is not trusted (unknown issuer; pass --ca-cert FILE if this server uses a private CA)"),
                "the TLS certificate of h is not trusted",
            ),
            (
                format!("cannot connect to {url}: the server does not speak TLS on this port (is the URL http://?)"),
                "the server does not speak TLS on this port",
            ),
            ("timed out".to_string(), "timed out"),
            ("TLS handshake failed".to_string(), "TLS handshake failed"),
            (String::new(), ""),
        ];
        for (reason, want) in cases {
            let got = cause(&reason);
            assert_eq!(got.cause, want, "{reason}");
            if reason.contains(url) {
                assert_eq!(got.url, Some(url), "{reason}");
            } else {
                assert_eq!(got.url, None, "{reason}");
            }
        }
    }

    #[test]
    fn url_ends_before_punctuation_and_space() {
        assert_eq!(first_url("to http://h/x: y"), Some("http://h/x"));
        assert_eq!(first_url("(see https://h/x)"), Some("https://h/x"));
        assert_eq!(
            first_url("a http://h/1 (redirected to https://h/2)"),
            Some("http://h/1")
        );
        assert_eq!(first_url("no url here"), None);
    }

    #[test]
    fn never_panics_on_odd_text() {
        for reason in [
            ":",
            ": : :",
            "http://",
            "http:// answered ",
            "x (os error 1",
            "É",
            "http://h/x answered 99999999999999999999",
        ] {
            let _ = cause(reason);
        }
    }
}
