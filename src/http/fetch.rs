//! One GET as a job sends it: redirects followed by hand (see [`Chain`]),
//! with the user's headers and URL credentials attached only while the
//! request goes to the origin of the URL the user gave.
//!
//! reqwest's own redirect handling strips only Authorization and Cookie on a
//! cross-host hop; an `X-Api-Key` given with `--header` or `header=` would
//! follow the redirect anywhere, and so would an HTTPS to HTTP downgrade.
//! This module owns what goes on each hop; it does not read bodies, check
//! statuses other than redirects, or time anything out (callers wrap the
//! whole chain in their stall timeout and cancellation).

use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, LOCATION};
use url::Url;

use super::redirect::{credentials, Chain, RedirectError};
use crate::netrc::Netrc;
use crate::safe_url::SafeUrl;

/// The one HTTP client every job shares, with the user's `--header`s kept
/// out of reqwest's default headers so that they go only where they belong.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// `--header`s, validated: sent only to each job's own origin.
    headers: Arc<[(HeaderName, HeaderValue)]>,
    allow_insecure_redirect: bool,
    /// `--netrc` credentials: for a job's own origin only, like userinfo.
    netrc: Option<Arc<Netrc>>,
}

/// Why [`Fetcher::get`] got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer from `url`: the job's URL, or a redirect target if
    /// `redirected`.
    #[error("request to {url} failed")]
    Send {
        url: SafeUrl,
        redirected: bool,
        #[source]
        source: reqwest::Error,
    },
    /// The redirects could not be followed.
    #[error(transparent)]
    Redirect(#[from] RedirectError),
}

impl Fetcher {
    /// Wraps a client built with `redirect::Policy::none()` and without the
    /// user's headers among its defaults.
    pub(super) fn new(
        client: reqwest::Client,
        headers: Vec<(HeaderName, HeaderValue)>,
        allow_insecure_redirect: bool,
    ) -> Fetcher {
        Fetcher {
            client,
            headers: headers.into(),
            allow_insecure_redirect,
            netrc: None,
        }
    }

    /// Adds `--netrc` credentials: basic auth for a URL whose host the file
    /// names, when neither the URL's userinfo nor an Authorization header
    /// gives any, and only while the request stays at that URL's origin.
    pub fn with_netrc(mut self, netrc: Option<Netrc>) -> Fetcher {
        self.netrc = netrc.map(Arc::new);
        self
    }

    /// GETs `url`, following redirects, and returns the final answer
    /// (whatever its status). `job_headers` (the list's `header=` lines),
    /// the `--header`s and `url`'s userinfo go only to `url`'s origin;
    /// `own` (Range, If-Range) goes with every hop, as do the client's
    /// User-Agent and `Accept-Encoding: identity`.
    ///
    /// Precedence for a name set twice: `own` over `job_headers` over
    /// `--header`, and an explicit Authorization header over userinfo over
    /// netrc.
    pub async fn get(
        &self,
        url: &Url,
        job_headers: &[(String, String)],
        own: &[(HeaderName, String)],
    ) -> Result<reqwest::Response, FetchError> {
        self.get_at(url, None, job_headers, own).await
    }

    /// As [`Fetcher::get`], but starting at `resolved`, where an earlier
    /// GET of `url` ended up, instead of walking its redirects again; the
    /// user's headers and credentials still go only to `url`'s origin.
    pub async fn get_at(
        &self,
        url: &Url,
        resolved: Option<&Url>,
        job_headers: &[(String, String)],
        own: &[(HeaderName, String)],
    ) -> Result<reqwest::Response, FetchError> {
        let mut chain = match resolved {
            Some(at) => Chain::resumed(url, at, self.allow_insecure_redirect),
            None => Chain::new(url, self.allow_insecure_redirect),
        };
        loop {
            let req = self.request(&chain, url, job_headers, own);
            let resp = req.send().await.map_err(|source| FetchError::Send {
                url: SafeUrl::new(chain.current()),
                redirected: chain.hops() > 0,
                source,
            })?;
            let location = resp.headers().get(LOCATION).map(HeaderValue::as_bytes);
            // The body of a redirect is dropped unread: at worst that costs
            // the connection, never bytes of the file.
            if !chain.follow(resp.status().as_u16(), location)? {
                return Ok(resp);
            }
        }
    }

    /// The request for the chain's current hop.
    fn request(
        &self,
        chain: &Chain,
        url: &Url,
        job_headers: &[(String, String)],
        own: &[(HeaderName, String)],
    ) -> reqwest::RequestBuilder {
        let mut req = self.client.get(chain.current().clone());
        if chain.at_start_origin() {
            req = self.add_user_headers(req, url, job_headers, own);
        }
        for (name, value) in own {
            req = req.header(name.clone(), value.as_str());
        }
        req
    }

    fn add_user_headers(
        &self,
        mut req: reqwest::RequestBuilder,
        url: &Url,
        job_headers: &[(String, String)],
        own: &[(HeaderName, String)],
    ) -> reqwest::RequestBuilder {
        let in_job = |name: &HeaderName| {
            job_headers
                .iter()
                .any(|(n, _)| name.as_str().eq_ignore_ascii_case(n.trim()))
        };
        let in_own = |name: &HeaderName| own.iter().any(|(n, _)| n == name);
        let mut authorization = false;
        for (name, value) in self.headers.iter() {
            if !in_job(name) && !in_own(name) {
                authorization |= name == AUTHORIZATION;
                req = req.header(name.clone(), value.clone());
            }
        }
        for (name, value) in job_headers {
            authorization |= AUTHORIZATION.as_str().eq_ignore_ascii_case(name.trim());
            // Validated when the list was read; an invalid one would still
            // fail the send, not go out mangled.
            req = req.header(name.trim(), value.as_str());
        }
        if !authorization {
            if let Some((user, password)) = credentials(url) {
                req = req.basic_auth(user, password);
            } else if let Some(found) = self.netrc_for(url) {
                req = req.basic_auth(&found.login, found.password.as_deref());
            }
        }
        req
    }

