//! Tests for `manifest`.
use super::*;

fn rec(path: &str, state: JobState, bytes_done: u64) -> JobRecord {
    JobRecord {
        state,
        bytes_done,
        ..JobRecord::pending(path.to_string(), format!("https://example.com/{path}"))
    }
}

/// What `m` holds for `path`, read from disk.
fn got(m: &Manifest, path: &str) -> Option<JobRecord> {
    m.get(path).expect("read a record")
}

fn line(r: &JobRecord) -> String {
    let mut s = serde_json::to_string(r).expect("a record serialises");
    s.push('\n');
    s
}

/// A `.haul/` directory with the given files, as a crash could leave it.
fn out_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join(HAUL);
    fs::create_dir(&dir).expect("create .haul");
    for (name, body) in files {
        fs::write(dir.join(name), body).expect("write fixture file");
    }
    out
}

const HAUL: &str = super::super::HAUL_DIR_NAME;

fn haul_file(out: &tempfile::TempDir, name: &str) -> PathBuf {
    out.path().join(HAUL).join(name)
}

/// In path order, as the golden snapshot lists them: a snapshot keeps the
/// order records were registered in (see `snapshot_keeps_registration_order`).
fn golden_records() -> Vec<JobRecord> {
    vec![
        JobRecord {
            url: "https://example.com/b.bin?x=1&y=2".into(),
            total: Some(1024),
            etag: Some("\"abc\"".into()),
            last_modified: Some("Tue, 15 Nov 1994 08:12:31 GMT".into()),
            attempts: 1,
            sha256: Some("5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef".into()),
            boot_id: Some("2f5d53fd-7084-4be2-b30d-40d85dc32b1a".into()),
            ..rec("a/b.bin", JobState::Done, 1024)
        },
        JobRecord {
            total: Some(1_048_576),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            attempts: 2,
            last_error: Some("connection reset by peer".into()),
            boot_id: Some("2f5d53fd-7084-4be2-b30d-40d85dc32b1a".into()),
            ..rec("big.iso", JobState::Partial, 4096)
        },
        JobRecord {
            url: "https://user:secret@example.org/n.txt".into(),
            ..rec("notes/ünïcode.txt", JobState::Pending, 0)
        },
        JobRecord {
            path: "z.tar".into(),
            state: JobState::Failed,
            attempts: 5,
            last_error: Some("http status 404 Not Found".into()),
            ..rec("z.tar", JobState::Failed, 0)
        },
    ]
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/manifests")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn records_survive_reopen_without_close() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all(golden_records()).expect("insert");
    let mut big = got(&m, "big.iso").expect("registered");
    big.bytes_done = 8192;
    m.update(big.clone()).expect("update");
    m.sync().expect("sync");
    drop(m); // as after a kill: no close, no compaction

    let m = Manifest::open(out.path()).expect("reopen");
    assert_eq!(m.len(), 4);
    assert_eq!(got(&m, "big.iso"), Some(big.clone()));
    m.close().expect("close");

    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    let mut want = golden_records();
    want.retain(|r| r.path != "big.iso");
    want.push(big);
    want.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(loaded, want);
}

#[test]
fn journal_replays_later_record_over_earlier() {
    let journal = [
        line(&rec("a", JobState::Partial, 10)),
        line(&rec("b", JobState::Pending, 0)),
        line(&rec("a", JobState::Partial, 20)),
        line(&rec("a", JobState::Done, 30)),
        line(&rec("b", JobState::Failed, 0)),
    ]
    .concat();
    let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    assert_eq!(
        loaded,
        vec![rec("a", JobState::Done, 30), rec("b", JobState::Failed, 0)]
    );
}

#[test]
fn torn_last_journal_line_is_ignored_and_cut_off_on_open() {
    let whole = line(&rec("a", JobState::Partial, 20));
    for torn in [&whole[..whole.len() - 1], &whole[..7], "\0\0\0\0"] {
        let journal = format!("{}{torn}", line(&rec("a", JobState::Partial, 10)));
        let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded, vec![rec("a", JobState::Partial, 10)]);

        let mut m = Manifest::open(out.path()).expect("open");
        assert_eq!(
            fs::read(haul_file(&out, JOURNAL_NAME)).expect("read").len(),
            0
        );
        // Had the torn tail stayed, this line would follow it and be corrupt.
        m.update(rec("b", JobState::Pending, 0)).expect("update");
        drop(m);
        let m = Manifest::open(out.path()).expect("reopen");
        assert_eq!(got(&m, "a"), Some(rec("a", JobState::Partial, 10)));
        assert_eq!(got(&m, "b"), Some(rec("b", JobState::Pending, 0)));
    }
}

