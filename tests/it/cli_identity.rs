//! A job is its output path, not its URL: rerunning a directory with new
//! URLs for the same files (a re-signed link, a moved mirror, another port)
//! skips what is complete, resumes what is partial under the If-Range rule,
//! and never damages a record a failed or absent job leaves behind.
//!
//! Presigned links are played by query strings on one server (the server
//! serves by path, as S3 does); a moved mirror by a second server with the
//! same bodies but its own validators.

use std::time::Duration;

use serde_json::Value;

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::json::{events, json_lines};
use crate::support::server::TestServer;

const WAIT: Duration = Duration::from_secs(30);

/// Writes `name` with one URL a line (each with its checksum when given)
/// and runs `haul get --json -i name`.
fn get_list(sb: &Sandbox, name: &str, urls: &[(String, Option<String>)]) -> Outcome {
    let mut list = String::new();
    for (url, sum) in urls {
        list.push_str(url);
        list.push('\n');
        if let Some(sum) = sum {
            list.push_str(&format!("  checksum=sha-256={sum}\n"));
        }
    }
    sb.write(name, list);
    sb.haul(["get", "--json", "-i", name, "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .run()
}

fn status_json(sb: &Sandbox) -> Value {
    status_json_exiting(sb, 0)
}

/// `haul status --json`, which must exit with `code` (1: not all done).
fn status_json_exiting(sb: &Sandbox, code: i32) -> Value {
    let out = sb.haul(["status", "--json", "-d", &sb.dir_arg()]).run();
    out.assert_code(code);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|err| panic!("status --json ({err})\n{out}"))
}

#[test]
fn complete_files_are_skipped_without_a_request_whatever_their_new_urls() {
    let old = TestServer::start();
    let new = TestServer::start();
    let sb = Sandbox::new();
    let names = ["a.bin", "b.bin", "c.bin"];
    let mut urls_old = Vec::new();
    let mut urls_new = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let data = body(900 + i as u64, 50_000 + i * 1000);
        let sum = sha256_hex(&data);
        old.add_file(&format!("/{name}"), data.clone());
        new.add_file(&format!("/{name}"), data);
        urls_old.push((old.url(&format!("/{name}?sig=first")), None));
        // The new listing also asks for checksums: the recorded sha256
        // matches them, so still no request.
        urls_new.push((new.url(&format!("/{name}?sig=second")), Some(sum)));
    }
    get_list(&sb, "old.txt", &urls_old).assert_code(0);

    let rerun = get_list(&sb, "new.txt", &urls_new);
    rerun.assert_code(0);
    let lines = json_lines(&rerun);
    assert_eq!(events(&lines, "skipped").len(), 3, "{rerun}");
    assert!(events(&lines, "failed").is_empty(), "{rerun}");
    assert!(new.requests().is_empty(), "{:?}", new.requests());

    let status = status_json(&sb);
    assert_eq!(status["done"], 3, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    let verify = sb.haul(["verify", "-d", &sb.dir_arg()]).run();
    verify.assert_code(0);
    assert!(verify.all_output().contains("3 ok"), "{verify}");

    // And the first list still finds everything in place.
    let again = get_list(&sb, "old.txt", &urls_old);
    again.assert_code(0);
    assert_eq!(events(&json_lines(&again), "skipped").len(), 3, "{again}");
}

#[test]
fn a_partial_file_resumes_from_a_re_signed_url() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 8 << 20;
    let data = body(910, size);
    server.add_file("/big.bin", data.clone());
    server.set_rate("/big.bin", 4 << 20);
    let args = |sig: &str| {
        [
            "get",
            "--json",
            &server.url(&format!("/big.bin?sig={sig}")),
            "-d",
            &sb.dir_arg(),
            "--split",
            "1",
        ]
        .map(String::from)
    };

    let mut first = sb.haul(args("first")).spawn();
    server.wait_served("/big.bin", size as u64 / 2, WAIT);
    first.kill9();
    first.wait(WAIT);
    let gets_first = server.gets("/big.bin").len();
    server.set_rate("/big.bin", 0);

    let rerun = sb.haul(args("second")).run();
    rerun.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    sb.assert_no_part_files();
    let lines = json_lines(&rerun);
    let started = events(&lines, "started");
    let offset = started[0]["offset"].as_u64().unwrap_or(0);
    assert!(offset > 0, "the new URL resumes: {rerun}");
    let resume = &server.gets("/big.bin")[gets_first];
    assert_eq!(resume.range_start(), Some(offset), "{resume:?}");
    assert_eq!(
        resume.header("if-range"),
        server.etag("/big.bin").as_deref(),
        "{resume:?}"
    );
    let served = server.bytes_served("/big.bin");
    assert!(
        served <= size as u64 + size as u64 / 20,
        "served {served} for {size}: the prefix was fetched again"
    );
    // The manifest now points at the URL that finished the file.
    let manifest = std::fs::read_to_string(sb.dir().join(".haul/manifest.json"))
        .unwrap_or_else(|err| panic!("read the manifest: {err}"));
    assert!(manifest.contains("sig=second"), "{manifest}");
    assert!(!manifest.contains("sig=first"), "{manifest}");
}

