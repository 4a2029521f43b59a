//! The `--json` renderer's tests: the progress throttle, and the lines a
//! run's events give, byte for byte where the field order matters.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::*;

#[test]
fn throttle_lets_the_first_position_through_then_two_a_second() {
    let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // Ten reports a second for three seconds, as the engine sends them.
    let shown: Vec<u64> = (0..30u64)
        .filter(|&i| gate.offer(7, i, t0 + ms(100 * i)))
        .collect();
    assert_eq!(shown, vec![0, 5, 10, 15, 20, 25]);
}

#[test]
fn throttle_keeps_jobs_apart() {
    let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
    let t0 = Instant::now();
    assert!(gate.offer(1, 10, t0));
    assert!(gate.offer(2, 10, t0));
    assert!(!gate.offer(1, 20, t0 + Duration::from_millis(10)));
}

#[test]
fn throttle_shows_the_final_position_only_when_the_last_line_missed_it() {
    let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
    let t0 = Instant::now();
    assert!(gate.offer(1, 100, t0));
    assert!(!gate.offer(1, 900, t0 + Duration::from_millis(100)));
    assert_eq!(gate.end(1, 1000), Some(1000));
    // Ended jobs are forgotten.
    assert_eq!(gate.end(1, 1000), None);

    assert!(gate.offer(2, 1000, t0));
    assert_eq!(gate.end(2, 1000), None, "already shown");
    assert_eq!(gate.end(3, 1000), None, "a job without progress lines");
}

#[test]
fn throttle_restart_lets_the_next_position_through() {
    let mut gate = ProgressThrottle::new(PROGRESS_INTERVAL);
    let t0 = Instant::now();
    assert!(gate.offer(1, 500, t0));
    gate.reset(1);
    assert!(gate.offer(1, 10, t0 + Duration::from_millis(1)));
}

/// A sink tests can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }
}

fn render(events: &[Event], report: &Report) -> Vec<Value> {
    let sink = Captured::default();
    let mut json = Json::new(Box::new(sink.clone()));
    for ev in events {
        json.event(ev);
    }
    json.finish(report, &HookTally::default());
    sink.lines()
}

#[test]
fn every_line_starts_with_event_and_time() {
    let lines = render(
        &[Event::RunStarted {
            jobs: 1,
            known_bytes: 0,
        }],
        &Report::default(),
    );
    for line in &lines {
        let keys: Vec<&String> = line.as_object().expect("an object").keys().collect();
        assert!(line["time"].as_f64().is_some_and(|t| t > 1.5e9), "{line}");
        assert!(keys.iter().any(|k| *k == "event"), "{line}");
    }
    assert_eq!(lines[0]["event"], "run_started");
    assert_eq!(lines[1]["event"], "summary");
}

#[test]
fn finished_and_failed_carry_the_url_from_queued() {
    let lines = render(
        &[
            Event::Queued {
                id: 0,
                path: "a.bin".into(),
                url: "http://h/a.bin".parse().expect("a URL"),
            },
            Event::Queued {
                id: 1,
                path: "b.bin".into(),
                url: "http://h/b.bin".parse().expect("a URL"),
            },
            Event::Finished {
                id: 0,
                path: "a.bin".into(),
                bytes: 3,
                sha256: "ab".into(),
            },
            Event::Failed {
                id: 1,
                path: "b.bin".into(),
                kind: FailureKind::Internal,
                error: "boom".into(),
            },
        ],
        &Report::default(),
    );
    let finished = &lines[2];
    assert_eq!(finished["event"], "finished");
    assert_eq!(finished["url"], "http://h/a.bin");
    assert_eq!(finished["bytes"], 3);
    assert_eq!(finished["sha256"], "ab");
    let failed = &lines[3];
    assert_eq!(failed["event"], "failed");
    assert_eq!(failed["path"], "b.bin");
    assert_eq!(failed["url"], "http://h/b.bin");
    assert_eq!(failed["kind"], "internal");
    assert_eq!(failed["error"], "boom");
}

#[test]
fn a_finished_job_with_progress_lines_ends_them_at_its_size() {
    let lines = render(
        &[
            Event::Started {
                id: 0,
                path: "a.bin".into(),
                offset: 0,
                total: Some(100),
            },
            Event::Progress { id: 0, pos: 10 },
            Event::Progress { id: 0, pos: 60 },
            Event::Finished {
                id: 0,
                path: "a.bin".into(),
                bytes: 100,
                sha256: "ab".into(),
            },
        ],
        &Report::default(),
    );
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        events,
        ["started", "progress", "progress", "finished", "summary"]
    );
    assert_eq!(lines[1]["pos"], 10);
    assert_eq!(lines[1]["total"], 100);
    assert_eq!(lines[1]["path"], "a.bin");
    assert_eq!(lines[2]["pos"], 100);
}

