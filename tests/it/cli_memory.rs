//! Memory guard (issue 12): the peak RSS of a release `haul` fetching a
//! 200,000-URL list (and writing their sums), then verifying them, must
//! stay under fixed bounds. A regression guard on a count the kernel keeps
//! (VmHWM), not a timing.
//!
//! The figure only means something for the binary users run, so the test
//! builds a release binary itself: `cargo build --release` into a target dir
//! of its own (the outer `cargo test` holds the lock of the usual one). The
//! first run on a machine pays for a full release build; later runs find it
//! up to date in about a second. `HAUL_RSS_BIN=path` measures that binary
//! instead and builds nothing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::support::bodies::{body, sha256_hex};
use crate::support::cli::Sandbox;
use crate::support::heavy;
use crate::support::server::TestServer;
use crate::support::tmpfs::Tmpfs;

/// URLs in the list: W4's larger scale point in bench/run, so the test and
/// the benchmark measure the same thing.
const URLS: usize = 200_000;

/// Distinct bodies behind the URLs, shared by the server (1 KiB each, as in
/// the benchmark): every output is still checked byte for byte.
const BODIES: usize = 16;
const BODY_LEN: usize = 1024;

/// The bound on haul's peak RSS for URLS URLs, in KiB. With the list read
/// as a stream and the manifest on disk (issue 12), the release build
/// peaked at 25,808 KiB in this test (bench/run's W4 from nginx: 25.2 MiB,
/// 14.5 MiB at 5,000 URLs, 47 B per extra URL). Before, at e01ed5c, it
/// peaked at 244,636 KiB here. The bound leaves about 60 % for noise and
/// allocator growth steps, and fails any return of a per-URL cost above
/// about 75 B.
const PEAK_RSS_BOUND_KIB: u64 = 40 * 1024;

/// The bound on the peak RSS of `haul verify --write-sums` over the URLS
/// files the run left, in KiB. The manifest is streamed to the hashing
/// threads and the sums sorted in runs spilled to disk: the release build
/// peaked at 12,432-12,576 KiB over 200,000 files (8,704-8,868 KiB at
/// 50,000: 25 B per extra file, the manifest's index). Before, at c6bab13,
/// it peaked at 65,216-65,248 KiB (306 B per extra file: every path and
/// sum held). The bound leaves about 60 % for noise and allocator steps.
const VERIFY_PEAK_RSS_BOUND_KIB: u64 = 20 * 1024;

/// The release binary to measure: `HAUL_RSS_BIN`, or a fresh release build.
fn release_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HAUL_RSS_BIN") {
        return PathBuf::from(bin);
    }
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"))
        .join("rss-release");
    let started = Instant::now();
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--locked",
            "--bin",
            "haul",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&manifest_dir)
        .output()
        .expect("run cargo build --release");
    assert!(
        out.status.success(),
        "cargo build --release failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "memory: release build in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    target.join("release").join("haul")
}

#[test]
fn peak_rss_of_a_200k_url_release_run_stays_under_the_bound() {
    // The release build keeps both cores busy too.
    let _alone = heavy::one_at_a_time();
    let bin = release_bin();
    let server = TestServer::start();
    let sb = Sandbox::new();
    // 200,000 files on the host disk cost seconds to create and remove.
    let disk = Tmpfs::mount(&sb.dir(), "size=2g");
    let bodies: Vec<Bytes> = (0..BODIES)
        .map(|k| Bytes::from(body(k as u64, BODY_LEN)))
        .collect();
    let mut list = String::with_capacity(URLS * 48);
    for i in 0..URLS {
        let path = format!("/rss/{i:06}.bin");
        server.add_file(&path, bodies[i % BODIES].clone());
        list.push_str(&server.url(&path));
        list.push('\n');
    }
    sb.write("list.txt", &list);
    let args = [
        "get",
        "-i",
        "list.txt",
        "-d",
        &sb.dir_arg(),
        "-j",
        "32",
        "--max-per-host",
        "32",
        "--write-sums",
        "GOT-SUMS",
        "-q",
    ];

    // VmHWM is the kernel's high-water mark of the child's RSS: sampling it
    // misses nothing that happened before the last sample.
    let (out, peak_kib) = sb
        .haul_at(&bin, args)
        .spawn()
        .wait_watching_rss(Duration::from_secs(300));
    out.assert_code(0);
    let mut wrong = Vec::new();
    for i in 0..URLS {
        let got = std::fs::read(sb.dl(&format!("{i:06}.bin"))).unwrap_or_default();
        if got != bodies[i % BODIES] {
            wrong.push(i);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} files wrong, first {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    println!(
        "memory: {URLS} URLs in {:.1}s, peak RSS {peak_kib} KiB ({} B per URL), bound {PEAK_RSS_BOUND_KIB} KiB",
        out.elapsed.as_secs_f64(),
        peak_kib * 1024 / URLS as u64
    );
    assert!(peak_kib > 0, "the RSS watcher saw haul running");
    assert!(
        peak_kib <= PEAK_RSS_BOUND_KIB,
        "peak RSS {peak_kib} KiB for {URLS} URLs is over the bound of {PEAK_RSS_BOUND_KIB} KiB"
    );
    // Both sums files list every file, sorted by name (the numbered names
    // sort as they were listed).
    let digests: Vec<String> = bodies.iter().map(|b| sha256_hex(b)).collect();
    let want: String = (0..URLS)
        .map(|i| format!("{}  {i:06}.bin\n", digests[i % BODIES]))
        .collect();
    let sums = |name: &str| std::fs::read_to_string(sb.root().join(name)).unwrap_or_default();
    assert!(
        sums("GOT-SUMS") == want,
        "get --write-sums wrote the wrong file"
    );

    let (out, verify_kib) = sb
        .haul_at(
            &bin,
            [
                "verify",
                "-d",
                &sb.dir_arg(),
                "--write-sums",
                "VERIFIED-SUMS",
                "-q",
            ],
        )
        .spawn()
        .wait_watching_rss(Duration::from_secs(300));
    out.assert_code(0);
    assert!(
        sums("VERIFIED-SUMS") == want,
        "verify --write-sums wrote the wrong file"
    );
    println!(
        "memory: verify of {URLS} files in {:.1}s, peak RSS {verify_kib} KiB, bound {VERIFY_PEAK_RSS_BOUND_KIB} KiB",
        out.elapsed.as_secs_f64(),
    );
    assert!(verify_kib > 0, "the RSS watcher saw haul verify running");
    assert!(
        verify_kib <= VERIFY_PEAK_RSS_BOUND_KIB,
        "peak RSS {verify_kib} KiB of verify over {URLS} files is over the bound of {VERIFY_PEAK_RSS_BOUND_KIB} KiB"
    );
    drop(disk);
}
