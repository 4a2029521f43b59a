#![allow(clippy::unwrap_used)]

use super::*;
use crate::event::{FailureKind, RestartReason};
use crate::ui::plain::tests::{report, script, Captured};

fn hidden() -> (Bars, Captured) {
    let err = Captured::default();
    let bars = Bars::with_target(ProgressDrawTarget::hidden(), Box::new(err.clone()));
    (bars, err)
}

/// A terminal that records what is written, so drawing code runs too.
#[derive(Debug, Clone, Default)]
struct FakeTerm(std::sync::Arc<std::sync::Mutex<String>>);

impl FakeTerm {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

impl indicatif::TermLike for FakeTerm {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        let mut text = self.0.lock().unwrap();
        text.push_str(s);
        text.push('\n');
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

fn on_term() -> (Bars, FakeTerm) {
    let term = FakeTerm::default();
    let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
    (Bars::with_target(target, Box::new(io::sink())), term)
}

fn started(id: JobId, total: u64) -> Event {
    Event::Started {
        id,
        path: format!("out/{id}.bin"),
        offset: 0,
        total: Some(total),
    }
}

fn finished(id: JobId, bytes: u64) -> Event {
    Event::Finished {
        id,
        path: format!("out/{id}.bin"),
        bytes,
        sha256: "00".into(),
    }
}

#[test]
fn templates_parse() {
    ProgressStyle::with_template(TOTAL_TEMPLATE).unwrap();
    ProgressStyle::with_template(JOB_TEMPLATE).unwrap();
    ProgressStyle::with_template(NOTE_TEMPLATE).unwrap();
}

#[test]
fn scripted_run_ends_with_summary() {
    let (mut bars, err) = hidden();
    for ev in script() {
        bars.event(&ev);
    }
    bars.finish(&report(), &HookTally::default());
    assert_eq!(
        err.text(),
        "1 done, 1 failed, 1 skipped, 1 interrupted, 3.0 KiB in 2.0s (1.5 KiB/s)\n"
    );
    assert!(bars.jobs.is_empty());
}

#[test]
fn survives_events_in_any_order() {
    let (hidden_bars, _err) = hidden();
    let (term_bars, _term) = on_term();
    for mut bars in [hidden_bars, term_bars] {
        any_order(&mut bars);
    }
}

fn any_order(bars: &mut Bars) {
    let id = 7;
    let events = [
        Event::Progress { id, pos: 50 },
        Event::Finished {
            id: 99,
            path: "ghost".into(),
            bytes: 10,
            sha256: "00".into(),
        },
        Event::Restarted {
            id: 8,
            path: "x.bin".into(),
            reason: RestartReason::WholeFile,
        },
        Event::Retrying {
            id: 9,
            path: "x.bin".into(),
            attempt: 3,
            reason: "r".into(),
            delay: Duration::MAX,
            capped_from: Some(Duration::MAX),
        },
        Event::Progress { id, pos: 10 },
        Event::Progress { id, pos: u64::MAX },
        Event::Started {
            id,
            path: String::new(),
            offset: u64::MAX,
            total: Some(1),
        },
        Event::Failed {
            id: 100,
            path: "x".into(),
            kind: FailureKind::Io,
            error: "e".into(),
        },
        Event::Interrupted {
            id: 101,
            path: "x".into(),
            pos: 1,
        },
        Event::Skipped {
            id,
            path: "x".into(),
            bytes: u64::MAX,
        },
        Event::RunStarted {
            jobs: 0,
            known_bytes: u64::MAX,
        },
        finished(id, 5),
        finished(id, 5),
        Event::Progress { id, pos: 1 },
    ];
    for ev in &events {
        bars.event(ev);
    }
    bars.finish(&Report::default(), &HookTally::default());
}

#[test]
fn shows_at_most_ten_bars_and_promotes_waiting_jobs() {
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 25,
        known_bytes: 0,
    });
    for id in 0..25 {
        bars.event(&started(id, 100));
    }
    assert_eq!(bars.shown, MAX_SHOWN);
    assert_eq!(bars.jobs.values().filter(|j| j.bar.is_some()).count(), 10);
    assert!(bars.jobs[&10].bar.is_none());
    assert_eq!(bars.length, 2500);

    bars.event(&finished(3, 100));
    assert_eq!(bars.shown, MAX_SHOWN);
    assert!(bars.jobs[&10].bar.is_some());
    assert!(bars.jobs[&11].bar.is_none());

