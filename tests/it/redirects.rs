//! Redirects: what the user gave for one origin (scheme,
//! host, port) — `--header`s, `header=` lines, `user:pass@` — never reaches
//! another; HTTPS to HTTP is refused unless `--allow-insecure-redirect`;
//! loops and more than 10 hops fail the file at once and leave the rest of
//! the run alone. `127.0.0.1` and `localhost` on one test server are two
//! origins, and so are two test servers.

use std::ffi::OsStr;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::server::{Fault, LoggedRequest, TestServer};
use crate::support::tls::TlsRedirector;

/// `user:pw` as a basic-auth header value.
const BASIC_USER_PW: &str = "Basic dXNlcjpwdw==";

/// `http://user:pw@127.0.0.1:PORT/path`.
fn with_userinfo(server: &TestServer, path: &str) -> String {
    format!("http://user:pw@127.0.0.1:{}{path}", server.port())
}

/// `http://127.0.0.1:PORT`, where a [`TlsRedirector`] sends its requests.
fn base(server: &TestServer) -> String {
    format!("http://127.0.0.1:{}", server.port())
}

/// Runs `haul get` over a list whose every URL carries `header=X-List-Key:
/// k2`, with `--header X-Api-Key: k1` on the command line.
fn get_with_secrets(sb: &Sandbox, entries: &[(String, &str)], extra: &[&str]) -> Outcome {
    let list: String = entries
        .iter()
        .map(|(url, out)| format!("{url}\n  out={out}\n  header=X-List-Key: k2\n"))
        .collect();
    sb.write("list.txt", list);
    sb.haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["--header", "X-Api-Key: k1"])
        .args(FAST_RETRY)
        .args(extra)
        .run()
}

fn assert_carries_secrets(req: &LoggedRequest) {
    assert_eq!(req.header("x-api-key"), Some("k1"), "{req:?}");
    assert_eq!(req.header("x-list-key"), Some("k2"), "{req:?}");
    assert_eq!(req.header("authorization"), Some(BASIC_USER_PW), "{req:?}");
}

fn assert_carries_no_secrets(req: &LoggedRequest) {
    // A Referer would tell the other origin the URL the user gave.
    for name in ["x-api-key", "x-list-key", "authorization", "referer"] {
        assert_eq!(req.header(name), None, "{name} leaked: {req:?}");
    }
    // haul's own headers still go everywhere.
    let agent = req.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("haul/"), "{req:?}");
    assert_eq!(req.header("accept-encoding"), Some("identity"), "{req:?}");
}

#[test]
fn cross_origin_redirect_drops_user_headers_and_credentials() {
    let server = TestServer::start();
    let other = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/host.bin", body(600, 20_000));
    other.add_file("/port.bin", body(601, 30_000));
    // Same server, another host name: another origin.
    server.redirect("/to-host", &server.url_on("localhost", "/host.bin"), 302);
    // Same host, another port: another origin.
    server.redirect("/to-port", &other.url("/port.bin"), 307);
    let entries = [
        (with_userinfo(&server, "/to-host"), "host.bin"),
        (with_userinfo(&server, "/to-port"), "port.bin"),
    ];

    let out = get_with_secrets(&sb, &entries, &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("host.bin"), &body(600, 20_000));
    assert_file_eq(&sb.dl("port.bin"), &body(601, 30_000));
    assert_carries_secrets(&server.gets("/to-host")[0]);
    assert_carries_secrets(&server.gets("/to-port")[0]);
    let targets = [server.gets("/host.bin"), other.gets("/port.bin")];
    for req in targets.iter().flatten() {
        assert_carries_no_secrets(req);
    }
    assert!(targets.iter().all(|gets| !gets.is_empty()));
}

#[test]
fn same_origin_redirects_keep_user_headers_and_resolve_relative_locations() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/files/t.bin", body(602, 25_000));
    // Relative to /dir/start: /dir/next, then /files/t.bin.
    server.redirect("/dir/start", "next", 301);
    server.redirect("/dir/next", "../files/t.bin", 308);
    let entries = [(with_userinfo(&server, "/dir/start"), "t.bin")];

    let out = get_with_secrets(&sb, &entries, &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("t.bin"), &body(602, 25_000));
    for path in ["/dir/start", "/dir/next", "/files/t.bin"] {
        let gets = server.gets(path);
        assert_eq!(gets.len(), 1, "{path}: {gets:?}");
        assert_carries_secrets(&gets[0]);
    }
}

#[test]
fn https_to_http_redirect_is_refused_naming_both_urls() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/plain.bin", body(603, 10_000));
    let tls = TlsRedirector::start(&base(&server), 302);
    let ca = tls.write_ca(sb.root());
    let from = tls.url("/plain.bin");

    let out = sb
        .haul(["get", &from, "-d", &sb.dir_arg(), "--max-tries", "3"])
        .args(FAST_RETRY)
        .args([OsStr::new("--ca-cert"), ca.as_os_str()])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&[
        &from,
        &server.url("/plain.bin"),
        "--allow-insecure-redirect",
    ]);
    assert_eq!(tls.requests(), 1, "a refused redirect is not retried");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(sb.downloads().is_empty(), "{:?}", sb.downloads());
}

#[test]
fn https_to_http_redirect_is_followed_with_allow_insecure_redirect() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/plain.bin", body(604, 10_000));
    let tls = TlsRedirector::start(&base(&server), 301);
    let ca = tls.write_ca(sb.root());

    let out = sb
        .haul(["get", &tls.url("/plain.bin"), "-d", &sb.dir_arg()])
        .args(["--allow-insecure-redirect", "--header", "X-Api-Key: k1"])
        .args([OsStr::new("--ca-cert"), ca.as_os_str()])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("plain.bin"), &body(604, 10_000));
    let gets = server.gets("/plain.bin");
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].header("x-api-key"), None, "{:?}", gets[0]);
}

