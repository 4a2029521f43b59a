//! The library's own tests: typed settings, checked jobs, and runs against
//! haul's server on loopback.

use super::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn a_job_with_mirrors_is_one_entry_named_by_its_first_url() -> Result<(), Error> {
    let job = Job::new("http://a/f.bin")?
        .mirror("http://b/other.bin")?
        .mirror("http://a/f.bin")?;
    let origin = Origin {
        source: Arc::from("library"),
        line: 1,
    };
    let entry = job.entry(origin);
    assert_eq!(entry.url.as_str(), "http://a/f.bin");
    let mirrors: Vec<&str> = entry.mirrors.iter().map(url::Url::as_str).collect();
    assert_eq!(mirrors, ["http://b/other.bin"]);
    Ok(())
}

/// Serves `files` from a temp dir with haul's own server; returns the
/// base URL and what keeps it alive.
async fn serve(files: &[(&str, Vec<u8>)]) -> (String, tempfile::TempDir, CancellationToken) {
    let root = tempfile::tempdir().expect("temp dir");
    for (name, body) in files {
        std::fs::write(root.path().join(name), body).expect("write a served file");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let opts = crate::serve::ServeOptions { limit_rate: None };
    tokio::spawn(crate::serve::serve(
        listener,
        root.path().to_path_buf(),
        opts,
        stop.clone(),
    ));
    (base, root, stop)
}

#[test]
fn a_library_run_gets_the_speed_floor_by_default_too() {
    let dl = Downloader::builder("x").build().expect("default settings");
    assert_eq!(dl.engine.lowest_speed, 1024);
    assert_eq!(dl.engine.speed_window, std::time::Duration::from_secs(30));
}

#[test]
fn typed_setters_reach_the_engine_and_the_last_one_wins() {
    let dl = Downloader::builder("x")
        .jobs(2)
        .jobs(3)
        .split(8)
        .max_per_host(8)
        .max_tries(2)
        .max_speed(1 << 20)
        .stall_timeout(Duration::from_secs(5))
        .overwrite(true)
        .build()
        .expect("valid settings");
    let e = &dl.engine;
    assert_eq!((e.jobs, e.split, e.max_per_host), (3, Some(8), 8));
    assert_eq!((e.retry.max_tries, e.max_speed), (2, Some(1 << 20)));
    assert_eq!(e.stall_timeout, Duration::from_secs(5));
    assert!(e.allow_overwrite);
    assert!(dl.warnings.is_empty(), "{:?}", dl.warnings);
}

#[test]
fn a_split_above_a_cap_warns_in_the_libraries_words() {
    let dl = Downloader::builder("x")
        .jobs(4)
        .split(8)
        .build()
        .expect("valid");
    assert_eq!(dl.warnings.len(), 1);
    assert!(dl.warnings[0].starts_with("split 8 is more than max_per_host 4"));
}

#[tokio::test]
async fn runs_jobs_with_options_and_reports_each_as_an_event() -> Result<(), Error> {
    let good = vec![7u8; 100_000];
    let (base, _root, stop) = serve(&[("a.bin", good.clone()), ("b.bin", vec![1; 10])]).await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut dl = Downloader::builder(out.path())
        .retry_wait(Duration::from_millis(50))
        .jobs(2)
        .build()?;
    let sha = hex::encode(Sha256::digest(&good));
    dl.add(
        Job::new(&format!("{base}/a.bin"))?
            .out("sub/a.bin")?
            .sha256_hex(&sha)?,
    );
    dl.add(Job::new(&format!("{base}/b.bin"))?.sha256([0; 32]));

    let (mut events, run) = dl.spawn();
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let report = run.await.expect("run task")?;
    stop.cancel();

    assert_eq!((report.done, report.failed), (1, 1), "{seen:?}");
    let finished = seen.iter().any(|e| {
        matches!(e, Event::Finished { path, sha256, .. } if path == "sub/a.bin" && *sha256 == sha)
    });
    assert!(finished, "{seen:?}");
    let failed = seen.iter().any(|e| {
        matches!(e, Event::Failed { path, error, .. } if path == "b.bin" && error.contains("expected"))
    });
    assert!(failed, "{seen:?}");
    assert_eq!(std::fs::read(out.path().join("sub/a.bin")).ok(), Some(good));
    assert!(!out.path().join("b.bin").exists());
    Ok(())
}

#[tokio::test]
async fn rejects_bad_settings_and_bad_jobs_without_naming_flags() {
    let zero = Downloader::builder("x").jobs(0).build().err();
    let msg = zero.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(msg, "jobs must be at least 1");
    let floor = Downloader::builder("x")
        .max_speed(300)
        .lowest_speed(300)
        .build();
    assert!(matches!(
        floor,
        Err(Error::Setting(SettingError::FloorAboveLimit { .. }))
    ));
    let header = Downloader::builder("x").header("Bad Name", "v").build();
    assert!(matches!(header, Err(Error::Client(_))), "{header:?}");
    let netrc = Downloader::builder("x")
        .netrc_file("/nonexistent/haul-netrc")
        .build();
    assert!(matches!(netrc, Err(Error::Client(_))), "{netrc:?}");

    let escape = Job::new("http://127.0.0.1:9/x").and_then(|j| j.out("../escape"));
    let msg = escape.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("'..'"), "{msg}");
    let scheme = Job::new("ftp://example.org/f").err().map(|e| e.to_string());
    assert!(scheme.unwrap_or_default().contains("http and https"));
    assert!(Job::new("http://h/f")
        .and_then(|j| j.sha256_hex("abc"))
        .is_err());
    assert!(Job::new("http://h/f")
        .and_then(|j| j.header("Range", "bytes=0-"))
        .is_err());

    // Two jobs for one path: the second is named by its place.
    let out = tempfile::tempdir().expect("temp dir");
    let mut dl = Downloader::builder(out.path()).build().expect("defaults");
    for url in ["http://127.0.0.1:9/a/x", "http://127.0.0.1:9/b/x"] {
        dl.add(Job::new(url).expect("valid URL"));
    }
    let err = dl.run(mpsc::channel(8).0, CancellationToken::new()).await;
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("library:2") && msg.contains("library:1"),
        "{msg}"
    );
    assert!(!msg.contains("--"), "{msg}");
}

