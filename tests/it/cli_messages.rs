//! Pipes, messages and names. Every command ends quietly
//! when its stdout pipe closes; a URL typed as the command, an empty list,
//! a `-d` that names a file, an unknown host, an untrusted certificate and
//! `https://` to a plain port are told in words a user acts on; list option
//! values are trimmed as aria2 trims them; every size flag takes the same
//! suffixes; `status` says "interrupted" and counts in the singular.

use std::path::Path;
use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Outcome, Sandbox};
use crate::support::server::{Fault, TestServer};
use crate::support::tls::TlsRedirector;

const WAIT: Duration = Duration::from_secs(30);

/// What a panic or a crashed command leaves on stderr.
const CRASH_SIGNS: [&str; 4] = ["panicked", "crashed", "broken pipe", "failed printing"];

fn assert_quiet_end(out: &Outcome, code: i32) {
    out.assert_code(code);
    let stderr = out.stderr.to_lowercase();
    for sign in CRASH_SIGNS {
        assert!(!stderr.contains(sign), "stderr shows {sign:?}\n{out}");
    }
}

/// A sandbox whose `dl/` holds `one.bin` and `two.bin`, downloaded by haul.
fn downloaded(server: &TestServer) -> Sandbox {
    let sb = Sandbox::new();
    server.add_file("/one.bin", body(900, 40_000));
    server.add_file("/two.bin", body(901, 50_000));
    sb.haul([
        "get",
        &server.url("/one.bin"),
        &server.url("/two.bin"),
        "-d",
        &sb.dir_arg(),
    ])
    .run()
    .assert_code(0);
    sb
}

#[test]
fn verify_and_status_end_quietly_when_stdout_is_closed() {
    let server = TestServer::start();
    let sb = downloaded(&server);
    for args in [
        &["verify"][..],
        &["verify", "--json"],
        &["status"],
        &["status", "--json"],
    ] {
        let out = sb
            .haul(args)
            .args(["-d", &sb.dir_arg()])
            .stdout_closed()
            .run();
        // The pipe closing changes nothing about the outcome: both files
        // verified, so 0.
        assert_quiet_end(&out, 0);
    }
}

#[test]
fn verify_still_reports_problems_and_fails_when_stdout_is_closed() {
    let server = TestServer::start();
    let sb = downloaded(&server);
    std::fs::remove_file(sb.dl("two.bin")).expect("delete two.bin");
    let sums = sb.root().join("verified.sums");

    let out = sb
        .haul(["verify", "-d", &sb.dir_arg(), "--write-sums"])
        .args([&sums])
        .stdout_closed()
        .run();

    assert_quiet_end(&out, 1);
    out.assert_stderr_has(&["missing", "two.bin"]);
    let written = std::fs::read_to_string(&sums).expect("the sums file was written");
    assert!(
        written.contains("one.bin") && !written.contains("two.bin"),
        "{written}"
    );
}

#[test]
fn get_json_completions_man_and_help_end_quietly_when_stdout_is_closed() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(902, 30_000));
    let out = sb
        .haul(["get", "--json", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .stdout_closed()
        .run();
    assert_quiet_end(&out, 0);
    assert_file_eq(&sb.dl("a.bin"), &body(902, 30_000));

    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["--help"],
        &["get", "--help"],
    ] {
        let out = sb.haul(args).stdout_closed().run();
        assert_quiet_end(&out, 0);
    }
}

#[test]
fn a_url_given_as_the_command_suggests_haul_get() {
    let sb = Sandbox::new();
    let out = sb.haul(["http://example.invalid/file.iso"]).run();
    out.assert_code(2);
    out.assert_stderr_has(&["haul get http://example.invalid/file.iso"]);
}

#[test]
fn a_list_without_urls_is_named_in_the_error() {
    let sb = Sandbox::new();
    sb.write("urls.txt", "# nothing yet\n\n   \n# still nothing\n");
    let out = sb
        .haul(["get", "-i", "urls.txt", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["urls.txt", "no urls"]);
    assert!(
        !out.stderr.contains("give URLs or -i FILE"),
        "-i was given; the hint to give it is wrong\n{out}"
    );

    let empty = sb.write("empty.txt", "");
    let out = sb
        .haul(["get", "-i", "-", "-d", &sb.dir_arg()])
        .stdin_file(empty)
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["standard input", "no urls"]);
}

