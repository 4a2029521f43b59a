//! The fault matrix: every scripted fault against each kind of
//! attempt: a single stream (`--split 1`, small body), one segment of a split
//! download (`--split 4` on an 8 MiB body, the fault aimed at a ranged
//! request) and the split download's first, unranged answer, which it keeps
//! streaming as its first range. Each case must end byte-exact, or, for a
//! permanent fault, with a per-file error naming the URL and no final file;
//! either way the manifest still loads and no `.part` is promoted.
//!
//! Cases run a few at a time, each with its own server and sandbox. One line
//! per case (fault, kind, outcome, seconds, GET requests served) is printed
//! for the closing note; run with `--nocapture` to see them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

/// Cases running at once: the machine has two cores, and most cases spend
/// their time waiting on a stall, a drip or a Retry-After.
const PARALLEL: usize = 4;

/// Bound on one case's `haul get`; a case that hangs fails instead.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

const SINGLE_LEN: usize = 512 << 10;
const SPLIT_LEN: usize = 8 << 20;

/// Bytes a fault lets through before it strikes mid-body.
const MID: u64 = 128 << 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `--split 1`: the fault hits the only stream.
    Single,
    /// `--split 4`: the fault hits the first ranged request (a segment).
    Segment,
    /// `--split 4`: the fault hits the first, unranged answer, which the
    /// split download keeps streaming as its first range.
    SplitFirst,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::Segment => "segment",
            Kind::SplitFirst => "split-1st",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// The file ends byte-exact with the body served at the start.
    Exact,
    /// The content changes mid-download: the file ends byte-exact with the
    /// new version.
    NewVersion,
    /// A per-file error naming the URL, and no final file.
    Fails,
}

struct Case {
    fault: String,
    kind: Kind,
    /// Faults for every GET (`Single`) or only for ranged GETs (`Segment`).
    script: Vec<Fault>,
    args: Vec<&'static str>,
    expect: Expect,
    /// Substrings stderr must contain (case-insensitive).
    stderr_has: Vec<&'static str>,
}

fn seed(kind: Kind, version: u64) -> u64 {
    match kind {
        Kind::Single => 700 + version,
        Kind::Segment => 800 + version,
        Kind::SplitFirst => 900 + version,
    }
}

fn len(kind: Kind) -> usize {
    match kind {
        Kind::Single => SINGLE_LEN,
        Kind::Segment | Kind::SplitFirst => SPLIT_LEN,
    }
}

