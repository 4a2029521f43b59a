//! The progress display as a person sees it: haul runs
//! on an 80x24 pseudo-terminal (`support::term`) and the tests read the
//! screens it draws. Rows name their file, a retry's row leads with its
//! cause, the total bar is not full before any size is known, and Ctrl-C
//! leaves no bar behind.

use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, RUN_TIMEOUT};
use crate::support::server::{refusing_port, Fault, TestServer};
use crate::support::term::{row_with, show, Screen, TermOutcome, Terminal};

const COLS: u16 = 80;
const ROWS: u16 = 24;

/// How long a test waits for a state of the screen.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every distinct row seen that `pick` selects, for failure messages.
fn distinct_rows(out: &TermOutcome, pick: impl Fn(&str) -> bool) -> Vec<String> {
    let mut rows: Vec<String> = out
        .history
        .iter()
        .flatten()
        .filter(|row| pick(row))
        .cloned()
        .collect();
    rows.sort();
    rows.dedup();
    rows
}

#[test]
fn a_row_shows_the_file_name_while_it_waits_and_downloads() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(41, 192 * 1024);
    server.add_file("/named-file.bin", data.clone());
    // The first answer sends it into a retry before it ever starts, then
    // the body takes about three seconds.
    server.script(
        "/named-file.bin",
        vec![Fault::StatusRetryAfter(503, "1".into())],
    );
    server.set_rate("/named-file.bin", 64 * 1024);
    let cmd = sb.haul(["get", &server.url("/named-file.bin"), "-d", &sb.dir_arg()]);
    let term = Terminal::spawn(cmd, COLS, ROWS);

    let waiting = term.wait_for("the retry's row", SCREEN_TIMEOUT, |s| {
        row_with(s, "retry").is_some()
    });
    let row = row_with(&waiting, "retry").unwrap_or_default();
    assert!(
        row.starts_with("named-file.bin"),
        "the waiting row does not name its file:\n{}",
        show(&waiting)
    );
    // The file's row, not the total's, with bytes received.
    let file_row = |s: &Screen| -> Option<String> {
        s.iter()
            .find(|row| row.contains("KiB/192.0 KiB") && !row.contains(" files"))
            .cloned()
    };
    let downloading = term.wait_for("the download's row", SCREEN_TIMEOUT, |s| {
        file_row(s).is_some()
    });
    let row = file_row(&downloading).unwrap_or_default();
    assert!(
        row.starts_with("named-file.bin"),
        "the downloading row does not name its file:\n{}",
        show(&downloading)
    );

    let out = term.finish(RUN_TIMEOUT);
    assert_eq!(out.code, Some(0), "last screen:\n{}", show(&out.screen));
    assert_file_eq(&sb.dl("named-file.bin"), &data);
    let unnamed = distinct_rows(&out, |row| row.contains("job #"));
    assert!(unnamed.is_empty(), "rows named by number: {unnamed:#?}");
}

#[test]
fn a_retry_row_leads_with_the_cause_then_the_url() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let (_held, port) = refusing_port();
    let refused = format!("http://127.0.0.1:{port}/refused.bin");
    server.add_file("/busy.bin", body(42, 4096));
    server.script("/busy.bin", vec![Fault::StatusRetryAfter(503, "1".into())]);
    // A wait of 0.5 to 5 s (full jitter) keeps the refused row up for
    // several frames; the second refusal is final.
    let cmd = sb.haul([
        "get",
        &refused,
        &server.url("/busy.bin"),
        "-d",
        &sb.dir_arg(),
        "--max-tries",
        "2",
        "--retry-wait",
        "5",
    ]);
    let out = Terminal::spawn(cmd, COLS, ROWS).finish(RUN_TIMEOUT);
    assert_eq!(out.code, Some(1), "last screen:\n{}", show(&out.screen));

    // Every retry row, whichever file it is for, leads with its cause
    // ("503 " with its space: a port number may hold "503" too).
    let retry_rows = distinct_rows(&out, |row| row.contains("retry"));
    for cause in ["connection refused", "503 "] {
        assert!(
            retry_rows.iter().any(|row| row.contains(cause)),
            "no retry row shows {cause:?}: {retry_rows:#?}"
        );
    }
    for row in &retry_rows {
        let cause = row.find("connection refused").or_else(|| row.find("503 "));
        let url = row.find("http://127.0.0.1");
        assert!(
            cause.is_some() && url.is_some() && cause < url,
            "a retry row should show its cause, then the URL, in {COLS} columns: \
             {row:?}\nall: {retry_rows:#?}"
        );
    }
}

#[test]
fn the_total_bar_is_not_full_before_any_size_is_known() {
    let sb = Sandbox::new();
    let (_held, port) = refusing_port();
    // Never answered, so its size is never known; a wait of 0.2 to 2 s
    // between its two attempts.
    let url = format!("http://127.0.0.1:{port}/never.bin");
    let cmd = sb.haul([
        "get",
        &url,
        "-d",
        &sb.dir_arg(),
        "--max-tries",
        "2",
        "--retry-wait",
        "2",
    ]);
    let out = Terminal::spawn(cmd, COLS, ROWS).finish(RUN_TIMEOUT);
    assert_eq!(out.code, Some(1), "last screen:\n{}", show(&out.screen));

    let totals = distinct_rows(&out, |row| row.contains(" files"));
    assert!(!totals.is_empty(), "no total bar was drawn: {}", out.raw);
    for row in &totals {
        assert!(
            !row.contains('█') && !row.contains("0 B/0 B"),
            "a total bar drawn full before any size is known: {row:?}\nall: {totals:#?}"
        );
    }
}

#[test]
fn ctrl_c_leaves_no_bar_on_screen() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/slow.bin", body(43, 2 << 20));
    server.set_rate("/slow.bin", 64 * 1024);
    let cmd = sb.haul(["get", &server.url("/slow.bin"), "-d", &sb.dir_arg()]);
    let mut term = Terminal::spawn(cmd, COLS, ROWS);
    term.wait_for("the file's row with bytes received", SCREEN_TIMEOUT, |s| {
        row_with(s, "slow.bin").is_some_and(|row| row.contains("KiB/2.0 MiB"))
    });

    term.ctrl_c();
    let out = term.finish(RUN_TIMEOUT);
    assert_eq!(out.code, Some(130), "last screen:\n{}", show(&out.screen));
    let screen = show(&out.screen);
    assert!(
        row_with(&out.screen, "1 interrupted").is_some(),
        "no summary:\n{screen}"
    );
    assert!(
        row_with(&out.screen, "interrupted: progress saved").is_some(),
        "no resume hint:\n{screen}"
    );
    for leftover in [" files", "slow.bin", "█", "░"] {
        assert!(
            row_with(&out.screen, leftover).is_none(),
            "a bar's line ({leftover:?}) stayed on screen:\n{screen}"
        );
    }
}
