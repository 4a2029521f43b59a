//! `--max-speed`: one limit for the whole run, shared by the connections of
//! a split file and by files downloading side by side, measured against a
//! server that sends as fast as it can; and a throttled download still stops
//! at once on Ctrl-C.

use std::time::{Duration, Instant};

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

const WAIT: Duration = Duration::from_secs(30);

const MIB: u64 = 1 << 20;

/// Bytes a second over the whole run, process start to exit.
fn mean_rate(bytes: u64, out: &crate::support::cli::Outcome) -> f64 {
    bytes as f64 / out.elapsed.as_secs_f64()
}

fn assert_within_10_percent(rate: f64, limit: u64, what: &str) {
    let ratio = rate / limit as f64;
    eprintln!(
        "{what}: {:.3} MiB/s for a limit of {:.3} MiB/s ({ratio:.3} x)",
        rate / MIB as f64,
        limit as f64 / MIB as f64
    );
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{what}: {ratio:.3} x the limit"
    );
}

#[test]
fn split_connections_share_one_limit() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 16 * MIB;
    server.add_file("/s.bin", body(500, size as usize));

    // About 4 s at 4 MiB/s, far from what the debug binary can do unlimited.
    let out = sb
        .haul([
            "get",
            &server.url("/s.bin"),
            "-d",
            &sb.dir_arg(),
            "--split",
            "4",
            "--max-speed",
            "4M",
        ])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &body(500, size as usize));
    // Not max_in_flight: unthrottled, the server hands a whole range to
    // the loopback socket buffers long before haul has read it.
    let ranged = server
        .gets("/s.bin")
        .iter()
        .filter(|r| r.status == Some(206))
        .count();
    assert!(ranged >= 3, "only {ranged} ranged requests: not split");
    assert_within_10_percent(mean_rate(size, &out), 4 * MIB, "4 connections");
}

#[test]
fn files_downloading_side_by_side_share_one_limit() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 6 * MIB;
    server.add_file("/a.bin", body(501, size as usize));
    server.add_file("/b.bin", body(502, size as usize));

    // The aria2 name, and single streams: the limit is not per file.
    let out = sb
        .haul([
            "get",
            &server.url("/a.bin"),
            &server.url("/b.bin"),
            "-d",
            &sb.dir_arg(),
            "-j",
            "2",
            "--split",
            "1",
            "--max-overall-download-limit",
            "4M",
        ])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &body(501, size as usize));
    assert_file_eq(&sb.dl("b.bin"), &body(502, size as usize));
    assert_within_10_percent(mean_rate(2 * size, &out), 4 * MIB, "2 files");
}

#[test]
fn ctrl_c_stops_a_throttled_download_at_once() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/slow.bin", body(503, MIB as usize));

    // At 1 KiB/s the first chunk uses the burst and the next owes many
    // seconds: only a wait that listens for Ctrl-C ends quickly.
    let running = sb
        .haul([
            "get",
            &server.url("/slow.bin"),
            "-d",
            &sb.dir_arg(),
            "--max-speed",
            "1K",
        ])
        .spawn();
    server.wait_served("/slow.bin", 32 << 10, WAIT);
    // The .part is opened right before the body is read, and the first
    // chunk already waits in the socket: once it exists, haul is a moment
    // from its first long wait for tokens. Nothing else tells, hence a poll.
    let part = sb.dl("slow.bin.part");
    let deadline = Instant::now() + WAIT;
    while !part.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            part.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    running.signal("INT");
    let signalled = Instant::now();
    let out = running.wait(WAIT);
    let latency = out.ended - signalled;
    eprintln!("SIGINT: haul exited {:?} after {latency:?}", out.code());

    out.assert_code(130);
    assert!(
        latency <= Duration::from_secs(2),
        "took {latency:?} to exit\n{out}"
    );
}

#[test]
fn a_speed_floor_at_or_over_the_limit_is_refused_before_any_request() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(504, 1024));

    let out = sb
        .haul([
            "get",
            &server.url("/f.bin"),
            "-d",
            &sb.dir_arg(),
            "--max-speed",
            "1M",
            "--lowest-speed",
            "1M",
        ])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&["--lowest-speed", "--max-speed"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}
