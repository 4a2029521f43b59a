//! Disk faults: a full disk, an output directory haul may not write to, a
//! `.part` deleted or truncated by hand between runs.
//!
//! The full disk is a real one: a small tmpfs mounted over the sandbox's
//! `dl/` (tests run as root on CI). Where mounting is not permitted the
//! tests say so and use what an unprivileged user has: the file-size limit
//! (RLIMIT_FSIZE, so writes fail with EFBIG) and permission bits.

use std::path::Path;
use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::TestServer;
use crate::support::tmpfs::Tmpfs;

/// Fills the disk (or, where mounting is not allowed, the file-size limit)
/// in the middle of a 6 MiB download: the run fails that file naming it and
/// the cause, keeps the `.part` and a loadable manifest, and a run with room
/// resumes and finishes byte-exact.
#[test]
fn reports_a_full_disk_keeps_the_part_and_finishes_once_there_is_space() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(950, 6 << 20);
    server.add_file("/big.bin", data.clone());
    let args = [
        "get",
        &server.url("/big.bin"),
        "-d",
        &sb.dir_arg(),
        "--split",
        "1",
    ]
    .map(String::from);
    let disk = Tmpfs::mount(&sb.dir(), "size=3m");

    let full = match &disk {
        Some(_) => sb.haul(&args).args(FAST_RETRY).run(),
        None => {
            println!("cannot mount a tmpfs here: limiting the file size instead");
            // 3 MiB in 512-byte blocks; SIGXFSZ ignored so writes fail with EFBIG.
            let limited = sb.haul(&args).args(FAST_RETRY);
            limited.under_shell("trap '' XFSZ; ulimit -f 6144").run()
        }
    };

    full.assert_code(1);
    let cause = if disk.is_some() {
        "no space left on device"
    } else {
        "file too large"
    };
    full.assert_stderr_has(&["big.bin", cause]);
    assert!(!sb.dl("big.bin").exists(), "no final file from a full disk");
    let kept = std::fs::metadata(sb.dl("big.bin.part"))
        .expect("the .part is kept")
        .len();
    assert!(kept > 1 << 20, "the .part keeps what fitted: {kept} bytes");
    // The manifest loads; big.bin is not done.
    sb.haul(["status", "-d", &sb.dir_arg()])
        .run()
        .assert_code(1);

    if let Some(disk) = &disk {
        disk.remount("size=16m");
    }
    let served_before = server.bytes_served("/big.bin");
    let done = sb.haul(&args).args(FAST_RETRY).run();

    done.assert_code(0);
    assert_file_eq(&sb.dl("big.bin"), &data);
    let resumed_from = server
        .requests_for("/big.bin")
        .last()
        .and_then(|r| r.range_start());
    assert!(
        resumed_from.is_some_and(|at| at > 0),
        "the second run resumes, not restarts: {resumed_from:?}"
    );
    let second = server.bytes_served("/big.bin") - served_before;
    println!(
        "full disk: first run kept {kept} bytes ({}); second run fetched {second} of {}",
        full.stderr.trim(),
        data.len()
    );
    drop(disk);
}

#[test]
fn refuses_an_output_directory_it_cannot_write() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(951, 3000));
    // Root ignores permission bits: a read-only mount stops even root.
    let disk = Tmpfs::mount(&sb.dir(), "ro,size=1m");
    if disk.is_none() {
        let mut perms = std::fs::metadata(sb.dir()).expect("stat dl").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(sb.dir(), perms).expect("chmod dl");
    }

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&[&sb.dir_arg()]);
    assert!(out.stderr.to_lowercase().contains("read-only") || out.stderr.contains("ermission"));
    assert!(server.requests().is_empty(), "nothing fetched");
    drop(disk);
}

/// Kills a rate-limited download of `len` bytes half way, lets `tamper`
/// damage the `.part`, reruns, and checks the file is byte-exact and how
/// much the rerun fetched.
fn tamper_between_runs(split: bool, tamper: fn(&Path, u64)) -> (u64, u64) {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let len = 8 << 20;
    let data = body(952, len);
    server.add_file("/f.bin", data.clone());
    server.set_rate("/f.bin", if split { 2 << 20 } else { 8 << 20 });
    let mut args = vec!["get", "-d"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.push(sb.dir_arg());
    args.push(server.url("/f.bin"));
    if split {
        args.extend(["--split", "4", "--min-split-size", "1M"].map(String::from));
    } else {
        args.extend(["--split", "1"].map(String::from));
    }

    let mut first = sb.haul(&args).spawn();
    server.wait_served("/f.bin", len as u64 / 2, Duration::from_secs(20));
    first.kill9();
    first.wait(Duration::from_secs(10));
    let part = sb.dl("f.bin.part");
    tamper(&part, len as u64);
    let before = server.bytes_served("/f.bin");

    let out = sb.haul(&args).args(FAST_RETRY).run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &data);
    sb.assert_no_part_files();
    (before, server.bytes_served("/f.bin") - before)
}

fn delete(part: &Path, _len: u64) {
    std::fs::remove_file(part).expect("delete the .part");
}

fn truncate_to_a_quarter(part: &Path, len: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(part)
        .expect("open the .part");
    file.set_len(len / 4).expect("truncate the .part");
}

#[test]
fn refetches_a_part_deleted_between_runs() {
    for split in [false, true] {
        let (first, second) = tamper_between_runs(split, delete);
        println!("deleted .part (split {split}): first run {first} bytes, rerun {second}");
        assert!(second >= 8 << 20, "everything fetched again: {second}");
    }
}

#[test]
fn resumes_or_refetches_a_part_truncated_between_runs() {
    for split in [false, true] {
        let (first, second) = tamper_between_runs(split, truncate_to_a_quarter);
        println!("truncated .part (split {split}): first run {first} bytes, rerun {second}");
        if !split {
            // A single stream trusts the intact prefix: it resumes at 2 MiB.
            assert!(second <= 6 << 20, "resumed from the cut: {second}");
        }
    }
}

/// A journal line edited into garbage is named with its line number, and
/// neither state file is rewritten (the snapshot case is in `cli_resume`).
#[test]
fn rejects_a_journal_edited_into_invalid_json_and_leaves_it_untouched() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(953, 1000));
    let args = ["get", &server.url("/a.bin"), "-d", &sb.dir_arg()].map(String::from);
    let first = sb.haul(&args).spawn();
    first.wait(Duration::from_secs(20)).assert_code(0);
    let state = sb.dir().join(".haul");
    let snapshot = std::fs::read(state.join("manifest.json")).expect("read manifest");
    let journal = b"{\"path\": \"a.bin\", this is not json\n{}\n".to_vec();
    std::fs::write(state.join("journal.jsonl"), &journal).expect("write journal");
    let before = server.requests().len();

    let out = sb.haul(&args).run();

    out.assert_code(2);
    out.assert_stderr_has(&["journal.jsonl", "line 1"]);
    assert_file_eq(&state.join("journal.jsonl"), &journal);
    assert_file_eq(&state.join("manifest.json"), &snapshot);
    assert_eq!(server.requests().len(), before, "nothing fetched");
}