/// Every file under `root` except the logs the harness writes.
fn files_outside_logs(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read a sandbox dir")
            .flatten()
        {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            if rel == "logs" {
                continue;
            }
            if path.is_dir() {
                dirs.push(path.clone());
            }
            found.push(rel);
        }
    }
    found.sort();
    found
}

#[test]
fn a_dir_naming_a_regular_file_is_refused_and_nothing_is_written() {
    let server = TestServer::start();
    server.add_file("/a.bin", body(903, 1_000));
    let sb = Sandbox::new();
    sb.write("afile", "keep me");
    sb.write(
        "SUMS",
        format!("{}  a.bin\n", sha256_hex(&body(903, 1_000))),
    );
    let before = files_outside_logs(sb.root());
    let url = server.url("/a.bin");

    let runs: [&[&str]; 7] = [
        &["get", &url, "-d", "afile"],
        &["get", &url, "-d", "afile/sub"],
        &["get", "--json", &url, "-d", "afile"],
        &["verify", "-d", "afile"],
        &["verify", "-d", "afile", "--checksums", "SUMS"],
        &["status", "-d", "afile"],
        &["status", "--json", "-d", "afile"],
    ];
    for args in runs {
        let out = sb.haul(args).run();
        out.assert_code(2);
        out.assert_stderr_has(&["afile is not a directory"]);
    }

    assert_eq!(files_outside_logs(sb.root()), before);
    assert_eq!(
        std::fs::read_to_string(sb.root().join("afile")).expect("read afile"),
        "keep me"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// The stderr line that reports `path` as failed.
fn failed_line<'a>(out: &'a Outcome, path: &str) -> &'a str {
    out.failed_lines()
        .into_iter()
        .find(|l| l.contains(path))
        .unwrap_or_else(|| panic!("no failed line for {path}\n{out}"))
}

fn assert_lacks(text: &str, raw: &[&str], out: &Outcome) {
    for needle in raw {
        assert!(
            !text.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} leaked from a library\n{out}"
        );
    }
}

#[test]
fn an_unresolvable_host_is_named_in_words() {
    let sb = Sandbox::new();
    // `.invalid` never resolves (RFC 6761 §6.4); the local resolver says so
    // at once, with no query leaving the machine.
    let out = sb
        .haul([
            "get",
            "http://no-such-host.invalid/x.bin",
            "--max-tries",
            "1",
        ])
        .args(["-d", &sb.dir_arg()])
        .run();
    out.assert_code(1);
    let line = failed_line(&out, "x.bin").to_lowercase();
    assert!(
        line.contains("host no-such-host.invalid") && line.contains("not found"),
        "{out}"
    );
    assert_lacks(
        &line,
        &["client error (connect)", "dns error", "failed to lookup"],
        &out,
    );
}