/// Answers one request with a 5-byte body and sends back its head.
async fn one_request_server() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let head = tokio::spawn(async move {
        let Ok((mut conn, _)) = listener.accept().await else {
            return String::new();
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let _ = conn.write_all(answer.as_bytes()).await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    (base, head)
}

#[tokio::test]
async fn netrc_credentials_reach_the_server() -> Result<(), Error> {
    let (base, head) = one_request_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password s3cret\n").expect("netrc");
    let mut dl = Downloader::builder(dir.path().join("out"))
        .netrc_file(&netrc)
        .max_tries(1)
        .build()?;
    dl.add(Job::new(&format!("{base}/f.txt"))?);
    let report = dl
        .run(mpsc::channel(64).0, CancellationToken::new())
        .await?;
    let head = head.await.expect("server task").to_ascii_lowercase();
    // base64("alice:s3cret")
    assert!(
        head.contains("authorization: basic ywxpy2u6cznjcmv0"),
        "{head}"
    );
    assert_eq!(report.done, 1);
    Ok(())
}

/// A stream fed through a bounded channel, as a daemon adding downloads
/// would feed it.
fn channel_jobs(capacity: usize) -> (mpsc::Sender<Job>, impl Stream<Item = Job> + Send + 'static) {
    let (add, queue) = mpsc::channel::<Job>(capacity);
    let jobs = stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|job| (job, queue))
    });
    (add, jobs)
}

#[tokio::test]
async fn a_job_added_after_the_first_finished_runs_in_the_same_run() -> Result<(), Error> {
    let (a, b) = (vec![3u8; 50_000], vec![4u8; 70_000]);
    let (base, _root, stop) = serve(&[("a.bin", a.clone()), ("b.bin", b.clone())]).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dl = Downloader::builder(out.path()).build()?;
    let (add, jobs) = channel_jobs(1);
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let run = tokio::spawn(dl.run_stream(jobs, tx, CancellationToken::new()));

    add.send(Job::new(&format!("{base}/a.bin"))?)
        .await
        .expect("the run reads its jobs");
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        let a_done = matches!(&event, Event::Finished { path, .. } if path == "a.bin");
        seen.push(event);
        if a_done {
            break;
        }
    }
    let a_finished = seen.len();
    add.send(Job::new(&format!("{base}/b.bin"))?)
        .await
        .expect("the run still reads its jobs");
    drop(add);
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let report = run.await.expect("run task")?;
    stop.cancel();

    assert!(matches!(seen[0], Event::RunStarted { .. }), "{seen:?}");
    assert_eq!((report.done, report.failed), (2, 0), "{seen:?}");
    let b_queued = seen
        .iter()
        .position(|e| matches!(e, Event::Queued { id: 1, path, .. } if path == "b.bin"));
    assert!(b_queued.is_some_and(|at| at >= a_finished), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Finished { id: 1, path, .. } if path == "b.bin")),
        "{seen:?}"
    );
    assert_eq!(std::fs::read(out.path().join("a.bin")).ok(), Some(a));
    assert_eq!(std::fs::read(out.path().join("b.bin")).ok(), Some(b));
    Ok(())
}

