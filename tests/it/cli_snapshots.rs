//! Snapshots of what users read: the `--help` and `-h` texts at 80 columns
//! and the plain (non-terminal) output of a small run, pinned under
//! `tests/it/snapshots/`, so a change to any of them shows up in review as a
//! diff of a `.snap` file.
//!
//! Ports, the sandbox path, durations and rates change from run to run and
//! are replaced by placeholders (`[PORT]`, `[SANDBOX]`, `[DURATION]`,
//! `[RATE]`); everything else is compared byte for byte. To accept a change,
//! run `INSTA_UPDATE=always cargo test --test it cli_snapshots` and review
//! the `git diff` of the `.snap` files. `.ci/run` sets `INSTA_UPDATE=no`, so
//! in CI a mismatch (or a missing snapshot) fails the test and writes
//! nothing; on a developer's machine insta's default writes a `.snap.new`
//! beside the old file and fails too.

use crate::support::bodies::body;
use crate::support::cli::{Outcome, Sandbox};
use crate::support::server::TestServer;

/// Runs `f` with insta set up for this module: snapshots in `snapshots/`
/// named without the module path, headed by `description` (the command),
/// and the run-to-run details of `sb` (and of `server`, if any) filtered
/// out.
fn with_settings(description: &str, sb: &Sandbox, server: Option<&TestServer>, f: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(description);
    settings.add_filter(&escape(&sb.root().display().to_string()), "[SANDBOX]");
    if let Some(server) = server {
        settings.add_filter(
            &format!(r"127\.0\.0\.1:{}\b", server.port()),
            "127.0.0.1:[PORT]",
        );
    }
    // human_duration's forms ("0.4s", "1m 02s", "1h 02m 03s") and
    // human_rate's ("0 B/s", "80.9 KiB/s") in the summary line.
    settings.add_filter(
        r" in (\d+\.\ds|\d+m \d\ds|\d+h \d\dm \d\ds) \(",
        " in [DURATION] (",
    );
    settings.add_filter(r"\(\d+(\.\d)? [KMGTPE]?i?B/s\)", "([RATE])");
    settings.bind(f);
}

/// `text` as a regex matching itself.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// stdout and stderr of a run, labelled, with its exit code.
fn transcript(out: &Outcome) -> String {
    format!(
        "exit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.code(),
        out.stdout,
        out.stderr
    )
}

/// `haul ARGS` at `COLUMNS=80` (the width haul wraps help to), checked
/// against the snapshot `name`.
fn assert_help(name: &str, args: &[&str]) {
    let sb = Sandbox::new();
    let out = sb.haul(args).env("COLUMNS", "80").run();
    out.assert_code(0);
    assert!(out.stderr.is_empty(), "help wrote to stderr\n{out}");
    let description = format!("COLUMNS=80 haul {}", args.join(" "));
    with_settings(&description, &sb, None, || {
        insta::assert_snapshot!(name, out.stdout);
    });
}

#[test]
fn help_text_is_pinned() {
    assert_help("help", &["--help"]);
}

#[test]
fn get_help_text_is_pinned() {
    assert_help("get_help", &["get", "--help"]);
}

#[test]
fn get_short_help_text_is_pinned() {
    assert_help("get_short_help", &["get", "-h"]);
}

#[test]
fn verify_help_text_is_pinned() {
    assert_help("verify_help", &["verify", "--help"]);
}

#[test]
fn status_help_text_is_pinned() {
    assert_help("status_help", &["status", "--help"]);
}

#[test]
fn serve_help_text_is_pinned() {
    assert_help("serve_help", &["serve", "--help"]);
}

/// Two files that download and one that is not there, one job at a time so
/// the lines come in list order.
#[test]
fn plain_output_of_a_small_run_is_pinned() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/first.bin", body(1, 100_000));
    server.add_file("/second.bin", body(2, 5_000));
    let urls = ["/first.bin", "/missing.bin", "/second.bin"].map(|p| server.url(p));
    let out = sb
        .haul(["get", "-j", "1", "-d", &sb.dir_arg()])
        .args(&urls)
        .run();
    out.assert_code(1);
    let description = "haul get -j 1 -d DIR URL URL URL, on a file (not a terminal)";
    with_settings(description, &sb, Some(&server), || {
        insta::assert_snapshot!("plain_small_run", transcript(&out));
    });
}
