//! `haul verify` and `haul status` on a directory that `haul get` filled:
//! a clean pass, a corrupted file, a missing file, a sums file.

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

/// Downloads `one.bin` and `two.bin` into a fresh sandbox.
fn downloaded() -> Sandbox {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/one.bin", body(500, 120_000));
    server.add_file("/two.bin", body(501, 130_000));
    sb.haul([
        "get",
        &server.url("/one.bin"),
        &server.url("/two.bin"),
        "-d",
        &sb.dir_arg(),
    ])
    .run()
    .assert_code(0);
    assert_file_eq(&sb.dl("one.bin"), &body(500, 120_000));
    assert_file_eq(&sb.dl("two.bin"), &body(501, 130_000));
    sb
}

#[test]
fn verify_passes_after_a_download() {
    let sb = downloaded();
    let out = sb.haul(["verify", "-d", &sb.dir_arg()]).run();
    out.assert_code(0);
}

#[test]
fn verify_names_a_corrupted_file() {
    let sb = downloaded();
    let path = sb.dl("two.bin");
    let mut bytes = std::fs::read(&path).expect("read two.bin");
    bytes[65_000] ^= 0x01;
    std::fs::write(&path, bytes).expect("corrupt two.bin");

    let out = sb.haul(["verify", "-d", &sb.dir_arg()]).run();

    out.assert_code(1);
    assert!(out.all_output().contains("two.bin"), "{out}");
}

#[test]
fn verify_names_a_missing_file() {
    let sb = downloaded();
    std::fs::remove_file(sb.dl("one.bin")).expect("delete one.bin");

    let out = sb.haul(["verify", "-d", &sb.dir_arg()]).run();

    out.assert_code(1);
    let all = out.all_output().to_lowercase();
    assert!(
        all.lines()
            .any(|l| l.contains("one.bin") && l.contains("missing")),
        "{out}"
    );
}

#[test]
fn verify_checks_against_a_sums_file() {
    let sb = downloaded();
    let wrong = sha256_hex(b"something else");
    sb.write(
        "SUMS",
        format!(
            "{}  one.bin\n{wrong}  two.bin\n",
            sha256_hex(&body(500, 120_000))
        ),
    );

    let out = sb
        .haul(["verify", "-d", &sb.dir_arg(), "--checksums", "SUMS"])
        .run();

    out.assert_code(1);
    assert!(out.all_output().contains("two.bin"), "{out}");
}

#[test]
fn status_reports_the_recorded_downloads() {
    let sb = downloaded();
    let empty = Sandbox::new();

    let out = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    let before = empty.haul(["status", "-d", &empty.dir_arg()]).run();

    out.assert_code(0);
    assert!(!out.stdout.trim().is_empty(), "{out}");
    // Wording is free; it must at least reflect what the manifest holds.
    assert_ne!(out.stdout, before.stdout, "{out}\n{before}");
    assert!(
        before.code() == Some(0) || before.code() == Some(2),
        "status on a directory haul never used: {before}"
    );
}

/// More files than `haul` sorts in memory at once (runs of 8,192): the
/// sums file is merged from spilled runs.
const MORE_THAN_ONE_RUN: usize = 20_000;

#[test]
fn verify_write_sums_over_several_runs_matches_sha256sum_sorted() {
    let sb = Sandbox::new();
    // Names that do not sort the way they are created or listed.
    for d in 0..10 {
        std::fs::create_dir(sb.dl(&format!("d{d}"))).expect("mkdir");
    }
    for i in 0..MORE_THAN_ONE_RUN {
        let name = format!("d{}/f{}.dat", (i * 7) % 10, (i * 7919) % MORE_THAN_ONE_RUN);
        std::fs::write(sb.dl(&name), i.to_string()).expect("write");
    }
    // sha256sum's own output, in the order find lists the files.
    let listed = std::process::Command::new("sh")
        .args(["-c", "find . -type f -print0 | xargs -0 sha256sum"])
        .current_dir(sb.dir())
        .output()
        .expect("run sha256sum");
    assert!(listed.status.success(), "sha256sum failed");
    let listed = String::from_utf8(listed.stdout).expect("utf-8");
    assert_eq!(listed.lines().count(), MORE_THAN_ONE_RUN);
    sb.write("SUMS", &listed);

    let out = sb
        .haul([
            "verify",
            "-d",
            &sb.dir_arg(),
            "--checksums",
            "SUMS",
            "--write-sums",
            "SORTED",
            "-q",
        ])
        .run();
    out.assert_code(0);

    // The same lines, by name in byte order, without the "./" find adds.
    let mut want: Vec<String> = listed
        .lines()
        .map(|l| l.replacen("  ./", "  ", 1))
        .collect();
    want.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let want = want.join("\n") + "\n";
    let got = std::fs::read_to_string(sb.root().join("SORTED")).expect("read SORTED");
    assert!(
        got == want,
        "SORTED differs from sha256sum's lines sorted by name"
    );
    let mut names: Vec<String> = std::fs::read_dir(sb.root())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["SORTED", "SUMS", "dl", "logs"],
        "no spilled run left"
    );
}