#[tokio::test]
async fn a_streamed_job_for_a_path_still_downloading_fails_naming_it() -> Result<(), Error> {
    let (base, release, _answered) = gated_server().await;
    let out = tempfile::tempdir().expect("temp dir");
    let dl = Downloader::builder(out.path()).build()?;
    let (add, jobs) = channel_jobs(1);
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let run = tokio::spawn(dl.run_stream(jobs, tx, CancellationToken::new()));
    // The first request is held until released: the path stays busy.
    add.send(Job::new(&format!("{base}/0"))?)
        .await
        .expect("read");
    add.send(Job::new(&format!("{base}/x/0"))?)
        .await
        .expect("read");
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        let refused = matches!(&event, Event::Failed { id: 1, .. });
        seen.push(event);
        if refused {
            break;
        }
    }
    let _ = release.send(());
    drop(add);
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let report = run.await.expect("run task")?;
    assert_eq!((report.done, report.failed), (1, 1), "{seen:?}");
    let refusal = seen.iter().find_map(|e| match e {
        Event::Failed {
            id: 1,
            path,
            kind,
            error,
        } => Some((path.as_str(), *kind, error.as_str())),
        _ => None,
    });
    assert_eq!(
        refusal,
        Some((
            "0",
            crate::event::FailureKind::Duplicate,
            "0 is already being downloaded by this run (add it again once that job ends)"
        )),
        "{seen:?}"
    );
    // Announced, then ended, as every job is.
    let of_second: Vec<&Event> = seen
        .iter()
        .filter(|e| match e {
            Event::Queued { id, .. } | Event::Failed { id, .. } => *id == 1,
            Event::Started { id, .. } | Event::Finished { id, .. } => *id == 1,
            _ => false,
        })
        .collect();
    assert!(
        matches!(of_second[..], [Event::Queued { .. }, Event::Failed { .. }]),
        "{seen:?}"
    );
    assert_eq!(std::fs::read(out.path().join("0")).ok(), Some(body(0)));
    Ok(())
}

/// The body served for `/.../N`.
fn body(n: usize) -> Vec<u8> {
    format!("body of file {n}\n").repeat(n + 1).into_bytes()
}

