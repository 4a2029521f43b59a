//! Self-tests of the test server: every fault and every Range form, seen
//! through reqwest. The CLI tests trust these behaviours, so they are pinned
//! here first; nothing here runs haul.

use std::time::{Duration, Instant};

use crate::support::bodies::body;
use crate::support::server::{Fault, TestServer};

/// A client that never uses a proxy and never follows redirects unless asked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build a reqwest client")
}

/// Runs a future on a fresh runtime; self-tests stay plain `#[test]`s so the
/// server's own blocking API can be called between awaits.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a test runtime")
        .block_on(f)
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("send GET")
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

/// Reads the body chunk by chunk until it ends, fails, or goes quiet for
/// `quiet`; returns the bytes and how it stopped.
async fn read_body(mut resp: reqwest::Response, quiet: Duration) -> (Vec<u8>, &'static str) {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(quiet, resp.chunk()).await {
            Err(_) => return (got, "stalled"),
            Ok(Err(_)) => return (got, "error"),
            Ok(Ok(None)) => return (got, "end"),
            Ok(Ok(Some(chunk))) => got.extend_from_slice(&chunk),
        }
    }
}

#[test]
fn serves_full_body_with_strong_validators() {
    let server = TestServer::start();
    let data = body(1, 100_000);
    server.add_file("/a.bin", data.clone());
    assert_eq!(
        server.url("/a.bin"),
        format!("http://127.0.0.1:{}/a.bin", server.port())
    );
    block_on(async {
        let resp = get(&server.url("/a.bin"), &[]).await;
        assert_eq!(resp.status(), 200);
        let etag = header(&resp, "etag").expect("etag");
        assert!(etag.starts_with("\"v1-") && etag.ends_with('"'), "{etag}");
        assert_eq!(Some(etag), server.etag("/a.bin"));
        assert!(header(&resp, "last-modified").is_some());
        assert_eq!(header(&resp, "accept-ranges").as_deref(), Some("bytes"));
        assert_eq!(header(&resp, "content-length").as_deref(), Some("100000"));
        assert_eq!(resp.bytes().await.expect("body"), data);
    });
    assert_eq!(server.bytes_served("/a.bin"), 100_000);
    let log = server.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[0].host, "127.0.0.1");
}

#[test]
fn head_reports_length_without_body() {
    let server = TestServer::start();
    server.add_file("/a.bin", body(2, 5000));
    block_on(async {
        let resp = client()
            .head(server.url("/a.bin"))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-length").as_deref(), Some("5000"));
        assert!(header(&resp, "etag").is_some());
    });
    assert_eq!(server.bytes_served("/a.bin"), 0);
}

#[test]
fn unknown_path_is_404() {
    let server = TestServer::start();
    block_on(async {
        assert_eq!(get(&server.url("/nope"), &[]).await.status(), 404);
    });
    assert_eq!(server.requests()[0].status, Some(404));
}

#[test]
fn serves_every_range_form() {
    let server = TestServer::start();
    let data = body(3, 1000);
    server.add_file("/r", data.clone());
    block_on(async {
        for (range, first, last) in [
            ("bytes=100-", 100, 999),
            ("bytes=100-199", 100, 199),
            ("bytes=-50", 950, 999),
            ("bytes=900-5000", 900, 999),
        ] {
            let resp = get(&server.url("/r"), &[("range", range)]).await;
            assert_eq!(resp.status(), 206, "{range}");
            assert_eq!(
                header(&resp, "content-range"),
                Some(format!("bytes {first}-{last}/1000")),
                "{range}"
            );
            let got = resp.bytes().await.expect("body");
            assert_eq!(&got[..], &data[first..=last], "{range}");
        }
    });
}

#[test]
fn unsatisfiable_range_is_416_with_length() {
    let server = TestServer::start();
    server.add_file("/r", body(4, 1000));
    block_on(async {
        let resp = get(&server.url("/r"), &[("range", "bytes=1000-")]).await;
        assert_eq!(resp.status(), 416);
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes */1000")
        );
    });
}

#[test]
fn malformed_or_multiple_ranges_get_the_full_body() {
    let server = TestServer::start();
    server.add_file("/r", body(5, 1000));
    block_on(async {
        for range in ["bytes=20-10", "bytes=0-1,5-6", "lines=1-2", "bytes=x-"] {
            let resp = get(&server.url("/r"), &[("range", range)]).await;
            assert_eq!(resp.status(), 200, "{range}");
            assert_eq!(resp.bytes().await.expect("body").len(), 1000);
        }
    });
}