#[test]
fn redirect_loop_fails_the_file_at_once() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/ok.bin", body(605, 10_000));
    server.redirect("/loop-a", "/loop-b", 302);
    server.redirect("/loop-b", &server.url("/loop-a"), 302);
    sb.write(
        "list.txt",
        format!("{}\n{}\n", server.url("/loop-a"), server.url("/ok.bin")),
    );

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["--max-tries", "3"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["redirect loop", &server.url("/loop-a")]);
    assert_eq!(out.failed_lines().len(), 1, "{out}");
    assert_file_eq(&sb.dl("ok.bin"), &body(605, 10_000));
    // One trip round the loop, not retried.
    assert_eq!(server.gets("/loop-a").len(), 1);
    assert_eq!(server.gets("/loop-b").len(), 1);
}

#[test]
fn ten_redirects_are_followed_and_eleven_are_refused() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/ten.bin", body(606, 10_000));
    server.add_file("/eleven.bin", body(607, 10_000));
    for (name, hops) in [("ten", 10), ("eleven", 11)] {
        for hop in 0..hops {
            let to = if hop + 1 == hops {
                format!("/{name}.bin")
            } else {
                format!("/{name}-{}", hop + 1)
            };
            server.redirect(&format!("/{name}-{hop}"), &to, 302);
        }
    }
    sb.write(
        "list.txt",
        format!(
            "{}\n  out=ten.bin\n{}\n  out=eleven.bin\n",
            server.url("/ten-0"),
            server.url("/eleven-0")
        ),
    );

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["--max-tries", "3"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["more than 10 redirects", &server.url("/eleven-0")]);
    assert_file_eq(&sb.dl("ten.bin"), &body(606, 10_000));
    assert_eq!(sb.downloads(), [std::path::PathBuf::from("ten.bin")]);
    assert!(
        server.gets("/eleven.bin").is_empty(),
        "an 11th hop was followed"
    );
    assert_eq!(
        server.gets("/eleven-0").len(),
        1,
        "a hop limit is not retried"
    );
}

#[test]
fn split_download_through_a_cross_origin_redirect() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 16 << 20;
    server.add_file("/big.bin", body(608, size));
    // Paced, so several connections overlap.
    server.set_rate("/big.bin", 8 << 20);
    server.redirect("/start", &server.url_on("localhost", "/big.bin"), 302);
    let entries = [(with_userinfo(&server, "/start"), "big.bin")];

    let out = get_with_secrets(&sb, &entries, &["--split", "4"]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &body(608, size));
    sb.assert_no_part_files();
    let targets = server.gets("/big.bin");
    let ranged = targets.iter().filter(|r| r.status == Some(206)).count();
    assert!(ranged >= 3, "{targets:?}");
    for req in &targets {
        assert_carries_no_secrets(req);
    }
    for req in server.gets("/start") {
        assert_carries_secrets(&req);
    }
}

#[test]
fn a_split_file_walks_its_redirects_once_and_sends_its_ranges_where_they_led() {
    let server = TestServer::start();
    let other = TestServer::start();
    let sb = Sandbox::new();
    let size = 16 << 20;
    other.add_file("/big.bin", body(609, size));
    // Paced, so several connections overlap.
    other.set_rate("/big.bin", 8 << 20);
    // Three hops, the last to another origin.
    server.redirect("/r1", &server.url("/r2"), 302);
    server.redirect("/r2", &other.url("/r3"), 307);
    other.redirect("/r3", &other.url("/big.bin"), 302);
    let entries = [(with_userinfo(&server, "/r1"), "big.bin")];

    let out = get_with_secrets(&sb, &entries, &["--split", "4"]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &body(609, size));
    let targets = other.gets("/big.bin");
    let ranged = targets.iter().filter(|r| r.status == Some(206)).count();
    assert!(ranged >= 3, "never split: {targets:?}");
    let hops = [server.gets("/r1"), server.gets("/r2"), other.gets("/r3")];
    assert_eq!(
        hops.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 1, 1],
        "{} ranged GETs of the target",
        targets.len()
    );
    for req in &targets {
        assert_carries_no_secrets(req);
    }
    for req in &hops[0] {
        assert_carries_secrets(req);
    }
}

#[test]
fn a_range_refused_where_the_redirects_led_walks_them_again_before_it_counts() {
    let server = TestServer::start();
    let other = TestServer::start();
    let sb = Sandbox::new();
    let size = 16 << 20;
    other.add_file("/big.bin", body(610, size));
    other.set_rate("/big.bin", 8 << 20);
    server.redirect("/r1", &other.url("/big.bin"), 302);
    // As an expired presigned link answers: once, for the first range sent
    // straight to the target (the one before it, the file's front, walked
    // the redirects).
    other.script_ranged("/big.bin", vec![Fault::Pass, Fault::Status(403)]);
    let entries = [(with_userinfo(&server, "/r1"), "big.bin")];

    let out = get_with_secrets(&sb, &entries, &["--split", "4"]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &body(610, size));
    assert_eq!(
        other.pending_faults("/big.bin"),
        0,
        "the 403 was never sent"
    );
    // The first answer's walk, and one more after the 403. A connection
    // that starts a range while that walk is still on its way finds no
    // target known and walks the redirects itself, so on a loaded machine
    // up to each of the 4 connections may walk once more: never a retry
    // storm, and never a 403 counted against the mirror.
    let walks = server.gets("/r1").len();
    assert!((2..=1 + 4).contains(&walks), "{walks} walks of /r1\n{out}");
}
