//! Connections that free up join the split files still running: a large
//! file that started on one connection, because small files held the
//! host's other slots, takes them over once the small files are done, up
//! to its `--split`, never past `--max-per-host` or `--max-connections`,
//! and never before a queued job that could use the slot.
//!
//! Each step waits on the server (bodies paused at a gate, bodies in
//! flight, bytes served), never on a clock.

use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

const WAIT: Duration = Duration::from_secs(30);

/// Bytes of a large file served before its bodies pause. Larger than the
/// socket buffers between server and client can hold (the send buffer
/// grows to 4 MiB at most here; the receive buffer stays small while
/// nothing reads it): once served, haul has been reading the file's
/// first answer, so its split has started and taken what slots it could.
const HELD: u64 = 8 << 20;

const SMALL: usize = 64 << 10;

fn list(sb: &Sandbox, urls: &[String]) {
    let lines: String = urls.iter().map(|url| format!("{url}\n")).collect();
    sb.write("list.txt", lines);
}

#[test]
fn freed_connections_join_a_running_split_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 32 << 20;
    server.add_file("/big.bin", body(700, size));
    server.hold_path_at("/big.bin", HELD);
    let smalls: Vec<String> = (0..6).map(|i| format!("/small{i}.bin")).collect();
    for (i, path) in smalls.iter().enumerate() {
        server.add_file(path, body(710 + i as u64, SMALL));
        // Each holds its connection until the test lets it go.
        server.hold_path_at(path, 0);
    }
    // The large file first: it starts with the host's first slot, the
    // first three small files take the other three, the rest queue.
    let urls: Vec<String> = std::iter::once("/big.bin")
        .chain(smalls.iter().map(String::as_str))
        .map(|path| server.url(path))
        .collect();
    list(&sb, &urls);

    let dir = sb.dir_arg();
    let args = [
        "get", "-i", "list.txt", "-d", &dir, "-j", "4", "--split", "4",
    ];
    let run = sb.haul(args).spawn();
    server.wait_served("/big.bin", HELD, WAIT);
    assert_eq!(server.in_flight_of("/big.bin"), 1, "no slot was free");

    // Three slots free up: the queued small files get them, not the
    // running file (had it grown, they could not all stream at once).
    for path in &smalls[..3] {
        server.release_path(path);
    }
    let queued: Vec<&str> = smalls[3..].iter().map(String::as_str).collect();
    server.wait_in_flight(&queued, 3, WAIT);
    assert_eq!(server.in_flight_of("/big.bin"), 1);

    // Nothing is queued any more: the large file grows to its four.
    for path in &smalls[3..] {
        server.release_path(path);
    }
    server.wait_in_flight(&["/big.bin"], 4, WAIT);
    server.release_path("/big.bin");
    let out = run.wait(WAIT);

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &body(700, size));
    for (i, path) in smalls.iter().enumerate() {
        let name = path.trim_start_matches('/');
        assert_file_eq(&sb.dl(name), &body(710 + i as u64, SMALL));
    }
    sb.assert_no_part_files();
    // The host's cap (`-j 4`, so 4) held throughout.
    assert_eq!(server.max_in_flight("127.0.0.1"), 4, "{out}");
}

#[test]
fn growing_files_keep_to_the_per_host_and_global_caps() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 16 << 20;
    // Two large files on two host names, and a small one beside the first.
    server.add_file("/a.bin", body(720, size));
    server.add_file("/b.bin", body(721, size));
    server.add_file("/s.bin", body(722, SMALL));
    server.hold_path_at("/a.bin", HELD);
    server.hold_path_at("/b.bin", HELD);
    server.hold_path_at("/s.bin", 0);
    list(
        &sb,
        &[
            server.url_on("127.0.0.1", "/a.bin"),
            server.url_on("localhost", "/b.bin"),
            server.url_on("127.0.0.1", "/s.bin"),
        ],
    );

    let dir = sb.dir_arg();
    let run = sb
        .haul([
            "get",
            "-i",
            "list.txt",
            "-d",
            &dir,
            "-j",
            "3",
            "--split",
            "4",
            "--max-per-host",
            "2",
            "--max-connections",
            "3",
        ])
        .spawn();
    // Three connections, the run's cap: both large files started on one.
    server.wait_served("/a.bin", HELD, WAIT);
    server.wait_served("/b.bin", HELD, WAIT);

    // The small file's slot frees up: one of the large files takes it.
    server.release_path("/s.bin");
    server.wait_in_flight(&["/a.bin", "/b.bin"], 3, WAIT);
    server.release_path("/a.bin");
    server.release_path("/b.bin");
    let out = run.wait(WAIT);

    out.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &body(720, size));
    assert_file_eq(&sb.dl("b.bin"), &body(721, size));
    assert_file_eq(&sb.dl("s.bin"), &body(722, SMALL));
    sb.assert_no_part_files();
    let (a, b) = (
        server.max_in_flight("127.0.0.1"),
        server.max_in_flight("localhost"),
    );
    assert!(a <= 2 && b <= 2, "--max-per-host 2: saw {a} and {b}\n{out}");
    let total = server.max_in_flight_total();
    assert_eq!(total, 3, "--max-connections 3\n{out}");
}
