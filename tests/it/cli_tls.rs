//! HTTPS: a private CA given with --ca-cert is trusted; without it the
//! certificate is refused at once (no retries), like curl's exit 60.

use std::convert::Infallible;
use std::process::Command;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const BODY: &[u8] = b"served over TLS by a private CA\n";

/// An HTTPS server for `localhost` on its own thread and runtime; returns the
/// port and the PEM of its self-signed certificate.
fn start_tls_server() -> (u16, String) {
    let (acceptor, cert_pem) = crate::support::tls::localhost_acceptor();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends the handshake.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (port, cert_pem)
}

#[test]
fn https_with_a_private_ca_given_by_ca_cert() {
    let (port, pem) = start_tls_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("write ca");
    let out = dir.path().join("out");
    let url = format!("https://localhost:{port}/tls.txt");

    let trusted = Command::new(env!("CARGO_BIN_EXE_haul"))
        .args(["get", &url, "-q", "--ca-cert"])
        .arg(&ca)
        .arg("-d")
        .arg(&out)
        .output()
        .expect("run haul");
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(std::fs::read(out.join("tls.txt")).expect("read"), BODY);
}

#[test]
fn untrusted_certificate_fails_at_once_without_retries() {
    let (port, _pem) = start_tls_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("https://localhost:{port}/tls.txt");
    let started = std::time::Instant::now();
    let refused = Command::new(env!("CARGO_BIN_EXE_haul"))
        .args(["get", &url, "--retry-wait", "2", "-d"])
        .arg(dir.path())
        .output()
        .expect("run haul");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("certificate"), "stderr: {stderr}");
    assert!(
        !stderr.contains("retry"),
        "a certificate error was retried: {stderr}"
    );
    // A retry would have waited at least 0.2 s (a tenth of --retry-wait).
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(!dir.path().join("tls.txt").exists());
}
