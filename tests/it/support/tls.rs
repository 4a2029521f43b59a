//! An HTTPS server for `localhost` that answers every request with a
//! redirect, for tests of what haul does when a redirect leaves HTTPS.
//!
//! Its certificate is self-signed (rcgen) and handed to the test as PEM for
//! `--ca-cert`. It serves no files and keeps no log beyond a request count:
//! the redirect targets live on a [`super::server::TestServer`], whose log
//! shows what, if anything, followed. Like that server it runs on its own
//! thread and runtime, and stops when dropped.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::LOCATION;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

/// The running server; see the module docs.
/// A TLS acceptor for `localhost` with a fresh self-signed certificate, and
/// that certificate's PEM (for `--ca-cert`).
pub fn localhost_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    localhost_acceptor_offering(&[])
}

/// As [`localhost_acceptor`], offering `protocols` by ALPN (`b"h2"` for
/// HTTP/2).
pub fn localhost_acceptor_offering(protocols: &[&[u8]]) -> (tokio_rustls::TlsAcceptor, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate a certificate");
    let cert_pem = certified.cert.pem();
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .expect("server config");
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert_pem)
}

pub struct TlsRedirector {
    port: u16,
    cert_pem: String,
    requests: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl TlsRedirector {
    /// Answers a request for `/PATH` with `status` and `Location: BASE/PATH`,
    /// where `base` is e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub fn start(base: &str, status: u16) -> TlsRedirector {
        let (acceptor, cert_pem) = localhost_acceptor();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("listener address").port();
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let requests = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let base = base.trim_end_matches('/').to_string();
        let (count, stop) = (Arc::clone(&requests), shutdown.clone());
        std::thread::Builder::new()
            .name(format!("tls-redirector-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(serve(listener, acceptor, base, status, count, stop));
            })
            .expect("spawn the TLS redirector thread");
        TlsRedirector {
            port,
            cert_pem,
            requests,
            shutdown,
        }
    }

    /// `https://localhost:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with '/': {path}");
        format!("https://localhost:{}{path}", self.port)
    }

    /// Writes the server's certificate as PEM into `dir` and returns its path,
    /// for `--ca-cert`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("redirector-ca.pem");
        std::fs::write(&path, &self.cert_pem).expect("write the CA file");
        path
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TlsRedirector {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    base: String,
    status: u16,
    requests: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    let status = StatusCode::from_u16(status).expect("a valid status");
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => return,
            },
        };
        let (acceptor, base, count) = (acceptor.clone(), base.clone(), Arc::clone(&requests));
        tokio::spawn(async move {
            // A client that refuses our certificate ends the handshake.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                count.fetch_add(1, Ordering::SeqCst);
                let location = format!("{base}{}", req.uri().path());
                async move {
                    let reply = Response::builder()
                        .status(status)
                        .header(LOCATION, location)
                        .body(Empty::<Bytes>::new())
                        .expect("a valid redirect");
                    Ok::<_, Infallible>(reply)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
