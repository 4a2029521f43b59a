//! Issue 9, point 3: pipes, messages and names. Every command ends quietly
//! when its stdout pipe closes; a URL typed as the command, an empty list,
//! a `-d` that names a file, an unknown host, an untrusted certificate and
//! `https://` to a plain port are told in words a user acts on; list option
//! values are trimmed as aria2 trims them; every size flag takes the same
//! suffixes; `status` says "interrupted" and counts in the singular.

use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::Sandbox;

const WAIT: Duration = Duration::from_secs(30);

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