#[test]
fn corrupt_middle_journal_line_names_file_and_line_and_is_left_alone() {
    let journal = format!(
        "{}{{\"path\":\"b\",\"url\":\n{}",
        line(&rec("a", JobState::Partial, 10)),
        line(&rec("a", JobState::Partial, 20)),
    );
    let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
    let err = Manifest::open(out.path()).expect_err("corrupt line");
    let msg = err.to_string();
    assert!(
        msg.ends_with("journal.jsonl:2: corrupt manifest journal record"),
        "{msg}"
    );
    assert!(matches!(err, ManifestError::CorruptJournal { line: 2, .. }));
    assert!(std::error::Error::source(&err).is_some());
    let err = Manifest::load_readonly(out.path()).expect_err("corrupt line");
    assert!(matches!(err, ManifestError::CorruptJournal { line: 2, .. }));
    assert_eq!(
        fs::read(haul_file(&out, JOURNAL_NAME)).expect("read"),
        journal.as_bytes()
    );
}

#[test]
fn corrupt_snapshot_is_an_error_and_left_untouched() {
    let corrupt = fixture("corrupt.json");
    let out = out_with(&[(SNAPSHOT_NAME, &corrupt)]);
    let err = Manifest::open(out.path()).expect_err("corrupt snapshot");
    let msg = err.to_string();
    assert!(msg.starts_with("manifest "), "{msg}");
    assert!(msg.ends_with("manifest.json is corrupt"), "{msg}");
    assert!(matches!(err, ManifestError::CorruptSnapshot { .. }));
    assert!(matches!(
        Manifest::load_readonly(out.path()),
        Err(ManifestError::CorruptSnapshot { .. })
    ));
    assert_eq!(
        fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read"),
        corrupt
    );
}

#[test]
fn unknown_snapshot_version_is_refused() {
    let body = b"{\"version\": 99, \"jobs\": [{\"shape\": \"from the future\"}]}\n";
    let out = out_with(&[(SNAPSHOT_NAME, body)]);
    let err = Manifest::open(out.path()).expect_err("version 99");
    assert!(
        matches!(
            err,
            ManifestError::UnknownVersion {
                found: 99,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("format version 99"), "{err}");
    assert_eq!(
        fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read"),
        body
    );
}

#[test]
fn a_snapshot_with_jobs_before_its_version_is_corrupt_not_empty() {
    let body = b"{\"jobs\": [], \"version\": 1}\n";
    let out = out_with(&[(SNAPSHOT_NAME, body)]);
    let err = Manifest::open(out.path()).expect_err("jobs before version");
    assert!(
        matches!(err, ManifestError::CorruptSnapshot { .. }),
        "{err:?}"
    );
}

/// A manifest in a new directory holding `f000`..`f099`, pending.
fn hundred_pending() -> (tempfile::TempDir, Manifest) {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all((0..100).map(|i| rec(&format!("f{i:03}"), JobState::Pending, 0)))
        .expect("insert");
    (out, m)
}

#[test]
fn a_compaction_is_foretold_by_the_records_about_to_be_written() {
    let (_out, mut m) = hundred_pending();
    let mut foretold = 0;
    for n in 0..10_000u64 {
        let before = m.journal_lines();
        let predicted = m.may_compact_within(1);
        m.update(rec(&format!("f{:03}", n % 100), JobState::Partial, n))
            .expect("update");
        let compacted = m.journal_lines() <= before;
        assert_eq!(predicted, compacted, "update {n}, {before} lines before");
        foretold += usize::from(predicted);
    }
    assert!(foretold > 0, "the loop compacted");
    // Staged records count as written.
    m.stage(rec("f000", JobState::Partial, 1)).expect("stage");
    let left = MIN_COMPACT_LINES - m.journal_lines() - 1;
    assert!(!m.may_compact_within(left));
    assert!(m.may_compact_within(left + 1));
}

#[test]
fn compaction_keeps_the_journal_bounded() {
    let (out, mut m) = hundred_pending();
    let threshold = MIN_COMPACT_LINES.max(2 * m.len());
    let mut compactions = 0;
    let mut last = 0;
    for n in 0..10_000u64 {
        let path = format!("f{:03}", n % 100);
        m.update(rec(&path, JobState::Partial, n)).expect("update");
        let lines = m.journal_lines();
        assert!(lines <= threshold, "journal holds {lines} lines");
        if lines < last {
            compactions += 1;
        }
        last = lines;
        if n % 997 == 0 {
            let on_disk = fs::read(haul_file(&out, JOURNAL_NAME)).expect("read");
            let count = on_disk.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(count, lines);
        }
    }
    assert_eq!(compactions, 10_000 / (threshold + 1));
    drop(m);
    let m = Manifest::open(out.path()).expect("reopen");
    assert_eq!(m.len(), 100);
    assert_eq!(got(&m, "f099"), Some(rec("f099", JobState::Partial, 9_999)));
    assert_eq!(got(&m, "f000"), Some(rec("f000", JobState::Partial, 9_900)));
}

#[test]
fn compaction_writes_the_golden_snapshot() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all(golden_records()).expect("insert");
    m.close().expect("close");
    let written = fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read");
    let golden = fixture("golden.json");
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&golden)
    );
}