    // A hidden job that ends frees no slot and is skipped when popped.
    bars.event(&finished(11, 100));
    bars.event(&finished(4, 100));
    assert!(bars.jobs[&12].bar.is_some());
    assert_eq!(bars.shown, MAX_SHOWN);

    for id in (0..25).filter(|id| ![3, 4, 11].contains(id)) {
        bars.event(&finished(id, 100));
    }
    assert_eq!(bars.shown, 0);
    assert_eq!(bars.completed, 25);
    assert_eq!(bars.on_disk, 2500);
}

#[test]
fn totals_count_resumed_prefix_but_not_as_speed() {
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 2,
        known_bytes: 1000,
    });
    bars.event(&Event::Started {
        id: 0,
        path: "a".into(),
        offset: 600,
        total: Some(1000),
    });
    bars.event(&Event::Progress { id: 0, pos: 700 });
    assert_eq!(bars.on_disk, 700);
    assert_eq!(bars.rate.bytes, 100);
    assert_eq!(bars.length, 1000);

    bars.event(&started(1, 500));
    assert_eq!(bars.length, 1500);
    bars.event(&Event::Restarted {
        id: 0,
        path: "x.bin".into(),
        reason: RestartReason::EtagChanged {
            ours: "\"a\"".into(),
            theirs: "\"b\"".into(),
        },
    });
    assert_eq!(bars.on_disk, 0);
    bars.event(&Event::Progress { id: 1, pos: 200 });
    bars.event(&Event::Failed {
        id: 1,
        path: "out/1.bin".into(),
        kind: FailureKind::HttpStatus,
        error: "gone".into(),
    });
    // The failed job's missing 300 bytes leave the total.
    assert_eq!(bars.length, 1200);
    assert_eq!(bars.on_disk, 200);
}

#[test]
fn retry_note_names_a_retry_after_cut_by_max_retry_wait() {
    let (mut bars, _err) = hidden();
    bars.event(&started(0, 10));
    bars.event(&Event::Retrying {
        id: 0,
        path: "x.bin".into(),
        attempt: 1,
        reason: "http://h/x.bin answered 503".into(),
        delay: Duration::from_secs(2),
        capped_from: Some(Duration::from_secs(3600)),
    });
    let bar = bars.jobs[&0].bar.clone().unwrap();
    assert_eq!(
        bar.message(),
        "503 Service Unavailable, retry 1 in 2.0s \
         (server asked 1h 00m 00s, capped by --max-retry-wait): http://h/x.bin"
    );
}

#[test]
fn retry_note_waits_for_the_next_start() {
    let (mut bars, _err) = hidden();
    bars.event(&started(0, 10));
    bars.event(&Event::Retrying {
        id: 0,
        path: "x.bin".into(),
        attempt: 2,
        reason: "timed out".into(),
        delay: Duration::from_millis(1500),
        capped_from: None,
    });
    let bar = bars.jobs[&0].bar.clone().unwrap();
    assert_eq!(bar.message(), "timed out, retry 2 in 1.5s");
    bars.event(&started(0, 10));
    assert_eq!(bar.message(), "");
}

fn retrying(id: JobId, reason: &str, delay: Duration) -> Event {
    Event::Retrying {
        id,
        path: format!("out/{id}.bin"),
        attempt: 1,
        reason: reason.into(),
        delay,
        capped_from: None,
    }
}

#[test]
fn retry_note_leads_with_the_cause_then_the_url() {
    let (mut bars, _err) = hidden();
    bars.event(&retrying(
        0,
        "cannot connect to http://h:1/x.bin: client error (Connect): \
         tcp connect error: Connection refused (os error 111)",
        Duration::from_secs(1),
    ));
    let bar = bars.jobs[&0].bar.clone().unwrap();
    assert_eq!(
        bar.message(),
        "connection refused, retry 1 in 1.0s: http://h:1/x.bin"
    );
}

