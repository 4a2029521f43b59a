//! The `.netrc` file as curl reads it: `machine HOST login USER password
//! PASS` entries, a `default` entry, `macdef` blocks skipped, tokens split by
//! any whitespace, `"quoted tokens"` with backslash escapes, `#` comments
//! where a keyword may stand.
//!
//! This module only parses and looks up. It reads no file and sends nothing:
//! `config` reads the file, and [`crate::http::Fetcher`] decides where the
//! credentials may go (the job's own origin only). No message built here
//! ever holds a login, a password or any word of the file, so a typo next to
//! a password cannot print it.

/// Basic-auth credentials for one host.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `login` token (empty if the entry had none).
    pub login: String,
    /// The `password` token, if the entry had one.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A parsed netrc file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    machines: Vec<(String, Credentials)>,
    default: Option<Credentials>,
}

/// Why a netrc file was rejected; `file` names it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetrcError {
    /// A keyword (`machine`, `login`, ...) at the end of the file.
    #[error("{file}:{line}: '{keyword}' is not followed by a value")]
    MissingValue {
        file: String,
        line: usize,
        keyword: &'static str,
    },
    /// `login`, `password` or `account` before any `machine` or `default`.
    #[error("{file}:{line}: '{keyword}' comes before any 'machine' or 'default'")]
    Orphan {
        file: String,
        line: usize,
        keyword: &'static str,
    },
    /// A word where a keyword belongs (the word is not shown: it may be a
    /// password that lost its keyword).
    #[error("{file}:{line}: unexpected word (expected machine, default, login, password, account or macdef)")]
    Unexpected { file: String, line: usize },
    /// A `"` without its closing `"`.
    #[error("{file}:{line}: a quoted word is not closed")]
    Unterminated { file: String, line: usize },
}

impl Netrc {
    /// Parses netrc text; `source` (a path) names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<Netrc, NetrcError> {
        Parser {
            tokens: Tokens::new(text),
            source,
        }
        .run()
    }

    /// The credentials for `host`: the first `machine` entry naming it
    /// (case-insensitively), else the `default` entry. IPv6 hosts may be
    /// given with or without brackets.
    pub fn lookup(&self, host: &str) -> Option<&Credentials> {
        let bare = |h: &str| {
            h.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h)
                .to_ascii_lowercase()
        };
        let host = bare(host);
        self.machines
            .iter()
            .find(|(machine, _)| bare(machine) == host)
            .map(|(_, creds)| creds)
            .or(self.default.as_ref())
    }

    #[cfg(test)]
    /// Whether the file held no entry at all.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty() && self.default.is_none()
    }
}

/// Which entry the tokens being read belong to.
enum Entry {
    None,
    Machine(usize),
    Default,
    /// A second `default`: read, then dropped (the first one wins, as the
    /// first matching machine does).
    Ignored,
}

struct Parser<'a> {
    tokens: Tokens<'a>,
    source: &'a str,
}

