//! sha256sum interop: what `--write-sums` writes, `sha256sum -c` (the real
//! coreutils one) accepts in the output directory; what `sha256sum`,
//! `sha256sum --tag` and `shasum -a 256 --tag` write, `haul verify
//! --checksums` and `haul get --checksums` read.

use std::path::Path;
use std::process::Command;

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

/// Runs a checksum tool in `dir`; returns its stdout, panicking on failure.
fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `sha256sum -c FILE` run in `dir`, as the issue asks.
fn sha256sum_check(dir: &Path, sums: &Path) -> String {
    tool(
        dir,
        "sha256sum",
        &["-c", "--strict", &sums.display().to_string()],
    )
}

#[test]
fn get_write_sums_is_accepted_by_sha256sum_in_the_output_directory() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/b.bin", body(1, 20_000));
    server.add_file("/a.bin", body(2, 30_000));
    server.add_file("/c.bin", body(3, 10_000));
    let list = sb.write(
        "urls.txt",
        format!(
            "{}\n{}\n  out=sub/dir/renamed a.bin\n",
            server.url("/b.bin"),
            server.url("/a.bin")
        ),
    );
    let list = list.display().to_string();
    // A relative FILE is relative to the current directory (the sandbox
    // root), not to -d.
    sb.haul([
        "get",
        "-i",
        &list,
        "-d",
        &sb.dir_arg(),
        "--write-sums",
        "SUMS",
    ])
    .run()
    .assert_code(0);
    let text = std::fs::read_to_string(sb.root().join("SUMS")).expect("SUMS written");
    assert_eq!(
        text,
        format!(
            "{}  b.bin\n{}  sub/dir/renamed a.bin\n",
            sha256_hex(&body(1, 20_000)),
            sha256_hex(&body(2, 30_000))
        )
    );
    let checked = sha256sum_check(&sb.dir(), &sb.root().join("SUMS"));
    assert_eq!(checked, "b.bin: OK\nsub/dir/renamed a.bin: OK\n");

    // A later run lists earlier runs' files too, sorted by name, and
    // replaces the file without leaving a temporary beside it.
    sb.haul([
        "get",
        &server.url("/c.bin"),
        "-d",
        &sb.dir_arg(),
        "--write-sums",
        "SUMS",
    ])
    .run()
    .assert_code(0);
    let checked = sha256sum_check(&sb.dir(), &sb.root().join("SUMS"));
    assert_eq!(checked, "b.bin: OK\nc.bin: OK\nsub/dir/renamed a.bin: OK\n");
    assert_eq!(sb.find("SUMS"), [Path::new("SUMS")]);
}

#[test]
fn get_write_sums_leaves_out_failed_and_deleted_files() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/ok.bin", body(4, 5_000));
    server.add_file("/gone.bin", body(5, 5_000));
    sb.haul([
        "get",
        &server.url("/ok.bin"),
        &server.url("/gone.bin"),
        "-d",
        &sb.dir_arg(),
    ])
    .run()
    .assert_code(0);
    std::fs::remove_file(sb.dl("gone.bin")).expect("delete gone.bin");
    let sums = sb.root().join("out/SUMS");
    std::fs::create_dir(sb.root().join("out")).expect("mkdir out");
    sb.haul([
        "get",
        &server.url("/missing.bin"),
        "-d",
        &sb.dir_arg(),
        "--max-tries",
        "1",
        "--write-sums",
        "out/SUMS",
    ])
    .run()
    .assert_code(1);
    let text = std::fs::read_to_string(&sums).expect("SUMS written");
    assert_eq!(text, format!("{}  ok.bin\n", sha256_hex(&body(4, 5_000))));
}

