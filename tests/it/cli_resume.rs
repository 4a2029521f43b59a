//! Interrupting and rerunning `haul get`: SIGKILL, SIGINT and SIGTERM mid
//! download, a `.part` that already holds every byte, finished files skipped
//! on rerun, the directory lock and a corrupt manifest.
//!
//! Bodies here are paced by the server so the interruption lands mid-body;
//! tests wait on the server's byte counter, never on a sleep.

use std::time::{Duration, Instant};

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn resumes_byte_exact_after_kill_9() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 16 << 20;
    let data = body(300, size);
    server.add_file("/big.bin", data.clone());
    // About 3 s for the whole body, so the kill lands mid-transfer.
    server.set_rate("/big.bin", 11 << 19);
    // One stream: this is the single-connection resume (Range + If-Range
    // from the end of the .part); split downloads have their own test.
    let args = [
        "get",
        &server.url("/big.bin"),
        "-d",
        &sb.dir_arg(),
        "--split",
        "1",
    ]
    .map(String::from);

    let mut first = sb.haul(&args).spawn();
    server.wait_served("/big.bin", size as u64 / 2, WAIT);
    first.kill9();
    let killed = first.wait(WAIT);
    assert_eq!(
        killed.code(),
        None,
        "haul should have died of SIGKILL\n{killed}"
    );
    let served_first = server.bytes_served("/big.bin");
    let gets_first = server.gets("/big.bin").len();
    assert!(
        !sb.dl("big.bin").exists(),
        "a final-named file must be complete"
    );

    server.set_rate("/big.bin", 0);
    let out = sb.haul(&args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    sb.assert_no_part_files();
    let gets = server.gets("/big.bin");
    let resume = &gets[gets_first];
    let offset = resume
        .range_start()
        .unwrap_or_else(|| panic!("the rerun's first GET resumes with Range: {resume:?}"));
    assert!(offset > 0 && offset <= served_first, "resumed at {offset}");
    assert_eq!(
        resume.header("if-range"),
        server.etag("/big.bin").as_deref(),
        "{resume:?}"
    );
    let total = server.bytes_served("/big.bin");
    let ratio = total as f64 / size as f64;
    eprintln!(
        "kill -9 at {served_first} of {size} bytes served, resumed at {offset}: \
         {total} bytes served in all, ratio {ratio:.4}"
    );
    assert!(ratio <= 1.05, "served {ratio:.4} x the file size");
}

/// Sends `signal` mid-download, expects exit 130 soon after with progress
/// saved, then a rerun that completes byte-exact from where it stopped.
fn interrupt_saves_progress_and_resumes(signal: &str, seed: u64) {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 8 << 20;
    let data = body(seed, size);
    server.add_file("/big.bin", data.clone());
    server.set_rate("/big.bin", 3 << 20);
    let args = ["get", &server.url("/big.bin"), "-d", &sb.dir_arg()].map(String::from);

    let first = sb.haul(&args).spawn();
    server.wait_served("/big.bin", size as u64 / 2, WAIT);
    eprintln!("sending SIG{signal} to haul (pid {})", first.pid());
    first.signal(signal);
    let signalled = Instant::now();
    let out = first.wait(WAIT);
    let latency = out.ended - signalled;
    eprintln!(
        "SIG{signal}: haul exited {:?} after {latency:?}",
        out.code()
    );

    out.assert_code(130);
    out.assert_stderr_has(&["resum"]);
    assert!(
        latency <= Duration::from_secs(2),
        "took {latency:?} to exit\n{out}"
    );
    assert!(
        !sb.dl("big.bin").exists(),
        "a final-named file must be complete"
    );
    assert!(
        sb.dl("big.bin.part").exists(),
        "progress lives in big.bin.part"
    );
    let gets_first = server.gets("/big.bin").len();

    server.set_rate("/big.bin", 0);
    let again = sb.haul(&args).run();

    again.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    sb.assert_no_part_files();
    let resume = &server.gets("/big.bin")[gets_first];
    assert!(
        resume.range_start().is_some_and(|n| n > 0),
        "the rerun resumes: {resume:?}"
    );
    assert!(resume.header("if-range").is_some(), "{resume:?}");
}

#[test]
fn sigint_saves_progress_exits_130_and_resumes() {
    interrupt_saves_progress_and_resumes("INT", 301);
}

#[test]
fn sigterm_saves_progress_exits_130_and_resumes() {
    interrupt_saves_progress_and_resumes("TERM", 302);
}

/// A `.part` holding every byte while the run did not finish: the server
/// sends the whole body without Content-Length and never ends it, so haul
/// has all bytes but gives up on the stall. The rerun asks for
/// `bytes=SIZE-`, gets 416 `bytes */SIZE`, and must finish without
/// downloading again (RFC 9110 §15.5.17: confirm the length, then done).
#[test]
fn completes_a_full_part_file_after_416() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size: usize = 1 << 20;
    let data = body(303, size);
    server.add_file("/full.bin", data.clone());
    server.script("/full.bin", vec![Fault::StallAtEnd]);
    let args = ["get", &server.url("/full.bin"), "-d", &sb.dir_arg()].map(String::from);

    let stalled = sb
        .haul(&args)
        .args(["--stall-timeout", "0.5", "--max-tries", "1"])
        .run();

    stalled.assert_code(1);
    assert!(
        !sb.dl("full.bin").exists(),
        "the end of the body never came"
    );
    let part_len = std::fs::metadata(sb.dl("full.bin.part")).map_or(0, |m| m.len());
    assert_eq!(
        part_len, size as u64,
        "precondition: haul keeps every byte it received in full.bin.part"
    );
    let served_before = server.bytes_served("/full.bin");
    let gets_before = server.gets("/full.bin").len();

    let out = sb.haul(&args).args(FAST_RETRY).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("full.bin"), &data);
    sb.assert_no_part_files();
    let rerun = &server.gets("/full.bin")[gets_before..];
    assert_eq!(rerun[0].range_start(), Some(size as u64), "{rerun:?}");
    assert_eq!(rerun[0].status, Some(416), "{rerun:?}");
    assert_eq!(
        server.bytes_served("/full.bin"),
        served_before,
        "nothing is downloaded again: {rerun:#?}\n{out}"
    );
}

