//! Chaos: a list of 30 files (a few bytes to ~20 MiB, the large ones split
//! over several connections) served at a limited rate, stopped at 10 seeded
//! random moments by SIGKILL or SIGINT and rerun each time, then run to
//! completion.
//!
//! The moments are picked by body bytes served, not by wall time, so a seed
//! means the same thing on a fast or a slow machine and nothing sleeps.
//! After every stop the on-disk state must be one haul can trust: the
//! manifest loads, no final-named file is wrong, and every byte the manifest
//! (or the `.part` it vouches for) would resume from equals the origin's.
//! At the end every file is byte-exact and the server sent at most 1.10 x
//! the total size. `HAUL_CHAOS_SEED=N` replays a run; the seed is printed at
//! the start and in every failure message.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;

use crate::support::bodies::{assert_same_bytes, body, sha256_hex};
use crate::support::cli::{Outcome, Running, Sandbox};
use crate::support::server::TestServer;

/// Stops per test.
const STOPS: usize = 10;

/// Files in the list.
const FILES: usize = 30;

/// Body pace of each connection: with at most 4 connections to the one host
/// the whole list takes a few seconds, and every stop lands mid-transfer.
const RATE: u64 = 5 << 20;

/// Most body bytes the server may send, as a multiple of the list's size.
const MAX_RATIO: f64 = 1.10;

/// Bound on one run reaching its stop moment, or on one exit.
const WAIT: Duration = Duration::from_secs(30);

/// Files at least this large are split (4 connections by default).
const MIN_SPLIT: &str = "4M";

/// How a run is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: no chance to save anything.
    Kill,
    /// SIGINT: haul must save its progress and exit 130.
    Interrupt,
}

/// One file of the list: its name under `dl/` and its bytes.
struct Item {
    name: String,
    data: Vec<u8>,
}

/// `HAUL_CHAOS_SEED` if set, else a fresh random seed.
fn chaos_seed() -> u64 {
    match std::env::var("HAUL_CHAOS_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HAUL_CHAOS_SEED={text:?} is not a u64")),
        Err(_) => StdRng::from_os_rng().next_u64(),
    }
}

/// 30 files of seeded sizes: 4 large enough to split, 6 of a few hundred KiB
/// to 3 MiB, 20 small ones down to a few bytes.
fn file_set(rng: &mut StdRng) -> Vec<Item> {
    let mut sizes: Vec<usize> = vec![
        rng.random_range(16 << 20..=20 << 20),
        rng.random_range(8 << 20..=12 << 20),
        rng.random_range(5 << 20..=7 << 20),
        rng.random_range(4 << 20..=5 << 20),
    ];
    sizes.extend((0..6).map(|_| rng.random_range(300 << 10..=3 << 20)));
    sizes.extend((0..4).map(|_| rng.random_range(1..=16)));
    sizes.extend((sizes.len()..FILES).map(|_| rng.random_range(100..=200 << 10)));
    let data_seed = rng.next_u64();
    sizes
        .into_iter()
        .enumerate()
        .map(|(i, len)| Item {
            name: format!("f{i:02}.bin"),
            data: body(data_seed.wrapping_add(i as u64), len),
        })
        .collect()
}

/// Sorted stop moments in bytes served, spread over 3..92 % of `total`.
fn stop_points(rng: &mut StdRng, total: u64) -> Vec<u64> {
    let mut points: Vec<u64> = (0..STOPS)
        .map(|_| (total as f64 * rng.random_range(0.03..0.92)) as u64)
        .collect();
    points.sort_unstable();
    points
}

#[test]
fn list_survives_ten_random_kill_9s() {
    chaos(Stop::Kill);
}

#[test]
fn list_survives_ten_random_sigints() {
    chaos(Stop::Interrupt);
}