#[test]
fn verify_write_sums_lists_the_files_that_verified() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/one.bin", body(6, 40_000));
    server.add_file("/two.bin", body(7, 40_000));
    sb.haul([
        "get",
        &server.url("/one.bin"),
        &server.url("/two.bin"),
        "-d",
        &sb.dir_arg(),
    ])
    .run()
    .assert_code(0);
    std::fs::write(sb.dl("two.bin"), b"tampered").expect("tamper");

    let out = sb
        .haul(["verify", "-d", &sb.dir_arg(), "--write-sums", "VERIFIED"])
        .run();
    out.assert_code(1);
    let text = std::fs::read_to_string(sb.root().join("VERIFIED")).expect("written");
    assert_eq!(text, format!("{}  one.bin\n", sha256_hex(&body(6, 40_000))));
    sha256sum_check(&sb.dir(), &sb.root().join("VERIFIED"));
}

/// Files on disk plus the sums files the usual tools write for them.
fn tool_sums(sb: &Sandbox) -> Vec<(&'static str, String)> {
    let dir = sb.dir();
    std::fs::create_dir_all(dir.join("nested")).expect("mkdir");
    std::fs::write(dir.join("plain.bin"), body(8, 3_000)).expect("write");
    std::fs::write(dir.join("nested/x) = y.bin"), body(9, 2_000)).expect("write");
    std::fs::write(dir.join("with space.txt"), b"hello\n").expect("write");
    let names = ["plain.bin", "nested/x) = y.bin", "with space.txt"];
    let mut forms = vec![
        ("text", tool(&dir, "sha256sum", &names)),
        (
            "binary",
            tool(&dir, "sha256sum", &[&["-b"][..], &names].concat()),
        ),
        (
            "tag",
            tool(&dir, "sha256sum", &[&["--tag"][..], &names].concat()),
        ),
    ];
    // shasum (perl) is usually there too; its --tag output is the BSD form.
    if Command::new("shasum").arg("--version").output().is_ok() {
        let args = [&["-a", "256", "--tag"][..], &names].concat();
        forms.push(("shasum-tag", tool(&dir, "shasum", &args)));
    }
    forms
}

#[test]
fn verify_reads_what_sha256sum_and_shasum_write() {
    let sb = Sandbox::new();
    for (form, text) in tool_sums(&sb) {
        if form == "tag" {
            assert!(text.starts_with("SHA256 ("), "{text}");
        }
        let sums = sb.write(&format!("SUMS.{form}"), &text);
        let out = sb
            .haul([
                "verify",
                "-d",
                &sb.dir_arg(),
                "--checksums",
                &sums.display().to_string(),
            ])
            .run();
        out.assert_code(0).assert_stderr_has(&["3 ok"]);
    }
    // The same sums catch a changed file, in every form.
    std::fs::write(sb.dl("nested/x) = y.bin"), b"changed").expect("change");
    for form in ["text", "binary", "tag"] {
        let out = sb
            .haul([
                "verify",
                "-d",
                &sb.dir_arg(),
                "--checksums",
                &format!("SUMS.{form}"),
            ])
            .run();
        out.assert_code(1);
        assert!(out.all_output().contains("x) = y.bin"), "{form}: {out}");
    }
}

#[test]
fn get_checks_downloads_against_a_bsd_tag_sums_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let src = sb.root().join("src");
    std::fs::create_dir(&src).expect("mkdir src");
    std::fs::write(src.join("good.bin"), body(10, 8_000)).expect("write");
    std::fs::write(src.join("bad.bin"), body(11, 8_000)).expect("write");
    let tagged = tool(&src, "sha256sum", &["--tag", "good.bin", "bad.bin"]);
    let sums = sb.write("TAGSUMS", tagged);
    server.add_file("/good.bin", body(10, 8_000));
    // The server has different bytes than the ones the sums were made of.
    server.add_file("/bad.bin", body(12, 8_000));

    let out = sb
        .haul([
            "get",
            &server.url("/good.bin"),
            &server.url("/bad.bin"),
            "-d",
            &sb.dir_arg(),
            "--max-tries",
            "1",
            "--checksums",
            &sums.display().to_string(),
        ])
        .run();
    out.assert_code(1);
    assert_file_eq(&sb.dl("good.bin"), &body(10, 8_000));
    assert!(!sb.dl("bad.bin").exists(), "a mismatching file was kept");
    assert!(out.all_output().contains("bad.bin"), "{out}");
}