/// Every case of the matrix, for each kind of attempt.
///
/// Long on purpose: it is the matrix itself, one entry per fault, read top
/// to bottom; split up, a missing fault would be harder to see.
fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for kind in [Kind::Single, Kind::Segment, Kind::SplitFirst] {
        let new_version = body(seed(kind, 1), len(kind) + 4096);
        // A single stream only sends a ranged request when it resumes, so the
        // faults that answer a ranged request follow a cut-short first body.
        let after_resume = |fault: Fault| match kind {
            Kind::Single | Kind::SplitFirst => vec![Fault::CloseAfter(MID), fault],
            Kind::Segment => vec![fault],
        };
        push(
            &mut all,
            kind,
            "reset mid-body",
            vec![Fault::ResetAfter(MID)],
            Expect::Exact,
        )
        .stderr_has = vec!["connection reset"];
        push(
            &mut all,
            kind,
            "truncated (CL > body)",
            vec![Fault::CloseAfter(MID)],
            Expect::Exact,
        )
        .stderr_has = vec!["reading the body of"];
        push(
            &mut all,
            kind,
            "stall after headers",
            vec![Fault::StallAfter(0)],
            Expect::Exact,
        )
        .stderr_has = vec!["no data from"];
        push(
            &mut all,
            kind,
            "stall mid-body",
            vec![Fault::StallAfter(MID)],
            Expect::Exact,
        )
        .stderr_has = vec!["no data from"];
        let drip = push(
            &mut all,
            kind,
            "slow drip",
            vec![Fault::Drip(100)],
            Expect::Exact,
        );
        // The floor's window is its own flag; 1 s, as the stall timeout
        // these cases run with, keeps the drip cases short.
        drip.args = match kind {
            Kind::Single | Kind::SplitFirst => {
                vec!["--lowest-speed", "1K", "--lowest-speed-time", "1"]
            }
            Kind::Segment => vec!["--lowest-speed-limit", "1K", "--speed-time", "1"],
        };
        drip.stderr_has = vec!["slower than 1024 B/s"];
        for code in [500, 502, 503, 504, 429] {
            push(
                &mut all,
                kind,
                &format!("{code}"),
                vec![Fault::Status(code)],
                Expect::Exact,
            );
            push(
                &mut all,
                kind,
                &format!("{code} + Retry-After: 1"),
                vec![Fault::StatusRetryAfter(code, "1".into())],
                Expect::Exact,
            );
        }
        let hour = push(
            &mut all,
            kind,
            "503 + Retry-After: 3600",
            vec![Fault::StatusRetryAfter(503, "3600".into())],
            Expect::Exact,
        );
        hour.args = vec!["--max-retry-wait", "0.5"];
        hour.stderr_has = vec!["server asked to wait 1h 00m 00s", "(--max-retry-wait)"];
        push(
            &mut all,
            kind,
            "416 on a partial file",
            after_resume(Fault::Status(416)),
            Expect::Exact,
        );
        push(
            &mut all,
            kind,
            "206, wrong Content-Range",
            after_resume(Fault::WrongContentRange),
            Expect::Exact,
        );
        push(
            &mut all,
            kind,
            "ETag change",
            after_resume(Fault::ChangeEtagThenServe(new_version)),
            Expect::NewVersion,
        );
        push(
            &mut all,
            kind,
            "Range ignored (200)",
            after_resume(Fault::IgnoreRange),
            Expect::Exact,
        );
        push(
            &mut all,
            kind,
            "404",
            vec![Fault::Status(404)],
            Expect::Fails,
        )
        .stderr_has = vec!["404"];
        let give_up = push(
            &mut all,
            kind,
            "503 until --max-tries",
            vec![Fault::Status(503)],
            Expect::Fails,
        );
        give_up.args = vec!["--max-tries", "1"];
        give_up.stderr_has = vec!["503"];
    }
    all
}

fn push<'a>(
    all: &'a mut Vec<Case>,
    kind: Kind,
    fault: &str,
    script: Vec<Fault>,
    expect: Expect,
) -> &'a mut Case {
    all.push(Case {
        fault: fault.to_string(),
        kind,
        script,
        args: Vec::new(),
        expect,
        stderr_has: Vec::new(),
    });
    let last = all.len() - 1;
    &mut all[last]
}

/// What one case ended with, for the table and the verdict.
struct Row {
    case: String,
    outcome: Result<&'static str, String>,
    secs: f64,
    requests: usize,
}