#[test]
fn verify_refuses_a_bad_sha256_in_the_manifest_before_hashing_unless_superseded() {
    let sb = downloaded();
    let manifest = sb.dir().join(".haul/manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("read the manifest");
    let good = sha256_hex(&body(501, 130_000));
    assert!(
        text.contains(&good),
        "the manifest records two.bin's sha256"
    );
    std::fs::write(&manifest, text.replace(&good, &"z".repeat(64))).expect("corrupt it");

    let out = sb.haul(["verify", "-d", &sb.dir_arg()]).run();
    out.assert_code(2);
    assert!(
        out.all_output().contains("has a bad sha256 for two.bin"),
        "{out}"
    );
    assert!(
        !out.all_output().contains("one.bin"),
        "nothing hashed: {out}"
    );

    // A later journal line for the path is the record that counts.
    let line = text
        .lines()
        .find(|l| l.contains("\"two.bin\""))
        .expect("two.bin's line")
        .trim()
        .trim_end_matches(',');
    std::fs::write(sb.dir().join(".haul/journal.jsonl"), format!("{line}\n"))
        .expect("write the journal");
    let out = sb.haul(["verify", "-d", &sb.dir_arg()]).run();
    out.assert_code(0);
}

/// A list of `n` files on a fresh server, written to `urls.txt`; with
/// `checksums`, each URL line carries its `checksum=sha-256=` option.
fn list_of(sb: &Sandbox, n: usize, checksums: bool) -> (TestServer, String) {
    let server = TestServer::start();
    let mut list = String::new();
    for i in 0..n {
        let bytes = body(700 + i as u64, 1_000 + i);
        list.push_str(&server.url(&format!("/f{i:02}.bin")));
        list.push('\n');
        if checksums {
            list.push_str(&format!("  checksum=sha-256={}\n", sha256_hex(&bytes)));
        }
        server.add_file(&format!("/f{i:02}.bin"), bytes);
    }
    let list = sb.write("urls.txt", list).display().to_string();
    (server, list)
}

/// A 12-file list of which only shard 0 of 2 has run; with how many files
/// that shard fetched.
fn first_shard_of_two() -> (Sandbox, TestServer, String, usize) {
    let sb = Sandbox::new();
    let (server, list) = list_of(&sb, 12, false);
    sb.haul([
        "get",
        "-i",
        &list,
        "-d",
        &sb.dir_arg(),
        "--shard",
        "0/2",
        "-q",
    ])
    .run()
    .assert_code(0);
    let done_first = sb.downloads().len();
    assert!(
        done_first > 0 && done_first < 12,
        "shard 0 of 2 took {done_first} of 12"
    );
    (sb, server, list, done_first)
}

/// Issue 13 point 2: with one shard of two never run, `verify -i LIST`
/// fails naming its files; once it has run, it passes. (`verify -d` alone
/// used to pass here, checking only what the manifests hold.)
#[test]
fn verify_against_the_list_fails_while_a_shard_never_ran_then_passes() {
    let (sb, _server, list, done_first) = first_shard_of_two();
    let dir = sb.dir_arg();

    let out = sb.haul(["verify", "-i", &list, "-d", &dir]).run();
    out.assert_code(1);
    let unfinished: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with("UNFINISHED ") && l.contains("no run in this directory recorded it")
        })
        .collect();
    assert_eq!(unfinished.len(), 12 - done_first, "{out}");
    assert!(
        out.stderr
            .contains(&format!("{} jobs not done", 12 - done_first)),
        "{out}"
    );

    sb.haul(["get", "-i", &list, "-d", &dir, "--shard", "1/2", "-q"])
        .run()
        .assert_code(0);
    let out = sb.haul(["verify", "-i", &list, "-d", &dir]).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        12,
        "{out}"
    );
}

