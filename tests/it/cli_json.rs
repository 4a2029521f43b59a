//! `--json` as a script sees it: every stdout line of `haul get --json`,
//! `haul verify --json` and `haul status --json` parses; the event sequence
//! of a small run (a retry, a 404, a success), the progress throttle on a
//! slow file, the summary, and the status counts match what happened.

use std::time::Duration;

use serde_json::Value;

use crate::support::bodies::{body, sha256_hex};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY, RUN_TIMEOUT};
use crate::support::json::{events, json_lines};
use crate::support::server::{Fault, TestServer};

/// The position in `lines` of the first `name` event of job `id`.
fn index_of(lines: &[Value], name: &str, id: u64) -> usize {
    lines
        .iter()
        .position(|l| l["event"] == name && l["id"] == id)
        .unwrap_or_else(|| panic!("no {name} event for job {id}: {lines:#?}"))
}

fn get_json(sb: &Sandbox, urls: &[String]) -> Outcome {
    let list: String = urls.iter().map(|u| format!("{u}\n")).collect();
    sb.write("list.txt", list);
    sb.haul(["get", "--json", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["-j", "1"])
        .run()
}

#[test]
fn json_events_tell_a_run_with_a_retry_and_a_404() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let (a, b) = (body(501, 40_000), body(502, 70_000));
    server.add_file("/a.bin", a.clone());
    server.add_file("/b.bin", b.clone());
    server.script("/b.bin", vec![Fault::Status(503)]);
    let urls = [
        server.url("/a.bin"),
        server.url("/b.bin"),
        server.url("/missing.bin"),
    ];

    let out = get_json(&sb, &urls);

    out.assert_code(1);
    let lines = json_lines(&out);
    for line in &lines {
        assert!(line["event"].is_string(), "{line}");
        assert!(line["time"].as_f64().is_some_and(|t| t > 1.5e9), "{line}");
    }
    assert!(
        out.failed_lines().is_empty(),
        "no human lines with --json\n{out}"
    );
    assert_eq!(lines[0]["event"], "run_started", "{lines:#?}");
    assert_eq!(lines[0]["jobs"], 3);
    let queued = events(&lines, "queued");
    assert_eq!(queued.len(), 3, "{lines:#?}");
    for (id, (line, url)) in queued.iter().zip(&urls).enumerate() {
        assert_eq!(line["id"], id as u64);
        assert_eq!(line["url"], url.as_str());
    }

    // b: 503, a retry with its reason and wait, then success.
    let retry = events(&lines, "retrying");
    assert_eq!(retry.len(), 1, "{lines:#?}");
    assert_eq!(retry[0]["path"], "b.bin");
    assert_eq!(retry[0]["attempt"], 1);
    assert!(retry[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("503")));
    assert!(retry[0]["delay_secs"].as_f64().is_some());
    assert!(retry[0]["capped_from_secs"].is_null());
    assert!(index_of(&lines, "queued", 1) < index_of(&lines, "retrying", 1));
    assert!(index_of(&lines, "retrying", 1) < index_of(&lines, "finished", 1));

    let finished = events(&lines, "finished");
    assert_eq!(finished.len(), 2, "{lines:#?}");
    for (line, (name, data, url)) in finished
        .iter()
        .zip([("a.bin", &a, &urls[0]), ("b.bin", &b, &urls[1])])
    {
        assert_eq!(line["path"], name);
        assert_eq!(line["url"], url.as_str());
        assert_eq!(line["bytes"], data.len() as u64);
        assert_eq!(line["sha256"], sha256_hex(data));
    }
    assert!(index_of(&lines, "started", 0) < index_of(&lines, "finished", 0));

    let failed = events(&lines, "failed");
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert_eq!(failed[0]["path"], "missing.bin");
    assert_eq!(failed[0]["url"], urls[2].as_str());
    assert_eq!(failed[0]["kind"], "http_status");
    assert!(failed[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("404")));

    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["event"], "summary", "the summary comes last");
    assert_eq!(summary["done"], 2);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["interrupted"], 0);
    assert_eq!(summary["cancelled"], false);
    assert_eq!(summary["bytes"], (a.len() + b.len()) as u64);
    assert!(summary["elapsed_secs"].as_f64().is_some());
    assert!(summary["warnings"].is_array());

    // What the manifest now says, for scripts.
    let status = sb.haul(["status", "--json", "-d", &sb.dir_arg()]).run();
    // One job failed: not everything is done.
    status.assert_code(1);
    let st: Value = serde_json::from_str(status.stdout.trim()).expect("one JSON object");
    assert_eq!(st["jobs"], 3, "{st}");
    assert_eq!(st["done"], 2, "{st}");
    assert_eq!(st["failed"], 1, "{st}");
    assert_eq!(st["partial"], 0, "{st}");
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["bytes_done"], (a.len() + b.len()) as u64, "{st}");
    assert_eq!(st["failures"][0]["path"], "missing.bin", "{st}");
    assert!(st["failures"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("404")));
    let human = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    assert!(human.stdout.contains("left"), "{human}");
    assert!(human.stdout.contains("404"), "{human}");

    // A second run skips what is complete and queues only the rest.
    let again = get_json(&sb, &urls);
    again.assert_code(1);
    let lines = json_lines(&again);
    let skipped: Vec<&str> = events(&lines, "skipped")
        .iter()
        .filter_map(|l| l["path"].as_str())
        .collect();
    assert_eq!(skipped, ["a.bin", "b.bin"], "{again}");
    assert_eq!(events(&lines, "queued").len(), 1, "{again}");
    assert_eq!(lines.last().map(|l| l["skipped"].clone()), Some(2.into()));
}

