//! Split (segmented) downloads: several connections each fetching a byte
//! range of one file, resumed range by range after a kill, faster than one
//! connection when each is capped, and falling back to one stream whenever
//! ranges cannot be trusted.

use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

const WAIT: Duration = Duration::from_secs(30);

fn get_args(server: &TestServer, sb: &Sandbox, path: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "get".to_string(),
        server.url(path),
        "-d".to_string(),
        sb.dir_arg(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn ranged_gets(server: &TestServer, path: &str) -> usize {
    server
        .gets(path)
        .iter()
        .filter(|r| r.status == Some(206))
        .count()
}

#[test]
fn split_download_is_byte_exact_over_several_ranges() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 12 << 20;
    server.add_file("/s.bin", body(400, size));
    // Paced, so the connections overlap and the work is really shared.
    server.set_rate("/s.bin", 8 << 20);

    let out = sb
        .haul(get_args(&server, &sb, "/s.bin", &["--split", "4"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &body(400, size));
    sb.assert_no_part_files();
    assert!(
        ranged_gets(&server, "/s.bin") >= 3,
        "{:?}",
        server.gets("/s.bin")
    );
    assert!(
        server.max_in_flight("127.0.0.1") >= 2,
        "connections never overlapped"
    );
    let ratio = server.bytes_served("/s.bin") as f64 / size as f64;
    assert!(ratio <= 1.05, "served {ratio:.4} x the file size");
}

#[test]
fn four_capped_connections_beat_one() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 8 << 20;
    server.add_file("/c.bin", body(401, size));
    // Each connection is capped at 4 MiB/s: one needs about 2 s.
    server.set_rate("/c.bin", 4 << 20);

    let run = |split: &str, dir: &str| {
        let dir = sb.root().join(dir).display().to_string();
        sb.haul(["get", &server.url("/c.bin"), "-d", &dir, "--split", split])
            .run()
    };
    let one = run("1", "one");
    let four = run("4", "four");

    one.assert_code(0);
    four.assert_code(0);
    assert_file_eq(&sb.root().join("one/c.bin"), &body(401, size));
    assert_file_eq(&sb.root().join("four/c.bin"), &body(401, size));
    let speedup = one.elapsed.as_secs_f64() / four.elapsed.as_secs_f64();
    eprintln!(
        "one connection {:.2}s, four {:.2}s: {speedup:.2}x",
        one.elapsed.as_secs_f64(),
        four.elapsed.as_secs_f64()
    );
    // Loose on purpose: a noisy 2-core CI must not flake; ideal is 4x.
    assert!(speedup >= 2.0, "four connections only {speedup:.2}x faster");
}

#[test]
fn kill_9_during_a_split_download_resumes_every_range() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 16 << 20;
    let data = body(402, size);
    server.add_file("/k.bin", data.clone());
    // 4 connections x 2 MiB/s: about 2 s in all, so the kill lands mid-way,
    // slow enough that the client drains every socket as it fills.
    server.set_rate("/k.bin", 2 << 20);
    let args = get_args(&server, &sb, "/k.bin", &["--split", "4"]);

    let mut first = sb.haul(&args).spawn();
    server.wait_served("/k.bin", size as u64 / 2, WAIT);
    first.kill9();
    let killed = first.wait(WAIT);
    assert_eq!(
        killed.code(),
        None,
        "haul should have died of SIGKILL\n{killed}"
    );
    let gets_first = server.gets("/k.bin").len();
    assert!(
        !sb.dl("k.bin").exists(),
        "a final-named file must be complete"
    );

    server.set_rate("/k.bin", 0);
    let out = sb.haul(&args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("k.bin"), &data);
    sb.assert_no_part_files();
    let etag = server.etag("/k.bin");
    for resumed in &server.gets("/k.bin")[gets_first..] {
        assert!(
            resumed.range_start().is_some(),
            "rerun fetched without Range: {resumed:?}"
        );
        assert_eq!(resumed.header("if-range"), etag.as_deref(), "{resumed:?}");
    }
    let ratio = server.bytes_served("/k.bin") as f64 / size as f64;
    eprintln!("split kill -9 and resume: {ratio:.4} x the file size served");
    assert!(ratio <= 1.05, "served {ratio:.4} x the file size");
}

#[test]
fn a_server_without_ranges_gets_one_stream() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/n.bin", body(403, 4 << 20));
    server.without_ranges("/n.bin");

    let out = sb
        .haul(get_args(&server, &sb, "/n.bin", &["--split", "4"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("n.bin"), &body(403, 4 << 20));
    let gets = server.gets("/n.bin");
    assert_eq!(gets.len(), 1, "{gets:?}");
    // Only the front was asked for; the 200 brought all of it.
    assert_eq!(gets[0].header("range"), Some("bytes=0-2097151"));
}

#[test]
fn a_file_without_length_gets_one_stream() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/u.bin", body(404, 4 << 20));
    server.without_length("/u.bin");
    // A 206 would name the length in its Content-Range: the length stays
    // unknown only where the answer is a 200.
    server.without_ranges("/u.bin");

    let out = sb
        .haul(get_args(&server, &sb, "/u.bin", &["--split", "4"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("u.bin"), &body(404, 4 << 20));
    assert_eq!(server.gets("/u.bin").len(), 1);
}

#[test]
fn a_ranged_request_answered_200_restarts_as_one_stream() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 8 << 20;
    server.add_file("/r.bin", body(405, size));
    server.set_rate("/r.bin", 8 << 20);
    // The first answer is normal; the first ranged one ignores the range.
    server.script("/r.bin", vec![Fault::Pass, Fault::IgnoreRange]);

    let mut args = get_args(&server, &sb, "/r.bin", &["--split", "4"]);
    args.extend(FAST_RETRY.iter().map(|s| s.to_string()));
    let out = sb.haul(args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("r.bin"), &body(405, size));
    out.assert_stderr_has(&["restart"]);
}

#[test]
fn a_file_changed_between_ranges_restarts_and_never_splices() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 8 << 20;
    server.add_file("/e.bin", body(406, size));
    server.set_rate("/e.bin", 8 << 20);
    let changed = body(407, size);
    server.script(
        "/e.bin",
        vec![Fault::Pass, Fault::ChangeEtagThenServe(changed.clone())],
    );

    let mut args = get_args(&server, &sb, "/e.bin", &["--split", "4"]);
    args.extend(FAST_RETRY.iter().map(|s| s.to_string()));
    let out = sb.haul(args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("e.bin"), &changed);
    out.assert_stderr_has(&["restart"]);
}

#[test]
fn connections_take_work_in_file_order() {
    // The sha256 reads only the written prefix: connections that work side
    // by side near the front keep it close behind the download, where
    // connections spread over the file leave most of it to hash at the end.
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 192 << 20;
    server.add_file("/o.bin", body(405, size));
    // Paced, so the first request of every connection comes before any
    // connection is done with its own.
    server.set_rate("/o.bin", 32 << 20);

    let out = sb
        .haul(get_args(&server, &sb, "/o.bin", &["--split", "4"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("o.bin"), &body(405, size));
    let starts: Vec<u64> = server
        .gets("/o.bin")
        .iter()
        .take(4)
        .map(|get| {
            let range = get
                .headers
                .iter()
                .find(|(name, _)| name == "range")
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            let from = range.trim_start_matches("bytes=").split('-').next();
            from.and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a ranged GET, not {range:?}"))
        })
        .collect();
    assert_eq!(starts.len(), 4, "{:?}", server.gets("/o.bin"));
    assert!(
        starts.iter().all(|&from| from < (size / 2) as u64),
        "the first request of each connection starts in the first half: {starts:?}"
    );
}
