//! Bad input to `haul get` (list syntax, options, schemes, checksum values,
//! path traversal) and checksums, from the list and from a sums file.
//!
//! Input errors must be reported as `FILE:LINE:` with exit 2 before any
//! request is made; checksum mismatches fail only their own download.

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::TestServer;

/// Writes `list` (with `{a}` / `{b}` standing for two served URLs), runs
/// `haul get -i list.txt` and checks the rejection names `list.txt:LINE:`;
/// returns the sandbox for further checks.
fn assert_list_rejected(list: &str, line: usize) -> Sandbox {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(400, 1000));
    server.add_file("/b.bin", body(401, 1000));
    let list = list
        .replace("{a}", &server.url("/a.bin"))
        .replace("{b}", &server.url("/b.bin"));
    sb.write("list.txt", &list);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&[&format!("list.txt:{line}:")]);
    assert!(
        server.requests().is_empty(),
        "nothing is fetched from a bad list: {:?}",
        server.requests()
    );
    assert!(sb.downloads().is_empty(), "{:?}", sb.downloads());
    sb
}

#[test]
fn rejects_an_unknown_list_option_with_file_and_line() {
    assert_list_rejected("{a}\n  out=a.bin\n{b}\n  colour=blue\n", 4);
}

#[test]
fn rejects_an_option_line_without_a_value() {
    assert_list_rejected("# header\n{a}\n  out\n", 3);
}

#[test]
fn rejects_an_option_line_before_any_url() {
    assert_list_rejected("# options need a URL first\n  out=x.bin\n{a}\n", 2);
}

#[test]
fn rejects_a_bad_scheme_with_file_and_line() {
    assert_list_rejected("{a}\n# comment\nftp://127.0.0.1/file.bin\n{b}\n", 3);
}

#[test]
fn rejects_a_short_checksum_with_file_and_line() {
    assert_list_rejected("{a}\n  checksum=sha-256=abc123\n{b}\n", 2);
}

#[test]
fn rejects_a_non_hex_checksum_with_file_and_line() {
    let bad = "z".repeat(64);
    assert_list_rejected(&format!("{{a}}\n{{b}}\n  checksum=sha-256={bad}\n"), 3);
}

#[test]
fn rejects_out_with_parent_dir() {
    let sb = assert_list_rejected("{a}\n  out=../evil\n", 2);
    assert!(!sb.root().join("evil").exists());
    assert!(sb.find("evil").is_empty(), "{:?}", sb.find("evil"));
}

#[test]
fn rejects_an_absolute_out() {
    let sb = assert_list_rejected("{a}\n  out=/tmp/haul-absolute-evil\n", 2);
    assert!(!std::path::Path::new("/tmp/haul-absolute-evil").exists());
    assert!(sb.find("evil").is_empty(), "{:?}", sb.find("evil"));
}

#[test]
fn saves_an_encoded_traversal_url_inside_dir() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(403, 5000);
    server.add_file("/%2e%2e%2fevil", data.clone());

    let out = sb
        .haul(["get", &server.url("/%2e%2e%2fevil"), "-d", &sb.dir_arg()])
        .run();

    out.assert_code(0);
    let outside: Vec<_> = sb
        .find("evil")
        .into_iter()
        .filter(|p| !p.starts_with("dl"))
        .collect();
    assert!(outside.is_empty(), "escaped DIR: {outside:?}");
    let saved = sb.downloads();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].components().count() == 1,
        "saved directly in DIR: {saved:?}"
    );
    assert_file_eq(&sb.dir().join(&saved[0]), &data);
}

#[test]
fn rejects_an_unknown_command_line_option() {
    let sb = Sandbox::new();
    let out = sb
        .haul(["get", "--no-such-option", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(2);
}

#[test]
fn rejects_a_bad_scheme_on_the_command_line() {
    let sb = Sandbox::new();
    let out = sb
        .haul(["get", "ftp://127.0.0.1/file.bin", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(2);
    assert!(sb.downloads().is_empty());
}

#[test]
fn rejects_a_missing_list_file() {
    let sb = Sandbox::new();
    let out = sb
        .haul(["get", "-i", "no-such-list.txt", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["no-such-list.txt"]);
}

#[test]
fn accepts_a_matching_list_checksum() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(404, 300_000);
    server.add_file("/c.bin", data.clone());
    sb.write(
        "list.txt",
        format!(
            "{}\n  checksum=sha-256={}\n",
            server.url("/c.bin"),
            sha256_hex(&data)
        ),
    );

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("c.bin"), &data);
}

#[test]
fn fails_a_checksum_mismatch_without_a_final_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(405, 300_000);
    let claimed = sha256_hex(&body(406, 300_000));
    server.add_file("/c.bin", data.clone());
    server.add_file("/ok.bin", body(407, 1000));
    sb.write(
        "list.txt",
        format!(
            "{}\n  checksum=sha-256={claimed}\n{}\n",
            server.url("/c.bin"),
            server.url("/ok.bin"),
        ),
    );

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["c.bin", "expected", "got", &claimed, &sha256_hex(&data)]);
    assert!(
        !sb.dl("c.bin").exists(),
        "a mismatch never gets the final name"
    );
    assert_file_eq(&sb.dl("ok.bin"), &body(407, 1000));
}

#[test]
fn applies_a_checksums_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let (a, b) = (body(408, 70_000), body(409, 80_000));
    server.add_file("/a.bin", a.clone());
    server.add_file("/b.bin", b.clone());
    sb.write(
        "SHA256SUMS",
        format!("{}  a.bin\n{}  b.bin\n", sha256_hex(&a), sha256_hex(&b)),
    );

    let out = sb
        .haul([
            "get",
            &server.url("/a.bin"),
            &server.url("/b.bin"),
            "-d",
            &sb.dir_arg(),
            "--checksums",
            "SHA256SUMS",
        ])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &a);
    assert_file_eq(&sb.dl("b.bin"), &b);
}

#[test]
fn fails_a_mismatch_from_a_checksums_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let (a, b) = (body(410, 70_000), body(411, 80_000));
    server.add_file("/a.bin", a.clone());
    server.add_file("/b.bin", b.clone());
    let wrong = sha256_hex(b"not b");
    sb.write(
        "SHA256SUMS",
        format!("{}  a.bin\n{wrong}  b.bin\n", sha256_hex(&a)),
    );

    let out = sb
        .haul([
            "get",
            &server.url("/a.bin"),
            &server.url("/b.bin"),
            "-d",
            &sb.dir_arg(),
            "--checksums",
            "SHA256SUMS",
        ])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["b.bin", "expected", "got", &wrong]);
    assert_file_eq(&sb.dl("a.bin"), &a);
    assert!(!sb.dl("b.bin").exists());
}
