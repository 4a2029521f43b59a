//! Careful by default: a server that starts well and then
//! drips is cut with default flags, over a window that slides (the verdict
//! falls a window after the drip begins, not at a window boundary, and
//! without waiting for the drip's next byte); haul's own `--max-speed` is
//! never mistaken for a slow server; `--lowest-speed 0` turns the floor off.
//! `--stall-timeout 0` is refused, and an explicit `--split N` above
//! `--max-per-host` (or `--max-connections`) warns once, naming both flags.
//!
//! The first test runs in real time with the default 30 s window, as a user
//! would meet it; the others prove the window's shape with a short
//! `--lowest-speed-time`, which is the same code with a smaller number.

use std::time::Duration;

use serde_json::Value;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

const KIB: u64 = 1 << 10;

/// The gap between the first two GETs of `path`: how long the first
/// attempt ran before haul gave up on it (plus the retry wait).
fn first_attempt(server: &TestServer, path: &str) -> Duration {
    let gets = server.gets(path);
    assert!(gets.len() >= 2, "no second attempt: {gets:?}");
    gets[1].at - gets[0].at
}

#[test]
fn default_flags_cut_a_server_that_sends_30_percent_then_drips() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 1 << 20;
    let fast = len as u64 * 3 / 10;
    server.add_file("/f.bin", body(950, len));
    // The server: 30 % at once, then a byte every 2 s, well inside
    // the 30 s stall timeout. Only the first answer drips; the resumed one
    // finishes the file.
    server.script("/f.bin", vec![Fault::DripAfter(fast, 2000)]);

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .spawn()
        // A minute would be a wait for ever at this drip (70 % left at
        // half a byte a second); the verdict is due after 30 s.
        .wait(Duration::from_secs(50));

    out.assert_code(0);
    out.assert_stderr_has(&["slower than 1024 B/s"]);
    assert_file_eq(&sb.dl("f.bin"), &body(950, len));
    let gets = server.gets("/f.bin");
    assert_eq!(gets.len(), 2, "{out}");
    let resumed = gets[1].range_start().unwrap_or(0);
    assert!(resumed > fast, "resumed from {resumed}\n{out}");
    // A window after the drip began (plus a one-second bucket and a retry
    // wait of at most 1 s), not the 60 s a tumbling window would need.
    let ran = first_attempt(&server, "/f.bin");
    assert!(
        ran >= Duration::from_secs(30) && ran <= Duration::from_secs(35),
        "first attempt ran {ran:?}\n{out}"
    );
}

#[test]
fn a_drip_is_cut_one_window_after_it_begins_not_at_a_window_boundary() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 200 * KIB as usize;
    server.add_file("/f.bin", body(951, len));
    // 60 KiB at once fill the first 3 s window twenty times over; then
    // ten bytes a second. A sliding window lets go of the fast start 3 s
    // later; a tumbling one would pass the first window and fail the
    // second, at 6 s.
    server.script("/f.bin", vec![Fault::DripAfter(60 * KIB, 100)]);

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--lowest-speed", "1K", "--lowest-speed-time", "3"])
        .run();

    out.assert_code(0);
    out.assert_stderr_has(&["slower than 1024 B/s"]);
    assert_file_eq(&sb.dl("f.bin"), &body(951, len));
    assert_eq!(server.gets("/f.bin").len(), 2, "{out}");
    let ran = first_attempt(&server, "/f.bin");
    assert!(
        ran >= Duration::from_secs(3) && ran < Duration::from_millis(4500),
        "first attempt ran {ran:?}\n{out}"
    );
}

#[test]
fn a_drip_slower_than_the_window_is_cut_without_waiting_for_its_next_byte() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 100 * KIB as usize;
    server.add_file("/f.bin", body(952, len));
    // A byte every 5 s: a floor judged only when bytes arrive would give
    // its verdict at 5 s at the earliest.
    server.script("/f.bin", vec![Fault::DripAfter(10 * KIB, 5000)]);

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--lowest-speed", "1K", "--speed-time", "1"])
        .run();

    out.assert_code(0);
    out.assert_stderr_has(&["slower than 1024 B/s"]);
    assert_file_eq(&sb.dl("f.bin"), &body(952, len));
    let ran = first_attempt(&server, "/f.bin");
    assert!(
        ran >= Duration::from_secs(1) && ran < Duration::from_millis(2500),
        "first attempt ran {ran:?}\n{out}"
    );
}

#[test]
fn lowest_speed_zero_turns_the_floor_off() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 20 * KIB as usize;
    server.add_file("/f.bin", body(953, len));
    // 2 s of drip against a 0.5 s window: any floor at all would fire.
    server.script("/f.bin", vec![Fault::DripAfter(len as u64 - 20, 100)]);

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--lowest-speed", "0", "--lowest-speed-time", "0.5"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(953, len));
    assert_eq!(server.gets("/f.bin").len(), 1, "{out}");
    assert!(out.elapsed >= Duration::from_secs(2), "{:?}", out.elapsed);
}

