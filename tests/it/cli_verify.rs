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