#[test]
fn golden_snapshot_loads_sorted_by_path() {
    let out = out_with(&[(SNAPSHOT_NAME, &fixture("golden.json"))]);
    let mut want = golden_records();
    want.sort_by(|a, b| a.path.cmp(&b.path));
    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    assert_eq!(loaded, want);
    let mut m = Manifest::open(out.path()).expect("open");
    assert_eq!(m.records(), want);
}

#[test]
fn parse_state_reads_what_load_readonly_reads_from_files() {
    let snapshot = fixture("golden.json");
    let update = rec("big.iso", JobState::Done, 1_048_576);
    let journal = line(&update);
    let out = out_with(&[
        (SNAPSHOT_NAME, &snapshot),
        (JOURNAL_NAME, journal.as_bytes()),
    ]);
    let from_files = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    let from_bytes = parse_state(Some(&snapshot), journal.as_bytes()).expect("parses");
    assert_eq!(from_bytes, from_files);
    assert!(from_bytes.contains(&update));
}

#[test]
fn parse_state_names_the_file_and_line_at_fault() {
    let good = line(&rec("a", JobState::Pending, 0));
    let journal = format!("{good}{{not json\n{good}");
    let err = parse_state(None, journal.as_bytes()).expect_err("corrupt journal");
    assert_eq!(
        err.to_string(),
        "journal.jsonl:2: corrupt manifest journal record"
    );
    let err = parse_state(Some(b"{\"version\": 1, \"jobs\": [}"), b"").expect_err("corrupt");
    assert_eq!(err.to_string(), "manifest manifest.json is corrupt");
    assert_eq!(parse_state(None, b"").expect("empty loads"), vec![]);
}

#[test]
fn empty_manifest_is_written_and_loads() {
    let out = tempfile::tempdir().expect("temp dir");
    Manifest::open(out.path())
        .expect("open")
        .close()
        .expect("close");
    let snapshot = fs::read_to_string(haul_file(&out, SNAPSHOT_NAME)).expect("read");
    assert_eq!(snapshot, "{\n  \"version\": 1,\n  \"jobs\": []\n}\n");
    assert_eq!(
        Manifest::load_readonly(out.path()).expect("load"),
        Some(vec![])
    );
}