#[test]
fn if_range_honours_range_only_for_the_current_validator() {
    let server = TestServer::start();
    let v1 = body(6, 1000);
    server.add_file("/r", v1.clone());
    let etag = server.etag("/r").expect("etag");
    block_on(async {
        let resp = get(&server.url("/r"), &[]).await;
        let date = header(&resp, "last-modified").expect("last-modified");
        drop(resp);

        let resp = get(
            &server.url("/r"),
            &[("range", "bytes=10-"), ("if-range", &etag)],
        )
        .await;
        assert_eq!(resp.status(), 206);
        let resp = get(
            &server.url("/r"),
            &[("range", "bytes=10-"), ("if-range", &date)],
        )
        .await;
        assert_eq!(resp.status(), 206);

        let v2 = body(7, 1200);
        server.replace_file("/r", v2.clone());
        assert_ne!(server.etag("/r"), Some(etag.clone()));
        for stale in [&etag, &date] {
            let resp = get(
                &server.url("/r"),
                &[("range", "bytes=10-"), ("if-range", stale)],
            )
            .await;
            assert_eq!(resp.status(), 200, "If-Range {stale}");
            assert_eq!(resp.bytes().await.expect("body"), v2);
        }
        let weak = format!("W/{etag}");
        let resp = get(
            &server.url("/r"),
            &[("range", "bytes=10-"), ("if-range", &weak)],
        )
        .await;
        assert_eq!(resp.status(), 200, "a weak validator never matches");
    });
}

#[test]
fn status_faults_are_consumed_in_order_then_normal_service() {
    let server = TestServer::start();
    server.add_file("/f", body(8, 100));
    server.script(
        "/f",
        vec![
            Fault::Status(503),
            Fault::StatusRetryAfter(429, "2".to_string()),
        ],
    );
    block_on(async {
        assert_eq!(get(&server.url("/f"), &[]).await.status(), 503);
        let resp = get(&server.url("/f"), &[]).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(header(&resp, "retry-after").as_deref(), Some("2"));
        assert_eq!(get(&server.url("/f"), &[]).await.status(), 200);
    });
    let faults: Vec<_> = server.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("Status(503)".to_string()),
            Some("StatusRetryAfter(429, \"2\")".to_string()),
            None
        ]
    );
}

#[test]
fn head_requests_do_not_consume_faults() {
    let server = TestServer::start();
    server.add_file("/f", body(9, 100));
    server.script("/f", vec![Fault::Status(500)]);
    block_on(async {
        let resp = client().head(server.url("/f")).send().await.expect("HEAD");
        assert_eq!(resp.status(), 200);
        assert_eq!(server.pending_faults("/f"), 1);
        assert_eq!(get(&server.url("/f"), &[]).await.status(), 500);
    });
}

#[test]
fn reset_before_headers_drops_the_connection() {
    let server = TestServer::start();
    server.add_file("/f", body(10, 100));
    server.script("/f", vec![Fault::ResetBeforeHeaders]);
    block_on(async {
        let err = client()
            .get(server.url("/f"))
            .send()
            .await
            .expect_err("no response");
        assert!(!err.is_status(), "{err}");
        assert_eq!(get(&server.url("/f"), &[]).await.status(), 200);
    });
    let log = server.requests();
    assert_eq!(log[0].status, None);
    assert_eq!(log[1].status, Some(200));
}