#[test]
fn a_new_origin_that_cannot_prove_the_bytes_restarts_them_from_zero() {
    let old = TestServer::start();
    let new = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 8 << 20;
    let data = body(920, size);
    old.add_file("/big.bin", data.clone());
    // Same bytes, other validators: If-Range cannot match, so the new
    // origin answers 200 and nothing of the old prefix is kept.
    new.add_file("/big.bin", data.clone());
    old.set_rate("/big.bin", 4 << 20);
    let run = |url: String| {
        sb.haul(["get", "--json", &url, "-d", &sb.dir_arg(), "--split", "1"])
            .args(FAST_RETRY)
    };

    let mut first = run(old.url("/big.bin")).spawn();
    old.wait_served("/big.bin", size as u64 / 2, WAIT);
    first.kill9();
    first.wait(WAIT);

    let rerun = run(new.url("/big.bin")).run();
    rerun.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    let gets = new.gets("/big.bin");
    assert!(gets[0].range_start().is_some_and(|n| n > 0), "{gets:?}");
    assert_eq!(gets[0].header("if-range"), old.etag("/big.bin").as_deref());
    let lines = json_lines(&rerun);
    assert_eq!(events(&lines, "restarted").len(), 1, "{rerun}");
    assert_eq!(new.bytes_served("/big.bin"), size as u64);
}

#[test]
fn a_new_url_that_fails_before_a_byte_arrives_leaves_the_records_intact() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 8 << 20;
    let data = body(930, size);
    let small = body(931, 30_000);
    let other = body(932, 20_000);
    server.add_file("/big.bin", data.clone());
    server.add_file("/done.bin", small.clone());
    server.add_file("/other.bin", other.clone());
    // Half the file takes 2 s: a checkpoint (once a second) has recorded
    // part of it by the time of the kill.
    server.set_rate("/big.bin", 2 << 20);
    let get = |urls: [String; 2]| {
        sb.haul(["get", "--json", "-d", &sb.dir_arg(), "--split", "1"])
            .args(FAST_RETRY)
            .args(urls)
    };

    let mut first = get([server.url("/big.bin"), server.url("/done.bin")]).spawn();
    server.wait_served("/big.bin", size as u64 / 2, WAIT);
    first.kill9();
    first.wait(WAIT);
    assert_file_eq(&sb.dl("done.bin"), &small);
    let before = status_json_exiting(&sb, 1);
    assert!(
        before["bytes_done"].as_u64() > Some(small.len() as u64),
        "{before}"
    );

    // New URLs that answer 404: the partial job fails, the complete one is
    // skipped without asking, and both records keep what they had.
    let broken = get([server.url("/gone/big.bin"), server.url("/gone/done.bin")]).run();
    broken.assert_code(1);
    let lines = json_lines(&broken);
    assert_eq!(events(&lines, "skipped").len(), 1, "{broken}");
    assert_eq!(events(&lines, "failed").len(), 1, "{broken}");
    assert!(server.gets("/gone/done.bin").is_empty());
    let after = status_json_exiting(&sb, 1);
    assert_eq!(after["bytes_done"], before["bytes_done"], "{after}");
    assert_eq!(after["done"], 1, "{after}");

    // A list without those files leaves their records alone.
    let unrelated = sb
        .haul(["get", "-d", &sb.dir_arg(), &server.url("/other.bin")])
        .run();
    unrelated.assert_code(0);
    let status = status_json_exiting(&sb, 1);
    assert_eq!(status["jobs"], 3, "{status}");
    assert_eq!(status["done"], 2, "{status}");
    assert_eq!(
        status["bytes_done"].as_u64(),
        before["bytes_done"]
            .as_u64()
            .map(|b| b + other.len() as u64),
        "{status}"
    );

    // The original URL still resumes where the kill left the file.
    server.set_rate("/big.bin", 0);
    let gets_before = server.gets("/big.bin").len();
    let resumed = get([server.url("/big.bin"), server.url("/done.bin")]).run();
    resumed.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    let started = events(&json_lines(&resumed), "started")
        .first()
        .and_then(|e| e["offset"].as_u64());
    assert!(started > Some(0), "{resumed}");
    let resume = &server.gets("/big.bin")[gets_before];
    assert_eq!(resume.range_start(), started, "{resume:?}");
}

#[test]
fn allow_overwrite_still_guards_files_haul_never_recorded() {
    let old = TestServer::start();
    let new = TestServer::start();
    let sb = Sandbox::new();
    let data = body(940, 40_000);
    old.add_file("/a.bin", data.clone());
    new.add_file("/a.bin", data.clone());
    new.add_file("/mine.bin", body(941, 1000));
    get_list(&sb, "old.txt", &[(old.url("/a.bin"), None)]).assert_code(0);
    std::fs::write(sb.dl("mine.bin"), b"the user's own file")
        .unwrap_or_else(|err| panic!("write mine.bin: {err}"));

    let out = get_list(
        &sb,
        "new.txt",
        &[(new.url("/a.bin"), None), (new.url("/mine.bin"), None)],
    );
    out.assert_code(1);
    let lines = json_lines(&out);
    assert_eq!(events(&lines, "skipped").len(), 1, "{out}");
    let failed = events(&lines, "failed");
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["path"], "mine.bin");
    assert_eq!(failed[0]["kind"], "exists");
    assert_eq!(
        std::fs::read(sb.dl("mine.bin")).unwrap_or_default(),
        b"the user's own file"
    );
}

#[test]
fn the_demo_runs_twice_and_the_second_run_skips_every_file() {
    let sb = Sandbox::new();
    let dir = sb.root().join("demo");
    let dir = dir.display().to_string();
    // The demo keeps its source files under the temporary directory: this
    // sandbox's own, so no other run on the machine shares them.
    let tmp = sb.root().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap_or_else(|err| panic!("create tmp/: {err}"));
    let demo = || sb.haul(["demo", "-d", &dir]).env("TMPDIR", &tmp);
    let first = demo().run();
    first.assert_code(0);
    // Each demo serves on a new port: every URL differs from the first run's.
    let second = demo().run();
    second.assert_code(0);
    let skips = second
        .all_output()
        .lines()
        .filter(|l| l.trim_start().starts_with("skip"))
        .count();
    assert_eq!(skips, 16, "{second}");
    assert!(!second.all_output().contains("failed demo"), "{second}");
}
