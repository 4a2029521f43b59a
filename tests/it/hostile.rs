//! `haul get` against servers that lie on purpose:
//! bodies longer than they say, truncated bodies, endless heads, endless
//! chunked bodies, `--max-file-size`, and a Content-Disposition that tries
//! to climb out of the output directory (haul ignores that header).
//!
//! What hyper does with bytes past a Content-Length: it frames the answer
//! by its Content-Length, so haul receives exactly the announced bytes; the
//! surplus sits in the connection's buffer, and hyper's client closes an
//! idle connection holding unexpected bytes instead of reading them as the
//! next answer. The user sees nothing at all: the file is exact, verified,
//! and exit 0. `trailing_bytes_never_reach_a_file_nor_answer_another_request`
//! pins that down. The dangerous case is a Content-Length larger than a
//! 206's Content-Range span, which hyper does deliver: haul cuts it there.
//!
//! Endless header lines hit hyper's head-size limit (about 400 KiB): each
//! attempt fails with "message head is too large", is retried, and the file
//! fails naming the URL; peak RSS stays near 16 MiB. An endless chunked
//! body is streamed, so memory stays flat; only `--max-file-size` stops it.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::hostile::{Behaviour, HostileServer};

/// Peak resident memory allowed to a haul facing an endless answer.
const RSS_CAP_KIB: u64 = 64 << 10;

/// A fake HTTP answer, as a smuggler would append it after a body.
const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nETag: \"evil\"\r\n\r\nEVIL";

/// Length of a file, 0 if it does not exist.
fn len_or_zero(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn content_disposition_with_traversal_changes_nothing() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let tag = std::process::id();
    let (report, other) = (body(700, 50_000), body(701, 60_000));
    server.add("/files/report.bin", report.clone(), Behaviour::Honest);
    server.add_header(
        "/files/report.bin",
        "Content-Disposition",
        &format!(
            "attachment; filename=\"../../evil-{tag}-a\"; filename*=UTF-8''..%2F..%2Fevil-{tag}-b"
        ),
    );
    server.add("/files/other.bin", other.clone(), Behaviour::Honest);
    let absolute = std::env::temp_dir().join(format!("evil-{tag}-c"));
    server.add_header(
        "/files/other.bin",
        "Content-Disposition",
        &format!("attachment; filename=\"{}\"", absolute.display()),
    );

    let out = sb
        .haul([
            "get",
            &server.url("/files/report.bin"),
            &server.url("/files/other.bin"),
            "-d",
            &sb.dir_arg(),
        ])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("report.bin"), &report);
    assert_file_eq(&sb.dl("other.bin"), &other);
    assert_eq!(
        sb.downloads(),
        vec![Path::new("other.bin"), Path::new("report.bin")]
    );
    assert!(sb.find("evil").is_empty(), "{:?}", sb.find("evil"));
    // dl/../../evil-* would land beside the sandbox root.
    let outside = sb.root().parent().expect("the sandbox has a parent");
    for name in [format!("evil-{tag}-a"), format!("evil-{tag}-b")] {
        assert!(!outside.join(&name).exists(), "{name} was created");
    }
    assert!(!absolute.exists(), "{} was created", absolute.display());
    assert!(!out.all_output().contains("evil"), "{out}");
}

#[test]
fn max_file_size_refuses_an_announced_length_before_any_byte() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    server.add("/big.bin", body(702, 2 << 20), Behaviour::Honest);

    let out = sb
        .haul(["get", &server.url("/big.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--max-file-size", "1M"])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&[&server.url("/big.bin"), "max-file-size", "1048576"]);
    assert!(!sb.dl("big.bin").exists());
    assert_eq!(len_or_zero(&sb.dl("big.bin.part")), 0);
    // Permanent: a cap the file is over is not retried.
    assert_eq!(server.gets("/big.bin").len(), 1);
}

