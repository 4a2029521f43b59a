//! Nothing is written outside the output directory, whatever the list or a
//! symlink planted inside the directory says. (Traversal in `out=` and in
//! the URL is in `cli_input`.)
//!
//! Every test plants its trap under `ROOT/outside/`, a sibling of `dl/`, and
//! checks afterwards that `outside/` holds exactly what it held before.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Sandbox, FAST_RETRY};
use crate::support::server::TestServer;

/// `ROOT/outside/` with one file, `victim`, holding "keep".
fn outside(sb: &Sandbox) -> PathBuf {
    let dir = sb.root().join("outside");
    std::fs::create_dir(&dir).expect("mkdir outside");
    std::fs::write(dir.join("victim"), "keep").expect("write victim");
    dir
}

fn assert_untouched(dir: &PathBuf) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("read outside/")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["victim"], "something was written outside dl/");
    let victim = std::fs::read(dir.join("victim")).expect("read victim");
    assert_eq!(victim, b"keep", "the file outside dl/ was changed");
}

#[test]
fn does_not_follow_a_symlinked_directory_inside_dir() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let trap = outside(&sb);
    symlink(&trap, sb.dl("sub")).expect("plant dl/sub -> outside");
    server.add_file("/a.bin", body(900, 3000));
    let list = format!("{}\n  out=sub/a.bin\n", server.url("/a.bin"));
    sb.write("list.txt", list);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["sub", "symbolic link"]);
    assert_untouched(&trap);
}

#[test]
fn does_not_write_through_a_symlinked_part_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let trap = outside(&sb);
    symlink(trap.join("victim"), sb.dl("a.bin.part")).expect("plant a.bin.part");
    server.add_file("/a.bin", body(901, 3000));

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .run();

    out.assert_code(1);
    out.assert_stderr_has(&["a.bin.part", "symbolic link"]);
    assert_untouched(&trap);
}

#[test]
fn does_not_follow_a_symlinked_split_part_file() {
    // A split download opens its `.part` once per connection: a link
    // swapped in after the first open must not be followed either. The
    // first run is killed mid-file, the link replaces the .part, then the
    // rerun must refuse it.
    let server = TestServer::start();
    let sb = Sandbox::new();
    let trap = outside(&sb);
    let data = body(902, 8 << 20);
    server.add_file("/big.bin", data.clone());
    server.set_rate("/big.bin", 4 << 20);
    let args = [
        "get",
        &server.url("/big.bin"),
        "-d",
        &sb.dir_arg(),
        "--split",
        "4",
        "--min-split-size",
        "1M",
    ]
    .map(String::from);

    let mut first = sb.haul(&args).spawn();
    server.wait_served("/big.bin", 1 << 20, Duration::from_secs(20));
    first.kill9();
    first.wait(Duration::from_secs(10));
    std::fs::remove_file(sb.dl("big.bin.part")).expect("remove the .part");
    symlink(trap.join("victim"), sb.dl("big.bin.part")).expect("plant the link");

    let out = sb.haul(&args).args(FAST_RETRY).run();

    out.assert_code(1);
    out.assert_stderr_has(&["big.bin.part", "symbolic link"]);
    assert_untouched(&trap);
    assert!(!sb.dl("big.bin").exists());
}

#[test]
fn refuses_a_symlinked_state_directory() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let trap = outside(&sb);
    symlink(&trap, sb.dl(".haul")).expect("plant dl/.haul -> outside");
    server.add_file("/a.bin", body(903, 3000));

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&[".haul"]);
    assert_untouched(&trap);
    assert!(server.requests().is_empty(), "nothing fetched");
}

#[test]
fn replaces_a_symlink_at_the_final_name_only_when_allowed() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let trap = outside(&sb);
    symlink(trap.join("victim"), sb.dl("a.bin")).expect("plant dl/a.bin");
    let data = body(904, 3000);
    server.add_file("/a.bin", data.clone());

    let refused = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .run();
    refused.assert_code(1);
    refused.assert_stderr_has(&["a.bin", "exists"]);
    assert_untouched(&trap);

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .args(["--allow-overwrite"])
        .run();
    out.assert_code(0);
    let meta = std::fs::symlink_metadata(sb.dl("a.bin")).expect("stat a.bin");
    assert!(meta.is_file(), "the link itself was replaced by the file");
    assert_file_eq(&sb.dl("a.bin"), &data);
    assert_untouched(&trap);
}