#[test]
fn leftover_tmp_from_a_killed_compaction_is_ignored_and_removed() {
    let snapshot = fixture("golden.json");
    let journal = line(&rec("big.iso", JobState::Partial, 9000));
    let out = out_with(&[
        (SNAPSHOT_NAME, &snapshot),
        (SNAPSHOT_TMP_NAME, b"{\"version\": 1, \"jobs\": [{\"pa"),
        (JOURNAL_NAME, journal.as_bytes()),
    ]);
    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    assert_eq!(loaded.len(), 4);
    assert!(
        haul_file(&out, SNAPSHOT_TMP_NAME).exists(),
        "read-only load removed it"
    );

    let m = Manifest::open(out.path()).expect("open");
    assert!(!haul_file(&out, SNAPSHOT_TMP_NAME).exists());
    assert_eq!(got(&m, "big.iso").map(|r| r.bytes_done), Some(9000));
    assert_eq!(m.len(), 4);
}

#[test]
fn journal_replayed_over_an_already_compacted_snapshot_is_idempotent() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all(golden_records()).expect("insert");
    m.update(rec("big.iso", JobState::Partial, 10))
        .expect("update");
    m.update(rec("new", JobState::Pending, 0)).expect("update");
    m.update(rec("big.iso", JobState::Done, 20))
        .expect("update");
    m.sync().expect("sync");
    let journal = fs::read(haul_file(&out, JOURNAL_NAME)).expect("read");
    let want: Vec<JobRecord> = m.records();
    m.compact().expect("compact");
    drop(m);
    // A kill after the rename, before the truncation.
    fs::write(haul_file(&out, JOURNAL_NAME), &journal).expect("restore journal");

    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    assert_eq!(loaded, want);
    let mut m = Manifest::open(out.path()).expect("open");
    assert_eq!(m.records(), want);
}

#[test]
fn load_readonly_creates_and_changes_nothing() {
    let out = tempfile::tempdir().expect("temp dir");
    assert_eq!(Manifest::load_readonly(out.path()).expect("load"), None);
    assert!(!out.path().join(HAUL).exists());

    let journal = line(&rec("a", JobState::Partial, 10));
    let out = out_with(&[(JOURNAL_NAME, journal.as_bytes())]);
    let loaded = Manifest::load_readonly(out.path()).expect("load");
    assert_eq!(loaded, Some(vec![rec("a", JobState::Partial, 10)]));
    assert_eq!(
        fs::read(haul_file(&out, JOURNAL_NAME)).expect("read"),
        journal.as_bytes()
    );
    assert!(!haul_file(&out, SNAPSHOT_NAME).exists());
}

const CRASH_CHILD_ENV: &str = "HAUL_TEST_MANIFEST_CRASH_DIR";
const CRASH_TEST: &str = "store::manifest::tests::kill_at_any_point_leaves_a_loadable_manifest";

/// The child side of the kill test: updates (and now and then syncs and
/// reports) until it is killed, or gives up after a bound so that a lost
/// parent cannot leave it running. It reports to the parent on stdout.
#[allow(clippy::print_stdout)]
fn crash_child(out: &Path) {
    let mut m = Manifest::open(out).expect("child open");
    let start = got(&m, "hot").map_or(0, |r| r.bytes_done);
    for n in start + 1..start + 2_000_000 {
        m.update(rec("hot", JobState::Partial, n))
            .expect("child update");
        m.update(rec(&format!("f{}", n % 50), JobState::Partial, n))
            .expect("child update");
        if n % 1000 == 0 {
            m.sync().expect("child sync");
            println!("synced {n}");
        }
    }
}

// A real SIGKILL (TerminateProcess on Windows) of a process hammering the
// manifest, at points that move from round to round: each must reopen
// cleanly with every reported update kept.
#[test]
fn kill_at_any_point_leaves_a_loadable_manifest() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        crash_child(Path::new(&dir));
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary path");
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_ENV, out.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reports = io::BufReader::new(stdout)
            .lines()
            .map(|l| l.expect("child output"))
            .filter_map(|l| {
                l.strip_prefix("synced ")
                    .and_then(|n| n.parse::<u64>().ok())
            });
        let mut synced = 0;
        for _ in 0..=round * 2 {
            synced = reports.next().expect("child reports progress");
        }
        child.kill().expect("kill child");
        child.wait().expect("reap child");

        let m = Manifest::open(out.path()).expect("loadable after a kill");
        let hot = got(&m, "hot").expect("hot record").bytes_done;
        assert!(hot >= synced, "round {round}: {hot} < {synced}");
        assert!(m.len() <= 51);
    }
}