impl Parser<'_> {
    fn run(mut self) -> Result<Netrc, NetrcError> {
        let mut netrc = Netrc::default();
        let mut entry = Entry::None;
        loop {
            let word = match self.tokens.next(true) {
                Ok(Some(word)) => word,
                Ok(None) => return Ok(netrc),
                Err(line) => return Err(self.unterminated(line)),
            };
            let line = self.tokens.line;
            match word.as_str() {
                "machine" => {
                    let host = self.value("machine")?;
                    netrc.machines.push((host, empty()));
                    entry = Entry::Machine(netrc.machines.len() - 1);
                }
                "default" => {
                    entry = if netrc.default.is_none() {
                        netrc.default = Some(empty());
                        Entry::Default
                    } else {
                        Entry::Ignored
                    };
                }
                "login" | "password" | "account" => {
                    let keyword = match word.as_str() {
                        "login" => "login",
                        "password" => "password",
                        _ => "account",
                    };
                    let value = self.value(keyword)?;
                    let mut scratch = empty();
                    let creds = match entry {
                        Entry::Machine(i) => &mut netrc.machines[i].1,
                        Entry::Default => netrc.default.get_or_insert_with(empty),
                        Entry::Ignored => &mut scratch,
                        Entry::None => return Err(self.orphan(line, keyword)),
                    };
                    match keyword {
                        "login" => creds.login = value,
                        "password" => creds.password = Some(value),
                        // Only FTP ever used `account`.
                        _ => {}
                    }
                }
                "macdef" => {
                    self.value("macdef")?;
                    self.tokens.skip_macro();
                    // A macro ends the entry it sat in, as in ftp(1).
                    entry = Entry::None;
                }
                _ => {
                    return Err(NetrcError::Unexpected {
                        file: self.source.to_string(),
                        line,
                    })
                }
            }
        }
    }

    /// The token after `keyword`.
    fn value(&mut self, keyword: &'static str) -> Result<String, NetrcError> {
        let line = self.tokens.line;
        match self.tokens.next(false) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(NetrcError::MissingValue {
                file: self.source.to_string(),
                line,
                keyword,
            }),
            Err(line) => Err(self.unterminated(line)),
        }
    }

    fn orphan(&self, line: usize, keyword: &'static str) -> NetrcError {
        NetrcError::Orphan {
            file: self.source.to_string(),
            line,
            keyword,
        }
    }

    fn unterminated(&self, line: usize) -> NetrcError {
        NetrcError::Unterminated {
            file: self.source.to_string(),
            line,
        }
    }
}

fn empty() -> Credentials {
    Credentials {
        login: String::new(),
        password: None,
    }
}