fn chaos(stop: Stop) {
    let seed = chaos_seed();
    eprintln!("chaos {stop:?}: seed {seed} (rerun with HAUL_CHAOS_SEED={seed})");
    let ctx = format!("[{stop:?}, HAUL_CHAOS_SEED={seed}]");
    let mut rng = StdRng::seed_from_u64(seed);
    let items = file_set(&mut rng);
    let total: u64 = items.iter().map(|it| it.data.len() as u64).sum();
    let points = stop_points(&mut rng, total);

    let server = TestServer::start();
    let sb = Sandbox::new();
    let mut list = String::new();
    for it in &items {
        let path = format!("/{}", it.name);
        server.add_file(&path, it.data.clone());
        server.set_rate(&path, RATE);
        list.push_str(&server.url(&path));
        list.push('\n');
    }
    sb.write("list.txt", list);
    let args = [
        "get",
        "-i",
        "list.txt",
        "-d",
        &sb.dir_arg(),
        "-j",
        "4",
        "--min-split-size",
        MIN_SPLIT,
        "--retry-wait",
        "0.05",
    ]
    .map(String::from);
    let bodies: HashMap<&str, &[u8]> = items
        .iter()
        .map(|it| (it.name.as_str(), it.data.as_slice()))
        .collect();

    for (n, &point) in points.iter().enumerate() {
        // At least one byte of this run: the run is past startup (its signal
        // handler is in place) and every stop lands while bytes flow.
        let target = point.max(server.total_served() + 1);
        let running = sb.haul(&args).spawn();
        let what = format!("{ctx} stop {}/{STOPS} at {target} bytes served", n + 1);
        if !server.wait_total_served(target, WAIT) {
            let out = finish(running, Stop::Kill);
            panic!("{what}: never reached within {WAIT:?}\n{out}");
        }
        let out = finish(running, stop);
        match stop {
            Stop::Kill => assert_eq!(out.code(), None, "{what}: not killed\n{out}"),
            Stop::Interrupt => assert_eq!(out.code(), Some(130), "{what}: unclean stop\n{out}"),
        }
        let status = sb.haul(["status", "-d", &sb.dir_arg()]).run();
        assert_eq!(
            status.code(),
            Some(0),
            "{what}: haul status cannot load the manifest\n{status}"
        );
        check_state(&sb.dir(), &bodies, &what);
        eprintln!(
            "{what}: ok, {} of {total} bytes served so far",
            server.total_served()
        );
    }

    let out = sb.haul(&args).run();
    assert_eq!(out.code(), Some(0), "{ctx} final run failed\n{out}");
    for it in &items {
        let got = std::fs::read(sb.dl(&it.name))
            .unwrap_or_else(|e| panic!("{ctx} read {}: {e}", it.name));
        assert_same_bytes(&got, &it.data, &format!("{ctx} final {}", it.name));
    }
    let parts = sb.find(".part");
    assert!(parts.is_empty(), "{ctx} leftover .part files: {parts:?}");
    let served = server.total_served();
    let ratio = served as f64 / total as f64;
    eprintln!("{ctx} done: {served} bytes served for {total}, ratio {ratio:.4}");
    assert!(
        ratio <= MAX_RATIO,
        "{ctx} served {served} bytes for {total}: ratio {ratio:.4} > {MAX_RATIO}"
    );
}

/// Stops the run as `stop` says and waits for it to exit.
fn finish(mut running: Running, stop: Stop) -> Outcome {
    match stop {
        Stop::Kill => running.kill9(),
        Stop::Interrupt => running.signal("INT"),
    }
    running.wait(WAIT)
}