/// A server answering `/.../N` with [`body`]`(N)`, except that the answer to
/// the first request for `/0` waits until the returned sender fires (or is
/// dropped). The counter holds the answers begun: a job cannot end before
/// its answer begins.
async fn gated_server() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    tokio::spawn(async move {
        let mut gate = Some(gate);
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let n: usize = path
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let held = if path == "/0" { gate.take() } else { None };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                if let Some(gate) = held {
                    let _ = gate.await;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body(n);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    (base, release, answered)
}

#[tokio::test]
async fn the_engine_reads_the_stream_only_a_window_ahead_of_its_workers() -> Result<(), Error> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const WINDOW: usize = 3;
    const FILES: usize = 12;
    let (base, release, answered) = gated_server().await;
    let out = tempfile::tempdir().expect("temp dir");
    let dl = Downloader::builder(out.path()).jobs(1).build()?;
    let pulled = Arc::new(AtomicUsize::new(0));
    let overruns = Arc::new(AtomicUsize::new(0));
    let (counted, answers) = (Arc::clone(&pulled), Arc::clone(&answered));
    let over = Arc::clone(&overruns);
    let specs = stream::iter(0..FILES).map(move |n| {
        let pulled = counted.fetch_add(1, Ordering::SeqCst) + 1;
        // One job runs at a time, and the next starts only after the last
        // ended, which needs its answer begun: at most WINDOW jobs wait
        // beyond those.
        if pulled > WINDOW + 1 + answers.load(Ordering::SeqCst) {
            over.fetch_add(1, Ordering::SeqCst);
        }
        let origin = Origin {
            source: Arc::from("test"),
            line: n + 1,
        };
        Job::new(&format!("{base}/{n}"))
            .expect("a valid URL")
            .spec(origin)
    });
    let source = JobSource::new(specs).window(WINDOW);
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(crate::engine::run(dl.engine, dl.client, source, tx, cancel));

    // Job 0 is held at the server; the job read to refill the window after
    // it started is the last one read until it ends. This test runs on one
    // thread, so by the time its `Queued` is seen the engine has gone back
    // to waiting, and would already have read more if it did not hold back.
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        let refilled = matches!(event, Event::Queued { id, .. } if id == WINDOW);
        seen.push(event);
        if refilled {
            break;
        }
    }
    assert!(
        matches!(seen[0], Event::RunStarted { jobs: FILES, .. }),
        "{seen:?}"
    );
    assert_eq!(pulled.load(Ordering::SeqCst), WINDOW + 1, "{seen:?}");
    assert_eq!(answered.load(Ordering::SeqCst), 0);

    let _ = release.send(());
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let report = run
        .await
        .expect("run task")
        .map_err(|err| Error::Run(Box::new(err)))?;
    assert_eq!((report.done, report.failed), (FILES, 0), "{seen:?}");
    assert_eq!(overruns.load(Ordering::SeqCst), 0, "{seen:?}");
    for n in 0..FILES {
        let file = std::fs::read(out.path().join(n.to_string())).ok();
        assert_eq!(file, Some(body(n)), "file {n}");
    }
    Ok(())
}

#[tokio::test]
async fn a_file_complete_from_an_earlier_run_streamed_in_later_is_skipped() -> Result<(), Error> {
    let a = vec![5u8; 40_000];
    let (base, _root, stop) = serve(&[("a.bin", a.clone())]).await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut first = Downloader::builder(out.path()).build()?;
    first.add(Job::new(&format!("{base}/a.bin"))?);
    let report = first
        .run(mpsc::channel(EVENT_QUEUE).0, CancellationToken::new())
        .await?;
    assert_eq!(report.done, 1);

    // Sent only once the run has started: reconciled by the recorder, which
    // owns the manifest by then.
    let dl = Downloader::builder(out.path()).build()?;
    let (add, jobs) = channel_jobs(1);
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let run = tokio::spawn(dl.run_stream(jobs, tx, CancellationToken::new()));
    let started = events.recv().await;
    assert!(
        matches!(started, Some(Event::RunStarted { jobs: 0, .. })),
        "{started:?}"
    );
    add.send(Job::new(&format!("{base}/a.bin"))?)
        .await
        .expect("the run reads its jobs");
    drop(add);
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let report = run.await.expect("run task")?;
    stop.cancel();
    assert_eq!((report.skipped, report.done), (1, 0), "{seen:?}");
    assert!(
        matches!(&seen[..], [Event::Skipped { id: 0, path, bytes: 40_000 }] if path == "a.bin"),
        "{seen:?}"
    );
    assert_eq!(std::fs::read(out.path().join("a.bin")).ok(), Some(a));
    Ok(())
}

#[tokio::test]
async fn a_run_waiting_on_an_idle_stream_stops_when_cancelled() -> Result<(), Error> {
    let out = tempfile::tempdir().expect("temp dir");
    let dl = Downloader::builder(out.path()).build()?;
    // Kept open: the stream never ends, as a daemon's queue does not.
    let (_add, jobs) = channel_jobs(1);
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(dl.run_stream(jobs, tx, cancel.clone()));
    let started = events.recv().await;
    assert!(
        matches!(started, Some(Event::RunStarted { .. })),
        "{started:?}"
    );
    cancel.cancel();
    // A guard, not a synchronisation: a run that ignored the cancel would
    // wait forever on the stream.
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends once cancelled")
        .expect("run task")?;
    assert!(report.cancelled);
    assert_eq!((report.done, report.failed, report.skipped), (0, 0, 0));
    Ok(())
}