/// Whitespace-separated words with quoting and comments, counting lines.
struct Tokens<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
    /// Line of the last token returned (1-based).
    line: usize,
    /// Line the next unread character is on.
    at_line: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens {
            rest: text.chars().peekable(),
            line: 1,
            at_line: 1,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c == '\n' {
            self.at_line += 1;
        }
        Some(c)
    }

    /// The next word; `keyword_position` lets a `#` start a comment there
    /// (in a value position `#` is part of a password). `Err(line)`: an
    /// unterminated quote that started on `line`.
    fn next(&mut self, keyword_position: bool) -> Result<Option<String>, usize> {
        loop {
            match self.rest.peek() {
                None => return Ok(None),
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') if keyword_position => {
                    while self.rest.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        self.line = self.at_line;
        let mut word = String::new();
        if self.rest.peek() == Some(&'"') {
            self.bump();
            loop {
                match self.bump() {
                    None => return Err(self.line),
                    Some('"') => return Ok(Some(word)),
                    Some('\\') => match self.bump() {
                        None => return Err(self.line),
                        Some('n') => word.push('\n'),
                        Some('r') => word.push('\r'),
                        Some('t') => word.push('\t'),
                        Some(c) => word.push(c),
                    },
                    Some(c) => word.push(c),
                }
            }
        }
        while let Some(&c) = self.rest.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            self.bump();
        }
        Ok(Some(word))
    }

    /// Skips a macro body: the rest of the `macdef` line, then every line
    /// up to and including the first empty one.
    fn skip_macro(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
        loop {
            let mut blank = true;
            let mut ended = false;
            loop {
                match self.bump() {
                    None => {
                        ended = true;
                        break;
                    }
                    Some('\n') => break,
                    Some(c) if c.is_whitespace() => {}
                    Some(_) => blank = false,
                }
            }
            if blank || ended {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Netrc {
        Netrc::parse(text, "netrc").unwrap_or_else(|e| panic!("{e}"))
    }

    fn creds(login: &str, password: &str) -> Credentials {
        Credentials {
            login: login.to_string(),
            password: Some(password.to_string()),
        }
    }

    #[test]
    fn finds_the_machine_on_one_line_or_spread_over_several() {
        let n = parse(
            "machine a.example login alice password s3cret\n\
             machine\n  b.example\n  login bob\n\n  password\tp2\n",
        );
        assert_eq!(n.lookup("a.example"), Some(&creds("alice", "s3cret")));
        assert_eq!(n.lookup("B.Example"), Some(&creds("bob", "p2")));
        assert_eq!(n.lookup("c.example"), None);
    }

    #[test]
    fn first_matching_machine_wins_and_default_catches_the_rest() {
        let n = parse(
            "machine h login first password 1\n\
             default login anon password guest\n\
             machine h login second password 2\n",
        );
        assert_eq!(n.lookup("h"), Some(&creds("first", "1")));
        assert_eq!(n.lookup("other"), Some(&creds("anon", "guest")));
    }

    #[test]
    fn skips_macdef_bodies_up_to_the_blank_line() {
        let n = parse(
            "machine a login u password p\n\
             macdef init\n\
             machine evil login x password y\n\
             cd /pub\n\
             \n\
             machine b login v password q\n",
        );
        assert_eq!(n.lookup("a"), Some(&creds("u", "p")));
        assert_eq!(n.lookup("evil"), None);
        assert_eq!(n.lookup("b"), Some(&creds("v", "q")));
    }

    #[test]
    fn reads_quoted_words_and_comments_but_not_hash_passwords() {
        let n = parse(
            "# my hosts\n\
             machine a login \"a user\" password \"p w\\\"d\\\\\" # trailing\n\
             machine b login u password #notacomment\n",
        );
        assert_eq!(n.lookup("a"), Some(&creds("a user", "p w\"d\\")));
        assert_eq!(n.lookup("b"), Some(&creds("u", "#notacomment")));
    }

    #[test]
    fn ignores_account_and_keeps_entries_without_password() {
        let n = parse("machine a login u account acct\nmachine [::1] login six password 6");
        assert_eq!(
            n.lookup("a"),
            Some(&Credentials {
                login: "u".to_string(),
                password: None
            })
        );
        assert_eq!(n.lookup("[::1]"), Some(&creds("six", "6")));
        assert_eq!(n.lookup("::1"), Some(&creds("six", "6")));
    }

    #[test]
    fn empty_and_comment_only_files_have_no_entries() {
        assert!(parse("").is_empty());
        assert!(parse("  \n# nothing\n\n").is_empty());
        assert_eq!(parse("").lookup("h"), None);
    }

    #[test]
    fn rejects_malformed_files_naming_the_line_but_no_secret() {
        let err = |text: &str| match Netrc::parse(text, "/home/u/.netrc") {
            Ok(n) => panic!("accepted {text:?}: {n:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err("machine a login u password"),
            "/home/u/.netrc:1: 'password' is not followed by a value"
        );
        assert_eq!(
            err("\nlogin u password p"),
            "/home/u/.netrc:2: 'login' comes before any 'machine' or 'default'"
        );
        let typo = err("machine a login u\npasswd hunter2\n");
        assert!(
            typo.starts_with("/home/u/.netrc:2: unexpected word"),
            "{typo}"
        );
        assert!(
            !typo.contains("hunter2") && !typo.contains("passwd"),
            "{typo}"
        );
        assert_eq!(
            err("machine a password \"open"),
            "/home/u/.netrc:1: a quoted word is not closed"
        );
        assert!(err("machine a password \"x\\").contains("not closed"));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", parse("machine a login u password hunter2"));
        assert!(
            shown.contains("\"u\"") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix of a tricky file, and
        // every slice of a mixed alphabet, parses or errors, never panics.
        let tricky =
            "machine \"a\\\nb\" login # macdef m\n\n\tdefault default login \"\u{e9}\" password \\";
        for end in tricky.char_indices().map(|(i, _)| i) {
            let _ = Netrc::parse(&tricky[..end], "f");
        }
        let alphabet = [
            "machine", "default", "login", "password", "account", "macdef", "\"", "\\", "#", "\n",
            " ", "x", "\n\n",
        ];
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..12 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                text.push_str(alphabet[state as usize % alphabet.len()]);
                if state.is_multiple_of(3) {
                    text.push(' ');
                }
            }
            if let Ok(n) = Netrc::parse(&text, "f") {
                let _ = n.lookup("x");
            }
        }
    }
}