/// The raw lines of a render of `events` then `hooks`, `time` blanked.
fn raw(events: &[Event], hooks: &[HookDone]) -> Vec<String> {
    let sink = Captured::default();
    let mut json = Json::new(Box::new(sink.clone()));
    for ev in events {
        json.event(ev);
    }
    for done in hooks {
        json.hook(done);
    }
    let bytes = sink.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| {
            let at = l.find(r#""time":"#).map_or(0, |at| at + 7);
            let end = l[at..].find(',').map_or(l.len(), |e| at + e);
            format!("{}T{}", &l[..at], &l[end..])
        })
        .collect()
}

#[test]
fn a_mirror_switch_is_the_retrying_line_it_always_was() {
    let lines = raw(
        &[
            Event::MirrorSwitched {
                id: 3,
                path: "f.bin".into(),
                from: "http://a/f.bin".parse().expect("a URL"),
                to: "http://b/f.bin".parse().expect("a URL"),
                reason: "http://a/f.bin answered 404".into(),
                scope: crate::event::SwitchScope::Job { attempt: 2 },
            },
            Event::MirrorSwitched {
                id: 3,
                path: "f.bin".into(),
                from: "http://a/f.bin".parse().expect("a URL"),
                to: "http://b/f.bin".parse().expect("a URL"),
                reason: "timed out".into(),
                scope: crate::event::SwitchScope::Connection(5),
            },
        ],
        &[],
    );
    assert_eq!(
        lines,
        [
            r#"{"event":"retrying","time":T,"id":3,"path":"f.bin","attempt":2,"reason":"mirror http://a/f.bin failed: http://a/f.bin answered 404; trying http://b/f.bin","delay_secs":0.0,"capped_from_secs":null}"#,
            r#"{"event":"retrying","time":T,"id":3,"path":"f.bin","attempt":5,"reason":"dropped mirror for this file (timed out); connection 5 moves to http://b/f.bin","delay_secs":0.0,"capped_from_secs":null}"#,
        ]
    );
}

#[test]
fn events_written_whole_keep_the_schema_field_order() {
    let events = [
        Event::Retrying {
            id: 0,
            path: "a.bin".into(),
            attempt: 1,
            reason: "r".into(),
            delay: Duration::from_millis(50),
            capped_from: None,
        },
        Event::Restarted {
            id: 0,
            path: "a.bin".into(),
            reason: crate::event::RestartReason::WholeFile,
        },
    ];
    let hook = HookDone {
        id: 0,
        path: "a.bin".into(),
        status: None,
        error: Some("timed out".into()),
        stdout: "o".into(),
        stderr: String::new(),
        elapsed: Duration::from_millis(1250),
    };
    let lines = raw(&events, &[hook]);
    assert_eq!(
        lines,
        [
            r#"{"event":"retrying","time":T,"id":0,"path":"a.bin","attempt":1,"reason":"r","delay_secs":0.05,"capped_from_secs":null}"#,
            r#"{"event":"restarted","time":T,"id":0,"path":"a.bin","reason":"the server sent the whole file (range ignored or file changed)"}"#,
            r#"{"event":"hook","time":T,"id":0,"path":"a.bin","status":null,"error":"timed out","stdout":"o","stderr":"","elapsed_secs":1.25}"#,
        ]
    );
}

#[test]
fn retrying_and_summary_use_seconds() {
    let report = Report {
        done: 2,
        failed: 1,
        skipped: 3,
        interrupted: 0,
        bytes: 42,
        elapsed: Duration::from_millis(1500),
        cancelled: false,
        warnings: vec!["manifest not compacted".into()],
    };
    let lines = render(
        &[Event::Retrying {
            id: 0,
            path: "a.bin".into(),
            attempt: 1,
            reason: "http://h/a.bin answered 503".into(),
            delay: Duration::from_millis(50),
            capped_from: Some(Duration::from_secs(120)),
        }],
        &report,
    );
    assert_eq!(lines[0]["delay_secs"], 0.05);
    assert_eq!(lines[0]["capped_from_secs"], 120.0);
    assert_eq!(lines[0]["attempt"], 1);
    let summary = &lines[1];
    assert_eq!(summary["done"], 2);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["skipped"], 3);
    assert_eq!(summary["bytes"], 42);
    assert_eq!(summary["elapsed_secs"], 1.5);
    assert_eq!(summary["warnings"][0], "manifest not compacted");
}