fn run_case(case: &Case) -> Row {
    let started = Instant::now();
    let server = TestServer::start();
    let sb = Sandbox::new();
    let path = "/f.bin";
    server.add_file(path, body(seed(case.kind, 0), len(case.kind)));
    match case.kind {
        Kind::Single | Kind::SplitFirst => server.script(path, case.script.clone()),
        Kind::Segment => server.script_ranged(path, case.script.clone()),
    }
    let split: &[&str] = match case.kind {
        Kind::Single => &["--split", "1"],
        Kind::Segment | Kind::SplitFirst => &["--split", "4", "--min-split-size", "1M"],
    };
    let url = server.url(path);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = sb
            .haul(["get", &url, "-d", &sb.dir_arg()])
            .args(FAST_RETRY)
            .args(["--stall-timeout", "1"])
            .args(split)
            .args(&case.args)
            .spawn()
            .wait(CASE_TIMEOUT);
        out.assert_stderr_has(&case.stderr_has);
        let file = sb.dl("f.bin");
        let outcome = match case.expect {
            Expect::Exact | Expect::NewVersion => {
                out.assert_code(0);
                let version = u64::from(case.expect == Expect::NewVersion);
                let extra = if version == 1 { 4096 } else { 0 };
                assert_file_eq(
                    &file,
                    &body(seed(case.kind, version), len(case.kind) + extra),
                );
                sb.assert_no_part_files();
                "exact"
            }
            Expect::Fails => {
                out.assert_code(1);
                assert!(
                    out.failed_lines().iter().any(|l| l.contains(&url)),
                    "no failed line names {url}\n{out}"
                );
                assert!(!file.exists(), "a failed download left {}", file.display());
                "error"
            }
        };
        let status = sb.haul(["status", "-d", &sb.dir_arg()]).run();
        // It loads the manifest, and says (by its code) whether the file is done.
        status.assert_code(if outcome == "exact" { 0 } else { 1 });
        // Unused faults would make the server's drop panic: check them here,
        // inside the catch, with the case's name attached.
        assert_eq!(server.pending_faults(path), 0, "faults left unused\n{out}");
        outcome
    }));
    let outcome = caught.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string())
    });
    Row {
        case: format!("{:<26} {:<8}", case.fault, case.kind.label()),
        requests: server.gets(path).len(),
        secs: started.elapsed().as_secs_f64(),
        outcome,
    }
}

#[test]
fn every_fault_on_every_attempt_kind_ends_exact_or_with_a_clear_error() {
    let queue = Mutex::new(cases().into_iter().collect::<VecDeque<Case>>());
    let rows = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(case) = next else { break };
                let row = run_case(&case);
                let verdict = match &row.outcome {
                    Ok(outcome) => (*outcome).to_string(),
                    Err(_) => "FAILED".to_string(),
                };
                println!(
                    "fault-matrix | {} | {verdict:<6} | {:>5.1} s | {:>2} GETs",
                    row.case, row.secs, row.requests
                );
                rows.lock().unwrap_or_else(|e| e.into_inner()).push(row);
            });
        }
    });
    let rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "fault-matrix | {} cases in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let err = row.outcome.as_ref().err()?;
            Some(format!("--- {} ---\n{err}", row.case))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Why `--lowest-speed` exists: a drip keeps every read well inside
/// `--stall-timeout`, so without a speed floor the attempt is never aborted.
#[test]
fn a_drip_never_trips_the_stall_timeout_alone() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(900, 20));
    server.script("/f.bin", vec![Fault::Drip(100)]);

    // The speed floor is on by default; off here, so that only the stall
    // timeout watches the drip.
    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(["--stall-timeout", "0.5", "--lowest-speed", "0"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &body(900, 20));
    assert_eq!(server.gets("/f.bin").len(), 1, "{out}");
    assert!(out.elapsed >= Duration::from_secs(2), "{:?}", out.elapsed);
}

/// A server that drips on every attempt is given up on after `--max-tries`:
/// a crawl stopped by `--lowest-speed` moves the file a little each time,
/// but that must not earn it a fresh retry budget.
#[test]
fn a_server_that_always_drips_is_given_up_after_max_tries() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(901, 1 << 20));
    server.script("/f.bin", vec![Fault::Drip(20); 3]);

    let out = sb
        .haul(["get", &server.url("/f.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args([
            "--split",
            "1",
            "--stall-timeout",
            "0.5",
            "--lowest-speed",
            "1K",
            "--lowest-speed-time",
            "0.5",
        ])
        .args(["--max-tries", "3"])
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["f.bin", "slower than 1024 B/s"]);
    assert_eq!(server.gets("/f.bin").len(), 3, "{out}");
    assert!(!sb.dl("f.bin").exists());
}