#[test]
fn close_after_truncates_the_body_with_an_error() {
    let server = TestServer::start();
    server.add_file("/f", body(11, 200_000));
    server.script("/f", vec![Fault::CloseAfter(70_000)]);
    block_on(async {
        let resp = get(&server.url("/f"), &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-length").as_deref(), Some("200000"));
        let (got, how) = read_body(resp, Duration::from_secs(5)).await;
        assert_eq!(how, "error");
        assert_eq!(got, body(11, 70_000));
    });
    assert_eq!(server.bytes_served("/f"), 70_000);
}

#[test]
fn close_after_applies_to_a_ranged_answer() {
    let server = TestServer::start();
    let data = body(12, 200_000);
    server.add_file("/f", data.clone());
    server.script("/f", vec![Fault::CloseAfter(1000)]);
    block_on(async {
        let resp = get(&server.url("/f"), &[("range", "bytes=500-")]).await;
        assert_eq!(resp.status(), 206);
        let (got, how) = read_body(resp, Duration::from_secs(5)).await;
        assert_eq!(how, "error");
        assert_eq!(got, &data[500..1500]);
    });
}

#[test]
fn stall_after_sends_n_bytes_then_nothing() {
    let server = TestServer::start();
    server.add_file("/f", body(13, 200_000));
    server.script("/f", vec![Fault::StallAfter(50_000)]);
    block_on(async {
        let resp = get(&server.url("/f"), &[]).await;
        let (got, how) = read_body(resp, Duration::from_millis(300)).await;
        assert_eq!(how, "stalled");
        assert_eq!(got.len(), 50_000);
    });
}

#[test]
fn drip_after_sends_n_bytes_at_once_then_one_byte_at_a_time() {
    let server = TestServer::start();
    let data = body(15, 100_000);
    server.add_file("/f", data.clone());
    server.script("/f", vec![Fault::DripAfter(99_990, 40)]);
    block_on(async {
        let resp = get(&server.url("/f"), &[]).await;
        assert_eq!(header(&resp, "content-length").as_deref(), Some("100000"));
        let started = Instant::now();
        let mut resp = resp;
        let mut got = Vec::new();
        while got.len() < 99_990 {
            let chunk = resp.chunk().await.expect("read").expect("more body");
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got.len(), 99_990, "the fast part ends exactly at the mark");
        let fast = started.elapsed();
        let (rest, how) = read_body(resp, Duration::from_secs(5)).await;
        assert_eq!(how, "end");
        got.extend_from_slice(&rest);
        assert_eq!(got, data);
        let dripped = started.elapsed() - fast;
        // Ten bytes, 40 ms before each.
        assert!(dripped >= Duration::from_millis(390), "{dripped:?}");
        assert!(fast < dripped, "fast part {fast:?}, drip {dripped:?}");
    });
}

#[test]
fn stall_at_end_sends_everything_but_the_end() {
    let server = TestServer::start();
    let data = body(14, 100_000);
    server.add_file("/f", data.clone());
    server.script("/f", vec![Fault::StallAtEnd]);
    block_on(async {
        let resp = get(&server.url("/f"), &[]).await;
        assert_eq!(header(&resp, "content-length"), None);
        let (got, how) = read_body(resp, Duration::from_millis(300)).await;
        assert_eq!(how, "stalled");
        assert_eq!(got, data);
    });
}

#[test]
fn ignore_range_answers_200_with_the_full_body() {
    let server = TestServer::start();
    let data = body(15, 10_000);
    server.add_file("/f", data.clone());
    server.script("/f", vec![Fault::IgnoreRange]);
    block_on(async {
        let resp = get(&server.url("/f"), &[("range", "bytes=100-")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.expect("body"), data);
    });
}

#[test]
fn wrong_content_range_starts_elsewhere_but_is_honest() {
    let server = TestServer::start();
    let data = body(16, 10_000);
    server.add_file("/f", data.clone());
    server.script("/f", vec![Fault::WrongContentRange]);
    block_on(async {
        let resp = get(&server.url("/f"), &[("range", "bytes=4000-")]).await;
        assert_eq!(resp.status(), 206);
        let range = header(&resp, "content-range").expect("content-range");
        assert_eq!(range, "bytes 2000-9999/10000");
        assert_eq!(resp.bytes().await.expect("body"), &data[2000..]);
    });
}

#[test]
fn change_etag_then_serve_replaces_content_first() {
    let server = TestServer::start();
    server.add_file("/f", body(17, 10_000));
    let old = server.etag("/f").expect("etag");
    let v2 = body(18, 12_000);
    server.script("/f", vec![Fault::ChangeEtagThenServe(v2.clone())]);
    block_on(async {
        let resp = get(
            &server.url("/f"),
            &[("range", "bytes=100-"), ("if-range", &old)],
        )
        .await;
        assert_eq!(resp.status(), 200);
        let etag = header(&resp, "etag").expect("etag");
        assert_ne!(etag, old);
        assert!(etag.starts_with("\"v2-"), "{etag}");
        assert_eq!(resp.bytes().await.expect("body"), v2);
    });
}

#[test]
fn redirects_are_logged_and_followable() {
    let server = TestServer::start();
    let data = body(19, 1000);
    server.add_file("/new", data.clone());
    server.redirect("/old", "/new", 302);
    server.redirect("/abs", &server.url("/new"), 301);
    block_on(async {
        let resp = get(&server.url("/old"), &[]).await;
        assert_eq!(resp.status(), 302);
        assert_eq!(header(&resp, "location").as_deref(), Some("/new"));
        let following = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        for from in ["/old", "/abs"] {
            let resp = following.get(server.url(from)).send().await.expect("GET");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.bytes().await.expect("body"), data);
        }
    });
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(302), Some(302), Some(200), Some(301), Some(200)]
    );
}

