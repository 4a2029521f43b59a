//! HTTP/2: a host that answers over HTTP/2 carries every download to it as
//! a stream on one connection, so `--max-per-host` (which counts
//! connections) no longer holds its downloads back; its job slots do (`-j`,
//! and up to four times as many streams while the host multiplexes).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::Sandbox;

/// How long a body waits for the others before it is sent anyway, so a
/// client that never has them all in flight still finishes (and fails the
/// test on the count, not on a hang).
const GATE_WAIT: Duration = Duration::from_secs(3);

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// An HTTP/2-only TLS server for `localhost`: `/fN.bin` is `body(N, LEN)`.
/// Headers go out at once; every body waits until `gate` requests are in
/// flight together (or [`GATE_WAIT`]).
fn start_h2_server(gate: usize, len: usize) -> (u16, String, Arc<Seen>) {
    let (acceptor, cert_pem) = crate::support::tls::localhost_acceptor_offering(&[b"h2"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let seen = Arc::new(Seen::default());
    let seen_by_server = Arc::clone(&seen);
    let (open, opened) = watch::channel(false);
    let open = Arc::new(open);
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
                seen_by_server.connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen_by_server));
                let (open, opened) = (Arc::clone(&open), opened.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (seen, open, mut opened) =
                            (Arc::clone(&seen), Arc::clone(&open), opened.clone());
                        async move {
                            let seed = req
                                .uri()
                                .path()
                                .trim_start_matches("/f")
                                .trim_end_matches(".bin")
                                .parse::<u64>()
                                .unwrap_or(0);
                            let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
                            if now >= gate {
                                let _ = open.send(true);
                            }
                            let data = Bytes::from(body(seed, len));
                            let frames = futures::stream::once(async move {
                                let _ =
                                    tokio::time::timeout(GATE_WAIT, opened.wait_for(|o| *o)).await;
                                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                                Ok::<_, Infallible>(Frame::data(data))
                            });
                            let mut resp = Response::new(StreamBody::new(frames));
                            resp.headers_mut()
                                .insert(hyper::header::CONTENT_LENGTH, len.into());
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (port, cert_pem, seen)
}

/// A sandbox that trusts the server's certificate (`ca.pem`) and holds
/// `list.txt`, naming its first `files` files.
fn sandbox_with_list(port: u16, pem: &str, files: usize) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("ca.pem", pem);
    let list: String = (0..files)
        .map(|i| format!("https://localhost:{port}/f{i}.bin\n"))
        .collect();
    sb.write("list.txt", list);
    sb
}

#[test]
fn downloads_from_an_http2_host_run_as_streams_beyond_the_per_host_cap() {
    let (files, len) = (8, 64 * 1024);
    let (port, pem, seen) = start_h2_server(files, len);
    let sb = sandbox_with_list(port, &pem, files);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["-j", "8", "--max-per-host", "2", "--ca-cert", "ca.pem"])
        .run();

    out.assert_code(0);
    for i in 0..files {
        assert_file_eq(&sb.dl(&format!("f{i}.bin")), &body(i as u64, len));
    }
    // The first requests go out before anyone knows the host speaks
    // HTTP/2, each on its own connection: the cap bounds those.
    let connections = seen.connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&connections),
        "{connections} connections\n{out}"
    );
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), files, "{out}");
}

#[test]
fn an_http2_host_keeps_more_downloads_in_flight_than_j_within_a_bound() {
    // -j 4 over HTTP/2: up to 4 × 4 streams at once, and no more (the
    // bound), though 24 files wait; the server opens the bodies once 16
    // requests are in flight together.
    let (files, len, in_flight) = (24, 16 * 1024, 16);
    let (port, pem, seen) = start_h2_server(in_flight, len);
    let sb = sandbox_with_list(port, &pem, files);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["-j", "4", "--ca-cert", "ca.pem"])
        .run();

    out.assert_code(0);
    for i in 0..files {
        assert_file_eq(&sb.dl(&format!("f{i}.bin")), &body(i as u64, len));
    }
    assert_eq!(
        seen.max_in_flight.load(Ordering::SeqCst),
        in_flight,
        "{out}"
    );
}
