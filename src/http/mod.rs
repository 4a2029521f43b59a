//! Building the HTTP client: TLS roots, timeouts, and the headers every
//! request carries. Redirects are followed by [`Fetcher`] (in [`fetch`]),
//! hop by hop under the rules of [`redirect`]; range arithmetic lives in
//! [`range`], `Retry-After` parsing in [`retry_after`], and what an
//! answer means for the bytes on disk in [`answer`].

pub mod answer;
pub mod fetch;
pub mod range;
pub mod redirect;
pub mod retry_after;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING};

pub use fetch::{FetchError, Fetcher};
pub use redirect::RedirectError;

/// Client settings from the command line.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub user_agent: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// `--header`s, already validated: sent to each job's own origin only.
    pub headers: Vec<(String, String)>,
    /// Follow redirects from HTTPS to plain HTTP.
    pub allow_insecure_redirect: bool,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read CA certificate {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no usable PEM certificate", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("invalid header {0:?}")]
    Header(String),
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Builds the one client shared by every job (connection reuse across jobs).
pub fn build_client(opts: &ClientOptions) -> Result<Fetcher, ClientError> {
    let mut defaults = HeaderMap::new();
    // Offsets count stored bytes: a transparently decoded body would make
    // every Range wrong. reqwest is built without decompression as well.
    defaults.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    // The user's headers are not defaults: defaults go to every host a
    // redirect points at, and these must not (see `fetch`).
    let user_headers = opts
        .headers
        .iter()
        .map(|(name, value)| header_pair(name, value))
        .collect::<Result<Vec<_>, _>>()?;
    let user_agent = opts
        .user_agent
        .clone()
        .unwrap_or_else(|| format!("haul/{}", env!("CARGO_PKG_VERSION")));
    let mut builder = reqwest::Client::builder()
        .default_headers(defaults)
        .user_agent(user_agent)
        .connect_timeout(opts.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    if let Some(path) = &opts.ca_cert {
        let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::BadCa {
                path: path.clone(),
                source,
            })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(ClientError::Build)?;
    Ok(Fetcher::new(
        client,
        user_headers,
        opts.allow_insecure_redirect,
    ))
}

/// Validates one "Name: value" header.
pub fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ClientError> {
    let bad = || ClientError::Header(format!("{name}: {value}"));
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

/// Splits a "Name: value" command-line header.
pub fn split_header(raw: &str) -> Result<(String, String), ClientError> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| ClientError::Header(raw.to_string()))?;
    header_pair(name, value)?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_validates_headers() {
        assert_eq!(
            split_header("X-Token:  abc ").ok(),
            Some(("X-Token".to_string(), "abc".to_string()))
        );
        assert!(split_header("no colon").is_err());
        assert!(split_header("Bad Name: x").is_err());
        assert!(split_header("X-Ok: line\nbreak").is_err());
    }
}