/// A list with checksums needs no state: files put in place by anything
/// are checked against it, and a wrong or absent one fails the check.
#[test]
fn verify_against_a_list_with_checksums_needs_no_manifest() {
    let sb = Sandbox::new();
    let (_server, list) = list_of(&sb, 4, true);
    std::fs::create_dir_all(sb.dir()).expect("mkdir");
    for i in 0..4 {
        std::fs::write(
            sb.dl(&format!("f{i:02}.bin")),
            body(700 + i as u64, 1_000 + i),
        )
        .expect("write");
    }
    let dir = sb.dir_arg();
    sb.haul(["verify", "-i", &list, "-d", &dir])
        .run()
        .assert_code(0);

    std::fs::write(sb.dl("f01.bin"), b"other bytes").expect("write");
    std::fs::remove_file(sb.dl("f02.bin")).expect("rm");
    let out = sb.haul(["verify", "-i", &list, "-d", &dir]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("MISMATCH f01.bin")),
        "{out}"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("MISSING  f02.bin")),
        "{out}"
    );
}

/// A bad line anywhere refuses the list before anything is hashed.
#[test]
fn verify_refuses_a_bad_list_naming_its_line() {
    let sb = Sandbox::new();
    let (_server, list) = list_of(&sb, 3, false);
    let mut text = std::fs::read_to_string(&list).expect("read list");
    text.push_str("ftp://example.com/x\n");
    std::fs::write(&list, text).expect("write list");
    let out = sb.haul(["verify", "-i", &list, "-d", &sb.dir_arg()]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("urls.txt:4"), "{out}");
    assert!(out.stdout.is_empty(), "nothing hashed: {out}");
}

/// `verify -d DIR` fails while a job the manifest holds is not done, naming
/// it; `--done-only` checks the finished files alone, as verify did before.
#[test]
fn verify_fails_on_unfinished_jobs_unless_done_only() {
    let sb = downloaded();
    let server = TestServer::start();
    let dir = sb.dir_arg();
    sb.haul([
        "get",
        &server.url("/absent.bin"),
        "-d",
        &dir,
        "--tries",
        "1",
        "-q",
    ])
    .run()
    .assert_code(1);

    let out = sb.haul(["verify", "-d", &dir]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("UNFINISHED absent.bin: failed")),
        "{out}"
    );
    let json = sb.haul(["verify", "-d", &dir, "--json"]).run();
    json.assert_code(1);
    assert!(
        json.stdout.contains(
            r#""path":"absent.bin","status":"unfinished","expected":null,"state":"failed""#
        ),
        "{json}"
    );

    let out = sb.haul(["verify", "-d", &dir, "--done-only"]).run();
    out.assert_code(0);
    assert!(!out.all_output().contains("absent.bin"), "{out}");
}

/// Issue 13 point 2 without the list: `verify -d DIR` names a shard of the
/// recorded list that never started and fails until it has run.
#[test]
fn verify_without_the_list_names_a_shard_that_never_started() {
    let (sb, _server, list, _) = first_shard_of_two();
    let dir = sb.dir_arg();

    let out = sb.haul(["verify", "-d", &dir]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("NOT STARTED shard 1/2 (no .haul/shard-1-of-2)")),
        "{out}"
    );
    assert!(out.stderr.contains("1 shard never started"), "{out}");
    let json = sb.haul(["verify", "-d", &dir, "--json"]).run();
    json.assert_code(1);
    assert!(
        json.stdout
            .contains(r#""event":"shard_not_started","time":"#),
        "{json}"
    );
    assert!(json.stdout.contains(r#""shards_not_started":1"#), "{json}");

    sb.haul(["get", "-i", &list, "-d", &dir, "--shard", "1/2", "-q"])
        .run()
        .assert_code(0);
    sb.haul(["verify", "-d", &dir]).run().assert_code(0);
}

/// `haul status -i LIST`: the list's jobs as the directory's runs recorded
/// them, exit 1 until every one is done, with no shard state needed.
#[test]
fn status_against_the_list_counts_jobs_no_run_recorded() {
    let (sb, _server, list, done_first) = first_shard_of_two();
    let dir = sb.dir_arg();

    let out = sb.haul(["status", "-i", &list, "-d", &dir]).run();
    out.assert_code(1);
    let none = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("none "))
        .count();
    assert_eq!(none, 12 - done_first, "{out}");
    assert!(
        out.stdout
            .contains(&format!("{} jobs in no manifest yet", 12 - done_first)),
        "{out}"
    );
    let json = sb.haul(["status", "-i", &list, "-d", &dir, "--json"]).run();
    json.assert_code(1);
    assert!(
        json.stdout
            .contains(&format!(r#""unrecorded":{}"#, 12 - done_first)),
        "{json}"
    );

    sb.haul(["get", "-i", &list, "-d", &dir, "--shard", "1/2", "-q"])
        .run()
        .assert_code(0);
    let out = sb.haul(["status", "-i", &list, "-d", &dir]).run();
    out.assert_code(0);
    assert!(out.stdout.starts_with("12 jobs: 12 done"), "{out}");
}