#[cfg(unix)]
#[test]
fn manifest_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all(golden_records()).expect("insert");
    let mode = |name: &str| {
        fs::metadata(haul_file(&out, name))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(SNAPSHOT_NAME), 0o600);
    assert_eq!(mode(JOURNAL_NAME), 0o600);
    let dir_mode = fs::metadata(m.dir()).expect("stat").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn boot_id_is_trimmed_when_known() {
    if let Some(id) = boot_id() {
        assert!(!id.is_empty());
        assert_eq!(id.trim(), id);
    }
    #[cfg(target_os = "linux")]
    assert!(boot_id().is_some());
}

mod properties {
    //! Properties of the manifest parser over generated bytes and records: a
    //! hostile or damaged `.haul/` is loaded or refused, never a panic, and
    //! what haul writes reads back as it was.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn record() -> impl Strategy<Value = JobRecord> {
        let state = prop_oneof![
            Just(JobState::Pending),
            Just(JobState::Partial),
            Just(JobState::Done),
            Just(JobState::Failed),
        ];
        let segment = (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(start, end, written, synced)| Segment {
                start,
                end,
                written,
                synced,
            },
        );
        (
            // Paths as haul writes them: a loaded path must parse as a RelPath.
            (
                "[a-z0-9._-]{0,3}[a-z0-9](/[a-z0-9_-]{1,4}){0,2}",
                any::<String>(),
                state,
                any::<u64>(),
            ),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<String>()),
                proptest::option::of(any::<String>()),
                any::<u32>(),
            ),
            (
                proptest::option::of(any::<String>()),
                proptest::option::of("[0-9a-f]{64}"),
                proptest::option::of(any::<String>()),
                proptest::option::of(prop::collection::vec(segment, 0..3)),
            ),
        )
            .prop_map(
                |(
                    (path, url, state, bytes_done),
                    (total, etag, last_modified, attempts),
                    (last_error, sha256, boot_id, segments),
                )| JobRecord {
                    path,
                    url,
                    state,
                    bytes_done,
                    total,
                    etag,
                    last_modified,
                    attempts,
                    last_error,
                    sha256,
                    boot_id,
                    segments,
                },
            )
    }

    proptest! {
        #[test]
        fn a_record_is_encoded_as_serde_encodes_it(rec in record()) {
            let mut line = Vec::new();
            encode::record(&rec, &mut line).expect("encode");
            let derived = serde_json::to_vec(&rec).expect("serialise");
            prop_assert_eq!(String::from_utf8_lossy(&line), String::from_utf8_lossy(&derived));
        }
    }

    fn snapshot_bytes(records: &[JobRecord]) -> Vec<u8> {
        let sorted: BTreeMap<&str, &JobRecord> =
            records.iter().map(|r| (r.path.as_str(), r)).collect();
        let mut out = SnapshotWriter::new(Vec::new()).expect("write to memory");
        for rec in sorted.into_values() {
            let body = serde_json::to_vec(rec).expect("a record serialises");
            out.record(&body).expect("write to memory");
        }
        out.finish().expect("write to memory")
    }

    /// What loading should give: the last record for each path, by path.
    fn last_per_path(records: &[JobRecord]) -> Vec<JobRecord> {
        let map: BTreeMap<String, JobRecord> = records
            .iter()
            .map(|r| (r.path.clone(), r.clone()))
            .collect();
        map.into_values().collect()
    }

    /// Records sorted by path, to compare with [`last_per_path`]: loading
    /// keeps registration order, which the journal may extend in any order.
    fn by_path(mut records: Vec<JobRecord>) -> Vec<JobRecord> {
        records.sort_by(|a, b| a.path.cmp(&b.path));
        records
    }

    /// The golden snapshot cut short, or with one byte replaced: the damage
    /// a bad disk or a hand edit does.
    fn damaged_golden() -> impl Strategy<Value = Vec<u8>> {
        let golden = fixture("golden.json");
        let len = golden.len();
        (0..len, any::<u8>(), any::<bool>()).prop_map(move |(at, byte, cut)| {
            let mut bytes = golden.clone();
            if cut {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            bytes
        })
    }

    proptest! {
        #[test]
        fn any_bytes_load_or_are_refused(
            snapshot in proptest::option::of(prop_oneof![
                damaged_golden(),
                any::<Vec<u8>>(),
                any::<String>().prop_map(String::into_bytes),
            ]),
            journal in any::<Vec<u8>>(),
        ) {
            if let Ok(records) = parse_state(snapshot.as_deref(), &journal) {
                // One record per path (in registration order, no longer sorted).
                let paths: std::collections::HashSet<&str> =
                    records.iter().map(|r| r.path.as_str()).collect();
                prop_assert_eq!(paths.len(), records.len());
            }
        }

        #[test]
        fn a_written_snapshot_reads_back(records in prop::collection::vec(record(), 0..6)) {
            let bytes = snapshot_bytes(&records);
            let loaded = parse_state(Some(&bytes), b"").expect("own snapshot loads");
            prop_assert_eq!(loaded, last_per_path(&records));
        }

        #[test]
        fn journal_lines_replay_over_the_snapshot_and_a_torn_tail_is_dropped(
            base in prop::collection::vec(record(), 0..4),
            updates in prop::collection::vec(record(), 1..6),
            torn in any::<prop::sample::Index>(),
        ) {
            let snapshot = snapshot_bytes(&base);
            let journal: String = updates.iter().map(line).collect();
            let all: Vec<JobRecord> = base.iter().chain(&updates).cloned().collect();
            let loaded = parse_state(Some(&snapshot), journal.as_bytes()).expect("loads");
            prop_assert_eq!(by_path(loaded), last_per_path(&all));

            // A kill mid-append leaves part of the last line: it is skipped.
            let last = line(updates.last().expect("at least one update"));
            let keep = journal.len() - last.len() + torn.index(last.len());
            let loaded = parse_state(Some(&snapshot), &journal.as_bytes()[..keep])
                .expect("a torn tail loads");
            prop_assert_eq!(by_path(loaded), last_per_path(&all[..all.len() - 1]));
        }
    }
}

