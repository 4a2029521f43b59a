//! Chaos: a list of 30 files (a few bytes to ~24 MiB, the four largest
//! split over several connections) served at a limited rate, stopped at 10
//! seeded random moments by SIGKILL or SIGINT and rerun each time, then run
//! to completion.
//!
//! The moments are picked by body bytes served, not by wall time: the server
//! freezes at the mark until the stopped run has exited, so a seed means the
//! same thing on a fast or a slow machine and nothing sleeps. After every
//! stop the state must be one haul can trust: `haul status` loads the
//! manifest, snapshot and journal parse, no final-named file is wrong, every
//! byte a rerun would keep (split ranges' written prefixes, a single
//! stream's `.part`) equals the origin's, and no rerun asks again for bytes
//! the stop before it left kept. At the end every file is byte-exact and the
//! server sent at most 1.10 x the total size. `HAUL_CHAOS_SEED=N` replays a
//! run's sizes and moments; the seed is printed at the start and named in
//! every failure message.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;

use crate::support::bodies::{assert_same_bytes, body, sha256_hex};
use crate::support::cli::{Outcome, Running, Sandbox};
use crate::support::server::{LoggedRequest, TestServer};

/// Stops per test.
const STOPS: usize = 10;

/// Files in the list.
const FILES: usize = 30;

/// Body pace of each connection: with at most 4 connections to the one host
/// the whole list takes a few seconds, and every stop lands mid-transfer.
const RATE: u64 = 4 << 20;

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

/// 30 files of seeded sizes: 4 of 8 to 24 MiB, split; 6 of 300 KiB to
/// 4 MiB and 20 of up to 200 KiB, single streams; 4 of those a few bytes.
fn file_set(rng: &mut StdRng) -> Vec<Item> {
    let mut sizes: Vec<usize> = vec![
        rng.random_range(20 << 20..=24 << 20),
        rng.random_range(16 << 20..=20 << 20),
        rng.random_range(12 << 20..=16 << 20),
        rng.random_range(8 << 20..=12 << 20),
    ];
    sizes.extend((0..6).map(|_| rng.random_range(300 << 10..4 << 20)));
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

    // Bytes the server pushed, after a stop, into connections of a run that
    // was already dead: the gate froze them, and they burst out when it
    // opened. Counted in the ratio like any other, shown apart.
    let mut unreceivable = vec![0u64; items.len()];
    let mut seen = vec![0usize; items.len()];
    let mut prev_kept: HashMap<&str, Vec<Span>> = HashMap::new();
    for (n, &point) in points.iter().enumerate() {
        // At least one byte of this run: the run is past startup (its signal
        // handler is in place) and every stop lands while bytes flow.
        let target = point.max(server.total_served() + 1);
        let what = format!("{ctx} stop {}/{STOPS} at {target} bytes served", n + 1);
        let (out, dead) = run_and_stop(&server, &sb, &args, &items, target, stop, &what);
        for (sum, dead) in unreceivable.iter_mut().zip(dead) {
            *sum += dead;
        }
        match stop {
            Stop::Kill => assert_eq!(out.code(), None, "{what}: not killed\n{out}"),
            Stop::Interrupt => {
                assert_eq!(out.code(), Some(130), "{what}: unclean stop\n{out}");
                assert!(
                    out.stderr.to_lowercase().contains("resum"),
                    "{what}: no word on resuming\n{out}"
                );
            }
        }
        let status = sb.haul(["status", "-d", &sb.dir_arg()]).run();
        // It loads the manifest (2 would say it cannot), and its code says
        // what its report does: 0 only with every job of the list done.
        let headline = status.stdout.lines().next().unwrap_or_default();
        let all_done = headline
            .split_once(" jobs: ")
            .is_some_and(|(jobs, rest)| rest.starts_with(&format!("{jobs} done")))
            && !status.stdout.contains("in no manifest yet");
        assert_eq!(
            status.code(),
            Some(if all_done { 0 } else { 1 }),
            "{what}: haul status cannot load the manifest, or its code is not its report's\n{status}"
        );
        let kept = check_state(&sb.dir(), &bodies, &what);
        check_no_refetch(&server, &items, &prev_kept, &mut seen, &what);
        show_lost(&server, &items, &kept, &unreceivable, &what);
        prev_kept = kept;
    }

    let out = sb.haul(&args).run();
    assert_eq!(out.code(), Some(0), "{ctx} final run failed\n{out}");
    let what = format!("{ctx} final run");
    check_no_refetch(&server, &items, &prev_kept, &mut seen, &what);
    check_final(&server, &sb, &items, unreceivable.iter().sum(), &ctx);
}