#[test]
fn a_shared_speed_limit_is_not_mistaken_for_slow_servers() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 128 * KIB as usize;
    let names = ["a.bin", "b.bin", "c.bin", "d.bin"];
    for (i, name) in names.iter().enumerate() {
        server.add_file(&format!("/{name}"), body(960 + i as u64, len));
    }
    let urls: Vec<String> = names.iter().map(|n| server.url(&format!("/{n}"))).collect();

    // 128 KiB/s shared by four connections is 32 KiB/s each, half the
    // 64 KiB/s floor: every server is fast, haul is what holds them back,
    // and that must not count as the servers being slow. About 4 s.
    let out = sb
        .haul(["get", "-d", &sb.dir_arg()])
        .args(&urls)
        .args(["-j", "4", "--split", "1", "--max-speed", "128K"])
        .args(["--lowest-speed", "64K", "--lowest-speed-time", "1"])
        .args(FAST_RETRY)
        .run();

    out.assert_code(0);
    assert!(!out.stderr.contains("slower than"), "{out}");
    for (i, name) in names.iter().enumerate() {
        assert_file_eq(&sb.dl(name), &body(960 + i as u64, len));
        let gets = server.gets(&format!("/{name}"));
        assert_eq!(gets.len(), 1, "{name} was retried\n{out}");
    }
    assert!(out.elapsed >= Duration::from_secs(3), "{:?}", out.elapsed);
}

#[test]
fn a_time_limit_of_zero_is_refused_before_any_request() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(970, 1024));
    let url = server.url("/f.bin");

    // 0 s used to be taken, then failed every attempt at once ("no data
    // for 0.0 s"); it is bad usage, as a limit of nothing.
    let zero_stall = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--stall-timeout", "0"])
        .run();
    zero_stall.assert_code(2);
    zero_stall.assert_stderr_has(&["--stall-timeout", "above 0"]);

    let zero_window = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--lowest-speed-time", "0"])
        .run();
    zero_window.assert_code(2);
    zero_window.assert_stderr_has(&["--lowest-speed-time", "above 0"]);

    // The config file goes through the same check, named by file and line.
    let config = sb.write("haul.toml", "[get]\nstall-timeout = 0\n");
    let config = config.display().to_string();
    let from_file = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--config", &config])
        .run();
    from_file.assert_code(2);
    from_file.assert_stderr_has(&["haul.toml:2", "stall-timeout"]);

    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(!sb.dl("f.bin").exists());
}

/// stderr lines that are warnings.
fn warnings(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

#[test]
fn split_above_max_per_host_warns_naming_both_flags_and_keeps_the_cap() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 8 << 20;
    server.add_file("/s.bin", body(980, len));
    // Paced, so that the ranges overlap and a ninth connection would show.
    server.set_rate("/s.bin", 2 << 20);

    let out = sb
        .haul(["get", &server.url("/s.bin"), "-d", &sb.dir_arg()])
        .args(["--split", "8", "-j", "4"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &body(980, len));
    let lines = warnings(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("--split 8") && lines[0].contains("--max-per-host 4"),
        "{out}"
    );
    let ranged = server
        .gets("/s.bin")
        .iter()
        .filter(|r| r.status == Some(206))
        .count();
    assert!(ranged >= 2, "not split\n{out}");
    let most = server.max_in_flight("127.0.0.1");
    assert!(most <= 4, "{most} connections at once\n{out}");
}

#[test]
fn split_within_its_caps_warns_nothing_and_each_cap_over_it_warns_once() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(981, 1024));
    let url = server.url("/f.bin");

    for quiet in [
        &["--split", "4"][..],
        &["--split", "8", "--max-per-host", "8"],
        &["--max-per-host", "1"],
    ] {
        let dir = sb.root().join(format!("quiet-{}", quiet.join("")));
        let dir = dir.display().to_string();
        let out = sb.haul(["get", &url, "-d", &dir]).args(quiet).run();
        out.assert_code(0);
        assert!(warnings(&out).is_empty(), "{quiet:?}\n{out}");
    }

    let out = sb
        .haul(["get", &url, "-d", &sb.dir_arg()])
        .args([
            "--split",
            "8",
            "--max-per-host",
            "8",
            "--max-connections",
            "6",
        ])
        .run();
    out.assert_code(0);
    let lines = warnings(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("--split 8") && lines[0].contains("--max-connections 6"),
        "{out}"
    );
}

#[test]
fn split_warning_goes_in_the_json_summary_and_stdout_stays_json() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(982, 1024));

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(["--json", "--split", "8", "-j", "4"])
        .run();

    out.assert_code(0);
    let lines = crate::support::json::json_lines(&out);
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["event"], "summary", "{out}");
    let listed: Vec<&str> = summary["warnings"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{out}");
    assert!(
        listed[0].contains("--split 8") && listed[0].contains("--max-per-host 4"),
        "{out}"
    );
    assert!(warnings(&out).is_empty(), "said twice\n{out}");
}
