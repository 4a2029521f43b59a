//! Mirrors: TAB-separated URLs on one list line are one file. Failover to
//! the next mirror on a permanent error, one error naming every mirror when
//! all fail, a split spread over mirrors when a checksum vouches for the
//! result, and never a file spliced from two servers' different bytes.
//! Each mirror is its own TestServer, so its own host (port).

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

/// Writes a one-entry list (the URLs TAB-separated, then `options` as
/// indented option lines) and runs `haul get -i` on it.
fn get_mirrored(sb: &Sandbox, urls: &[String], options: &[String], extra: &[&str]) -> Outcome {
    let mut list = urls.join("\t");
    list.push('\n');
    for option in options {
        list.push_str(&format!("  {option}\n"));
    }
    sb.write("list.txt", list);
    sb.haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .args(FAST_RETRY)
        .args(extra)
        .run()
}

fn ranged_oks(server: &TestServer, path: &str) -> usize {
    server
        .gets(path)
        .iter()
        .filter(|r| r.status == Some(206))
        .count()
}

#[test]
fn fails_over_to_the_second_mirror_on_404() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let sb = Sandbox::new();
    let data = body(700, 300_000);
    // `a` does not have the file at all.
    b.add_file("/pkg/f.bin", data.clone());

    let out = get_mirrored(&sb, &[a.url("/pkg/f.bin"), b.url("/pkg/f.bin")], &[], &[]);

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &data);
    sb.assert_no_part_files();
    // A 404 is permanent: one request to `a`, then `b` serves the file.
    assert_eq!(a.gets("/pkg/f.bin").len(), 1);
    assert_eq!(b.gets("/pkg/f.bin").len(), 1);
}

#[test]
fn all_mirrors_failing_is_one_error_naming_each() {
    let (a, b, c) = (
        TestServer::start(),
        TestServer::start(),
        TestServer::start(),
    );
    let sb = Sandbox::new();
    c.add_file("/f.bin", body(701, 1000));
    c.script("/f.bin", vec![Fault::Status(410)]);
    b.add_file("/f.bin", body(701, 1000));
    b.script("/f.bin", vec![Fault::Status(403)]);

    let urls = [a.url("/f.bin"), b.url("/f.bin"), c.url("/f.bin")];
    let out = get_mirrored(&sb, &urls, &[], &[]);

    assert_ne!(out.code(), Some(0), "{}", out.all_output());
    let all = out.all_output();
    let failed = out.failed_lines().join("\n");
    assert!(failed.contains("all 3 mirrors failed"), "{all}");
    for (server, status) in [(&a, "404"), (&b, "403"), (&c, "410")] {
        let port = format!(":{}", server.port());
        assert!(failed.contains(&port), "no {port} in: {all}");
        assert!(failed.contains(status), "no {status} in: {all}");
        assert_eq!(server.gets("/f.bin").len(), 1, "{port}");
    }
    assert!(!sb.dl("f.bin").exists());
}

#[test]
fn split_spreads_over_two_mirrors_when_a_checksum_vouches() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let sb = Sandbox::new();
    let size = 8 << 20;
    let data = body(702, size);
    a.add_file("/s.bin", data.clone());
    b.add_file("/s.bin", data.clone());
    // Paced, so every connection is still busy when the others start.
    a.set_rate("/s.bin", 8 << 20);
    b.set_rate("/s.bin", 8 << 20);

    let out = get_mirrored(
        &sb,
        &[a.url("/s.bin"), b.url("/s.bin")],
        &[format!("checksum=sha-256={}", sha256_hex(&data))],
        &["--split", "4"],
    );

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &data);
    sb.assert_no_part_files();
    assert!(
        ranged_oks(&b, "/s.bin") >= 1,
        "the second mirror served no range: {:?}",
        b.gets("/s.bin")
    );
    assert!(
        ranged_oks(&a, "/s.bin") + a.gets("/s.bin").len() >= 2,
        "{:?}",
        a.gets("/s.bin")
    );
    let served = a.bytes_served("/s.bin") + b.bytes_served("/s.bin");
    assert!(
        served as f64 <= size as f64 * 1.05,
        "served {served} bytes for {size}"
    );
}

#[test]
fn a_split_without_checksum_drops_a_mirror_with_other_bytes() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let sb = Sandbox::new();
    let size = 8 << 20;
    let ours = body(703, size);
    // Same length, other bytes (and another ETag): another file.
    a.add_file("/s.bin", ours.clone());
    b.add_file("/s.bin", body(704, size));
    a.set_rate("/s.bin", 8 << 20);

    let out = get_mirrored(
        &sb,
        &[a.url("/s.bin"), b.url("/s.bin")],
        &[],
        &["--split", "4"],
    );

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &ours);
    // `b` was asked (If-Range with a's ETag) and answered with its whole
    // other file: not one of its bytes may be in ours.
    assert!(!b.gets("/s.bin").is_empty(), "the split never tried b");
    assert_eq!(ranged_oks(&b, "/s.bin"), 0, "{:?}", b.gets("/s.bin"));
}

#[test]
fn failover_to_a_mirror_with_other_bytes_restarts_instead_of_splicing() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let sb = Sandbox::new();
    let size = 2 << 20;
    let half: u64 = 1 << 20;
    a.add_file("/f.bin", body(705, size));
    // Half the file, then `a` refuses for good.
    a.script("/f.bin", vec![Fault::CloseAfter(half), Fault::Status(403)]);
    let theirs = body(706, size);
    b.add_file("/f.bin", theirs.clone());

    let out = get_mirrored(
        &sb,
        &[a.url("/f.bin"), b.url("/f.bin")],
        &[],
        &["--split", "1"],
    );

    out.assert_code(0);
    // All of b's file, none of a's first half.
    assert_file_eq(&sb.dl("f.bin"), &theirs);
    let gets = b.gets("/f.bin");
    assert!(
        gets.first().and_then(|g| g.range_start()) == Some(half),
        "b was first asked to continue: {gets:?}"
    );
}

#[test]
fn failover_with_a_checksum_keeps_the_bytes_on_disk() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let sb = Sandbox::new();
    let size = 2 << 20;
    let half: u64 = 1 << 20;
    let data = body(707, size);
    a.add_file("/f.bin", data.clone());
    a.script("/f.bin", vec![Fault::CloseAfter(half), Fault::Status(404)]);
    b.add_file("/f.bin", data.clone());

    let out = get_mirrored(
        &sb,
        &[a.url("/f.bin"), b.url("/f.bin")],
        &[format!("checksum=sha-256={}", sha256_hex(&data))],
        &["--split", "1"],
    );

    out.assert_code(0);
    assert_file_eq(&sb.dl("f.bin"), &data);
    // b only sent the second half.
    assert_eq!(b.bytes_served("/f.bin"), size as u64 - half);
}