#[test]
fn a_refused_connection_is_said_in_words() {
    let (_held, port) = crate::support::server::refusing_port();
    let sb = Sandbox::new();
    let out = sb
        .haul(["get", &format!("http://127.0.0.1:{port}/x.bin")])
        .args(["--max-tries", "1", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(1);
    let line = failed_line(&out, "x.bin").to_lowercase();
    assert!(
        line.contains(&format!(
            "127.0.0.1:{port}/x.bin: connection refused (is the server up"
        )),
        "{out}"
    );
    assert_lacks(&line, &["client error (connect)", "os error"], &out);
}

#[test]
fn an_untrusted_certificate_suggests_ca_cert() {
    let tls = TlsRedirector::start("http://127.0.0.1:9", 302);
    let sb = Sandbox::new();
    let out = sb
        .haul(["get", &tls.url("/x.bin"), "-d", &sb.dir_arg()])
        .run();
    out.assert_code(1);
    let line = failed_line(&out, "x.bin");
    assert!(
        line.contains("not trusted") && line.contains("pass --ca-cert FILE"),
        "{out}"
    );
    assert_lacks(line, &["UnknownIssuer", "invalid peer certificate"], &out);
}

#[test]
fn https_to_a_plain_http_port_suggests_http() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let url = format!("https://127.0.0.1:{}/x.bin", server.port());
    let out = sb.haul(["get", &url, "-d", &sb.dir_arg()]).run();
    out.assert_code(1);
    let line = failed_line(&out, "x.bin");
    assert!(
        line.contains("does not speak TLS") && line.contains("http://"),
        "{out}"
    );
    assert_lacks(line, &["InvalidContentType", "corrupt message"], &out);
}

#[test]
fn json_kinds_of_connection_failures_stay_connect_and_tls() {
    let server = TestServer::start();
    let tls = TlsRedirector::start("http://127.0.0.1:9", 302);
    let sb = Sandbox::new();
    let plain = format!("https://127.0.0.1:{}/plain.bin", server.port());
    let out = sb
        .haul(["get", "--json", "--max-tries", "1", "-d", &sb.dir_arg()])
        .args([
            "http://no-such-host.invalid/dns.bin",
            &tls.url("/untrusted.bin"),
            &plain,
        ])
        .run();
    out.assert_code(1);
    let mut kinds: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "failed")
        .map(|v| format!("{} {}", v["path"].as_str().unwrap_or("?"), v["kind"]))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            r#"dns.bin "connect""#,
            r#"plain.bin "tls""#,
            r#"untrusted.bin "tls""#
        ],
        "{out}"
    );
}

#[test]
fn out_value_is_trimmed_as_aria2_trims_it() {
    let server = TestServer::start();
    server.add_file("/a.bin", body(904, 2_000));
    let sb = Sandbox::new();
    sb.write(
        "urls.txt",
        format!("{}\n  out= x.dat\n", server.url("/a.bin")),
    );
    sb.haul(["get", "-i", "urls.txt", "-d", &sb.dir_arg()])
        .run()
        .assert_code(0);
    assert_file_eq(&sb.dl("x.dat"), &body(904, 2_000));
    assert_eq!(sb.downloads(), [Path::new("x.dat")]);
}

#[test]
fn every_list_option_name_and_value_is_trimmed() {
    let server = TestServer::start();
    let data = body(905, 3_000);
    server.add_file("/b.bin", data.clone());
    let sb = Sandbox::new();
    // Spaces around the '=' and the value, a TAB at the end, and spaces
    // around a header's name and value: all dropped, as aria2 drops them.
    let list = format!(
        "{}\n  out = y.dat \t\n  dir =  sub \n  checksum = sha-256={} \n  header =  X-Token :  abc \n",
        server.url("/b.bin"),
        sha256_hex(&data),
    );
    sb.write("urls.txt", list);
    let out = sb
        .haul(["get", "-i", "urls.txt", "-d", &sb.dir_arg()])
        .run();
    out.assert_code(0);
    assert_file_eq(&sb.dl("sub/y.dat"), &data);
    assert_eq!(sb.downloads(), [Path::new("sub/y.dat")]);
    let get = &server.gets("/b.bin")[0];
    assert_eq!(get.header("x-token"), Some("abc"), "{get:?}");
}

/// A port nothing listens on right now, for a `haul serve` to take.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address").port()
}

#[test]
fn serve_limit_rate_takes_the_same_sizes_as_get() {
    let sb = Sandbox::new();
    let www = sb.root().join("www");
    std::fs::create_dir(&www).expect("create www");
    let data = body(906, 300_000);
    std::fs::write(www.join("s.bin"), &data).expect("write s.bin");
    let port = free_port().to_string();
    let serve = sb
        .haul(["serve", "www", "--port", &port, "--limit-rate", "2M"])
        .spawn();

    // Connection refused is retried: the download starts once serve listens.
    let url = format!("http://127.0.0.1:{port}/s.bin");
    let got = sb
        .haul(["get", &url, "-d", &sb.dir_arg(), "--max-tries", "200"])
        .args(["--retry-wait", "0.02", "--max-retry-wait", "0.05"])
        .run();
    serve.signal("TERM");
    let served = serve.wait(WAIT);
    got.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &data);
    served.assert_code(0);
}