/// Checks what a stopped run left in `dir` against the origin's bodies.
fn check_state(dir: &Path, bodies: &HashMap<&str, &[u8]>, what: &str) {
    let records = load_manifest(&dir.join(".haul"), what);
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{what}: read dl/: {e}"));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{what}: read dl/: {e}"));
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".haul" {
            continue;
        }
        let on_disk =
            std::fs::read(entry.path()).unwrap_or_else(|e| panic!("{what}: read {name}: {e}"));
        if let Some(stem) = name.strip_suffix(".part") {
            let expected = bodies
                .get(stem)
                .unwrap_or_else(|| panic!("{what}: stray file {name}"));
            check_part(
                records.get(stem),
                &on_disk,
                expected,
                &format!("{what}: {name}"),
            );
        } else {
            let expected = bodies
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{what}: stray file {name}"));
            assert_same_bytes(&on_disk, expected, &format!("{what}: final-named {name}"));
        }
    }
    for (path, rec) in &records {
        let expected = bodies
            .get(path.as_str())
            .unwrap_or_else(|| panic!("{what}: manifest has unknown job {path}"));
        if rec["state"] == "done" {
            assert_eq!(
                rec["sha256"].as_str(),
                Some(sha256_hex(expected).as_str()),
                "{what}: {path} recorded as done with a wrong sha256"
            );
        }
        if let Some(total) = rec["total"].as_u64() {
            assert_eq!(total, expected.len() as u64, "{what}: {path} total");
        }
    }
}

/// The bytes a rerun would keep of a `.part` must be the origin's: within
/// each split range the written prefix, else the prefix haul resumes from
/// (the whole file while the boot is the same; the tests never reboot).
fn check_part(rec: Option<&Value>, on_disk: &[u8], expected: &[u8], what: &str) {
    let Some(rec) = rec else {
        // A .part without a record is never resumed from.
        return;
    };
    if rec["state"] == "done" {
        // Killed between recording done and the rename: the rerun promotes
        // it only if it hashes to the recorded sha256 (checked above).
        return;
    }
    if let Some(segments) = rec["segments"].as_array() {
        for seg in segments {
            let field = |key: &str| {
                seg[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{what}: segment without {key}: {seg}"))
            };
            let (start, written) = (field("start") as usize, field("written") as usize);
            let end = start + written;
            assert!(end <= on_disk.len(), "{what}: segment {seg} past the end");
            assert_same_bytes(
                &on_disk[start..end],
                &expected[start..end],
                &format!("{what} segment {seg}"),
            );
        }
        return;
    }
    let validated = !rec["etag"].is_null() || !rec["last_modified"].is_null();
    if !validated {
        return;
    }
    let kept = if rec["boot_id"].is_null() {
        let done = rec["bytes_done"].as_u64().unwrap_or(0) as usize;
        done.min(on_disk.len())
    } else {
        on_disk.len()
    };
    if kept > expected.len() {
        return;
    }
    assert_same_bytes(
        &on_disk[..kept],
        &expected[..kept],
        &format!("{what} resumable prefix ({kept} bytes, record {rec})"),
    );
}

/// Loads `manifest.json` and replays `journal.jsonl` (a torn last line is
/// allowed, as after any kill); every other line must parse.
fn load_manifest(state: &Path, what: &str) -> BTreeMap<String, Value> {
    let mut records = BTreeMap::new();
    let snapshot = state.join("manifest.json");
    match std::fs::read(&snapshot) {
        Ok(bytes) => {
            let doc: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{what}: manifest.json does not parse: {e}"));
            let jobs = doc["jobs"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: manifest.json has no jobs array"));
            for job in jobs {
                insert_record(&mut records, job.clone(), what);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("{what}: read manifest.json: {e}"),
    }
    let journal = match std::fs::read_to_string(state.join("journal.jsonl")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("{what}: read journal.jsonl: {e}"),
    };
    let complete = journal.rfind('\n').map_or("", |end| &journal[..end]);
    for (i, line) in complete.lines().enumerate() {
        let rec: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: journal.jsonl:{}: {e}", i + 1));
        insert_record(&mut records, rec, what);
    }
    records
}

fn insert_record(records: &mut BTreeMap<String, Value>, rec: Value, what: &str) {
    let path = rec["path"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: manifest record without a path: {rec}"))
        .to_string();
    records.insert(path, rec);
}