#[test]
fn max_file_size_refuses_a_split_file_before_planning_its_ranges() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    server.add("/split.bin", body(703, 4 << 20), Behaviour::Honest);

    let out = sb
        .haul(["get", &server.url("/split.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["-s", "4", "--max-file-size", "3M"])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&[&server.url("/split.bin"), "3145728"]);
    assert!(!sb.dl("split.bin").exists());
    // No ranged request, and no 4 MiB preallocation either.
    assert_eq!(server.gets("/split.bin").len(), 1);
    assert_eq!(len_or_zero(&sb.dl("split.bin.part")), 0);
}

#[test]
fn max_file_size_refuses_a_resumed_split_plan() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let url = server.url("/resplit.bin");
    // The first answer streams from byte 0; every ranged one is cut short,
    // so one try leaves a recorded split plan behind.
    server.add(
        "/resplit.bin",
        body(704, 4 << 20),
        Behaviour::Truncate(1000),
    );
    server.script("/resplit.bin", vec![Behaviour::Honest]);
    let first = sb
        .haul([
            "get",
            &url,
            "-d",
            &sb.dir_arg(),
            "-s",
            "4",
            "--max-tries",
            "1",
        ])
        .run();
    first.assert_code(1);
    let asked = server.gets("/resplit.bin").len();
    assert!(asked > 1, "the first run never split: {first}");

    let out = sb
        .haul([
            "get",
            &url,
            "-d",
            &sb.dir_arg(),
            "-s",
            "4",
            "--max-tries",
            "1",
        ])
        .args(["--max-file-size", "3M"])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&[&url, "3145728"]);
    assert_eq!(
        server.gets("/resplit.bin").len(),
        asked,
        "the plan was resumed"
    );
    assert!(!sb.dl("resplit.bin").exists());
}

#[test]
fn max_file_size_refuses_a_part_an_earlier_run_completed() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let url = server.url("/done.bin");
    server.add("/done.bin", body(712, 1 << 20), Behaviour::Honest);
    // Run one ends with every byte in the .part but no rename: cut, then
    // resumed to the end by a lying 206, then no answer to the confirmation.
    server.script(
        "/done.bin",
        vec![
            Behaviour::Truncate(300_000),
            Behaviour::OverlongRange(b"JUNK".to_vec()),
            Behaviour::EndlessHeaders,
        ],
    );
    let first = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--max-tries", "2"])
        .args(FAST_RETRY)
        .run();
    first.assert_code(1);
    assert_eq!(len_or_zero(&sb.dl("done.bin.part")), 1 << 20, "{first}");

    let out = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--max-tries", "1"])
        .args(["--max-file-size", "512K"])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&[&url, "524288"]);
    assert!(!sb.dl("done.bin").exists());
    let last = server.gets("/done.bin").pop().expect("run two asked");
    assert_eq!(last.header("range"), Some("bytes=1048576-"), "{last:?}");
}

#[test]
fn endless_headers_fail_the_file_after_retries_in_bounded_memory() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    server.add("/head.bin", Vec::new(), Behaviour::EndlessHeaders);

    let running = sb
        .haul(["get", &server.url("/head.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--max-tries", "3"])
        .spawn();
    let (out, peak) = running.wait_watching_rss(Duration::from_secs(30));

    println!("peak RSS facing endless headers: {peak} KiB\n{out}");
    out.assert_code(1);
    let failed = out.failed_lines().join("\n");
    assert!(failed.contains(&server.url("/head.bin")), "{out}");
    assert!(failed.to_lowercase().contains("head"), "{out}");
    assert_eq!(server.gets("/head.bin").len(), 3, "{out}");
    assert!(peak < RSS_CAP_KIB, "peak RSS {peak} KiB");
    assert!(!sb.dl("head.bin").exists());
}

#[test]
fn endless_chunked_body_is_cut_at_max_file_size_in_bounded_memory() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    server.add("/endless.bin", Vec::new(), Behaviour::EndlessChunked);

    let running = sb
        .haul(["get", &server.url("/endless.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--max-file-size", "8M"])
        .spawn();
    let (out, peak) = running.wait_watching_rss(Duration::from_secs(30));

    println!("peak RSS facing an endless chunked body: {peak} KiB\n{out}");
    out.assert_code(1);
    out.assert_stderr_has(&[&server.url("/endless.bin"), "8388608", "cut"]);
    assert!(!sb.dl("endless.bin").exists());
    assert_eq!(len_or_zero(&sb.dl("endless.bin.part")), 8 << 20);
    assert_eq!(server.gets("/endless.bin").len(), 1);
    assert!(peak < RSS_CAP_KIB, "peak RSS {peak} KiB");
}

