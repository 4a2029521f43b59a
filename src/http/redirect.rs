//! Where a chain of redirects goes next, and when it must stop: the pure
//! rules behind [`super::Fetcher`], which follows redirects by hand so that
//! it decides, hop by hop, what each request may carry.
//!
//! A [`Chain`] turns one answer (status and `Location`) into the next URL or
//! a [`RedirectError`]. It never sends anything and never sees headers other
//! than `Location`. Every URL it holds has its userinfo and fragment removed:
//! credentials travel only as a header the fetcher adds (and only to the
//! origin the user named), fragments are never sent, and no message built
//! from these URLs can show a password.

use url::Url;

/// Most redirect hops followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// Why a chain of redirects was not followed to its end. All of these are
/// final: the same server will answer the same way next time.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    /// HTTPS to plain HTTP without `--allow-insecure-redirect`.
    #[error("redirect from {from} to {to} refused: it leaves HTTPS for plain HTTP (use --allow-insecure-redirect)")]
    Insecure { from: String, to: String },
    /// A target that is neither http nor https (`file:`, `ftp:`, ...).
    #[error("redirect from {from} to {to} refused: only http and https URLs are followed")]
    Scheme { from: String, to: String },
    /// A target already requested in this chain.
    #[error("redirect loop: {from} leads back to {to}")]
    Loop { from: String, to: String },
    /// One hop more than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects from {start} (the next from {from} to {to})")]
    TooMany {
        start: String,
        from: String,
        to: String,
    },
    /// A redirect status without a `Location` header.
    #[error("{from} answered {status} (a redirect) without a Location header")]
    MissingLocation { from: String, status: u16 },
    /// A `Location` that is not UTF-8 or does not resolve to a URL. The raw
    /// value is not shown: it may hold credentials that did not parse.
    #[error("{from} answered {status} (a redirect) with an unusable Location header")]
    BadLocation {
        from: String,
        status: u16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Whether `status` is a redirect haul follows (RFC 9110 §15.4). 300, 304
/// and 305 are not: they are answers in their own right.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// One request's chain of redirects: the URL the user gave, the URL to ask
/// now, and every URL asked so far (for loop detection).
#[derive(Debug, Clone)]
pub struct Chain {
    start: Url,
    current: Url,
    visited: Vec<Url>,
    allow_insecure: bool,
}

impl Chain {
    /// A chain that starts at `url`; `allow_insecure` permits HTTPS to HTTP
    /// hops.
    pub fn new(url: &Url, allow_insecure: bool) -> Chain {
        let start = bare(url.clone());
        Chain {
            current: start.clone(),
            visited: vec![start.clone()],
            start,
            allow_insecure,
        }
    }

    /// A chain for `start` that goes straight to `at`, where an earlier
    /// request for `start` was redirected: what `start`'s origin may be
    /// sent is judged as if the redirects had been followed again.
    pub fn resumed(start: &Url, at: &Url, allow_insecure: bool) -> Chain {
        let start = bare(start.clone());
        let current = bare(at.clone());
        Chain {
            visited: vec![start.clone(), current.clone()],
            current,
            start,
            allow_insecure,
        }
    }

    /// The URL to request now, without userinfo or fragment.
    pub fn current(&self) -> &Url {
        &self.current
    }

    /// Redirects followed so far.
    pub fn hops(&self) -> usize {
        self.visited.len() - 1
    }

    /// Whether the current URL has the origin (scheme, host, port) of the
    /// URL the user gave: only then may the user's headers and credentials go
    /// with the request.
    pub fn at_start_origin(&self) -> bool {
        self.current.origin() == self.start.origin()
    }

    /// Reads one answer. `Ok(false)`: not a redirect, the answer is final.
    /// `Ok(true)`: [`Chain::current`] is now the redirect target, to request
    /// next. `location` is the raw `Location` header, if any.
    pub fn follow(&mut self, status: u16, location: Option<&[u8]>) -> Result<bool, RedirectError> {
        if !is_redirect(status) {
            return Ok(false);
        }
        let from = self.current.to_string();
        let raw = location.ok_or_else(|| RedirectError::MissingLocation {
            from: from.clone(),
            status,
        })?;
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| RedirectError::BadLocation {
            from: from.clone(),
            status,
            source,
        };
        // Servers do send raw UTF-8 here; joining percent-encodes it as
        // browsers do. Relative references resolve against the current URL
        // (RFC 9110 §10.2.2).
        let text = std::str::from_utf8(raw).map_err(|e| bad(Box::new(e)))?;
        let next = self
            .current
            .join(text.trim())
            .map_err(|e| bad(Box::new(e)))?;
        let next = bare(next);
        let to = next.to_string();
        if next.scheme() != "http" && next.scheme() != "https" {
            return Err(RedirectError::Scheme { from, to });
        }
        if self.current.scheme() == "https" && next.scheme() == "http" && !self.allow_insecure {
            return Err(RedirectError::Insecure { from, to });
        }
        if self.visited.contains(&next) {
            return Err(RedirectError::Loop { from, to });
        }
        if self.hops() >= MAX_REDIRECTS {
            let start = self.start.to_string();
            return Err(RedirectError::TooMany { start, from, to });
        }
        self.visited.push(next.clone());
        self.current = next;
        Ok(true)
    }
}

/// `url` without userinfo and fragment.
/// Whether an answer for `asked` came from elsewhere (`got` is the answer's
/// URL): redirects were followed to reach it.
pub fn redirected(asked: &Url, got: &Url) -> bool {
    asked.origin() != got.origin() || asked.path() != got.path() || asked.query() != got.query()
}

fn bare(mut url: Url) -> Url {
    // Both fail only for URLs that cannot have userinfo at all.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    url
}

/// The userinfo of `url`, percent-decoded, as basic-auth credentials (what
/// reqwest itself would send for such a URL); `None` if it has none.
pub fn credentials(url: &Url) -> Option<(String, Option<String>)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode);
    if user.is_empty() && password.is_none() {
        return None;
    }
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    fn chain(s: &str) -> Chain {
        Chain::new(&url(s), false)
    }

    #[test]
    fn a_final_answer_is_not_followed() {
        let mut c = chain("http://a/x");
        for status in [200, 206, 300, 304, 404, 416, 500] {
            assert!(!c.follow(status, Some(b"/y")).expect("not an error"));
        }
        assert_eq!(c.current().as_str(), "http://a/x");
    }

    #[test]
    fn resolves_relative_locations_against_the_current_url() {
        let mut c = chain("http://a/dir/x?q=1");
        assert!(c.follow(302, Some(b"y")).expect("follow"));
        assert_eq!(c.current().as_str(), "http://a/dir/y");
        assert!(c.follow(301, Some(b"/top")).expect("follow"));
        assert_eq!(c.current().as_str(), "http://a/top");
        assert!(c.follow(307, Some(b"//b:81/z")).expect("follow"));
        assert_eq!(c.current().as_str(), "http://b:81/z");
        assert!(c.follow(308, Some(b"?page=2")).expect("follow"));
        assert_eq!(c.current().as_str(), "http://b:81/z?page=2");
        assert_eq!(c.hops(), 4);
    }

    #[test]
    fn percent_encodes_a_raw_utf8_location() {
        let mut c = chain("http://a/x");
        assert!(c.follow(302, Some("/ü.bin".as_bytes())).expect("follow"));
        assert_eq!(c.current().as_str(), "http://a/%C3%BC.bin");
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        let mut c = Chain::new(&url("http://user:pw@a/x"), true);
        assert!(c.at_start_origin());
        c.follow(302, Some(b"http://a:80/y")).expect("follow");
        assert!(c.at_start_origin(), "the default port is the same origin");
        c.follow(302, Some(b"http://a:8080/y")).expect("follow");
        assert!(!c.at_start_origin(), "another port");
        c.follow(302, Some(b"http://b/y")).expect("follow");
        assert!(!c.at_start_origin(), "another host");
        c.follow(302, Some(b"https://a/y")).expect("follow");
        assert!(!c.at_start_origin(), "another scheme");
        c.follow(302, Some(b"http://a/back")).expect("follow");
        assert!(c.at_start_origin(), "back home");
    }

    #[test]
    fn drops_userinfo_and_fragments_from_every_hop() {
        let mut c = chain("http://user:pw@a/x#frag");
        assert_eq!(c.current().as_str(), "http://a/x");
        c.follow(302, Some(b"http://other:secret@b/y#f"))
            .expect("follow");
        assert_eq!(c.current().as_str(), "http://b/y");
    }

    #[test]
    fn refuses_https_to_http_unless_allowed() {
        let mut c = chain("https://a/x");
        match c.follow(302, Some(b"http://b/y")) {
            Err(RedirectError::Insecure { from, to }) => {
                assert_eq!((from.as_str(), to.as_str()), ("https://a/x", "http://b/y"));
            }
            other => panic!("expected Insecure, got {other:?}"),
        }
        let mut allowed = Chain::new(&url("https://a/x"), true);
        assert!(allowed.follow(302, Some(b"http://b/y")).expect("allowed"));
        let mut upgrade = chain("http://a/x");
        assert!(upgrade.follow(302, Some(b"https://b/y")).expect("upgrade"));
    }

    #[test]
    fn refuses_targets_that_are_not_http() {
        for target in ["file:///etc/passwd", "ftp://a/x", "data:text/plain,hi"] {
            let err = chain("http://a/x").follow(302, Some(target.as_bytes()));
            assert!(
                matches!(err, Err(RedirectError::Scheme { .. })),
                "{target}: {err:?}"
            );
        }
    }

    #[test]
    fn detects_a_loop_at_the_first_repeat() {
        let mut c = chain("http://a/1");
        c.follow(302, Some(b"/2")).expect("follow");
        c.follow(302, Some(b"/3")).expect("follow");
        let err = c.follow(302, Some(b"/1#other-fragment"));
        assert!(matches!(err, Err(RedirectError::Loop { .. })), "{err:?}");
        let mut self_loop = chain("http://a/1");
        let err = self_loop.follow(301, Some(b"/1"));
        assert!(matches!(err, Err(RedirectError::Loop { .. })), "{err:?}");
    }

    #[test]
    fn follows_ten_hops_and_refuses_the_eleventh() {
        let mut c = chain("http://a/0");
        for hop in 1..=MAX_REDIRECTS {
            let target = format!("/{hop}");
            assert!(c
                .follow(302, Some(target.as_bytes()))
                .expect("within budget"));
        }
        assert_eq!(c.hops(), MAX_REDIRECTS);
        let err = c.follow(302, Some(b"/11"));
        match err {
            Err(RedirectError::TooMany { start, from, to }) => {
                assert_eq!(start, "http://a/0");
                assert_eq!(from, "http://a/10");
                assert_eq!(to, "http://a/11");
            }
            other => panic!("expected TooMany, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_unusable_location_is_an_error() {
        let err = chain("http://a/x").follow(302, None);
        assert!(
            matches!(err, Err(RedirectError::MissingLocation { status: 302, .. })),
            "{err:?}"
        );
        for raw in [&b"\xff\xfe"[..], b"http://[::1", b"http://a:99999/"] {
            let err = chain("http://a/x").follow(301, Some(raw));
            assert!(
                matches!(err, Err(RedirectError::BadLocation { .. })),
                "{raw:?}: {err:?}"
            );
        }
    }

    #[test]
    fn credentials_are_percent_decoded_userinfo() {
        assert_eq!(credentials(&url("http://a/x")), None);
        assert_eq!(
            credentials(&url("http://us%40er:p%3Ass@a/x")),
            Some(("us@er".to_string(), Some("p:ss".to_string())))
        );
        assert_eq!(
            credentials(&url("http://token@a/x")),
            Some(("token".to_string(), None))
        );
    }
}