/// Starts a run, stops it as `stop` says once `target` body bytes were
/// served in all, and waits until no body streams. Returns its outcome and,
/// per item, the bytes pushed after the stop into its dead connections.
fn run_and_stop(
    server: &TestServer,
    sb: &Sandbox,
    args: &[String],
    items: &[Item],
    target: u64,
    stop: Stop,
    what: &str,
) -> (Outcome, Vec<u64>) {
    // The server freezes at the mark, so the stop lands at that byte
    // count however late this thread wakes.
    server.hold_at(target);
    // Names the stop in the test's output before a wait below can fail.
    eprintln!("{what}: running");
    let running = sb.haul(args).spawn();
    // A run that never reaches the mark fails the test here; `running`
    // is then killed and its output shown as it is dropped.
    server.wait_total_served(target, WAIT);
    let out = finish(running, stop);
    let at_stop = served_by_file(server, items);
    server.release();
    server.wait_idle(WAIT);
    let dead = served_by_file(server, items)
        .into_iter()
        .zip(at_stop)
        .map(|(now, then)| now - then)
        .collect();
    (out, dead)
}

/// Prints what a stop cost: bytes served to this run or an earlier one and
/// kept by none ("lost"), largest first.
fn show_lost(
    server: &TestServer,
    items: &[Item],
    kept: &HashMap<&str, Vec<Span>>,
    unreceivable: &[u64],
    what: &str,
) {
    let served = served_by_file(server, items);
    let mut lost: Vec<(u64, &str)> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let got = kept.get(it.name.as_str()).map_or(0, |s| span_len(s));
            (served[i] - unreceivable[i] - got, it.name.as_str())
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    lost.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!(
        "{what}: ok; {} kept, {} lost {lost:?}, {} unreceivable",
        kept.values().map(|s| span_len(s)).sum::<u64>(),
        lost.iter().map(|(n, _)| n).sum::<u64>(),
        unreceivable.iter().sum::<u64>()
    );
}

/// After the final run: every file byte-exact, no `.part` left, and at most
/// [`MAX_RATIO`] x the list's size served over the whole test.
fn check_final(server: &TestServer, sb: &Sandbox, items: &[Item], unreceivable: u64, ctx: &str) {
    for it in items {
        let got = std::fs::read(sb.dl(&it.name))
            .unwrap_or_else(|e| panic!("{ctx} read {}: {e}", it.name));
        assert_same_bytes(&got, &it.data, &format!("{ctx} final {}", it.name));
    }
    let parts = sb.find(".part");
    assert!(parts.is_empty(), "{ctx} leftover .part files: {parts:?}");
    let total: u64 = items.iter().map(|it| it.data.len() as u64).sum();
    let served = served_by_file(server, items);
    let sum: u64 = served.iter().sum();
    let ratio = sum as f64 / total as f64;
    eprintln!(
        "{ctx} done: {sum} bytes served for {total}, ratio {ratio:.4} \
         ({unreceivable} of them pushed into stopped runs' connections)"
    );
    let resent: Vec<String> = items
        .iter()
        .zip(&served)
        .filter(|(it, &sent)| sent > it.data.len() as u64)
        .map(|(it, sent)| format!("{} {sent} of {}", it.name, it.data.len()))
        .collect();
    assert!(
        ratio <= MAX_RATIO,
        "{ctx} served {sum} bytes for {total}: ratio {ratio:.4} > {MAX_RATIO}; \
         sent more than once: {resent:?}"
    );
}

/// A rerun never asks again for bytes the stop before it left kept: every
/// GET since the last look (`seen` per item) must miss `kept`.
fn check_no_refetch(
    server: &TestServer,
    items: &[Item],
    kept: &HashMap<&str, Vec<Span>>,
    seen: &mut [usize],
    what: &str,
) {
    for (it, seen) in items.iter().zip(seen) {
        let gets = server.gets(&format!("/{}", it.name));
        let old = kept.get(it.name.as_str()).map_or(&[][..], Vec::as_slice);
        for req in &gets[*seen..] {
            let (a, b) = asked(req, it.data.len() as u64);
            let again = old.iter().find(|&&(ka, kb)| a < kb && ka < b);
            assert!(
                again.is_none(),
                "{what}: {} asked for bytes {a}..{b} again, though {again:?} were kept \
                 at the previous stop: {req:?}",
                it.name
            );
        }
        *seen = gets.len();
    }
}