    /// The netrc entry for `url`'s host (a `default` entry included).
    fn netrc_for(&self, url: &Url) -> Option<&crate::netrc::Credentials> {
        self.netrc.as_deref()?.lookup(url.host_str()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{IF_RANGE, RANGE};

    fn fetcher(headers: &[(&str, &str)]) -> Fetcher {
        let headers = headers
            .iter()
            .map(|(n, v)| super::super::header_pair(n, v).expect("valid test header"))
            .collect();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Fetcher::new(client, headers, false)
    }

    /// The headers of the request for the chain's current hop, as
    /// (lowercase name, value) pairs in order.
    fn sent(
        f: &Fetcher,
        chain: &Chain,
        url: &Url,
        job: &[(&str, &str)],
        own: &[(HeaderName, String)],
    ) -> Vec<(String, String)> {
        let job: Vec<(String, String)> = job
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let req = f.request(chain, url, &job, own).build().expect("request");
        assert!(
            !req.url().as_str().contains('@'),
            "userinfo left in {}",
            req.url()
        );
        req.headers()
            .iter()
            .map(|(n, v)| {
                let v = v.to_str().expect("ascii");
                (n.as_str().to_string(), v.to_string())
            })
            .collect()
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn user_headers_and_credentials_go_to_the_start_origin_only() {
        let f = fetcher(&[("X-Api-Key", "k1")]);
        let url = Url::parse("http://user:pw@a:8000/x").expect("url");
        let own = [(RANGE, "bytes=5-".to_string())];
        let mut chain = Chain::new(&url, false);

        let home = sent(&f, &chain, &url, &[("X-List-Key", "k2")], &own);
        assert_eq!(
            names(&home),
            ["x-api-key", "x-list-key", "authorization", "range"]
        );
        assert_eq!(home[2].1, "Basic dXNlcjpwdw==");

        chain.follow(302, Some(b"//b:8000/y")).expect("follow");
        let away = sent(&f, &chain, &url, &[("X-List-Key", "k2")], &own);
        assert_eq!(away, [("range".to_string(), "bytes=5-".to_string())]);

        chain.follow(302, Some(b"http://a:8000/z")).expect("follow");
        let back = sent(&f, &chain, &url, &[("X-List-Key", "k2")], &own);
        assert_eq!(names(&back).len(), 4, "{back:?}");
    }

    #[test]
    fn own_headers_win_over_job_headers_over_command_line_headers() {
        let f = fetcher(&[("X-Key", "global"), ("If-Range", "user"), ("X-Other", "o")]);
        let url = Url::parse("http://a/x").expect("url");
        let own = [(IF_RANGE, "\"tag\"".to_string())];
        let chain = Chain::new(&url, false);
        let headers = sent(&f, &chain, &url, &[("x-key", "job")], &own);
        assert_eq!(
            headers,
            [
                ("x-other".to_string(), "o".to_string()),
                ("x-key".to_string(), "job".to_string()),
                ("if-range".to_string(), "\"tag\"".to_string()),
            ]
        );
    }

    #[test]
    fn netrc_credentials_go_to_their_host_at_the_start_origin_only() {
        let netrc = Netrc::parse("machine a login n password pw\n", "netrc").expect("netrc");
        let f = fetcher(&[]).with_netrc(Some(netrc));
        let url = Url::parse("http://a:8000/x").expect("url");
        let mut chain = Chain::new(&url, false);
        let home = sent(&f, &chain, &url, &[], &[]);
        // base64("n:pw")
        assert_eq!(home, [("authorization".into(), "Basic bjpwdw==".into())]);

        chain.follow(302, Some(b"http://b:8000/y")).expect("follow");
        assert_eq!(sent(&f, &chain, &url, &[], &[]), []);
        // Same host, another port: another origin, so nothing either.
        chain.follow(302, Some(b"http://a:9000/y")).expect("follow");
        assert_eq!(sent(&f, &chain, &url, &[], &[]), []);

        let other = Url::parse("http://b/x").expect("url");
        assert_eq!(sent(&f, &Chain::new(&other, false), &other, &[], &[]), []);
    }

    #[test]
    fn userinfo_and_authorization_headers_beat_netrc() {
        let netrc = Netrc::parse("default login n password pw", "netrc").expect("netrc");
        let f = fetcher(&[]).with_netrc(Some(netrc));
        let url = Url::parse("http://user:pw@a/x").expect("url");
        let chain = Chain::new(&url, false);
        assert_eq!(
            sent(&f, &chain, &url, &[], &[]),
            [("authorization".into(), "Basic dXNlcjpwdw==".into())]
        );
        let url = Url::parse("http://a/x").expect("url");
        let chain = Chain::new(&url, false);
        assert_eq!(
            sent(&f, &chain, &url, &[("Authorization", "Bearer t")], &[]),
            [("authorization".into(), "Bearer t".into())]
        );
    }

    #[test]
    fn an_explicit_authorization_header_beats_userinfo() {
        let f = fetcher(&[]);
        let url = Url::parse("http://user:pw@a/x").expect("url");
        let chain = Chain::new(&url, false);
        let headers = sent(&f, &chain, &url, &[("Authorization", "Bearer t")], &[]);
        assert_eq!(
            headers,
            [("authorization".to_string(), "Bearer t".to_string())]
        );
    }
}