#[test]
fn paced_bodies_take_their_time_and_wait_served_sees_progress() {
    let server = TestServer::start();
    let data = body(20, 128 * 1024);
    server.add_file("/slow", data.clone());
    server.set_rate("/slow", 256 * 1024);
    let url = server.url("/slow");
    let started = Instant::now();
    let fetch = std::thread::spawn(move || {
        block_on(async move { get(&url, &[]).await.bytes().await.expect("body") })
    });
    server.wait_served("/slow", 64 * 1024, Duration::from_secs(10));
    let halfway = started.elapsed();
    assert!(server.bytes_served("/slow") < 128 * 1024, "not paced");
    let got = fetch.join().expect("fetch thread");
    let total = started.elapsed();
    assert_eq!(got, data);
    assert!(halfway >= Duration::from_millis(150), "{halfway:?}");
    assert!(total >= Duration::from_millis(350), "{total:?}");
}

#[test]
#[should_panic(expected = "only 0 of 1 bytes served")]
fn wait_served_panics_after_timeout() {
    let server = TestServer::start();
    server.wait_served("/never", 1, Duration::from_millis(50));
}

#[test]
#[should_panic(expected = "waiting for 1 body bytes served over all paths; saw only 0 of 1")]
fn wait_total_served_panics_naming_what_it_awaited_and_saw() {
    let server = TestServer::start();
    server.wait_total_served(1, Duration::from_millis(50));
}

#[test]
fn counts_concurrent_bodies_per_host() {
    let server = TestServer::start();
    server.add_file("/a", body(21, 64 * 1024));
    server.add_file("/b", body(22, 64 * 1024));
    server.set_rate("/a", 256 * 1024);
    server.set_rate("/b", 256 * 1024);
    let (a, b) = (server.url("/a"), server.url_on("localhost", "/b"));
    block_on(async {
        let (ra, rb) = tokio::join!(get(&a, &[]), get(&b, &[]));
        let (ba, bb) = tokio::join!(ra.bytes(), rb.bytes());
        assert_eq!(ba.expect("a").len() + bb.expect("b").len(), 128 * 1024);
    });
    assert_eq!(server.max_in_flight("127.0.0.1"), 1);
    assert_eq!(server.max_in_flight("localhost"), 1);
    assert_eq!(server.max_in_flight_total(), 2);
    block_on(async {
        get(&server.url("/a"), &[]).await.bytes().await.expect("a");
        get(&server.url("/a"), &[]).await.bytes().await.expect("a");
    });
    assert_eq!(server.max_in_flight("127.0.0.1"), 1);
}

#[test]
#[should_panic(expected = "never used")]
fn unused_fault_panics_on_drop() {
    let server = TestServer::start();
    server.add_file("/f", body(23, 10));
    server.script("/f", vec![Fault::Status(404)]);
}

#[test]
fn a_path_gate_pauses_its_bodies_and_nothing_else() {
    let server = TestServer::start();
    let held = body(30, 100_000);
    let other = body(31, 50_000);
    server.add_file("/held.bin", held.clone());
    server.add_file("/other.bin", other.clone());
    // Two 16 KiB chunks go out, then the body waits before its third.
    server.hold_path_at("/held.bin", 32 * 1024);
    block_on(async {
        let paused = get(&server.url("/held.bin"), &[]).await;
        server.wait_served("/held.bin", 32 * 1024, Duration::from_secs(10));
        assert_eq!(server.in_flight_of("/held.bin"), 1);

        // The rest of the server goes on meanwhile.
        let resp = get(&server.url("/other.bin"), &[]).await;
        let (got, how) = read_body(resp, Duration::from_secs(10)).await;
        assert_eq!((got == other, how), (true, "end"));
        assert_eq!(server.bytes_served("/held.bin"), 32 * 1024);

        server.release_path("/held.bin");
        let (got, how) = read_body(paused, Duration::from_secs(10)).await;
        assert_eq!((got == held, how), (true, "end"));
    });
    assert_eq!(server.in_flight_of("/held.bin"), 0);
}
