//! [`SafeUrl`]: a URL as haul shows it, its credentials hidden.
//!
//! Every message, event, log line and hook argument that names a URL takes
//! a `SafeUrl`, so a password or a token in the userinfo cannot reach a
//! terminal, a log or a `--json` consumer by forgetting to hide it: the
//! only way to build one is from a parsed URL, and the hiding happens
//! there. The request itself is made with the real `url::Url`, never with
//! this. Leaf module: it knows nothing of jobs or events.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A URL's text with its credentials hidden: the password becomes `***`;
/// a user name given without a password (often a token, as in
/// `https://TOKEN@host/`) becomes `***` too. Displayed and serialised as
/// that text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeUrl(String);

impl SafeUrl {
    /// `url` with its credentials hidden.
    pub fn new(url: &url::Url) -> SafeUrl {
        if url.username().is_empty() && url.password().is_none() {
            return SafeUrl(url.to_string());
        }
        let mut shown = url.clone();
        let hidden = if url.password().is_some() {
            shown.set_password(Some("***"))
        } else {
            shown.set_username("***")
        };
        SafeUrl(match hidden {
            Ok(()) => shown.to_string(),
            // Only URLs without a host refuse credentials, and those cannot
            // carry any; still, never fall back to showing the original.
            Err(()) => format!("{}:***", url.scheme()),
        })
    }

    /// The text, credentials hidden.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&url::Url> for SafeUrl {
    fn from(url: &url::Url) -> SafeUrl {
        SafeUrl::new(url)
    }
}

/// Parses a URL and hides its credentials at once.
impl FromStr for SafeUrl {
    type Err = url::ParseError;

    fn from_str(text: &str) -> Result<SafeUrl, url::ParseError> {
        url::Url::parse(text).map(|url| SafeUrl::new(&url))
    }
}

/// Read-only text: nothing can be written through it, so the credentials
/// stay hidden, and the messages that take a `&str` take a `SafeUrl` as is.
impl Deref for SafeUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SafeUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_and_bare_user_tokens() {
        let cases = [
            ("http://user:secret@h/a", "http://user:***@h/a"),
            ("https://TOKEN@h/a", "https://***@h/a"),
            ("http://h/a?x=1", "http://h/a?x=1"),
            ("http://:pw@h/", "http://:***@h/"),
        ];
        for (input, want) in cases {
            let url = url::Url::parse(input).expect("valid");
            assert_eq!(SafeUrl::new(&url).to_string(), want);
            assert_eq!(input.parse::<SafeUrl>().ok(), Some(SafeUrl::new(&url)));
            let json = serde_json::to_string(&SafeUrl::new(&url)).unwrap_or_default();
            assert_eq!(json, format!("\"{want}\""));
        }
    }
}
