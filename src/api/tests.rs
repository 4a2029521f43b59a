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
    let dl = Downloader::builder("x").split(8).build().expect("valid");
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