/// Body bytes served so far of each item, in list order.
fn served_by_file(server: &TestServer, items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .map(|it| server.bytes_served(&format!("/{}", it.name)))
        .collect()
}

/// A byte range `[start, end)` of one file.
type Span = (u64, u64);

/// Bytes in `spans`.
fn span_len(spans: &[Span]) -> u64 {
    spans.iter().map(|(a, b)| b - a).sum()
}

/// The byte range a GET asked for, `[start, end)` clipped to `len`: the
/// whole file without a Range header.
fn asked(req: &LoggedRequest, len: u64) -> Span {
    let Some(spec) = req
        .header("range")
        .and_then(|r| r.trim().strip_prefix("bytes="))
    else {
        return (0, len);
    };
    let (first, last) = spec.split_once('-').unwrap_or((spec, ""));
    let start = first.trim().parse().unwrap_or(0);
    let end = last.trim().parse::<u64>().map_or(len, |l| (l + 1).min(len));
    (start, end)
}

/// Stops the run as `stop` says and waits for it to exit.
fn finish(mut running: Running, stop: Stop) -> Outcome {
    match stop {
        Stop::Kill => running.kill9(),
        Stop::Interrupt => running.signal("INT"),
    }
    running.wait(WAIT)
}

/// Checks what a stopped run left in `dir` against the origin's bodies;
/// returns the byte ranges of each file a rerun would keep.
fn check_state<'a>(
    dir: &Path,
    bodies: &HashMap<&'a str, &[u8]>,
    what: &str,
) -> HashMap<&'a str, Vec<Span>> {
    let mut kept = HashMap::new();
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
            let (&key, expected) = bodies
                .get_key_value(stem)
                .unwrap_or_else(|| panic!("{what}: stray file {name}"));
            let spans = check_part(
                records.get(stem),
                &on_disk,
                expected,
                &format!("{what}: {name}"),
            );
            kept.insert(key, spans);
        } else {
            let (&key, expected) = bodies
                .get_key_value(name.as_str())
                .unwrap_or_else(|| panic!("{what}: stray file {name}"));
            assert_same_bytes(&on_disk, expected, &format!("{what}: final-named {name}"));
            kept.insert(key, vec![(0, on_disk.len() as u64)]);
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
    kept
}

/// The bytes a rerun would keep of a `.part` must be the origin's: within
/// each split range the written prefix, else the prefix haul resumes from
/// (the whole file while the boot is the same; the tests never reboot).
/// Returns the byte ranges of it a rerun keeps.
fn check_part(rec: Option<&Value>, on_disk: &[u8], expected: &[u8], what: &str) -> Vec<Span> {
    let Some(rec) = rec else {
        // A .part without a record is never resumed from.
        return Vec::new();
    };
    if rec["state"] == "done" {
        // Killed between recording done and the rename: the file was synced
        // before the record, so it is complete; the rerun only renames it.
        assert_same_bytes(on_disk, expected, &format!("{what} recorded as done"));
        return vec![(0, on_disk.len() as u64)];
    }
    if let Some(segments) = rec["segments"].as_array() {
        let mut kept = Vec::new();
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
            if written > 0 {
                kept.push((start as u64, end as u64));
            }
        }
        return kept;
    }
    let validated = !rec["etag"].is_null() || !rec["last_modified"].is_null();
    if !validated {
        return Vec::new();
    }
    let kept = if rec["boot_id"].is_null() {
        let done = rec["bytes_done"].as_u64().unwrap_or(0) as usize;
        done.min(on_disk.len())
    } else {
        on_disk.len()
    };
    if kept > expected.len() {
        return Vec::new();
    }
    assert_same_bytes(
        &on_disk[..kept],
        &expected[..kept],
        &format!("{what} resumable prefix ({kept} bytes, record {rec})"),
    );
    vec![(0, kept as u64)]
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