#[test]
fn skips_finished_files_without_requests() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(304, 100_000));
    server.add_file("/b.bin", body(305, 200_000));
    sb.write(
        "list.txt",
        format!("{}\n{}\n", server.url("/a.bin"), server.url("/b.bin")),
    );
    let args = ["get", "-i", "list.txt", "-d", &sb.dir_arg()].map(String::from);
    sb.haul(&args).run().assert_code(0);
    let requests = server.requests().len();

    let out = sb.haul(&args).run();

    out.assert_code(0);
    assert_eq!(
        server.requests().len(),
        requests,
        "finished files are skipped without asking the server"
    );
    assert_file_eq(&sb.dl("a.bin"), &body(304, 100_000));
    assert_file_eq(&sb.dl("b.bin"), &body(305, 200_000));
}

#[test]
fn refuses_a_second_run_on_a_locked_dir() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/slow.bin", body(306, 8 << 20));
    server.set_rate("/slow.bin", 2 << 20);
    server.add_file("/other.bin", body(307, 1000));

    let first = sb
        .haul(["get", &server.url("/slow.bin"), "-d", &sb.dir_arg()])
        .spawn();
    // Body bytes flowing means the first run is well past taking the lock.
    server.wait_served("/slow.bin", 64 * 1024, WAIT);
    let second = sb
        .haul(["get", &server.url("/other.bin"), "-d", &sb.dir_arg()])
        .run();

    second.assert_code(2);
    second.assert_stderr_has(&["lock"]);
    assert!(server.requests_for("/other.bin").is_empty());
    assert!(!sb.dl("other.bin").exists());
    drop(first);
}

#[test]
fn rejects_a_corrupt_manifest_and_leaves_it_untouched() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(308, 1000));
    let state = sb.dir().join(".haul");
    std::fs::create_dir_all(&state).expect("create .haul");
    let garbage = b"{\"version\": 1, \"jobs\": [ this is not json".to_vec();
    std::fs::write(state.join("manifest.json"), &garbage).expect("write manifest");

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&["manifest.json"]);
    assert_file_eq(&state.join("manifest.json"), &garbage);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// A kill between recording "done" and the rename leaves a complete `.part`:
/// the rerun checks it against the recorded sha256 and renames it, without a
/// request; a `.part` that no longer matches is fetched again from zero.
#[test]
fn promotes_a_complete_part_recorded_as_done_and_refetches_a_damaged_one() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(310, 300_000));
    server.add_file("/b.bin", body(311, 300_000));
    sb.write(
        "list.txt",
        format!("{}\n{}\n", server.url("/a.bin"), server.url("/b.bin")),
    );
    let args = ["get", "-i", "list.txt", "-d", &sb.dir_arg()].map(String::from);
    sb.haul(&args).run().assert_code(0);
    let before = server.requests().len();
    std::fs::rename(sb.dl("a.bin"), sb.dl("a.bin.part")).expect("rename a");
    let mut damaged = std::fs::read(sb.dl("b.bin")).expect("read b");
    damaged[1000] ^= 0xff;
    std::fs::write(sb.dl("b.bin.part"), damaged).expect("write b.part");
    std::fs::remove_file(sb.dl("b.bin")).expect("remove b");

    let out = sb.haul(&args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &body(310, 300_000));
    assert_file_eq(&sb.dl("b.bin"), &body(311, 300_000));
    sb.assert_no_part_files();
    let after = server.requests();
    assert!(
        after[before..].iter().all(|r| r.path == "/b.bin"),
        "a.bin was requested again"
    );
    let refetch = server.gets("/b.bin");
    let last = refetch.last().expect("b.bin refetched");
    // From byte 0: at most its front is asked for first (a file that may
    // be split is), never the rest after the damaged bytes.
    let range = last.header("range");
    assert!(
        range.is_none_or(|r| r.starts_with("bytes=0-")),
        "a damaged part must not be resumed: {range:?}"
    );
}

/// A small file's "done" record may reach the disk before its bytes (their
/// sync goes with the rename), so a crash can leave a "done" `.part` that is
/// short and wrong. The rerun must fetch it again from zero: resuming from
/// its length would keep the bad front and rename it into place.
#[test]
fn a_done_part_cut_short_is_fetched_again_from_zero() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/small.bin", body(312, 4096));
    let args = ["get", &server.url("/small.bin"), "-d", &sb.dir_arg()].map(String::from);
    sb.haul(&args).run().assert_code(0);
    let before = server.gets("/small.bin").len();
    let mut torn = std::fs::read(sb.dl("small.bin")).expect("read small");
    torn.truncate(1500);
    torn[100] ^= 0xff;
    std::fs::write(sb.dl("small.bin.part"), torn).expect("write small.part");
    std::fs::remove_file(sb.dl("small.bin")).expect("remove small");

    let out = sb.haul(&args).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("small.bin"), &body(312, 4096));
    sb.assert_no_part_files();
    let gets = server.gets("/small.bin");
    assert!(gets.len() > before, "small.bin was not fetched again");
    let range = gets.last().and_then(|r| r.header("range"));
    assert!(
        range.is_none_or(|r| r.starts_with("bytes=0-")),
        "a done part cut short must not be resumed: {range:?}"
    );
}
