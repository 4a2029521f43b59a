//! `haul get` against a misbehaving server: every scripted fault, retry
//! timing, giving up, and failures that must not stop the other downloads.
//! Each test checks the bytes on disk and what the server saw.

use std::time::{Duration, SystemTime};

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

/// Runs `haul get URL -d DIR` with fast retries plus `extra` arguments.
fn get_one(server: &TestServer, sb: &Sandbox, path: &str, extra: &[&str]) -> Outcome {
    sb.haul(["get", &server.url(path), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(extra)
        .run()
}

/// Runs `haul get -i list.txt -d DIR` with fast retries plus `extra`.
fn get_list(sb: &Sandbox, urls: &[String], extra: &[&str]) -> Outcome {
    let list: String = urls.iter().map(|u| format!("{u}\n")).collect();
    sb.write("list.txt", list);
    sb.haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(extra)
        .run()
}

#[test]
fn retries_after_connection_reset_before_headers() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(200, 300_000));
    server.script(
        "/f.bin",
        vec![Fault::ResetBeforeHeaders, Fault::ResetBeforeHeaders],
    );

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(200, 300_000));
    assert_eq!(server.gets("/f.bin").len(), 3);
    sb.assert_no_part_files();
}

#[test]
fn resumes_after_a_truncated_body() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 2 << 20;
    server.add_file("/f.bin", body(201, size));
    server.script("/f.bin", vec![Fault::CloseAfter(1 << 20)]);

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(201, size));
    let gets = server.gets("/f.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    let resumed_at = gets[1].range_start().expect("the retry resumes with Range");
    assert!(resumed_at > 0 && resumed_at <= 1 << 20, "{resumed_at}");
    assert!(gets[1].header("if-range").is_some(), "{:?}", gets[1]);
    assert_eq!(gets[1].status, Some(206));
}

#[test]
fn resumes_after_a_stalled_body() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 1 << 20;
    server.add_file("/f.bin", body(202, size));
    server.script("/f.bin", vec![Fault::StallAfter(256 * 1024)]);

    let out = get_one(&server, &sb, "/f.bin", &["--stall-timeout", "0.5"]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(202, size));
    let gets = server.gets("/f.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets[1].range_start().is_some_and(|n| n > 0),
        "{:?}",
        gets[1]
    );
    assert!(
        out.elapsed < Duration::from_secs(15),
        "stall detection took {:?}",
        out.elapsed
    );
}

#[test]
fn waits_for_retry_after_seconds() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(203, 10_000));
    server.script("/f.bin", vec![Fault::StatusRetryAfter(503, "1".into())]);

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(203, 10_000));
    let gets = server.gets("/f.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    let gap = gets[1].at - gets[0].at;
    eprintln!("Retry-After: 1 -> next request after {gap:?}");
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
}

#[test]
fn waits_for_retry_after_http_date() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(204, 10_000));
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    // The header has whole seconds; the retry may not come before that moment.
    let not_before = httpdate::parse_http_date(&date).expect("round-trip the date");
    server.script("/f.bin", vec![Fault::StatusRetryAfter(503, date)]);

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    let gets = server.gets("/f.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    let early = not_before.duration_since(gets[1].wall).ok();
    eprintln!(
        "Retry-After: <date ~2 s ahead> -> next request after {:?}",
        gets[1].at - gets[0].at
    );
    assert!(
        early.is_none_or(|d| d.is_zero()),
        "retried {early:?} before the Retry-After date"
    );
}

#[test]
fn retries_transient_statuses() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(205, 10_000));
    server.script(
        "/f.bin",
        vec![
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(429),
            Fault::Status(408),
        ],
    );

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(205, 10_000));
    assert_eq!(server.gets("/f.bin").len(), 5);
}

#[test]
fn gives_up_after_max_tries() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(206, 10_000));
    server.script("/f.bin", vec![Fault::Status(503); 3]);

    let out = get_one(&server, &sb, "/f.bin", &["--max-tries", "3"]);

    out.assert_code(1);
    out.assert_stderr_has(&["f.bin", "503"]);
    assert!(!out.failed_lines().is_empty(), "{out}");
    assert_eq!(server.gets("/f.bin").len(), 3);
    assert!(!sb.dl("f.bin").exists());
}

#[test]
fn fails_a_404_at_once_and_finishes_the_rest() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/ok1.bin", body(207, 100_000));
    server.add_file("/ok2.bin", body(208, 100_000));
    let urls = [
        server.url("/ok1.bin"),
        server.url("/missing.bin"),
        server.url("/ok2.bin"),
    ];

    let out = get_list(&sb, &urls, &[]);

    out.assert_code(1);
    assert_file_eq(&sb.dl("ok1.bin"), &body(207, 100_000));
    assert_file_eq(&sb.dl("ok2.bin"), &body(208, 100_000));
    assert!(!sb.dl("missing.bin").exists());
    assert_eq!(server.gets("/missing.bin").len(), 1, "a 404 is not retried");
    let failed = out.failed_lines();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("missing.bin") && l.contains("404")),
        "{out}"
    );
    assert_eq!(out.done_lines().len(), 2, "{out}");
}

#[test]
fn restarts_from_zero_when_the_etag_changes() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let v1 = body(209, 2 << 20);
    let v2 = body(210, 3 << 20);
    server.add_file("/f.bin", v1);
    let old_etag = server.etag("/f.bin").expect("etag");
    server.script(
        "/f.bin",
        vec![
            Fault::CloseAfter(1 << 20),
            Fault::ChangeEtagThenServe(v2.clone()),
        ],
    );

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &v2);
    let gets = server.gets("/f.bin");
    assert!(gets[1].range_start().is_some(), "{:?}", gets[1]);
    assert_eq!(gets[1].header("if-range"), Some(old_etag.as_str()));
    assert_eq!(
        gets[1].status,
        Some(200),
        "the changed resource comes whole"
    );
    sb.assert_no_part_files();
}

#[test]
fn restarts_cleanly_when_the_server_ignores_range() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 2 << 20;
    server.add_file("/f.bin", body(211, size));
    server.script(
        "/f.bin",
        vec![Fault::CloseAfter(1 << 20), Fault::IgnoreRange],
    );

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(211, size));
    let gets = server.gets("/f.bin");
    assert!(gets[1].range_start().is_some(), "{:?}", gets[1]);
    assert_eq!(gets[1].status, Some(200));
}

#[test]
fn does_not_splice_a_wrong_content_range() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 2 << 20;
    server.add_file("/f.bin", body(212, size));
    server.script(
        "/f.bin",
        vec![Fault::CloseAfter(1 << 20), Fault::WrongContentRange],
    );

    let out = get_one(&server, &sb, "/f.bin", &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(212, size));
    assert!(server.gets("/f.bin").len() >= 3);
}

#[test]
fn fails_a_redirect_loop_cleanly() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/ok.bin", body(213, 10_000));
    server.redirect("/loop-a", "/loop-b", 302);
    server.redirect("/loop-b", "/loop-a", 302);
    let urls = [server.url("/loop-a"), server.url("/ok.bin")];

    let out = get_list(&sb, &urls, &["--max-tries", "2"]);

    out.assert_code(1);
    out.assert_stderr_has(&["loop-a", "redirect"]);
    assert!(!out.failed_lines().is_empty(), "{out}");
    assert_file_eq(&sb.dl("ok.bin"), &body(213, 10_000));
    let loop_requests = server.requests_for("/loop-a").len() + server.requests_for("/loop-b").len();
    assert!(loop_requests <= 100, "{loop_requests} requests in the loop");
}