#[test]
fn a_record_whose_path_leaves_the_directory_is_corrupt() {
    for bad in ["../escape", "/etc/passwd", "a/../../b", "bell\u{7}"] {
        let mut rec = rec("ok.bin", JobState::Done, 1);
        rec.path = bad.to_string();
        let mut line = serde_json::to_vec(&rec).expect("encode");
        line.push(b'\n');
        let err = parse_state(None, &line).expect_err(bad);
        assert!(err.to_string().contains("journal.jsonl"), "{bad}: {err}");
    }
}

#[test]
fn snapshot_keeps_registration_order() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    let mut order = golden_records();
    order.reverse();
    m.insert_all(order.clone()).expect("insert");
    m.update(rec("new", JobState::Pending, 0)).expect("update");
    m.update(rec("big.iso", JobState::Partial, 9))
        .expect("update");
    m.close().expect("close");
    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    let paths: Vec<&str> = loaded.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["z.tar", "notes/ünïcode.txt", "big.iso", "a/b.bin", "new"]
    );
    assert_eq!(loaded[2], rec("big.iso", JobState::Partial, 9));
}

/// Runs `f` with every path hashing to the same value on this thread.
fn with_one_hash<T>(f: impl FnOnce() -> T) -> T {
    index::FORCED_HASH.with(|h| h.set(Some(42)));
    let result = f();
    index::FORCED_HASH.with(|h| h.set(None));
    result
}

#[test]
fn records_staged_together_land_with_one_write_and_keep_their_paths_apart() {
    with_one_hash(|| {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all([rec("a", JobState::Pending, 0)])
            .expect("insert");
        let journal = haul_file(&out, JOURNAL_NAME);
        let before = fs::metadata(&journal).expect("journal").len();
        // One batch: a path twice, and paths sharing a's hash.
        for r in [
            rec("a", JobState::Partial, 1),
            rec("b", JobState::Pending, 0),
            rec("a", JobState::Done, 2),
            rec("c", JobState::Partial, 3),
        ] {
            m.stage(r).expect("stage");
        }
        assert_eq!(m.staged(), 4);
        assert_eq!(
            fs::metadata(&journal).expect("journal").len(),
            before,
            "staged, not written"
        );
        m.flush().expect("flush");
        assert_eq!(m.staged(), 0);
        let want = vec![
            rec("a", JobState::Done, 2),
            rec("b", JobState::Pending, 0),
            rec("c", JobState::Partial, 3),
        ];
        for r in &want {
            assert_eq!(got(&m, &r.path).as_ref(), Some(r));
        }
        assert_eq!(m.records(), want);
        m.sync().expect("sync");
        drop(m);
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded, want);
    });
}

