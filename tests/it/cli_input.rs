//! Bad input to `haul get` (list syntax, options, schemes, checksum values,
//! path traversal) and checksums, from the list and from a sums file.
//!
//! Input errors must be reported as `FILE:LINE:` with exit 2 before any
//! request is made; checksum mismatches fail only their own download.

use std::time::Duration;

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

/// A list of `n` URLs of `server` (none served: nothing may be asked).
fn long_list(server: &TestServer, n: usize) -> String {
    (0..n)
        .map(|i| format!("{}\n", server.url(&format!("/f{i}.bin"))))
        .collect()
}

#[test]
fn a_bad_line_at_the_end_of_a_long_list_refuses_it_before_any_request() {
    // The list is checked as a stream before the run reads it again: the
    // last line still refuses the whole list before the first request.
    let server = TestServer::start();
    let sb = Sandbox::new();
    let list = long_list(&server, 100_000);
    let ends = [
        (
            "ftp://127.0.0.1/file.bin\n".to_string(),
            "unsupported scheme",
        ),
        // The same path as the first line's, from another URL.
        (
            format!("{}\n", server.url("/other/f0.bin")),
            "already used by list.txt:1",
        ),
    ];
    for (end, error) in ends {
        sb.write("list.txt", format!("{list}{end}"));
        let out = sb
            .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
            .run();
        out.assert_code(2);
        out.assert_stderr_has(&["list.txt:100001:", error]);
        assert!(
            server.requests().is_empty(),
            "nothing is fetched from a bad list: {} requests",
            server.requests().len()
        );
        assert!(sb.downloads().is_empty(), "{:?}", sb.downloads());
    }
}

#[test]
fn a_list_edited_while_the_run_reads_it_fails_the_run_naming_it() {
    // A long list is read a second time as the run goes; edited in place
    // meanwhile, the second reading is not what was checked, and the run
    // must not pass for complete with jobs missing or unchecked.
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/held.bin", body(402, 1000));
    server.hold_path_at("/held.bin", 0);
    // Longer than what the run reads ahead while it waits: its window
    // (4,096 jobs) and the reader's chunks (under 512 jobs).
    let list = format!("{}\n{}", server.url("/held.bin"), long_list(&server, 5000));
    let path = sb.write("list.txt", &list);
    // The other jobs end at once, with no request: their files are there.
    std::fs::create_dir_all(sb.dir()).expect("create the output directory");
    for i in 0..5000 {
        std::fs::write(sb.dl(&format!("f{i}.bin")), "x").expect("write a file");
    }

    // One job at a time: while the first is held, the run reads the list
    // no further than its window ahead.
    let mut args = vec!["get", "-i", "list.txt", "-j", "1", "--max-tries", "1"];
    let dir = sb.dir_arg();
    args.extend(["-d", &dir]);
    let run = sb.haul(args).spawn();
    server.wait_in_flight(&["/held.bin"], 1, Duration::from_secs(30));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open the list");
    std::io::Write::write_all(&mut file, server.url("/late.bin").as_bytes()).expect("append");
    drop(file);
    server.release_path("/held.bin");

    let out = run.wait(Duration::from_secs(120));
    out.assert_code(2);
    out.assert_stderr_has(&["cannot read list.txt again to its end", "changed"]);
    assert!(
        server.requests_for("/late.bin").is_empty(),
        "a line added after the check is not fetched"
    );
}
