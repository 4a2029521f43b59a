//! The `--json` schema pinned byte for byte: a small scripted run that
//! gives every event kind the README's "Machine-readable output" lists
//! (retries with and without a capped `Retry-After`, a restart, failures
//! of several kinds, a skip, a hook, a mirror failover, an interruption),
//! then `verify
//! --json` and `status --json`, compared with `golden/cli_json.txt`.
//!
//! Only what varies from run to run is normalised: times, durations, the
//! servers' ports, the sandbox path, jittered retry delays, the position
//! an interruption stopped at, and progress: how many progress lines a job
//! gets and at which positions depends on speed (the engine coalesces by
//! time), so only each job's first one is kept, its `pos` blanked. Key names,
//! key order, event order and every other value are compared as written.
//! To accept an intended change, run with `HAUL_BLESS=1` and review the
//! diff of the golden file.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::bodies::body;
use crate::support::cli::{Sandbox, RUN_TIMEOUT};
use crate::support::server::{refusing_port, Fault, TestServer};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/golden/cli_json.txt");

/// Replaces the value of every `"key":` in `line` (a number, `null` or a
/// string) with `with`, keeping the text around it as it is.
fn blank(line: &str, key: &str, with: &str) -> String {
    let needle = format!("\"{key}\":");
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(&needle) {
        let start = at + needle.len();
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = if let Some(s) = tail.strip_prefix('"') {
            s.find('"').map_or(tail.len(), |e| e + 2)
        } else {
            tail.find([',', '}']).unwrap_or(tail.len())
        };
        out.push_str(with);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Normalises one run's stdout: see the module doc for what and why.
fn normalise(stdout: &str, port: u16, root: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut progressed: Vec<Value> = Vec::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let mut line = line
            .replace(&root.display().to_string(), "ROOT")
            .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT");
        line = blank(&line, "time", "T");
        line = blank(&line, "elapsed_secs", "S");
        // A jittered wait is never zero; a mirror switch's is, and stays.
        if value["event"] == "retrying"
            && value["capped_from_secs"].is_null()
            && value["delay_secs"] != 0.0
        {
            line = blank(&line, "delay_secs", "D");
        }
        if value["event"] == "progress" {
            if progressed.contains(&value["id"]) {
                continue;
            }
            progressed.push(value["id"].clone());
            line = blank(&line, "pos", "P");
        }
        if value["event"] == "interrupted" {
            line = blank(&line, "pos", "P");
        }
        if value["event"] == "summary" && value["cancelled"] == true {
            // What arrived before the signal.
            line = blank(&line, "bytes", "B");
        }
        out.push(line);
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn json_output_matches_the_golden_transcript_byte_for_byte() {
    let server = TestServer::start();
    let port = server.port();
    let (_held, refused) = refusing_port();
    let sb = Sandbox::new();
    let dl = sb.dir_arg();
    let mut transcript = String::new();
    let mut record = |title: &str, stdout: &str, root: &Path| {
        transcript.push_str(&format!("$ {title}\n"));
        transcript.push_str(&normalise(stdout, port, root));
    };

    server.add_file("/a.bin", body(901, 300_000));
    server.add_file("/b.bin", body(902, 5_000));
    server.script("/b.bin", vec![Fault::Status(503)]);
    server.add_file("/c.bin", body(903, 5_000));
    server.script("/c.bin", vec![Fault::StatusRetryAfter(503, "120".into())]);
    server.add_file("/d.bin", body(904, 50_000));
    server.script(
        "/d.bin",
        vec![Fault::CloseAfter(20_000), Fault::IgnoreRange],
    );
    server.add_file("/e.bin", body(905, 1_000));
    let list = format!(
        "{a}\n{b}\n{c}\n{d}\n{missing}\n{e}\n  checksum=sha-256={zero}\n",
        a = server.url("/a.bin"),
        b = server.url("/b.bin"),
        c = server.url("/c.bin"),
        d = server.url("/d.bin"),
        missing = server.url("/missing.bin"),
        e = server.url("/e.bin"),
        zero = "0".repeat(64),
    );
    sb.write("list.txt", list);
    let get = ["get", "--json", "-i", "list.txt", "-d", &dl, "-j", "1"];
    let retry = ["--retry-wait", "0.01", "--max-retry-wait", "0.1"];
    let out = sb.haul(get).args(retry).run();
    out.assert_code(1);
    record("haul get --json (mixed run)", &out.stdout, sb.root());

    // A refused connection, in a run of its own: jobs on other hosts run
    // beside each other whatever `-j` says, so their lines would interleave.
    let sb_refused = Sandbox::new();
    let url = format!("http://127.0.0.1:{refused}/refused.bin");
    let out = sb_refused
        .haul(["get", "--json", &url, "-d", &sb_refused.dir_arg()])
        .args(retry)
        .args(["--max-tries", "2"])
        .run();
    out.assert_code(1);
    let stdout = out
        .stdout
        .replace(&format!("127.0.0.1:{refused}"), "127.0.0.1:REFUSED");
    record(
        "haul get --json (connection refused)",
        &stdout,
        sb_refused.root(),
    );

    // A second run: what is complete is skipped; a new file gets a hook.
    server.add_file("/h.bin", body(906, 2_000));
    let script = sb.write(
        "hook.sh",
        "#!/bin/sh\necho \"hooked $(basename \"$1\")\"\necho oops >&2\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("make the hook executable");
    }
    sb.write(
        "list2.txt",
        format!("{}\n{}\n", server.url("/a.bin"), server.url("/h.bin")),
    );
    let out = sb
        .haul(["get", "--json", "-i", "list2.txt", "-d", &dl, "-j", "1"])
        .args(["--on-complete", &script.display().to_string()])
        .run();
    out.assert_code(0);
    record("haul get --json (skip and hook)", &out.stdout, sb.root());

    std::fs::write(sb.dl("b.bin"), b"tampered").expect("overwrite b.bin");
    let out = sb.haul(["verify", "--json", "-d", &dl]).run();
    out.assert_code(1);
    // Files are checked in parallel: sort the per-file lines by path.
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    let last = lines.pop().unwrap_or_default();
    lines.sort_by_key(|l| {
        serde_json::from_str::<Value>(l)
            .map(|v| v["path"].to_string())
            .ok()
    });
    lines.push(last);
    record("haul verify --json", &(lines.join("\n") + "\n"), sb.root());

    let out = sb.haul(["status", "--json", "-d", &dl]).run();
    // Two jobs failed: not everything is done.
    out.assert_code(1);
    record("haul status --json", &out.stdout, sb.root());

    // Two mirrors: the first has no such file, the job moves to the second.
    let mirror = TestServer::start();
    mirror.add_file("/m.bin", body(908, 3_000));
    let sb_mirror = Sandbox::new();
    sb_mirror.write(
        "list.txt",
        format!("{}\t{}\n", server.url("/m.bin"), mirror.url("/m.bin")),
    );
    let out = sb_mirror
        .haul([
            "get",
            "--json",
            "-i",
            "list.txt",
            "-d",
            &sb_mirror.dir_arg(),
        ])
        .args(retry)
        .run();
    out.assert_code(0);
    let stdout = out
        .stdout
        .replace(&format!("127.0.0.1:{}", mirror.port()), "127.0.0.1:MIRROR");
    record(
        "haul get --json (mirror failover)",
        &stdout,
        sb_mirror.root(),
    );

    // Interrupted: a slow file stopped by SIGINT.
    let sb2 = Sandbox::new();
    server.add_file("/big.bin", body(907, 2_000_000));
    server.set_rate("/big.bin", 500_000);
    let running = sb2
        .haul([
            "get",
            "--json",
            &server.url("/big.bin"),
            "-d",
            &sb2.dir_arg(),
        ])
        .spawn();
    server.wait_served("/big.bin", 300_000, Duration::from_secs(20));
    running.signal("INT");
    let out = running.wait(RUN_TIMEOUT);
    out.assert_code(130);
    record("haul get --json (interrupted)", &out.stdout, sb2.root());

    if std::env::var_os("HAUL_BLESS").is_some() {
        std::fs::write(GOLDEN, &transcript).expect("write the golden file");
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    if golden != transcript {
        let diff: Vec<String> = golden
            .lines()
            .zip(transcript.lines())
            .enumerate()
            .filter(|(_, (g, t))| g != t)
            .take(5)
            .map(|(i, (g, t))| format!("line {}:\n  golden: {g}\n  got:    {t}", i + 1))
            .collect();
        panic!(
            "--json output differs from {GOLDEN} ({} vs {} lines)\n{}\n\nfull output:\n{transcript}",
            golden.lines().count(),
            transcript.lines().count(),
            diff.join("\n")
        );
    }
}
