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