#[test]
fn paths_with_the_same_hash_are_never_merged() {
    with_one_hash(|| {
        let out = tempfile::tempdir().expect("temp dir");
        let mut m = Manifest::open(out.path()).expect("open");
        m.insert_all([
            rec("a", JobState::Pending, 0),
            rec("b", JobState::Pending, 0),
        ])
        .expect("insert");
        m.update(rec("c", JobState::Partial, 3)).expect("update");
        m.update(rec("a", JobState::Partial, 1)).expect("update");
        m.update(rec("b", JobState::Done, 2)).expect("update");
        assert_eq!(m.len(), 3);
        assert_eq!(got(&m, "a"), Some(rec("a", JobState::Partial, 1)));
        assert_eq!(got(&m, "b"), Some(rec("b", JobState::Done, 2)));
        assert_eq!(got(&m, "c"), Some(rec("c", JobState::Partial, 3)));
        assert_eq!(got(&m, "d"), None, "a hash alone finds nothing");
        m.sync().expect("sync");
        drop(m);

        // Indexed again from the snapshot and journal, then compacted.
        let mut m = Manifest::open(out.path()).expect("reopen");
        let want = vec![
            rec("a", JobState::Partial, 1),
            rec("b", JobState::Done, 2),
            rec("c", JobState::Partial, 3),
        ];
        assert_eq!(m.records(), want);
        assert_eq!(got(&m, "b"), Some(rec("b", JobState::Done, 2)));
        m.close().expect("close");
        let loaded = Manifest::load_readonly(out.path())
            .expect("load")
            .expect("has a .haul");
        assert_eq!(loaded, want);
    });
}

#[test]
fn compaction_keeps_only_each_paths_latest_record() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut m = Manifest::open(out.path()).expect("open");
    m.insert_all((0..3).map(|i| rec(&format!("f{i}"), JobState::Pending, 0)))
        .expect("insert");
    for n in 1..=5 {
        m.update(rec("f1", JobState::Partial, n)).expect("update");
        m.update(rec("g", JobState::Partial, 10 * n))
            .expect("update");
    }
    m.compact().expect("compact");
    let snapshot = fs::read_to_string(haul_file(&out, SNAPSHOT_NAME)).expect("read");
    let want = [
        rec("f0", JobState::Pending, 0),
        rec("f1", JobState::Partial, 5),
        rec("f2", JobState::Pending, 0),
        rec("g", JobState::Partial, 50),
    ];
    let lines: Vec<String> = want
        .iter()
        .map(|r| serde_json::to_string(r).expect("encode"))
        .collect();
    assert_eq!(
        snapshot,
        format!(
            "{{\n  \"version\": 1,\n  \"jobs\": [\n    {}\n  ]\n}}\n",
            lines.join(",\n    ")
        )
    );
    assert_eq!(
        fs::read(haul_file(&out, JOURNAL_NAME)).expect("read").len(),
        0
    );
    // The index now points into the new snapshot.
    assert_eq!(got(&m, "f1"), Some(rec("f1", JobState::Partial, 5)));
    m.update(rec("f2", JobState::Done, 7)).expect("update");
    assert_eq!(got(&m, "f2"), Some(rec("f2", JobState::Done, 7)));
    assert_eq!(m.records().len(), 4);
}