#[test]
fn a_row_is_named_after_its_file_before_it_starts() {
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 2,
        known_bytes: 0,
    });
    for id in 0..2 {
        bars.event(&Event::Queued {
            id,
            path: format!("dir/queued-{id}.bin"),
            url: "http://h/x".parse().expect("a URL"),
        });
    }
    assert!(bars.jobs.is_empty(), "queued jobs take no row");
    // A first attempt can fail before `Started`.
    bars.event(&Event::Progress { id: 0, pos: 0 });
    assert_eq!(bars.jobs[&0].path, "dir/queued-0.bin");
    let bar = bars.jobs[&0].bar.clone().unwrap();
    assert_eq!(bar.prefix(), "dir/queued-0.bin");
    bars.event(&retrying(1, "r", Duration::from_secs(1)));
    assert_eq!(bars.jobs[&1].path, "out/1.bin");
    assert!(bars.queued.is_empty());
    bars.event(&finished(0, 1));
    bars.event(&finished(1, 1));
    assert!(bars.jobs.is_empty() && bars.queued.is_empty());
}

#[test]
fn the_total_has_no_length_until_a_size_is_known() {
    let (mut bars, _err) = hidden();
    assert_eq!(bars.total.length(), None);
    bars.event(&Event::RunStarted {
        jobs: 2,
        known_bytes: 0,
    });
    assert_eq!(bars.total.length(), None);
    bars.event(&retrying(0, "r", Duration::from_secs(1)));
    assert_eq!(bars.total.length(), None);
    bars.event(&started(1, 100));
    assert_eq!(bars.total.length(), Some(100));
    bars.event(&finished(1, 100));
    bars.event(&Event::Failed {
        id: 0,
        path: "out/0.bin".into(),
        kind: FailureKind::Connect,
        error: "e".into(),
    });
    assert_eq!(bars.total.length(), Some(100));

    // A failed job never told its size.
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 1,
        known_bytes: 0,
    });
    bars.event(&Event::Failed {
        id: 0,
        path: "out/0.bin".into(),
        kind: FailureKind::Connect,
        error: "e".into(),
    });
    assert_eq!(bars.total.length(), None);

    // Every job done with nothing to fetch: zero is the truth.
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 1,
        known_bytes: 0,
    });
    bars.event(&finished(0, 0));
    assert_eq!(bars.total.length(), Some(0));
}

#[test]
fn a_note_gives_way_to_progress_once_its_wait_is_over() {
    let (mut bars, _err) = hidden();
    bars.event(&started(0, 1000));
    bars.event(&retrying(0, "r", Duration::ZERO));
    let bar = bars.jobs[&0].bar.clone().unwrap();
    assert_eq!(bar.message(), "r, retry 1 now");
    // Other connections of a split file go on: within NOTE_MIN the
    // note stays.
    bars.event(&Event::Progress { id: 0, pos: 10 });
    assert_eq!(bar.message(), "r, retry 1 now");
    let job = bars.jobs.get_mut(&0).unwrap();
    job.note_until = Some(Instant::now());
    bars.event(&Event::Progress { id: 0, pos: 20 });
    assert!(bars.jobs[&0].note.is_none());
    assert!(bar.message().ends_with("/s"), "{}", bar.message());
}

#[test]
fn finished_and_failed_lines_print_above_the_bars() {
    let (mut bars, term) = on_term();
    for ev in script() {
        bars.event(&ev);
    }
    bars.finish(&report(), &HookTally::default());
    let text = term.text();
    assert!(text.contains("done   out/b.bin  2.0 KiB"), "{text}");
    assert!(
        text.contains("failed out/c.bin: http 404 for http://x/c.bin"),
        "{text}"
    );
    assert!(!text.contains("skip"), "{text}");
}

#[test]
fn short_path_keeps_the_file_name() {
    assert_eq!(short_path("out/a.bin"), "out/a.bin");
    let long = "downloads/very/deep/directory/file-name.iso";
    let short = short_path(long);
    assert_eq!(short.chars().count(), PATH_WIDTH);
    assert!(short.starts_with('…') && short.ends_with("file-name.iso"));
}

#[test]
fn a_job_streamed_in_after_the_start_counts_in_the_files() {
    let (mut bars, _err) = hidden();
    bars.event(&Event::RunStarted {
        jobs: 1,
        known_bytes: 0,
    });
    bars.event(&started(0, 10));
    bars.event(&finished(0, 10));
    assert_eq!(bars.total.prefix(), "1/1 files");
    bars.event(&Event::Queued {
        id: 1,
        path: "out/1.bin".into(),
        url: "http://h/1.bin".parse().expect("a URL"),
    });
    assert_eq!(bars.total.prefix(), "1/2 files");
    bars.event(&Event::Skipped {
        id: 2,
        path: "out/2.bin".into(),
        bytes: 5,
    });
    assert_eq!(bars.total.prefix(), "2/3 files");
}
