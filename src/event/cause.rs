//! [`Cause`]: why an attempt, a mirror or a job failed, as events carry it.
//!
//! A cause is the chain of messages of an error, outermost first: haul's
//! own message (which names the URL or the path), then what the libraries
//! and the OS said, with any context the engine put in front ("bytes
//! 0-99"). It reads, and serialises, as those messages joined by ": ",
//! the one line every renderer has always shown. Cheap to clone: events
//! are cloned per consumer. Built by `crate::error` from the error itself;
//! nothing here knows an error type.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// The messages of an error and its causes; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Each message, outermost first.
    links: Arc<[String]>,
    /// `links` joined by ": ", kept so that reading the line costs nothing.
    text: Arc<str>,
}

impl Cause {
    /// A cause of one message.
    pub fn new(message: impl Into<String>) -> Cause {
        Cause::from_links([message.into()])
    }

    /// A cause whose messages are `links`, outermost first.
    pub fn from_links(links: impl IntoIterator<Item = String>) -> Cause {
        let links: Arc<[String]> = links.into_iter().collect();
        let text = links.join(": ").into();
        Cause { links, text }
    }

    /// This cause with `outer` in front, as the message around it:
    /// "bytes 0-99" before "URL answered 503".
    pub fn context(&self, outer: impl Into<String>) -> Cause {
        Cause::from_links(std::iter::once(outer.into()).chain(self.links.iter().cloned()))
    }

    /// This cause with `note` added to the end of its innermost message, as
    /// the command line adds the flag that fixes it.
    pub fn noted(&self, note: &str) -> Cause {
        let mut links = self.links.to_vec();
        match links.last_mut() {
            Some(last) => last.push_str(note),
            None => links.push(note.to_string()),
        }
        Cause::from_links(links)
    }

    /// Each message, outermost first.
    pub fn links(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(String::as_str)
    }

    /// The whole line, messages joined by ": ".
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Cause {
        Cause::new(message)
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Cause {
        Cause::new(message)
    }
}

/// As the line users read, so that code written when a cause was a
/// `String` (`error.contains(..)`, a `&str` parameter) reads it unchanged.
impl Deref for Cause {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for Cause {
    fn eq(&self, other: &str) -> bool {
        *self.text == *other
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        *self.text == **other
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As its line: `--json` shows a reason, not its structure.
impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_serialises_as_its_messages_joined() {
        let inner = Cause::from_links(["http://h/f answered 503".to_string()]);
        let cause = inner.context("bytes 0-99");
        assert_eq!(cause.to_string(), "bytes 0-99: http://h/f answered 503");
        assert_eq!(cause, "bytes 0-99: http://h/f answered 503");
        assert_eq!(
            cause.links().collect::<Vec<_>>(),
            ["bytes 0-99", "http://h/f answered 503"]
        );
        let json = serde_json::to_string(&cause).unwrap_or_default();
        assert_eq!(json, "\"bytes 0-99: http://h/f answered 503\"");
    }

    #[test]
    fn a_note_ends_the_innermost_message() {
        let cause = Cause::new("f exists").context("job 1").noted(" (pass --x)");
        assert_eq!(cause, "job 1: f exists (pass --x)");
        assert_eq!(cause.links().count(), 2);
    }
}