#[test]
fn trailing_bytes_never_reach_a_file_nor_answer_another_request() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let names = ["a.bin", "b.bin", "c.bin", "split.bin"];
    let bodies = [
        body(705, 70_000),
        body(706, 80_000),
        body(707, 90_000),
        body(708, 4 << 20),
    ];
    let mut sums = String::new();
    let mut list = String::new();
    for (name, data) in names.iter().zip(&bodies) {
        let path = format!("/{name}");
        server.add(
            &path,
            data.clone(),
            Behaviour::TrailingBytes(SMUGGLED.to_vec()),
        );
        sums.push_str(&format!("{}  {name}\n", sha256_hex(data)));
        list.push_str(&format!("{}\n", server.url(&path)));
    }
    sb.write("SHA256SUMS", sums);
    sb.write("list.txt", list);

    // One job at a time, so the client would reuse each connection if it could.
    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(["-j", "1", "-s", "4", "--checksums", "SHA256SUMS"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(0);
    for (name, data) in names.iter().zip(&bodies) {
        assert_file_eq(&sb.dl(name), data);
    }
    sb.assert_no_part_files();
    let log = server.requests();
    assert!(
        log.iter().filter(|r| r.path == "/split.bin").count() > 1,
        "never split: {log:?}"
    );
    // Every answer left junk on its connection, so none carried a second request.
    assert!(log.iter().all(|r| r.behaviour.starts_with("TrailingBytes")));
    let conns: HashSet<u64> = log.iter().map(|r| r.conn).collect();
    assert_eq!(
        conns.len(),
        log.len(),
        "a poisoned connection was reused: {log:?}"
    );
    sb.haul(["verify", "-d", &sb.dir_arg()])
        .run()
        .assert_code(0);
}

#[test]
fn split_never_writes_past_a_content_range_span() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    // Two connections over 8 MiB: the second owns a 4 MiB range and asks
    // for it in 2 MiB requests, so a surplus written at face value would
    // land inside its range, where the next request's bytes belong.
    let data = body(709, 8 << 20);
    server.add(
        "/over.bin",
        data.clone(),
        Behaviour::OverlongRange(vec![b'X'; 64 << 10]),
    );
    sb.write("SHA256SUMS", format!("{}  over.bin\n", sha256_hex(&data)));

    let out = sb
        .haul(["get", &server.url("/over.bin"), "-d", &sb.dir_arg()])
        .args(["-s", "2", "--checksums", "SHA256SUMS"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("over.bin"), &data);
    let ranged = server
        .gets("/over.bin")
        .iter()
        .filter(|r| r.header("range").is_some())
        .count();
    assert!(ranged > 0, "never split: {out}");
    assert!(
        out.stderr.contains("longer than"),
        "the surplus went unreported\n{out}"
    );
}

#[test]
fn a_resumed_answer_longer_than_its_content_range_is_cut_there() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let data = body(711, 1 << 20);
    server.add(
        "/resume.bin",
        data.clone(),
        Behaviour::OverlongRange(b"JUNK".to_vec()),
    );
    server.script("/resume.bin", vec![Behaviour::Truncate(300_000)]);
    sb.write("SHA256SUMS", format!("{}  resume.bin\n", sha256_hex(&data)));

    let out = sb
        .haul(["get", &server.url("/resume.bin"), "-d", &sb.dir_arg()])
        .args(["--checksums", "SHA256SUMS"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("resume.bin"), &data);
    assert!(
        out.stderr.contains("longer than"),
        "the surplus went unreported\n{out}"
    );
    // Kept up to the end the Content-Range vouched for, then confirmed by a 416.
    let gets = server.gets("/resume.bin");
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(gets[2].header("range"), Some("bytes=1048576-"), "{gets:?}");
}

#[test]
fn a_body_shorter_than_its_content_length_resumes_to_the_exact_file() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let data = body(710, 1 << 20);
    server.add("/short.bin", data.clone(), Behaviour::Honest);
    server.script("/short.bin", vec![Behaviour::Truncate(300_000)]);

    let out = sb
        .haul(["get", &server.url("/short.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("short.bin"), &data);
    let gets = server.gets("/short.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    let range = gets[1].header("range").unwrap_or_default();
    assert!(
        range.starts_with("bytes=") && range != "bytes=0-",
        "{gets:?}"
    );
}

#[test]
fn a_split_file_costs_the_server_at_most_one_percent_over_its_size() {
    split_and_count_what_was_served(&["--split", "4"]);
}

#[test]
fn an_automatically_split_file_costs_the_server_at_most_one_percent_over_its_size() {
    split_and_count_what_was_served(&[]);
}

/// Downloads a 48 MiB file split over 4 connections (by `args`, or by the
/// automatic split at `--min-split-size`) and checks what the server sent.
fn split_and_count_what_was_served(args: &[&str]) {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    // The server writes each answer whole for as long as the socket takes
    // it, so an open-ended answer dropped past a stolen boundary costs
    // whatever the socket buffers held by then.
    let data = body(719, 48 << 20);
    server.add("/big.bin", data.clone(), Behaviour::Honest);

    let out = sb
        .haul(["get", &server.url("/big.bin"), "-d", &sb.dir_arg()])
        .args(args)
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    let gets = server.gets("/big.bin");
    let connections: HashSet<u64> = gets.iter().map(|r| r.conn).collect();
    assert!(connections.len() >= 4, "never split over 4: {gets:?}");
    let served = server.served("/big.bin");
    let ratio = served as f64 / data.len() as f64;
    eprintln!(
        "split over {} connections: {ratio:.4} x the file served",
        connections.len()
    );
    assert!(
        ratio <= 1.01,
        "served {served} bytes for {}: {ratio:.4} x the file, {} requests",
        data.len(),
        gets.len()
    );
}

#[test]
fn a_file_too_small_to_split_comes_as_its_front_then_the_rest() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    // Between the automatic split's front (4 MiB) and the size it splits
    // at (16 MiB).
    let data = body(733, 8 << 20);
    server.add("/mid.bin", data.clone(), Behaviour::Honest);

    let out = sb
        .haul(["get", &server.url("/mid.bin"), "-d", &sb.dir_arg()])
        .args(["--json"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("mid.bin"), &data);
    let gets = server.gets("/mid.bin");
    let ranges: Vec<Option<&str>> = gets.iter().map(|r| r.header("range")).collect();
    assert_eq!(
        ranges,
        [Some("bytes=0-4194303"), Some("bytes=4194304-")],
        "{gets:?}"
    );
    // The rest only if the file is still the one the front came from.
    assert!(gets[1].header("if-range").is_some(), "{:?}", gets[1]);
    assert_eq!(server.served("/mid.bin"), data.len() as u64);
    // One start for the user, not one per request.
    let lines = crate::support::json::json_lines(&out);
    let started = crate::support::json::events(&lines, "started");
    assert_eq!(started.len(), 1, "{started:?}");
}

#[test]
fn a_front_without_a_validator_is_dropped_for_one_whole_answer() {
    let server = HostileServer::start();
    let sb = Sandbox::new();
    let data = body(727, 8 << 20);
    server.add("/plain.bin", data.clone(), Behaviour::Honest);
    server.without_etag("/plain.bin");

    let out = sb
        .haul(["get", &server.url("/plain.bin"), "-d", &sb.dir_arg()])
        .args(["--split", "4"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("plain.bin"), &data);
    // Nothing would prove the ranges come from one version: no split, and
    // the front (asked bounded, so it costs at most 2 MiB) gives way to one
    // plain answer.
    let gets = server.gets("/plain.bin");
    let ranges: Vec<Option<&str>> = gets.iter().map(|r| r.header("range")).collect();
    assert_eq!(ranges, [Some("bytes=0-2097151"), None], "{out}");
    let served = server.served("/plain.bin");
    assert!(served <= data.len() as u64 + (2 << 20), "served {served}");
}