#[test]
fn json_progress_is_at_most_two_lines_a_second_per_job() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 600_000;
    server.add_file("/slow.bin", body(503, size));
    // About three seconds: the engine reports ~10 times a second.
    server.set_rate("/slow.bin", 200_000);

    let out = get_json(&sb, &[server.url("/slow.bin")]);

    out.assert_code(0);
    let lines = json_lines(&out);
    let progress = events(&lines, "progress");
    let times: Vec<f64> = progress
        .iter()
        .map(|l| l["time"].as_f64().expect("a time"))
        .collect();
    assert!(progress.len() >= 3, "progress flows: {lines:#?}");
    // Every gap but the last (the final position, always shown) is at
    // least half a second (the times are rounded to the millisecond).
    for pair in times[..times.len() - 1].windows(2) {
        assert!(pair[1] - pair[0] >= 0.499, "{times:?}");
    }
    let span = times[times.len() - 1] - times[0];
    assert!(
        progress.len() as f64 <= 2.0 * span + 2.0,
        "{} lines in {span:.2} s",
        progress.len()
    );
    let last = progress.last().expect("some progress");
    assert_eq!(last["pos"], size as u64, "the final position is shown");
    assert_eq!(last["total"], size as u64);
    assert_eq!(last["path"], "slow.bin");
    let last_progress = lines.iter().rposition(|l| l["event"] == "progress");
    let finished = lines.iter().position(|l| l["event"] == "finished");
    assert!(last_progress < finished, "{lines:#?}");
}

#[test]
fn verify_json_gives_a_line_per_file_and_a_summary() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(504, 10_000));
    server.add_file("/b.bin", body(505, 10_000));
    get_json(&sb, &[server.url("/a.bin"), server.url("/b.bin")]).assert_code(0);
    std::fs::write(sb.dl("b.bin"), b"tampered").expect("overwrite b.bin");

    let out = sb.haul(["verify", "--json", "-d", &sb.dir_arg()]).run();

    out.assert_code(1);
    let lines = json_lines(&out);
    let mut verified: Vec<(String, String)> = events(&lines, "verified")
        .iter()
        .map(|l| (l["path"].to_string(), l["status"].to_string()))
        .collect();
    verified.sort();
    assert_eq!(
        verified,
        [
            ("\"a.bin\"".to_string(), "\"ok\"".to_string()),
            ("\"b.bin\"".to_string(), "\"mismatch\"".to_string())
        ],
        "{out}"
    );
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["event"], "verify_summary");
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["ok"], 1);
    assert_eq!(summary["mismatched"], 1);
}

#[test]
fn json_interrupted_run_ends_with_interrupted_lines_and_a_cancelled_summary() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 2_000_000;
    server.add_file("/big.bin", body(506, size));
    server.set_rate("/big.bin", 500_000);
    let running = sb
        .haul([
            "get",
            "--json",
            &server.url("/big.bin"),
            "-d",
            &sb.dir_arg(),
        ])
        .spawn();
    server.wait_served("/big.bin", 300_000, Duration::from_secs(20));

    running.signal("INT");
    let out = running.wait(RUN_TIMEOUT);

    out.assert_code(130);
    let lines = json_lines(&out);
    let interrupted = events(&lines, "interrupted");
    assert_eq!(interrupted.len(), 1, "{out}");
    assert_eq!(interrupted[0]["path"], "big.bin");
    assert!(interrupted[0]["pos"]
        .as_u64()
        .is_some_and(|p| p < size as u64));
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["event"], "summary", "{out}");
    assert_eq!(summary["cancelled"], true);
    assert_eq!(summary["interrupted"], 1);
    assert!(
        out.stderr.contains("resume"),
        "the hint stays on stderr\n{out}"
    );
}
