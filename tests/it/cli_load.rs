//! Load: a 100,000-URL list at `-j 64` under `ulimit -n 256`. Every file
//! must arrive correct (a descriptor leak would exhaust the limit long
//! before the end) and the peak RSS is printed.

use std::time::{Duration, Instant};

use crate::support::bodies::body;
use crate::support::cli::Sandbox;
use crate::support::heavy;
use crate::support::server::TestServer;
use crate::support::tmpfs::Tmpfs;

/// URLs in the list; `HAUL_LOAD_URLS` overrides it for a quick look.
const URLS: usize = 100_000;

/// The descriptor limit: 64 connections, 64 `.part` files and the manifest
/// fit with room to spare, a leak of one per file does not.
const NOFILE: u32 = 256;

fn len_of(i: usize) -> usize {
    // 1 to 256 bytes: the fixed cost per file is what this measures.
    1 + (i * 7919) % 256
}

#[test]
fn downloads_100k_urls_under_a_256_descriptor_limit() {
    let urls = std::env::var("HAUL_LOAD_URLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(URLS);
    let _alone = heavy::one_at_a_time();
    let setup = Instant::now();
    let server = TestServer::start();
    let sb = Sandbox::new();
    // The host disk here spends ~2 ms per unlink: on it, cleaning up would
    // take longer than the download. Plain dl/ where we may not mount.
    let disk = Tmpfs::mount(&sb.dir(), "size=2g");
    let mut list = String::with_capacity(urls * 48);
    for i in 0..urls {
        let path = format!("/load/{i}.bin");
        server.add_file(&path, body(i as u64, len_of(i)));
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
        "64",
        "--max-per-host",
        "64",
        // A descriptor running out must fail the run, not be retried away.
        "--max-tries",
        "1",
        "-q",
    ];
    let limit = format!("ulimit -n {NOFILE}");

    println!("load: set up in {:.1}s", setup.elapsed().as_secs_f64());
    let started = Instant::now();
    let running = sb.haul(args).under_shell(&limit).spawn();
    // The shell execs haul, so the sampled pid is haul's own.
    let (out, peak_kb) = running.wait_watching_rss(Duration::from_secs(400));
    let elapsed = started.elapsed();

    out.assert_code(0);
    let checking = Instant::now();
    let mut wrong = Vec::new();
    for i in 0..urls {
        let got = std::fs::read(sb.dl(&format!("{i}.bin"))).unwrap_or_default();
        if got != body(i as u64, len_of(i)) {
            wrong.push(i);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} files wrong, first {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    sb.assert_no_part_files();
    println!("load: checked in {:.1}s", checking.elapsed().as_secs_f64());
    println!(
        "load: {urls} URLs at -j 64 under ulimit -n {NOFILE} in {:.1}s, peak RSS {} KiB ({} B per URL)",
        elapsed.as_secs_f64(),
        peak_kb,
        peak_kb * 1024 / urls as u64
    );
    assert!(peak_kb > 0, "the RSS watcher saw haul running");
    assert!(
        peak_kb < 512 * 1024,
        "memory stays bounded: {peak_kb} KiB for {urls} URLs"
    );

    // Everything is on record: a rerun skips every file without a request.
    let served = server.requests().len();
    let rerun = Instant::now();
    let again = sb.haul(args).under_shell(&limit).run();
    again.assert_code(0);
    println!("load: rerun {:.1}s", rerun.elapsed().as_secs_f64());
    assert_eq!(server.requests().len(), served, "the rerun fetched nothing");
    drop(disk);
}