#[test]
fn every_size_flag_takes_the_same_suffixes() {
    let sb = Sandbox::new();
    let get_flags = [
        "--max-speed",
        "--min-split-size",
        "--max-file-size",
        "--lowest-speed",
    ];
    for value in ["2048", "2K", "2k", "2KiB", "2M", "2MiB", "1G", "1GiB"] {
        for flag in get_flags {
            // `-j 0` stops the run right after the flags parsed.
            let out = sb
                .haul(["get", "http://h.invalid/f", "-j", "0", flag, value])
                .run();
            out.assert_code(2);
            out.assert_stderr_has(&["-j must be at least 1"]);
        }
        let out = sb
            .haul(["serve", "missing-dir", "--limit-rate", value])
            .run();
        out.assert_code(2);
        out.assert_stderr_has(&["missing-dir is not a directory"]);
    }
    for flag in get_flags {
        let out = sb.haul(["get", "http://h.invalid/f", flag, "2X"]).run();
        out.assert_code(2);
        out.assert_stderr_has(&[flag, "'2X'"]);
    }
    let out = sb
        .haul(["serve", "missing-dir", "--limit-rate", "2 Mbit"])
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["--limit-rate", "'2 Mbit'"]);
}

#[test]
fn a_config_file_size_goes_through_the_same_parser() {
    let sb = Sandbox::new();
    let good = sb.write(
        "good.toml",
        "[serve]\nlimit-rate = \"2M\"\n[get]\nmax-speed = \"1MiB\"\n",
    );
    let out = sb
        .haul(["serve", "missing-dir", "--config"])
        .args([&good])
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["missing-dir is not a directory"]);

    let bad = sb.write("bad.toml", "[serve]\n\nlimit-rate = \"lots\"\n");
    let out = sb
        .haul(["serve", "missing-dir", "--config"])
        .args([&bad])
        .run();
    out.assert_code(2);
    out.assert_stderr_has(&["bad.toml:3", "limit-rate", "'lots'"]);
}

#[test]
fn status_after_an_interrupted_rerun_says_interrupted_not_the_old_error() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 1 << 20;
    server.add_file("/big.bin", body(907, size));
    server.script("/big.bin", vec![Fault::Status(503)]);
    let args = [
        "get",
        &server.url("/big.bin"),
        "-d",
        &sb.dir_arg(),
        "--split",
        "1",
        "--max-tries",
        "1",
    ]
    .map(String::from);
    sb.haul(&args).run().assert_code(1);
    let failed = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    // Not everything is done.
    failed.assert_code(1);
    assert!(failed.stdout.contains("503"), "{failed}");

    // A healthy rerun, stopped by Ctrl-C with a quarter of the body saved.
    server.hold_at(size as u64 / 4);
    let rerun = sb.haul(&args).spawn();
    server.wait_total_served(size as u64 / 4, WAIT);
    rerun.signal("INT");
    rerun.wait(WAIT).assert_code(130);
    server.release();

    let out = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    out.assert_code(1);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("big.bin"))
        .unwrap_or_else(|| panic!("no line for big.bin\n{out}"));
    assert!(line.contains("interrupted"), "{out}");
    assert!(!out.stdout.contains("503"), "a stale error is shown\n{out}");
    assert!(out.stdout.starts_with("1 job:"), "{out}");
}

#[test]
fn counts_of_one_are_singular() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/one.bin", body(908, 10_000));
    sb.haul(["get", &server.url("/one.bin"), "-d", &sb.dir_arg()])
        .run()
        .assert_code(0);

    let status = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    status.assert_code(0);
    assert!(status.stdout.starts_with("1 job:"), "{status}");
    let verify = sb.haul(["verify", "-d", &sb.dir_arg()]).run();
    verify.assert_code(0);
    verify.assert_stderr_has(&["verified 1 file "]);
}