#[test]
fn a_snapshot_in_another_json_layout_loads_and_is_rewritten() {
    let records = [
        rec("b", JobState::Done, 1),
        rec("a", JobState::Partial, 2),
        rec("b", JobState::Failed, 3),
    ];
    let jobs = serde_json::to_string_pretty(&records).expect("encode");
    let pretty = format!("{{\"version\": 1,\n\"jobs\": {jobs}}}").into_bytes();
    let out = out_with(&[(SNAPSHOT_NAME, &pretty)]);
    // As a hand-edited list would: a later duplicate wins.
    let want = vec![
        rec("b", JobState::Failed, 3),
        rec("a", JobState::Partial, 2),
    ];
    let loaded = Manifest::load_readonly(out.path())
        .expect("load")
        .expect("has a .haul");
    assert_eq!(loaded, want);
    assert_eq!(
        fs::read(haul_file(&out, SNAPSHOT_NAME)).expect("read"),
        pretty
    );

    let mut m = Manifest::open(out.path()).expect("open");
    assert_eq!(m.records(), want);
    let written = fs::read_to_string(haul_file(&out, SNAPSHOT_NAME)).expect("read");
    assert!(
        written.starts_with("{\n  \"version\": 1,\n  \"jobs\": [\n    {\"path\":\"b\""),
        "{written}"
    );
    assert_eq!(got(&m, "a"), Some(rec("a", JobState::Partial, 2)));
}

/// Not a check: what the manifest holds in memory per record during a run,
/// from the growth of the resident set while `n` jobs are registered and
/// each is then recorded done (`cargo test --lib manifest_memory --
/// --ignored --nocapture`).
#[test]
#[ignore]
#[allow(clippy::print_stdout)]
fn manifest_memory_per_record() {
    fn rss_kib() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }
    for n in [50_000u64, 200_000] {
        let out = tempfile::tempdir().expect("temp dir");
        let before = rss_kib();
        let mut m = Manifest::open(out.path()).expect("open");
        let path = |i: u64| format!("d/{:04}/f{i:07}.bin", i / 1000);
        let url = |p: &str| format!("http://127.0.0.1:18480/{p}");
        m.insert_all((0..n).map(|i| JobRecord::pending(path(i), url(&path(i)))))
            .expect("insert");
        for i in 0..n {
            let p = path(i);
            m.update(JobRecord {
                state: JobState::Done,
                bytes_done: 1024,
                total: Some(1024),
                sha256: Some(format!("{:064x}", i)),
                boot_id: boot_id(),
                ..JobRecord::pending(p.clone(), url(&p))
            })
            .expect("update");
        }
        let grown = rss_kib().saturating_sub(before);
        println!(
            "{n} records: resident set grew {grown} KiB, {} B per record",
            grown * 1024 / n
        );
        assert_eq!(m.len() as u64, n);
        m.close().expect("close");
    }
}

#[test]
fn a_done_record_wins_in_any_manifest_and_is_found_by_path_alone() {
    let out = tempfile::tempdir().expect("temp dir");
    let stray = Shard::new(0, 1);
    let (zero, one) = (Shard::new(0, 2), Shard::new(1, 2));
    let write = |shard: Option<Shard>, recs: Vec<JobRecord>| {
        let mut m = Manifest::open_shard(out.path(), shard).expect("open");
        for r in recs {
            m.update(r).expect("update");
        }
        m.close().expect("close");
    };
    // The stray failed a and finished c; the real shards finished a and
    // left c pending.
    write(
        stray,
        vec![rec("a", JobState::Failed, 0), rec("c", JobState::Done, 3)],
    );
    write(zero, vec![rec("a", JobState::Done, 5)]);
    write(
        one,
        vec![
            rec("c", JobState::Pending, 0),
            rec("d", JobState::Failed, 0),
        ],
    );

    let order = [stray, zero, one];
    let (mut records, _) = Records::open_in_order_with(out.path(), order, |_| {})
        .expect("open")
        .expect("some");
    let mut states = Vec::new();
    records
        .for_each(|r| states.push((r.path, r.state)))
        .expect("walk");
    states.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        states,
        [
            ("a".to_string(), JobState::Done),
            ("c".to_string(), JobState::Done),
            ("d".to_string(), JobState::Failed),
        ]
    );
    let found = |path| {
        records
            .find_done(path)
            .expect("look up")
            .map(|r| r.bytes_done)
    };
    assert_eq!(found("a"), Some(5));
    assert_eq!(found("c"), Some(3));
    assert_eq!(found("d"), None);
    assert_eq!(found("e"), None);
}
